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
    /// in `words` when that comes for free: for ASCII text with punctuation stripped and whitespace
    /// collapsed (the defaults), one pass maps, collapses and finds the words. Returns whether
    /// `words` was filled; when it returns false, `out` is still the normalized text.
    pub fn normalize_words_into(
        &self,
        text: &str,
        out: &mut String,
        words: &mut Vec<(u32, u32)>,
    ) -> bool {
        words.clear();
        let o = &self.options;
        if !(text.is_ascii()
            && o.strip_punctuation
            && o.collapse_whitespace
            && text.len() < u32::MAX as usize)
        {
            self.normalize_into(text, out);
            return false;
        }
        let table = if o.lowercase {
            &WORD_BYTES_LOWER
        } else {
            &WORD_BYTES
        };
        let mut bytes = std::mem::take(out).into_bytes();
        bytes.clear();
        bytes.resize(text.len() + 1, 0);
        // Branch-free, as word/separator changes are too frequent to predict: every byte writes its
        // mapped form (a separator writes a space), and the write position advances for a word
        // byte or for the first separator after a word. Each word/separator change records the
        // write position, so `bounds` alternates word starts and ends.
        let len = WORD_BOUNDS.with_borrow_mut(|bounds| {
            // Every slot read below is written first, so a reused buffer needs no clearing.
            if bounds.len() < text.len() + 2 {
                bounds.resize(text.len() + 2, 0);
            }
            let (mut len, mut changes, mut in_word) = (0usize, 0usize, 0usize);
            for &b in text.as_bytes() {
                let c = table[b as usize];
                let is_word = usize::from(c != 0);
                bytes[len] = if is_word == 1 { c } else { b' ' };
                bounds[changes] = len as u32;
                changes += is_word ^ in_word;
                len += is_word | in_word;
                in_word = is_word;
            }
            if in_word == 1 {
                bounds[changes] = len as u32;
                changes += 1;
            } else {
                len = len.saturating_sub(1); // the space written after the last word
            }
            words.extend(
                bounds[..changes]
                    .chunks_exact(2)
                    .map(|pair| (pair[0], pair[1])),
            );
            if bounds.len() > MAX_KEPT_BOUNDS {
                *bounds = Vec::new(); // a giant document's buffer is not kept
            }
            len
        });
        bytes.truncate(len);
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

thread_local! {
    /// Scratch for word bounds, reused from document to document on each thread.
    static WORD_BOUNDS: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Scratch buffers larger than this (entries) are dropped after use rather than kept.
const MAX_KEPT_BOUNDS: usize = 1 << 20;

/// For each byte: itself if an ASCII letter or digit, else 0 (a separator).
const WORD_BYTES: [u8; 256] = word_table(false);
/// For each byte: itself lowercased if an ASCII letter or digit, else 0 (a separator).
const WORD_BYTES_LOWER: [u8; 256] = word_table(true);

const fn word_table(lower: bool) -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() {
            table[b] = if lower { c.to_ascii_lowercase() } else { c };
        }
        b += 1;
    }
    table
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
            text in prop_oneof![ascii_text(120), unicode_text(120)],
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
