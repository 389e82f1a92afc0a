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
use crate::minhash::mix64;

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

    /// Like [`Self::shingles_into`] for text whose word ranges are already known (from
    /// [`crate::normalize::Normalizer::normalize_words_into`]); gives the same hashes without
    /// scanning for words again. Character shingles ignore `words`.
    pub fn shingles_from_words(&self, text: &str, words: &[(u32, u32)], out: &mut Vec<u64>) {
        let ShingleKind::Words(n) = self.kind else {
            return self.shingles_into(text, out);
        };
        out.clear();
        let bytes = text.as_bytes();
        let tokens: Vec<u64> = words
            .iter()
            .map(|&(start, end)| self.word_hash_at(bytes, start as usize, end as usize))
            .collect();
        self.word_ngrams(&tokens, n, out);
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
    use super::*;

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
    fn rolling_ngrams_equal_direct_ones_and_depend_on_order() {
        let s = words(5);
        let tokens: Vec<u64> = (0..20u64).map(|i| mix64(i * 7 + 1)).collect();
        let mut rolled = Vec::new();
        s.word_ngrams(&tokens, 5, &mut rolled);
        let length_key = 5u64.wrapping_mul(0xa076_1d64_78bd_642f);
        let direct: Vec<u64> = tokens
            .windows(5)
            .map(|w| {
                let x = w
                    .iter()
                    .enumerate()
                    .fold(0, |h, (j, t)| h ^ t.rotate_left(9 * j as u32));
                mix64(x ^ length_key)
            })
            .collect();
        assert_eq!(rolled, direct);
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
    fn ascii_fast_path_matches_unicode_words() {
        let fast = words(2);
        let slow = Shingler::new(ShingleKind::Words(2), 1, false);
        let text = "the quick brown fox 42 jumps";
        assert_eq!(fast.shingle_set(text), slow.shingle_set(text));
    }

    #[test]
    fn packed_ascii_token_hashes_equal_per_word_hashes() {
        let s = words(1);
        let text = "a bb ccc a-very-long-word-of-more-than-16-bytes exactly16bytes! x";
        let mut packed = Vec::new();
        s.ascii_token_hashes(text.as_bytes(), &mut packed);
        let each: Vec<u64> = text
            .split(' ')
            .map(|w| s.token_hash(w.as_bytes()))
            .collect();
        assert_eq!(packed, each);
        let mut doubled = Vec::new();
        s.ascii_token_hashes(b" a  b ", &mut doubled);
        assert_eq!(doubled, [s.token_hash(b"a"), s.token_hash(b"b")]);
    }

    #[test]
    fn shingles_from_known_words_equal_shingles_from_scanning() {
        let normalizer = crate::normalize::Normalizer::default();
        let text =
            "The quick, brown fox -- jumps over 13 lazy dogs; a-very-long-hyphenated-compound!";
        let (mut normalized, mut words) = (String::new(), Vec::new());
        assert!(normalizer.normalize_words_into(text, &mut normalized, &mut words));
        for kind in [
            ShingleKind::Words(1),
            ShingleKind::Words(3),
            ShingleKind::Chars(4),
        ] {
            let s = Shingler::new(kind, 7, true);
            let (mut scanned, mut known) = (Vec::new(), Vec::new());
            s.shingles_into(&normalized, &mut scanned);
            s.shingles_from_words(&normalized, &words, &mut known);
            assert_eq!(scanned, known, "{kind}");
        }
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
