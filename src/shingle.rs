//! Shingling: cut a normalized text into overlapping pieces and hash each to a `u64`.
//!
//! - `word:N` (default N = 5): N consecutive words, words being Unicode (UAX #29) words of the
//!   normalized text. When punctuation was stripped and the text is ASCII, words are simply the
//!   space-separated pieces, which is what UAX #29 gives there too, at a fraction of the cost.
//! - `char:K`: K consecutive characters, for scripts written without spaces.
//!
//! A text with fewer than N words (K characters) still gets one shingle, of all it has. An empty
//! text gets none: it is never matched to anything.

use unicode_segmentation::UnicodeSegmentation;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::error::ConfigError;
use crate::hash::mix64;

/// What a shingle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ShingleKind {
    /// N consecutive words.
    Words(usize),
    /// K consecutive characters.
    Chars(usize),
}

impl Default for ShingleKind {
    fn default() -> Self {
        ShingleKind::Words(5)
    }
}

impl std::str::FromStr for ShingleKind {
    type Err = ConfigError;

    /// Parses `word:N`, `char:K`, or a bare number meaning `word:N`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ConfigError::ShingleSpec(s.to_string());
        let (kind, n) = match s.split_once(':') {
            Some((kind, n)) => (kind, n),
            None => ("word", s),
        };
        let n: usize = n.parse().map_err(|_| bad())?;
        if n == 0 {
            return Err(bad());
        }
        match kind {
            "word" | "words" => Ok(ShingleKind::Words(n)),
            "char" | "chars" => Ok(ShingleKind::Chars(n)),
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for ShingleKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShingleKind::Words(n) => write!(f, "word:{n}"),
            ShingleKind::Chars(k) => write!(f, "char:{k}"),
        }
    }
}

/// Hashes the shingles of normalized text.
#[derive(Debug, Clone, Copy)]
pub struct Shingler {
    kind: ShingleKind,
    seed: u64,
    ascii_words_are_spaced: bool,
}

impl Shingler {
    /// `punctuation_stripped` says whether the normalizer replaced punctuation with spaces, which lets
    /// ASCII text be split on spaces alone.
    pub fn new(kind: ShingleKind, seed: u64, punctuation_stripped: bool) -> Self {
        Shingler {
            kind,
            seed,
            ascii_words_are_spaced: punctuation_stripped,
        }
    }

    pub fn kind(&self) -> ShingleKind {
        self.kind
    }

    /// Appends the hash of every shingle of `text`, in text order, duplicates included, to `out`
    /// (cleared first).
    pub fn shingles_into(&self, text: &str, out: &mut Vec<u64>) {
        out.clear();
        match self.kind {
            ShingleKind::Words(n) => {
                let mut tokens = Vec::with_capacity(text.len() / 5);
                if self.ascii_words_are_spaced && text.is_ascii() {
                    self.ascii_token_hashes(text.as_bytes(), &mut tokens);
                } else {
                    tokens.extend(text.unicode_words().map(|w| self.token_hash(w.as_bytes())));
                }
                self.word_ngrams(&tokens, n, out);
            }
            ShingleKind::Chars(k) => self.char_ngrams(text, k, out),
        }
    }

    /// The hash one word of normalized text gets in word shingles; `padded` is the word as a
    /// little-endian `u128` padded with zeros when it has at most 16 bytes and the caller has it
    /// (as [`crate::normalize::Normalizer::normalize_words_with`] does), which saves reading the
    /// word again.
    #[inline]
    pub fn word_hash(&self, word: &[u8], padded: Option<u128>) -> u64 {
        match padded {
            Some(value) => self.mix_words(value as u64, (value >> 64) as u64, word.len()),
            None => self.token_hash(word),
        }
    }

    /// Like [`Self::shingles_into`] for a text whose words' hashes ([`Self::word_hash`]) are
    /// already known, in order: the same shingles without scanning for words again. Returns false
    /// (and leaves `out` empty) for character shingles, which word hashes cannot give.
    pub fn shingles_from_word_hashes(&self, word_hashes: &[u64], out: &mut Vec<u64>) -> bool {
        out.clear();
        let ShingleKind::Words(n) = self.kind else {
            return false;
        };
        self.word_ngrams(word_hashes, n, out);
        true
    }

    /// The sorted set of distinct shingle hashes of `text`.
    pub fn shingle_set(&self, text: &str) -> Vec<u64> {
        let mut out = Vec::new();
        self.shingles_into(text, &mut out);
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The hash of one word: up to 16 bytes read as two little-endian `u64`s (zero-padded) and
    /// mixed with the length; longer words go through xxh3.
    #[inline]
    fn token_hash(&self, word: &[u8]) -> u64 {
        if word.len() > 16 {
            return xxh3_64_with_seed(word, self.seed);
        }
        let mut buf = [0u8; 16];
        buf[..word.len()].copy_from_slice(word);
        self.short_hash(&buf, word.len())
    }

    #[inline(always)]
    fn short_hash(&self, buf: &[u8; 16], len: usize) -> u64 {
        let low = u64::from_le_bytes(buf[..8].try_into().expect("8 bytes"));
        let high = u64::from_le_bytes(buf[8..].try_into().expect("8 bytes"));
        self.mix_words(low, high, len)
    }

    /// Words of up to 8 bytes (most) take one mixing round; the length enters through the key.
    #[inline(always)]
    fn mix_words(&self, low: u64, high: u64, len: usize) -> u64 {
        let key = self.seed ^ (len as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        if len <= 8 {
            mix64(low ^ key)
        } else {
            mix64(low ^ key ^ mix64(high ^ 0x243f_6a88_85a3_08d3))
        }
    }

    /// Token hashes of space-separated ASCII words; equal to [`Self::token_hash`] of each word.
    fn ascii_token_hashes(&self, text: &[u8], out: &mut Vec<u64>) {
        let mut start = 0;
        while start < text.len() {
            let len = text[start..]
                .iter()
                .position(|&b| b == b' ')
                .unwrap_or(text.len() - start);
            if len > 0 {
                out.push(self.word_hash_at(text, start, start + len));
            }
            start += len + 1;
        }
    }

    /// [`Self::token_hash`] of `text[start..end]`, reading the word straight from the text with one
    /// or two 8-byte loads masked to its length when 16 bytes are available from `start`.
    #[inline]
    fn word_hash_at(&self, text: &[u8], start: usize, end: usize) -> u64 {
        let len = end - start;
        if len > 16 || start + 16 > text.len() {
            return self.token_hash(&text[start..end]);
        }
        let low = u64::from_le_bytes(text[start..start + 8].try_into().expect("8 bytes"));
        let high = u64::from_le_bytes(text[start + 8..start + 16].try_into().expect("8 bytes"));
        let (low, high) = if len <= 8 {
            (low & low_mask(len), 0)
        } else {
            (low, high & low_mask(len - 8))
        };
        self.mix_words(low, high, len)
    }

    /// Combines each window of token hashes: position `j` rotated left by `9j` bits, XORed, then
    /// mixed. Token hashes are already uniform, so the XOR is too; the rotation makes order count.
    /// The XOR is rolled: sliding the window drops the first token (XOR, then rotate right by 9)
    /// and adds the new last one, so each shingle costs O(1) whatever N.
    fn word_ngrams(&self, tokens: &[u64], n: usize, out: &mut Vec<u64>) {
        if tokens.is_empty() {
            return;
        }
        let window = n.min(tokens.len());
        let last_rotation = (9 * (window as u32 - 1)) % 64;
        let length_key = (window as u64).wrapping_mul(0xa076_1d64_78bd_642f);
        out.reserve(tokens.len() + 1 - window);
        let mut rolling = 0u64;
        for (j, t) in tokens[..window].iter().enumerate() {
            rolling ^= t.rotate_left((9 * j as u32) % 64);
        }
        out.push(mix64(rolling ^ length_key));
        for (first, next) in tokens.iter().zip(&tokens[window..]) {
            rolling = (rolling ^ first).rotate_right(9) ^ next.rotate_left(last_rotation);
            out.push(mix64(rolling ^ length_key));
        }
    }

    fn char_ngrams(&self, text: &str, k: usize, out: &mut Vec<u64>) {
        if text.is_empty() {
            return;
        }
        // Byte offsets of every char boundary, including the end.
        let bounds: Vec<usize> = text
            .char_indices()
            .map(|(i, _)| i)
            .chain(std::iter::once(text.len()))
            .collect();
        let chars = bounds.len() - 1;
        let window = k.min(chars);
        for start in 0..=(chars - window) {
            let piece = &text[bounds[start]..bounds[start + window]];
            out.push(xxh3_64_with_seed(piece.as_bytes(), self.seed));
        }
    }
}

/// A mask of the low `bytes` bytes (1 to 8).
#[inline(always)]
fn low_mask(bytes: usize) -> u64 {
    u64::MAX >> (64 - 8 * bytes)
}

/// Exact Jaccard similarity of two sorted, deduplicated sets. Two empty sets have similarity 0:
/// empty documents are never duplicates of one another.
pub fn jaccard<T: Ord>(a: &[T], b: &[T]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let shared = overlap(a, b);
    shared as f64 / (a.len() + b.len() - shared) as f64
}

/// Containment of the smaller of two sorted, deduplicated sets in the larger:
/// `|a ∩ b| / min(|a|, |b|)`; 0 when either is empty.
pub fn containment<T: Ord>(a: &[T], b: &[T]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    overlap(a, b) as f64 / a.len().min(b.len()) as f64
}

/// `|a ∩ b|` of two sorted, deduplicated sets.
pub fn overlap<T: Ord>(a: &[T], b: &[T]) -> usize {
    let (mut i, mut j, mut shared) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                shared += 1;
                i += 1;
                j += 1;
            }
        }
    }
    shared
}

#[cfg(test)]
mod tests {
    use crate::shingle::{ShingleKind, Shingler, jaccard, mix64};

    fn words(n: usize) -> Shingler {
        Shingler::new(ShingleKind::Words(n), 1, true)
    }

    #[test]
    fn word_shingles_count_and_overlap() {
        let s = words(3);
        let mut out = Vec::new();
        s.shingles_into("a b c d e", &mut out);
        assert_eq!(out.len(), 3);
        let a = s.shingle_set("a b c d e");
        let b = s.shingle_set("a b c d x");
        // {abc, bcd, cde} vs {abc, bcd, cdx}: 2 shared of 4.
        assert_eq!(jaccard(&a, &b), 0.5);
    }

    #[test]
    fn ngrams_depend_on_token_order() {
        let s = words(5);
        let tokens: Vec<u64> = (0..20u64).map(|i| mix64(i * 7 + 1)).collect();
        let mut rolled = Vec::new();
        s.word_ngrams(&tokens, 5, &mut rolled);
        let mut swapped = tokens.clone();
        swapped.swap(0, 1);
        let mut other = Vec::new();
        s.word_ngrams(&swapped, 5, &mut other);
        assert_ne!(rolled[0], other[0]);
        assert_eq!(rolled[2..], other[2..]);
    }

    #[test]
    fn short_and_empty_texts() {
        let s = words(5);
        assert_eq!(s.shingle_set("two words").len(), 1);
        assert_ne!(s.shingle_set("two words"), s.shingle_set("two other"));
        assert!(s.shingle_set("").is_empty());
        assert_eq!(jaccard::<u64>(&[], &[]), 0.0);
    }

    #[test]
    fn char_shingles_work_without_spaces() {
        let s = Shingler::new(ShingleKind::Chars(2), 1, true);
        let a = s.shingle_set("東京都庁");
        assert_eq!(a.len(), 3);
        assert_eq!(s.shingle_set("東").len(), 1);
        let b = s.shingle_set("東京都民");
        assert_eq!(jaccard(&a, &b), 2.0 / 4.0);
    }

    #[test]
    fn parses_specs() {
        assert_eq!("word:3".parse::<ShingleKind>(), Ok(ShingleKind::Words(3)));
        assert_eq!("char:5".parse::<ShingleKind>(), Ok(ShingleKind::Chars(5)));
        assert_eq!("7".parse::<ShingleKind>(), Ok(ShingleKind::Words(7)));
        assert!("word:0".parse::<ShingleKind>().is_err());
        assert!("byte:3".parse::<ShingleKind>().is_err());
    }
}

#[cfg(test)]
mod properties {
    use std::collections::BTreeSet;

    use proptest::prelude::*;
    use unicode_segmentation::UnicodeSegmentation;

    use crate::hash::mix64;
    use crate::normalize::properties::{ascii_char, ascii_text, options, unicode_text};
    use crate::normalize::{NormalizeOptions, Normalizer};
    use crate::shingle::{ShingleKind, Shingler, containment, jaccard, overlap};

    fn kind() -> impl Strategy<Value = ShingleKind> {
        prop_oneof![
            (1..=8usize).prop_map(ShingleKind::Words),
            (1..=6usize).prop_map(ShingleKind::Chars),
        ]
    }

    /// Space-separated ASCII words of 0 to 20 bytes (around the 8- and 16-byte packing limits),
    /// with runs of spaces and leading and trailing spaces.
    fn spaced_words() -> impl Strategy<Value = String> {
        let word = prop::collection::vec(
            ascii_char().prop_map(|c| if c == ' ' { '_' } else { c }),
            0..=20,
        )
        .prop_map(String::from_iter);
        prop::collection::vec((word, 1..=3usize), 0..12).prop_map(|words| {
            words
                .into_iter()
                .map(|(w, spaces)| w + &" ".repeat(spaces))
                .collect()
        })
    }

    /// A sorted, deduplicated set drawn from few values, so that sets overlap.
    fn small_set() -> impl Strategy<Value = Vec<u64>> {
        prop::collection::btree_set(0..40u64, 0..24).prop_map(|s| s.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// On text normalized with punctuation stripped, the ASCII shortcut (split on spaces)
        /// gives the very shingles, in order, that UAX #29 words give; and a text of `w` words
        /// has `max(w - n + 1, 1)` word shingles (none when empty).
        #[test]
        fn ascii_space_split_equals_unicode_words(
            options in options(),
            raw in ascii_text(120),
            n in 1..=8usize,
            seed in any::<u64>(),
        ) {
            let text = Normalizer::new(NormalizeOptions { strip_punctuation: true, ..options })
                .normalize(&raw);
            let (mut fast, mut slow) = (Vec::new(), Vec::new());
            Shingler::new(ShingleKind::Words(n), seed, true).shingles_into(&text, &mut fast);
            Shingler::new(ShingleKind::Words(n), seed, false).shingles_into(&text, &mut slow);
            prop_assert_eq!(&fast, &slow);
            let words = text.unicode_words().count();
            let expected = if words == 0 { 0 } else { words.saturating_sub(n) + 1 };
            prop_assert_eq!(fast.len(), expected);
        }

        /// Word shingles made from the word hashes taken as the normalizer writes each word
        /// equal those from scanning the normalized text; character shingles are refused.
        #[test]
        fn shingles_from_known_words_equal_shingles_from_scanning(
            options in options(),
            raw in ascii_text(120),
            kind in kind(),
            seed in any::<u64>(),
        ) {
            let normalizer = Normalizer::new(NormalizeOptions {
                strip_punctuation: true,
                collapse_whitespace: true,
                ..options
            });
            let s = Shingler::new(kind, seed, true);
            let (mut normalized, mut hashes) = (String::new(), Vec::new());
            let fast = normalizer.normalize_words_with(&raw, &mut normalized, |_, word, padded| {
                hashes.push(s.word_hash(word, padded));
            });
            prop_assert!(fast);
            let (mut scanned, mut known) = (Vec::new(), Vec::new());
            s.shingles_into(&normalized, &mut scanned);
            if s.shingles_from_word_hashes(&hashes, &mut known) {
                prop_assert_eq!(scanned, known);
            } else {
                prop_assert!(matches!(kind, ShingleKind::Chars(_)) && known.is_empty());
            }
        }

        /// Packed hashes of space-separated words (read with masked 8-byte loads where 16 bytes
        /// are available) equal hashing each word alone.
        #[test]
        fn packed_ascii_token_hashes_equal_per_word_hashes(text in spaced_words(), seed in any::<u64>()) {
            let s = Shingler::new(ShingleKind::Words(1), seed, true);
            let mut packed = Vec::new();
            s.ascii_token_hashes(text.as_bytes(), &mut packed);
            let each: Vec<u64> = text
                .split(' ')
                .filter(|w| !w.is_empty())
                .map(|w| s.token_hash(w.as_bytes()))
                .collect();
            prop_assert_eq!(packed, each);
        }

        /// The rolled window hash equals hashing each window directly, for any window size
        /// (a short token list gives one shingle of all of it).
        #[test]
        fn rolling_ngrams_equal_direct_ones(
            tokens in prop::collection::vec(any::<u64>(), 0..40),
            n in 1..=12usize,
        ) {
            let s = Shingler::new(ShingleKind::Words(n), 1, true);
            let mut rolled = Vec::new();
            s.word_ngrams(&tokens, n, &mut rolled);
            let window = n.min(tokens.len());
            let length_key = (window as u64).wrapping_mul(0xa076_1d64_78bd_642f);
            let direct: Vec<u64> = if tokens.is_empty() {
                Vec::new()
            } else {
                tokens
                    .windows(window)
                    .map(|w| {
                        let x = w
                            .iter()
                            .enumerate()
                            .fold(0, |h, (j, t)| h ^ t.rotate_left(9 * j as u32));
                        mix64(x ^ length_key)
                    })
                    .collect()
            };
            prop_assert_eq!(rolled, direct);
        }

        /// A text of `c` characters has `max(c - k + 1, 1)` character shingles (none when
        /// empty), each the hash of its window alone.
        #[test]
        fn char_shingles_are_the_windows_of_the_text(
            text in unicode_text(40),
            k in 1..=6usize,
            seed in any::<u64>(),
        ) {
            let s = Shingler::new(ShingleKind::Chars(k), seed, true);
            let mut out = Vec::new();
            s.shingles_into(&text, &mut out);
            let chars: Vec<char> = text.chars().collect();
            let expected: Vec<u64> = if chars.is_empty() {
                Vec::new()
            } else {
                chars
                    .windows(k.min(chars.len()))
                    .map(|w| {
                        let window: String = w.iter().collect();
                        let mut one = Vec::new();
                        s.shingles_into(&window, &mut one);
                        prop_assert_eq!(one.len(), 1);
                        Ok(one[0])
                    })
                    .collect::<Result<_, TestCaseError>>()?
            };
            prop_assert_eq!(out, expected);
        }

        /// Overlap, Jaccard and containment of sorted sets agree with set arithmetic.
        #[test]
        fn set_similarities_agree_with_set_arithmetic(a in small_set(), b in small_set()) {
            let (sa, sb): (BTreeSet<u64>, BTreeSet<u64>) =
                (a.iter().copied().collect(), b.iter().copied().collect());
            let shared = sa.intersection(&sb).count();
            let union = sa.union(&sb).count();
            prop_assert_eq!(overlap(&a, &b), shared);
            prop_assert_eq!(overlap(&b, &a), shared);
            let (j, c) = if a.is_empty() || b.is_empty() {
                (0.0, 0.0)
            } else {
                (shared as f64 / union as f64, shared as f64 / a.len().min(b.len()) as f64)
            };
            prop_assert_eq!(jaccard(&a, &b), j);
            prop_assert_eq!(jaccard(&b, &a), j);
            prop_assert_eq!(containment(&a, &b), c);
            prop_assert_eq!(containment(&b, &a), c);
        }

        /// A shingle kind reads back from how it prints.
        #[test]
        fn shingle_kinds_parse_what_they_print(kind in kind()) {
            prop_assert_eq!(kind.to_string().parse::<ShingleKind>(), Ok(kind));
        }
    }
}
