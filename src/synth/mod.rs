//! Synthetic corpora with known near-duplicate families, for tests, benchmarks and evaluation.
//!
//! Not part of the deduplication pipeline. Each original document is a deterministic function of
//! `(seed, original number)`, so a copy can regenerate its source instead of keeping it in memory:
//! generating a billion documents takes constant memory.
//!
//! A document is an *original* or, with probability `dup_fraction`, a *copy* of an earlier original
//! made by one [`Transform`]: an exact copy, word edits at 1-15%, reordered paragraphs, truncation,
//! or site boilerplate added around it. The truth names each document's family (its original's id).

pub mod syndication;

use crate::hash::splitmix64;

/// What was done to an original to make a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    Original,
    ExactCopy,
    /// Word edits (substitution, insertion, deletion) at this many percent of the words.
    WordEdits(u32),
    ReorderedParagraphs,
    /// The first this-many percent of the words kept.
    Truncated(u32),
    AddedBoilerplate,
}

impl std::fmt::Display for Transform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transform::Original => f.write_str("original"),
            Transform::ExactCopy => f.write_str("exact"),
            Transform::WordEdits(p) => write!(f, "edit{p}"),
            Transform::ReorderedParagraphs => f.write_str("reorder"),
            Transform::Truncated(p) => write!(f, "truncate{p}"),
            Transform::AddedBoilerplate => f.write_str("boilerplate"),
        }
    }
}

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct CorpusSpec {
    pub docs: usize,
    pub seed: u64,
    /// Share of documents that are copies of an earlier original.
    pub dup_fraction: f64,
    /// Mean words per original (uniform from half to one and a half times this).
    pub mean_words: usize,
}

impl Default for CorpusSpec {
    fn default() -> Self {
        CorpusSpec {
            docs: 1000,
            seed: 1,
            dup_fraction: 0.3,
            mean_words: 400,
        }
    }
}

/// One generated document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthDoc {
    pub id: String,
    pub text: String,
    /// Id of the original this document derives from (its own id for an original).
    pub family: String,
    pub transform: Transform,
}

impl SynthDoc {
    /// The document as a JSON Lines record, `{"id":…,"text":…}` (without the line end).
    pub fn json_line(&self) -> String {
        serde_json::json!({"id": self.id, "text": self.text}).to_string()
    }
}

/// The documents `spec` asks for, as JSON Lines (a line end after each).
pub fn json_lines(spec: CorpusSpec) -> String {
    Corpus::new(spec)
        .take(spec.docs)
        .map(|d| d.json_line() + "\n")
        .collect()
}

const VOCABULARY: usize = 20_000;
const SYLLABLES: [&str; 24] = [
    "ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "an", "el", "ob", "us", "ve", "di", "gar",
    "ton", "mel", "ris", "qua", "zen", "bor", "fin", "hel", "wex",
];

/// An endless, deterministic stream of documents; take as many as the spec says.
pub struct Corpus {
    spec: CorpusSpec,
    rng: u64,
    produced: usize,
    originals: Vec<usize>,
}

impl Corpus {
    pub fn new(spec: CorpusSpec) -> Self {
        Corpus {
            spec,
            rng: spec.seed ^ 0x5eed_c0de,
            produced: 0,
            originals: Vec::new(),
        }
    }

    fn uniform(&mut self) -> f64 {
        (splitmix64(&mut self.rng) >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Iterator for Corpus {
    type Item = SynthDoc;

    fn next(&mut self) -> Option<SynthDoc> {
        if self.produced >= self.spec.docs {
            return None;
        }
        let number = self.produced;
        self.produced += 1;
        let id = format!("d{number:08}");
        if self.originals.is_empty() || self.uniform() >= self.spec.dup_fraction {
            self.originals.push(number);
            let text = original_text(self.spec, number);
            return Some(SynthDoc {
                family: id.clone(),
                id,
                text,
                transform: Transform::Original,
            });
        }
        let source =
            self.originals[(splitmix64(&mut self.rng) % self.originals.len() as u64) as usize];
        let mut rng = splitmix64(&mut self.rng);
        let transform = match splitmix64(&mut rng) % 10 {
            0 | 1 => Transform::ExactCopy,
            2 => Transform::WordEdits(1),
            3 => Transform::WordEdits(3),
            4 => Transform::WordEdits(5),
            5 => Transform::WordEdits(10),
            6 => Transform::WordEdits(15),
            7 => Transform::ReorderedParagraphs,
            8 => Transform::Truncated(80 + (splitmix64(&mut rng) % 16) as u32),
            _ => Transform::AddedBoilerplate,
        };
        let text = apply(transform, &original_text(self.spec, source), &mut rng);
        Some(SynthDoc {
            id,
            text,
            family: format!("d{source:08}"),
            transform,
        })
    }
}

/// The text of original number `number`: paragraphs of sentences of Zipf-like words.
pub fn original_text(spec: CorpusSpec, number: usize) -> String {
    let mut rng = spec.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (number as u64).wrapping_add(1);
    let half = spec.mean_words.max(2) / 2;
    let target = half + (splitmix64(&mut rng) % (2 * half as u64 + 1)) as usize;
    let mut text = String::with_capacity(target * 7);
    let mut words = 0;
    while words < target {
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        let sentences = 3 + splitmix64(&mut rng) % 4;
        for s in 0..sentences {
            if s > 0 {
                text.push(' ');
            }
            let length = 6 + splitmix64(&mut rng) % 14;
            for w in 0..length {
                if w > 0 {
                    text.push(' ');
                }
                let word = word(zipf_index(&mut rng));
                if w == 0 {
                    let mut chars = word.chars();
                    if let Some(first) = chars.next() {
                        text.extend(first.to_uppercase());
                        text.push_str(chars.as_str());
                    }
                } else {
                    text.push_str(&word);
                }
                words += 1;
            }
            text.push('.');
        }
    }
    text
}

/// A skewed word index: frequent words are much more frequent than rare ones.
fn zipf_index(rng: &mut u64) -> usize {
    let u = (splitmix64(rng) >> 11) as f64 / (1u64 << 53) as f64;
    ((VOCABULARY as f64).powf(u) - 1.0) as usize
}

/// The word with a given index: two to four syllables, distinct for distinct indices.
fn word(index: usize) -> String {
    let mut out = String::new();
    let mut rest = index;
    loop {
        out.push_str(SYLLABLES[rest % SYLLABLES.len()]);
        rest /= SYLLABLES.len();
        if rest == 0 {
            break;
        }
        rest -= 1;
    }
    if out.len() < 4 {
        out.push_str("ra");
    }
    out
}

fn apply(transform: Transform, source: &str, rng: &mut u64) -> String {
    match transform {
        Transform::Original | Transform::ExactCopy => source.to_string(),
        Transform::WordEdits(percent) => {
            let mut out: Vec<String> = Vec::new();
            for token in source.split(' ') {
                if splitmix64(rng) % 100 < percent as u64 {
                    match splitmix64(rng) % 3 {
                        0 => out.push(word(zipf_index(rng))),
                        1 => {
                            out.push(token.to_string());
                            out.push(word(zipf_index(rng)));
                        }
                        _ => {}
                    }
                } else {
                    out.push(token.to_string());
                }
            }
            out.join(" ")
        }
        Transform::ReorderedParagraphs => {
            let mut paragraphs: Vec<&str> = source.split("\n\n").collect();
            for i in (1..paragraphs.len()).rev() {
                let j = (splitmix64(rng) % (i as u64 + 1)) as usize;
                paragraphs.swap(i, j);
            }
            paragraphs.join("\n\n")
        }
        Transform::Truncated(percent) => {
            let tokens: Vec<&str> = source.split(' ').collect();
            let keep = (tokens.len() * percent as usize / 100).max(1);
            tokens[..keep].join(" ")
        }
        Transform::AddedBoilerplate => {
            let site = splitmix64(rng) % 5;
            format!(
                "Home | News | Sport | Site {site} | Contact us\n\n{source}\n\n\
                 Share this story. Comments are closed. Copyright site {site}, all rights reserved."
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::synth::{Corpus, CorpusSpec, SynthDoc, Transform, VOCABULARY, word};

    #[test]
    fn deterministic_and_sized() {
        let spec = CorpusSpec {
            docs: 200,
            ..Default::default()
        };
        let a: Vec<SynthDoc> = Corpus::new(spec).collect();
        let b: Vec<SynthDoc> = Corpus::new(spec).collect();
        assert_eq!(a, b);
        assert_eq!(a.len(), 200);
        let copies = a
            .iter()
            .filter(|d| d.transform != Transform::Original)
            .count();
        assert!((30..=90).contains(&copies), "{copies} copies");
        let words: usize = a.iter().map(|d| d.text.split_whitespace().count()).sum();
        assert!((300..=500).contains(&(words / a.len())));
    }

    #[test]
    fn copies_point_to_earlier_originals_with_the_same_text_source() {
        let spec = CorpusSpec {
            docs: 300,
            ..Default::default()
        };
        let docs: Vec<SynthDoc> = Corpus::new(spec).collect();
        for d in &docs {
            let original = docs.iter().find(|o| o.id == d.family).unwrap();
            assert_eq!(original.transform, Transform::Original);
            if d.transform == Transform::ExactCopy {
                assert_eq!(d.text, original.text);
            }
        }
    }

    #[test]
    fn words_are_distinct() {
        let words: std::collections::HashSet<String> = (0..VOCABULARY).map(word).collect();
        assert_eq!(words.len(), VOCABULARY);
    }
}
