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
                    tokens.extend(
                        text.split_ascii_whitespace()
                            .map(|w| xxh3_64_with_seed(w.as_bytes(), self.seed)),
                    );
                } else {
                    tokens.extend(
                        text.unicode_words()
                            .map(|w| xxh3_64_with_seed(w.as_bytes(), self.seed)),
                    );
                }
                self.word_ngrams(&tokens, n, out);
            }
            ShingleKind::Chars(k) => self.char_ngrams(text, k, out),
        }
    }

    /// The sorted set of distinct shingle hashes of `text`.
    pub fn shingle_set(&self, text: &str) -> Vec<u64> {
        let mut out = Vec::new();
        self.shingles_into(text, &mut out);
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Combines each window of token hashes into one: position `j` rotated by `9j` bits, XORed, then
    /// mixed. Token hashes are already uniform, so the XOR is too; the rotation makes order count.
    fn word_ngrams(&self, tokens: &[u64], n: usize, out: &mut Vec<u64>) {
        if tokens.is_empty() {
            return;
        }
        let window = n.min(tokens.len());
        out.reserve(tokens.len() + 1 - window);
        for gram in tokens.windows(window) {
            let mut h = window as u64;
            for (j, t) in gram.iter().enumerate() {
                h ^= t.rotate_left((9 * j as u32) % 64);
            }
            out.push(mix64(h));
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

/// Exact Jaccard similarity of two sorted, deduplicated sets. Two empty sets have similarity 0:
/// empty documents are never duplicates of one another.
pub fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
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
    shared as f64 / (a.len() + b.len() - shared) as f64
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
    fn short_and_empty_texts() {
        let s = words(5);
        assert_eq!(s.shingle_set("two words").len(), 1);
        assert_ne!(s.shingle_set("two words"), s.shingle_set("two other"));
        assert!(s.shingle_set("").is_empty());
        assert_eq!(jaccard(&[], &[]), 0.0);
    }

    #[test]
    fn ascii_fast_path_matches_unicode_words() {
        let fast = words(2);
        let slow = Shingler::new(ShingleKind::Words(2), 1, false);
        let text = "the quick brown fox 42 jumps";
        assert_eq!(fast.shingle_set(text), slow.shingle_set(text));
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
