//! Normalization: make texts that differ only in form compare equal.
//!
//! In order: Unicode NFKC (full-width letters, ligatures and compatibility forms fold to their plain
//! form), lowercase, punctuation and symbols replaced by a space (letters, digits and combining marks
//! stay, so scripts such as Devanagari keep their words whole), and whitespace runs collapsed to one
//! space with the ends trimmed. Each step can be switched off. ASCII text, the common case, skips the
//! Unicode tables.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Which normalization steps run. All are on by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NormalizeOptions {
    pub nfkc: bool,
    pub lowercase: bool,
    pub strip_punctuation: bool,
    pub collapse_whitespace: bool,
}

impl Default for NormalizeOptions {
    fn default() -> Self {
        NormalizeOptions {
            nfkc: true,
            lowercase: true,
            strip_punctuation: true,
            collapse_whitespace: true,
        }
    }
}

/// Normalizes text according to its options. Immutable; share it across threads.
#[derive(Debug, Clone)]
pub struct Normalizer {
    options: NormalizeOptions,
}

impl Default for Normalizer {
    fn default() -> Self {
        Normalizer::new(NormalizeOptions::default())
    }
}

/// Bytes classified at once by [`ascii_words`].
const BLOCK: usize = 64;

/// For 8 ASCII bytes (little-endian in `lane`), a bit per byte: set where the byte is a letter or
/// a digit. Each range test adds to every byte at once; bytes below 0x80 never carry into the
/// next.
fn alphanumeric_bits(lane: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // High bit of each byte: set where the byte is in lo..=hi.
    let in_range = |x: u64, lo: u8, hi: u8| {
        (x + ONES * u64::from(0x80 - lo)) & !(x + ONES * u64::from(0x7f - hi)) & HIGH
    };
    let letters = in_range(lane | (ONES * 0x20), b'a', b'z');
    let digits = in_range(lane, b'0', b'9');
    // One bit per byte, gathered into the low 8 bits (byte i to bit i).
    (((letters | digits) >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

/// The fast path of [`Normalizer::normalize_words_with`] for ASCII `text`: its letter-and-digit
/// runs, lowercased when `lower`, joined by single spaces into `out`, each word handed to
/// `on_word` as it is written (see [`Normalizer::normalize_words_with`]). The bytes are classified
/// 64 at a time into a mask ([`alphanumeric_bits`]), and only the word/separator changes, found by
/// the mask's bits, are visited; a word of up to 16 bytes is copied (and lowercased) as one 16-byte
/// value, so copying has no loop to mispredict, and that value is what `on_word` gets.
fn ascii_words(
    text: &[u8],
    lower: bool,
    out: &mut Vec<u8>,
    mut on_word: impl FnMut(usize, &[u8], Option<u128>),
) {
    const WIDE: usize = 16;
    let case = if lower {
        u128::from_le_bytes([0x20; WIDE])
    } else {
        0
    };
    // Room for the words, their spaces, and the tail of a last 16-byte copy. Every byte kept is
    // written first, so a longer buffer left by an earlier text needs no zeroing.
    let room = text.len() + WIDE + 1;
    if out.len() < room {
        out.resize(room, 0);
    }
    let mut len = 0usize;
    let mut emit = |start: usize, end: usize| {
        // The separating space; the first word writes over it.
        out[len] = b' ';
        len += usize::from(len != 0);
        let word_len = end - start;
        let padded = match text.get(start..start + WIDE) {
            Some(wide) if word_len <= WIDE => {
                // Letters and digits only: setting 0x20 lowercases a letter and leaves a digit
                // as it is; the bytes copied past the word are written over or cut off.
                let value = u128::from_le_bytes(wide.try_into().expect("16 bytes")) | case;
                out[len..len + WIDE].copy_from_slice(&value.to_le_bytes());
                Some(value & (u128::MAX >> (128 - 8 * word_len)))
            }
            _ => {
                let case = case as u8;
                for (to, &from) in out[len..len + word_len].iter_mut().zip(&text[start..end]) {
                    *to = from | case;
                }
                None
            }
        };
        on_word(len, &out[len..len + word_len], padded);
        len += word_len;
    };
    let mut word_start = None;
    let mut previous = 0u64; // whether the byte before the block is a word byte (bit 0)
    // One block more than the text fills: the last block is padded with at least one zero byte,
    // which ends the last word, so `emit` has one call site and is inlined.
    for number in 0..text.len() / BLOCK + 1 {
        let base = number * BLOCK;
        let mut padded = [0u8; BLOCK];
        let block: &[u8] = match text.get(base..base + BLOCK) {
            Some(full) => full,
            None => {
                let rest = &text[base..];
                padded[..rest.len()].copy_from_slice(rest);
                &padded
            }
        };
        let mut mask = 0u64;
        for (lane_number, lane) in block.chunks_exact(8).enumerate() {
            let lane = u64::from_le_bytes(lane.try_into().expect("8 bytes"));
            mask |= alphanumeric_bits(lane) << (8 * lane_number);
        }
        let mut changes = mask ^ ((mask << 1) | previous);
        while changes != 0 {
            let bit = changes.trailing_zeros() as usize;
            match word_start.take() {
                None => word_start = Some(base + bit),
                Some(start) => emit(start, base + bit),
            }
            changes &= changes - 1;
        }
        previous = mask >> 63;
    }
    debug_assert!(word_start.is_none(), "the padding ends every word");
    out.truncate(len);
}

impl Normalizer {
    pub fn new(options: NormalizeOptions) -> Self {
        Normalizer { options }
    }

    pub fn options(&self) -> NormalizeOptions {
        self.options
    }

    /// Writes the normalized form of `text` into `out` (cleared first).
    pub fn normalize_into(&self, text: &str, out: &mut String) {
        out.clear();
        if text.is_ascii() {
            self.normalize_ascii(text.as_bytes(), out);
            return;
        }
        out.reserve(text.len());
        let mut sink = Collapser {
            out,
            collapse: self.options.collapse_whitespace,
            pending_space: false,
        };
        if self.options.nfkc {
            self.push_chars(text.nfkc(), &mut sink);
        } else {
            self.push_chars(text.chars(), &mut sink);
        }
    }

    /// The ASCII path. ASCII is its own NFKC form, so it is a byte map (branch-free, so the compiler
    /// vectorizes it) followed, when collapsing, by an in-place pass that joins the words found by
    /// `memchr` with single spaces.
    fn normalize_ascii(&self, text: &[u8], out: &mut String) {
        let mut bytes = std::mem::take(out).into_bytes();
        bytes.clear();
        bytes.resize(text.len(), 0);
        let o = &self.options;
        let space_out = o.collapse_whitespace;
        let pairs = bytes.iter_mut().zip(text);
        match (o.lowercase, o.strip_punctuation) {
            (true, true) => pairs.for_each(|(c, &b)| *c = map_ascii::<true, true>(b, space_out)),
            (true, false) => pairs.for_each(|(c, &b)| *c = map_ascii::<true, false>(b, space_out)),
            (false, true) => pairs.for_each(|(c, &b)| *c = map_ascii::<false, true>(b, space_out)),
            (false, false) => {
                pairs.for_each(|(c, &b)| *c = map_ascii::<false, false>(b, space_out))
            }
        }
        if o.collapse_whitespace {
            collapse_spaces(&mut bytes);
        }
        *out = String::from_utf8(bytes).expect("ASCII in, ASCII out");
    }

    /// Like [`Self::normalize_into`], and also records the byte range of every word of the output
    /// in `words` when that comes for free (see [`Self::normalize_words_with`]). Returns whether
    /// `words` was filled; when it returns false, `out` is still the normalized text.
    pub fn normalize_words_into(
        &self,
        text: &str,
        out: &mut String,
        words: &mut Vec<(u32, u32)>,
    ) -> bool {
        words.clear();
        self.normalize_words_with(text, out, |start, word, _| {
            words.push((start as u32, (start + word.len()) as u32));
        })
    }

    /// Like [`Self::normalize_into`], and also hands every word of the output to `on_word`, in
    /// order, as it is written, when that comes for free: for ASCII text with punctuation stripped
    /// and whitespace collapsed (the defaults), one pass finds the words and copies them.
    /// `on_word` gets the word's byte offset in the output, its bytes, and, for a word of up to
    /// 16 bytes, those bytes as a little-endian `u128` padded with zeros (what the copy already
    /// holds in a register, so a word hash needs no load). Returns whether `on_word` was called
    /// for the words; when it returns false, it was not called at all and `out` is still the
    /// normalized text.
    pub fn normalize_words_with(
        &self,
        text: &str,
        out: &mut String,
        on_word: impl FnMut(usize, &[u8], Option<u128>),
    ) -> bool {
        let o = &self.options;
        if !(text.is_ascii()
            && o.strip_punctuation
            && o.collapse_whitespace
            && text.len() < u32::MAX as usize)
        {
            self.normalize_into(text, out);
            return false;
        }
        let mut bytes = std::mem::take(out).into_bytes();
        ascii_words(text.as_bytes(), o.lowercase, &mut bytes, on_word);
        *out = String::from_utf8(bytes).expect("ASCII in, ASCII out");
        true
    }

    /// Returns the normalized form of `text`.
    pub fn normalize(&self, text: &str) -> String {
        let mut out = String::new();
        self.normalize_into(text, &mut out);
        out
    }

    fn push_chars(&self, chars: impl Iterator<Item = char>, sink: &mut Collapser<'_>) {
        for c in chars {
            if self.options.lowercase && !c.is_lowercase() && c.is_alphabetic() {
                for l in c.to_lowercase() {
                    sink.push(self.strip(l));
                }
            } else {
                sink.push(self.strip(c));
            }
        }
    }

    fn strip(&self, c: char) -> char {
        if self.options.strip_punctuation && !(c.is_alphanumeric() || is_combining_mark(c)) {
            ' '
        } else {
            c
        }
    }
}

/// One ASCII byte, normalized: lowercased if `LOWER`, a space if `STRIP` and not alphanumeric, and
/// ASCII whitespace as a space when `space_out` (whitespace is about to be collapsed).
#[inline(always)]
fn map_ascii<const LOWER: bool, const STRIP: bool>(b: u8, space_out: bool) -> u8 {
    let is_upper = b.wrapping_sub(b'A') < 26;
    let is_lower = b.wrapping_sub(b'a') < 26;
    let is_digit = b.wrapping_sub(b'0') < 10;
    let is_space = b == b' ' || b.wrapping_sub(b'\t') < 5; // \t \n \x0b \x0c \r
    let mut c = if LOWER && is_upper { b | 0x20 } else { b };
    if STRIP && !(is_upper || is_lower || is_digit) {
        c = b' ';
    }
    if space_out && is_space {
        c = b' ';
    }
    c
}

/// Removes leading and trailing spaces and turns runs of spaces into one, in place. Branch-free:
/// every byte is copied down; the write position advances unless the byte is a space after a space.
fn collapse_spaces(bytes: &mut Vec<u8>) {
    let mut write = 0;
    let mut after_space = true;
    for read in 0..bytes.len() {
        let c = bytes[read];
        let is_space = c == b' ';
        bytes[write] = c;
        write += usize::from(!(is_space && after_space));
        after_space = is_space;
    }
    if write > 0 && bytes[write - 1] == b' ' {
        write -= 1;
    }
    bytes.truncate(write);
}

/// Appends characters, turning whitespace runs into one space between words when collapsing.
struct Collapser<'a> {
    out: &'a mut String,
    collapse: bool,
    pending_space: bool,
}

impl Collapser<'_> {
    #[inline]
    fn push(&mut self, c: char) {
        if !self.collapse {
            self.out.push(c);
        } else if c.is_whitespace() {
            self.pending_space = !self.out.is_empty();
        } else {
            if self.pending_space {
                self.out.push(' ');
                self.pending_space = false;
            }
            self.out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::normalize::{NormalizeOptions, Normalizer};

    #[test]
    fn default_pipeline() {
        let n = Normalizer::default();
        assert_eq!(
            n.normalize("  Hello,   WORLD!\n\tIt's  "),
            "hello world it s"
        );
        // NFKC folds full-width letters and the ﬁ ligature; lowercasing handles non-ASCII.
        assert_eq!(n.normalize("ＡＢＣ ﬁnal ÉTÉ"), "abc final été");
        // Combining marks stay inside their word.
        assert_eq!(n.normalize("हिन्दी भाषा।"), "हिन्दी भाषा");
        assert_eq!(n.normalize("...!!!"), "");
        assert_eq!(n.normalize(""), "");
    }

    #[test]
    fn steps_can_be_switched_off() {
        let keep_case = Normalizer::new(NormalizeOptions {
            lowercase: false,
            ..Default::default()
        });
        assert_eq!(keep_case.normalize("Hello, World"), "Hello World");
        let keep_punct = Normalizer::new(NormalizeOptions {
            strip_punctuation: false,
            ..Default::default()
        });
        assert_eq!(keep_punct.normalize("Hello,  World!"), "hello, world!");
        let keep_space = Normalizer::new(NormalizeOptions {
            collapse_whitespace: false,
            ..Default::default()
        });
        assert_eq!(keep_space.normalize("a  b"), "a  b");
        let no_nfkc = Normalizer::new(NormalizeOptions {
            nfkc: false,
            ..Default::default()
        });
        assert_eq!(no_nfkc.normalize("ＡＢ"), "ａｂ");
    }

    #[test]
    fn word_bounds_come_with_the_fast_path_and_match_the_text() {
        let n = Normalizer::default();
        let (mut out, mut words) = (String::new(), Vec::new());
        assert!(n.normalize_words_into("  Hello,  WORLD!! it's 42 ", &mut out, &mut words));
        assert_eq!(out, n.normalize("  Hello,  WORLD!! it's 42 "));
        let found: Vec<&str> = words
            .iter()
            .map(|&(s, e)| &out[s as usize..e as usize])
            .collect();
        assert_eq!(found, ["hello", "world", "it", "s", "42"]);
        assert!(n.normalize_words_into("", &mut out, &mut words));
        assert!(out.is_empty() && words.is_empty());
        // Non-ASCII text, or options that keep punctuation, take the general path.
        assert!(!n.normalize_words_into("café", &mut out, &mut words));
        assert_eq!(out, "café");
        let keep = Normalizer::new(NormalizeOptions {
            strip_punctuation: false,
            ..Default::default()
        });
        assert!(!keep.normalize_words_into("a, b", &mut out, &mut words));
        assert_eq!(out, "a, b");
    }

    #[test]
    fn words_across_and_at_the_ends_of_64_byte_blocks() {
        let n = Normalizer::default();
        let (mut out, mut words) = (String::new(), Vec::new());
        for split in [1usize, 62, 63, 64, 65, 127, 128] {
            for total in [split + 1, 128, 129, 192] {
                let Some(rest) = total.checked_sub(split + 1) else {
                    continue;
                };
                let text = format!("{}.{}", "A".repeat(split), "7".repeat(rest));
                assert!(n.normalize_words_into(&text, &mut out, &mut words));
                let expected = format!("{} {}", "a".repeat(split), "7".repeat(rest));
                assert_eq!(out, expected.trim_end(), "{split} {total}");
                assert_eq!(words.len(), 1 + usize::from(rest > 0), "{split} {total}");
            }
        }
        // Every byte value an ASCII text can hold, none of them a letter or digit but those.
        let all: String = (0u8..128).map(char::from).collect();
        assert!(n.normalize_words_into(&all, &mut out, &mut words));
        assert_eq!(
            out,
            "0123456789 abcdefghijklmnopqrstuvwxyz abcdefghijklmnopqrstuvwxyz"
        );
    }
}

/// Property tests, and the text generators the other modules' properties share.
#[cfg(test)]
pub(crate) mod properties {
    use proptest::prelude::*;
    use unicode_normalization::UnicodeNormalization;

    use crate::normalize::{Collapser, NormalizeOptions, Normalizer};

    /// One ASCII character, weighted towards words: letters, digits, every kind of ASCII
    /// whitespace, punctuation, and now and then any ASCII byte (controls included).
    pub(crate) fn ascii_char() -> impl Strategy<Value = char> {
        prop_oneof![
            6 => proptest::char::range('a', 'z'),
            3 => proptest::char::range('A', 'Z'),
            2 => proptest::char::range('0', '9'),
            3 => prop::sample::select(vec![' ', ' ', ' ', '\t', '\n', '\r', '\x0b', '\x0c']),
            2 => prop::sample::select(r##"!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~"##.chars().collect::<Vec<_>>()),
            1 => proptest::char::range('\0', '\x7f'),
        ]
    }

    /// One character of any script, weighted towards what normalization treats specially:
    /// accented letters and combining marks, Devanagari, Greek (final sigma), full-width forms,
    /// ligatures, Unicode punctuation and spaces, letters whose case mapping or canonical
    /// decomposition is unusual (İ, ẞ, the Kelvin and Ångström signs), CJK, and any `char`.
    pub(crate) fn unicode_char() -> impl Strategy<Value = char> {
        prop_oneof![
            4 => ascii_char(),
            2 => proptest::char::range('\u{c0}', '\u{24f}'),
            2 => proptest::char::range('\u{300}', '\u{36f}'),
            1 => proptest::char::range('\u{900}', '\u{97f}'),
            1 => proptest::char::range('\u{370}', '\u{3ff}'),
            1 => proptest::char::range('\u{ff01}', '\u{ff5e}'),
            1 => proptest::char::range('\u{fb00}', '\u{fb06}'),
            1 => proptest::char::range('\u{2010}', '\u{205f}'),
            1 => prop::sample::select(vec![
                '\u{a0}', '\u{85}', '\u{2003}', '\u{2028}', '\u{3000}', '\u{feff}', '\u{200b}',
                'İ', 'ẞ', 'ß', 'ǅ', '\u{212a}', '\u{212b}', '\u{2126}', 'Ⅻ', '²', '½', '㎏',
            ]),
            1 => proptest::char::range('\u{4e00}', '\u{4e3f}'),
            1 => any::<char>(),
        ]
    }

    /// ASCII text of up to `max` characters.
    pub(crate) fn ascii_text(max: usize) -> impl Strategy<Value = String> {
        prop::collection::vec(ascii_char(), 0..=max).prop_map(String::from_iter)
    }

    /// Text of any script of up to `max` characters.
    pub(crate) fn unicode_text(max: usize) -> impl Strategy<Value = String> {
        prop::collection::vec(unicode_char(), 0..=max).prop_map(String::from_iter)
    }

    /// Any combination of the normalization steps.
    pub(crate) fn options() -> impl Strategy<Value = NormalizeOptions> {
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
            |(nfkc, lowercase, strip_punctuation, collapse_whitespace)| NormalizeOptions {
                nfkc,
                lowercase,
                strip_punctuation,
                collapse_whitespace,
            },
        )
    }

    /// What the general (Unicode) path makes of `text`, whatever the text.
    fn via_unicode_path(n: &Normalizer, text: &str) -> String {
        let mut out = String::new();
        let mut sink = Collapser {
            out: &mut out,
            collapse: n.options.collapse_whitespace,
            pending_space: false,
        };
        if n.options.nfkc {
            n.push_chars(text.nfkc(), &mut sink);
        } else {
            n.push_chars(text.chars(), &mut sink);
        }
        out
    }

    /// The full-width form of each printable ASCII character (the space as the ideographic
    /// space), which NFKC maps back to it; other characters as they are.
    fn full_width(text: &str) -> String {
        text.chars()
            .map(|c| match c {
                ' ' => '\u{3000}',
                '!'..='~' => char::from_u32(c as u32 + 0xfee0).expect("a full-width form"),
                _ => c,
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// The ASCII fast path gives exactly what the general path gives, for every option.
        #[test]
        fn ascii_fast_path_equals_unicode_path(options in options(), text in ascii_text(120)) {
            let n = Normalizer::new(options);
            prop_assert_eq!(n.normalize(&text), via_unicode_path(&n, &text));
        }

        /// Full-width text (the Unicode path) normalizes like its ASCII original (the fast path).
        #[test]
        fn full_width_text_normalizes_like_ascii(
            options in options(),
            text in ascii_text(120),
        ) {
            let n = Normalizer::new(NormalizeOptions { nfkc: true, ..options });
            prop_assert_eq!(n.normalize(&full_width(&text)), n.normalize(&text));
        }

        /// Normalization works character by character across a space: an ASCII part (which alone
        /// takes the fast path) and a Unicode part normalize together as they do apart.
        #[test]
        fn ascii_and_unicode_parts_normalize_together_as_apart(
            options in options(),
            ascii in ascii_text(60),
            unicode in unicode_text(60),
            ascii_first in any::<bool>(),
        ) {
            let n = Normalizer::new(options);
            let (first, second) = if ascii_first { (&ascii, &unicode) } else { (&unicode, &ascii) };
            let (a, b) = (n.normalize(first), n.normalize(second));
            let apart = if !options.collapse_whitespace {
                format!("{a} {b}")
            } else if a.is_empty() || b.is_empty() {
                a + &b
            } else {
                format!("{a} {b}")
            };
            prop_assert_eq!(n.normalize(&format!("{first} {second}")), apart);
        }

        /// With NFKC on, canonically or compatibly equivalent texts normalize alike, including
        /// when one of them is ASCII and the other not (`K` and the Kelvin sign).
        #[test]
        fn equivalent_texts_normalize_alike(options in options(), text in unicode_text(80)) {
            let n = Normalizer::new(NormalizeOptions { nfkc: true, ..options });
            let direct = n.normalize(&text);
            prop_assert_eq!(&n.normalize(&text.nfd().collect::<String>()), &direct);
            prop_assert_eq!(&n.normalize(&text.nfkd().collect::<String>()), &direct);
            prop_assert_eq!(&n.normalize(&text.nfc().collect::<String>()), &direct);
        }

        /// `normalize_words_into` gives the text `normalize` gives, and when it fills `words`
        /// (ASCII text, punctuation stripped, whitespace collapsed, and only then), they are
        /// exactly the space-separated words of that text, in order.
        #[test]
        fn word_bounds_are_the_words_of_the_normalized_text(
            options in options(),
            text in prop_oneof![ascii_text(300), unicode_text(120)],
            stale in ascii_text(40),
        ) {
            let n = Normalizer::new(options);
            let (mut out, mut words) = (stale.clone(), vec![(7, 3)]);
            // A previous, longer document leaves its bounds in the thread's scratch buffer.
            n.normalize_words_into(&stale.repeat(3), &mut out, &mut words);
            let filled = n.normalize_words_into(&text, &mut out, &mut words);
            prop_assert_eq!(&out, &n.normalize(&text));
            let fast = text.is_ascii() && options.strip_punctuation && options.collapse_whitespace;
            prop_assert_eq!(filled, fast);
            if filled {
                let found: Vec<&str> = words
                    .iter()
                    .map(|&(s, e)| &out[s as usize..e as usize])
                    .collect();
                let expected: Vec<&str> = out.split(' ').filter(|w| !w.is_empty()).collect();
                prop_assert_eq!(found, expected);
            } else {
                prop_assert!(words.is_empty());
            }
        }
    }
}
