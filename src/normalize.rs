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
    /// What each ASCII byte becomes (lowercased, punctuation turned to a space, as configured).
    ascii: [u8; 128],
}

impl Default for Normalizer {
    fn default() -> Self {
        Normalizer::new(NormalizeOptions::default())
    }
}

impl Normalizer {
    pub fn new(options: NormalizeOptions) -> Self {
        let mut ascii = [0u8; 128];
        for (b, slot) in ascii.iter_mut().enumerate() {
            let mut c = b as u8;
            if options.lowercase {
                c = c.to_ascii_lowercase();
            }
            if options.strip_punctuation && !c.is_ascii_alphanumeric() {
                c = b' ';
            }
            *slot = c;
        }
        Normalizer { options, ascii }
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

    /// The ASCII path: a table lookup per byte, whitespace collapsed on the fly. ASCII is its own
    /// NFKC form, so nothing else is needed.
    fn normalize_ascii(&self, text: &[u8], out: &mut String) {
        let mut bytes = std::mem::take(out).into_bytes();
        bytes.reserve(text.len());
        if self.options.collapse_whitespace {
            let mut pending_space = false;
            for &b in text {
                let c = self.ascii[b as usize];
                if c.is_ascii_whitespace() {
                    pending_space = !bytes.is_empty();
                } else {
                    if pending_space {
                        bytes.push(b' ');
                        pending_space = false;
                    }
                    bytes.push(c);
                }
            }
        } else {
            bytes.extend(text.iter().map(|&b| self.ascii[b as usize]));
        }
        *out = String::from_utf8(bytes).expect("ASCII in, ASCII out");
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
    use super::*;

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
    fn ascii_fast_path_agrees_with_unicode_path() {
        let n = Normalizer::default();
        let ascii = "Some ASCII text: with (punctuation) & CAPS -- 123.";
        let mut via_unicode = String::new();
        let mut sink = Collapser {
            out: &mut via_unicode,
            collapse: true,
            pending_space: false,
        };
        n.push_chars(ascii.nfkc(), &mut sink);
        assert_eq!(n.normalize(ascii), via_unicode);
    }
}
