//! Boilerplate: lines (or paragraphs) repeated across many documents.
//!
//! A site repeats its navigation, headline lists, comment form and footer on every page, so two
//! pages of one site look alike through them, and one story syndicated to several sites looks
//! different inside each site's. Following CCNet and RefinedWeb, a *unit* (a line, or a paragraph:
//! lines between blank lines) whose normalized text occurs in at least `min_docs` documents is
//! boilerplate. Counting is per document (a unit repeated inside one document counts once).
//! Optionally units are counted per *group* (`--group-field`, e.g. a site, or a URL whose host is
//! used): then a unit is boilerplate when it repeats on `min_docs` pages of the same site, which
//! keeps a story syndicated across many sites from being taken for boilerplate.
//!
//! [`UnitCounter`] counts exactly within a memory budget: each document's distinct unit hashes go
//! to a spillable sorter (sorted runs on disk beyond the budget, [`crate::spill`]), and merging
//! them gives [`UnitCounts`], which keeps only the units seen in two or more documents. (An
//! earlier counter kept a Bloom filter sized from the input's bytes, which had no size for stdin
//! and no cap, and could count a unit one too high.)

mod prose;

pub use prose::{Class, Prose, is_prose_in};

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::error::ConfigError;
use crate::hash::mix64;
use crate::normalize::Normalizer;
use crate::spill::{Sorter, SpillSpace};

/// What counts as one unit of text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// One line.
    #[default]
    Line,
    /// Lines between blank lines.
    Paragraph,
}

impl std::str::FromStr for Unit {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "line" => Ok(Unit::Line),
            "paragraph" => Ok(Unit::Paragraph),
            other => Err(ConfigError::Unit(other.to_string())),
        }
    }
}

/// How boilerplate is recognized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoilerplateOptions {
    /// A unit in at least this many documents (of one group, with a group field) is boilerplate.
    pub min_docs: u32,
    pub unit: Unit,
}

impl Default for BoilerplateOptions {
    fn default() -> Self {
        BoilerplateOptions {
            min_docs: 3,
            unit: Unit::Line,
        }
    }
}

/// The byte ranges of the units of `text` (without their line terminators; blank lines and
/// blank-separated gaps are not units).
pub fn unit_ranges(text: &str, unit: Unit) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut paragraph: Option<Range<usize>> = None;
    for line in text.split_inclusive('\n') {
        let end = start + line.len();
        let content = line.trim_end_matches(['\n', '\r']);
        let range = start..start + content.len();
        start = end;
        match unit {
            Unit::Line => {
                if !content.trim().is_empty() {
                    out.push(range);
                }
            }
            Unit::Paragraph => {
                if content.trim().is_empty() {
                    out.extend(paragraph.take());
                } else {
                    paragraph = Some(match paragraph {
                        Some(p) => p.start..range.end,
                        None => range,
                    });
                }
            }
        }
    }
    out.extend(paragraph);
    out
}

/// The group a document's units are counted in: a URL counts by its host, anything else as is.
pub fn group_seed(group: Option<&str>) -> u64 {
    match group {
        None => 0,
        Some(value) => {
            let host = value
                .split_once("://")
                .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(rest))
                .unwrap_or(value);
            // Lowercased before `www.` is dropped: `WWW.Site.example` is `site.example` too.
            let host = host.trim().to_ascii_lowercase();
            let host = host.trim_start_matches("www.");
            mix64(xxh3_64_with_seed(host.as_bytes(), 0x6709) | 1)
        }
    }
}

/// The hash of each unit of `text` that normalizes to something, with its range.
pub fn unit_hashes(
    text: &str,
    unit: Unit,
    group: u64,
    normalizer: &Normalizer,
) -> Vec<(Range<usize>, u64)> {
    let mut normalized = String::new();
    unit_ranges(text, unit)
        .into_iter()
        .filter_map(|range| {
            normalizer.normalize_into(&text[range.clone()], &mut normalized);
            (!normalized.is_empty())
                .then(|| (range, xxh3_64_with_seed(normalized.as_bytes(), group)))
        })
        .collect()
}

/// Counts, per unit hash, the documents it occurs in: every document's distinct unit hashes go
/// to a spillable [`Sorter`] (sorted runs on disk beyond its budget), and
/// [`UnitCounter::finish`] merges them into exact counts. Memory is set by the budget while
/// counting, and by the number of *repeated* units after.
#[derive(Debug)]
pub struct UnitCounter {
    hashes: Sorter<u64>,
    documents: u64,
    units: u64,
}

/// Exact counts of the units seen in two or more documents, sorted by hash.
#[derive(Debug, Clone, Default)]
pub struct UnitCounts {
    repeated: Vec<(u64, u32)>,
    documents: u64,
    units: u64,
}

impl Default for UnitCounter {
    fn default() -> Self {
        Self::new()
    }
}

impl UnitCounter {
    /// A counter that keeps everything in memory.
    pub fn new() -> Self {
        Self::in_space(Arc::new(SpillSpace::unbounded()), u64::MAX)
    }

    /// A counter keeping at most `max_bytes` of hashes in memory, spilling sorted runs to `space`.
    pub fn in_space(space: Arc<SpillSpace>, max_bytes: u64) -> Self {
        UnitCounter {
            hashes: Sorter::new(space, max_bytes),
            documents: 0,
            units: 0,
        }
    }

    /// Counts one document's unit hashes (repeats within the document count once).
    pub fn add_document(&mut self, hashes: &mut Vec<u64>) -> std::io::Result<()> {
        hashes.sort_unstable();
        hashes.dedup();
        self.documents += 1;
        self.units += hashes.len() as u64;
        for &hash in hashes.iter() {
            self.hashes.push(hash)?;
        }
        Ok(())
    }

    /// Merges what was counted into exact counts.
    pub fn finish(self) -> std::io::Result<UnitCounts> {
        let mut repeated = Vec::new();
        let mut current: Option<(u64, u32)> = None;
        for hash in self.hashes.into_sorted()? {
            let hash = hash?;
            match &mut current {
                Some((h, count)) if *h == hash => *count = count.saturating_add(1),
                _ => {
                    if let Some(done) = current.take().filter(|&(_, count)| count >= 2) {
                        repeated.push(done);
                    }
                    current = Some((hash, 1));
                }
            }
        }
        repeated.extend(current.filter(|&(_, count)| count >= 2));
        repeated.shrink_to_fit();
        Ok(UnitCounts {
            repeated,
            documents: self.documents,
            units: self.units,
        })
    }
}

impl UnitCounts {
    /// The counts as bytes (documents, units, then each repeated hash and its count, little
    /// endian), for a resumable run's work directory.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24 + self.repeated.len() * 12);
        out.extend_from_slice(&self.documents.to_le_bytes());
        out.extend_from_slice(&self.units.to_le_bytes());
        out.extend_from_slice(&(self.repeated.len() as u64).to_le_bytes());
        for &(hash, count) in &self.repeated {
            out.extend_from_slice(&hash.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
        }
        out
    }

    /// Counts written by [`UnitCounts::to_bytes`]; `None` when the bytes are not such counts.
    pub fn from_bytes(bytes: &[u8]) -> Option<UnitCounts> {
        let word = |at: usize| -> Option<u64> {
            Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
        };
        let (documents, units, len) = (word(0)?, word(8)?, word(16)?);
        let len = usize::try_from(len).ok()?;
        let body = bytes.get(24..)?;
        if body.len() != len.checked_mul(12)? {
            return None;
        }
        let repeated: Vec<(u64, u32)> = body
            .chunks_exact(12)
            .map(|c| {
                let hash = u64::from_le_bytes(c[..8].try_into().expect("8 bytes"));
                let count = u32::from_le_bytes(c[8..].try_into().expect("4 bytes"));
                (hash, count)
            })
            .collect();
        let sorted = repeated.windows(2).all(|w| w[0].0 < w[1].0);
        sorted.then_some(UnitCounts {
            repeated,
            documents,
            units,
        })
    }

    /// Documents the unit occurs in (1 for a unit never seen twice, 0 never reported).
    pub fn count(&self, hash: u64) -> u32 {
        match self.repeated.binary_search_by_key(&hash, |&(h, _)| h) {
            Ok(at) => self.repeated[at].1,
            Err(_) => 1,
        }
    }

    pub fn documents(&self) -> u64 {
        self.documents
    }

    /// Units with a count of at least `min_docs`.
    pub fn repeated(&self, min_docs: u32) -> usize {
        self.repeated
            .iter()
            .filter(|&&(_, c)| c >= min_docs)
            .count()
    }

    /// Distinct units per document, summed over documents.
    pub fn units(&self) -> u64 {
        self.units
    }

    /// Occurrences (one per document) of the units counted at least `min_docs` times.
    pub fn occurrences_at_least(&self, min_docs: u32) -> u64 {
        self.repeated
            .iter()
            .filter(|&&(_, c)| c >= min_docs)
            .map(|&(_, c)| u64::from(c))
            .sum()
    }
}

/// A counted corpus: tells which units are boilerplate and strips them.
#[derive(Debug, Clone)]
pub struct Boilerplate {
    counter: UnitCounts,
    options: BoilerplateOptions,
    normalizer: Normalizer,
}

/// A text with its boilerplate removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stripped {
    pub text: String,
    pub units_removed: u64,
    pub bytes_removed: u64,
    /// The byte ranges of the original text that `text` is made of, in order.
    pub kept: Vec<Range<usize>>,
}

impl Boilerplate {
    pub fn new(counter: UnitCounts, options: BoilerplateOptions, normalizer: Normalizer) -> Self {
        Boilerplate {
            counter,
            options,
            normalizer,
        }
    }

    pub fn counter(&self) -> &UnitCounts {
        &self.counter
    }

    pub fn options(&self) -> BoilerplateOptions {
        self.options
    }

    /// `text` without its boilerplate units (each removed with its line terminator): the units
    /// repeated in at least `min_docs` documents (of its group) that are not prose ([`Prose`]:
    /// a story carried by many sites stays, a template's lines go).
    pub fn strip(&self, text: &str, group: u64) -> Stripped {
        let hashes = unit_hashes(text, self.options.unit, group, &self.normalizer);
        let mut out = Stripped {
            text: String::with_capacity(text.len()),
            units_removed: 0,
            bytes_removed: 0,
            kept: Vec::new(),
        };
        let mut copied = 0;
        // Units are classed only when they, or a neighbour of theirs, are repeated enough.
        let prose = Prose::of_document(text);
        let mut classes: Vec<Option<Class>> = vec![None; hashes.len()];
        for (index, (range, hash)) in hashes.iter().enumerate() {
            let range = range.clone();
            if self.counter.count(*hash) < self.options.min_docs {
                continue;
            }
            let class_at = |i: usize| {
                let (unit, _) = hashes.get(i)?;
                Some(*classes[i].get_or_insert_with(|| prose.class(&text[unit.clone()])))
            };
            if is_prose_in(class_at, index) {
                continue;
            }
            // The rest of the unit's last line is its terminator: `\r`s and the `\n`, if any.
            let end = memchr::memchr(b'\n', &text.as_bytes()[range.end..])
                .map_or(text.len(), |i| range.end + i + 1);
            out.keep(text, copied..range.start);
            out.units_removed += 1;
            out.bytes_removed += (end - range.start) as u64;
            copied = end;
        }
        out.keep(text, copied..text.len());
        out
    }
}

impl Stripped {
    fn keep(&mut self, text: &str, range: Range<usize>) {
        if !range.is_empty() {
            self.text.push_str(&text[range.clone()]);
            self.kept.push(range);
        }
    }

    /// Where in the original `text` the kept content is, in characters (Unicode scalar values,
    /// as Python indexes a `str`): each kept stretch without the whitespace at its ends, the
    /// ones only whitespace left out.
    pub fn char_spans(&self, text: &str) -> Vec<Span> {
        char_spans(text, &self.kept)
    }
}

/// A stretch of a text, `start..end` in characters; serialized as `[start, end]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Span(pub u64, pub u64);

/// The byte `ranges` of `text` (in order) as character spans, each trimmed of whitespace at
/// its ends; ranges of only whitespace are left out.
pub fn char_spans(text: &str, ranges: &[Range<usize>]) -> Vec<Span> {
    let mut spans = Vec::with_capacity(ranges.len());
    // Characters before byte `counted_to`, counted once from the start across all ranges.
    let (mut counted_to, mut chars) = (0usize, 0u64);
    let mut chars_at = |byte: usize| {
        chars += text[counted_to..byte].chars().count() as u64;
        counted_to = byte;
        chars
    };
    for range in ranges {
        let piece = &text[range.clone()];
        let trimmed = piece.trim();
        if trimmed.is_empty() {
            continue;
        }
        let start = range.start + (piece.len() - piece.trim_start().len());
        let end = start + trimmed.len();
        spans.push(Span(chars_at(start), chars_at(end)));
    }
    spans
}

/// Within-document repetition as Gopher (Rae et al. 2021) defines it: the fraction of lines that
/// duplicate another line of the same document, and the fraction of characters in such lines.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Repetition {
    pub duplicate_line_fraction: f64,
    pub duplicate_line_char_fraction: f64,
}

/// Gopher's repetition measures for one text (lines compared as they are, after trimming).
pub fn repetition(text: &str) -> Repetition {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return Repetition::default();
    }
    let mut seen: HashMap<&str, u32> = HashMap::new();
    for line in &lines {
        *seen.entry(line).or_default() += 1;
    }
    let (mut dup_lines, mut dup_chars, mut chars) = (0usize, 0usize, 0usize);
    for line in &lines {
        let n = line.chars().count();
        chars += n;
        if seen[line] > 1 {
            dup_lines += 1;
            dup_chars += n;
        }
    }
    Repetition {
        duplicate_line_fraction: dup_lines as f64 / lines.len() as f64,
        duplicate_line_char_fraction: if chars == 0 {
            0.0
        } else {
            dup_chars as f64 / chars as f64
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::boilerplate::{
        Boilerplate, BoilerplateOptions, HashMap, Repetition, Unit, UnitCounter, group_seed,
        repetition, unit_hashes, unit_ranges,
    };
    use crate::normalize::Normalizer;
    use crate::spill::SpillSpace;

    #[test]
    fn spans_count_characters_not_bytes() {
        let text = "  ⚽ قائمة\n\n  Histoire du café. \n";
        let cut = text.find('\n').unwrap();
        let spans = crate::boilerplate::char_spans(text, &[0..cut, cut..text.len()]);
        let chars: Vec<char> = text.chars().collect();
        let pieces: Vec<String> = spans
            .iter()
            .map(|s| chars[s.0 as usize..s.1 as usize].iter().collect())
            .collect();
        assert_eq!(pieces, ["⚽ قائمة", "Histoire du café."]);
        assert_eq!(spans[0], crate::boilerplate::Span(2, 9));
    }

    fn count(texts: &[&str], unit: Unit) -> Boilerplate {
        let normalizer = Normalizer::default();
        let mut counter = UnitCounter::new();
        for text in texts {
            let mut hashes: Vec<u64> = unit_hashes(text, unit, 0, &normalizer)
                .into_iter()
                .map(|(_, h)| h)
                .collect();
            counter.add_document(&mut hashes).unwrap();
        }
        Boilerplate::new(
            counter.finish().unwrap(),
            BoilerplateOptions { min_docs: 3, unit },
            normalizer,
        )
    }

    #[test]
    fn units_are_non_blank_lines_or_blank_separated_paragraphs() {
        let text = "a\n\n b \r\nc\n\n\nd";
        let lines: Vec<&str> = unit_ranges(text, Unit::Line)
            .into_iter()
            .map(|r| &text[r])
            .collect();
        assert_eq!(lines, ["a", " b ", "c", "d"]);
        let paragraphs: Vec<&str> = unit_ranges(text, Unit::Paragraph)
            .into_iter()
            .map(|r| &text[r])
            .collect();
        assert_eq!(paragraphs, ["a", " b \r\nc", "d"]);
    }

    #[test]
    fn lines_in_enough_documents_are_stripped_and_counted_once_per_document() {
        let bp = count(
            &[
                "Menu | Home\nstory one\nMenu | Home\n",
                "MENU home!\nstory two\n",
                "menu home\nstory three\nFooter\n",
                "story one\nFooter\nFooter\nFooter\n",
            ],
            Unit::Line,
        );
        let stripped = bp.strip("Menu | Home\nstory one\nFooter\n", 0);
        assert_eq!(stripped.text, "story one\nFooter\n");
        assert_eq!((stripped.units_removed, stripped.bytes_removed), (1, 12));
        // "Footer" is in two documents (repeats inside one count once); "story one" in two.
        assert_eq!(bp.counter().repeated(3), 1);
        assert_eq!(bp.counter().documents(), 4);
    }

    #[test]
    fn groups_count_separately() {
        let normalizer = Normalizer::default();
        let mut counter = UnitCounter::new();
        let site_a = group_seed(Some("https://www.a.example/news/1"));
        assert_eq!(site_a, group_seed(Some("http://a.example/other?x")));
        let site_b = group_seed(Some("https://b.example/1"));
        assert_ne!(site_a, site_b);
        for group in [site_a, site_a, site_b] {
            let mut hashes: Vec<u64> = unit_hashes("nav bar\n", Unit::Line, group, &normalizer)
                .into_iter()
                .map(|(_, h)| h)
                .collect();
            counter.add_document(&mut hashes).unwrap();
        }
        let bp = Boilerplate::new(
            counter.finish().unwrap(),
            BoilerplateOptions {
                min_docs: 2,
                unit: Unit::Line,
            },
            normalizer,
        );
        assert_eq!(bp.strip("nav bar\nx\n", site_a).text, "x\n");
        assert_eq!(bp.strip("nav bar\nx\n", site_b).text, "nav bar\nx\n");
    }

    /// Issue 10: `WWW.` in capitals was kept (lowercasing came after dropping `www.`), so
    /// `http://WWW.a.example/` and `http://www.a.example/` were counted as two sites.
    #[test]
    fn issue10_www_in_capitals_is_the_same_site() {
        let site = group_seed(Some("a.example"));
        assert_eq!(group_seed(Some("http://www.a.example/")), site);
        assert_eq!(group_seed(Some("http://WWW.a.example/")), site);
        assert_eq!(group_seed(Some("https://Www.A.Example/news?x#y")), site);
    }

    /// Issue 10: a unit was removed with a `\r\n` or `\n` after it only, so a line ending in
    /// `\r\r\n`, or a last line ending in `\r`, left a stray blank line of `\r`s behind.
    #[test]
    fn issue10_a_stripped_line_takes_all_its_carriage_returns() {
        let bp = count(&["nav\r\r\nx\n", "nav\n", "nav\r"], Unit::Line);
        for (page, left) in [
            ("nav\r\r\nx\n", "x\n"),
            ("a\nnav\r", "a\n"),
            ("nav\r\n", ""),
        ] {
            let stripped = bp.strip(page, 0);
            assert_eq!(stripped.text, left, "{page:?}");
            assert_eq!(stripped.bytes_removed, (page.len() - left.len()) as u64);
        }
    }

    /// Counts are exact, whether the hashes stay in memory or spill to sorted runs.
    #[test]
    fn issue11_unit_counts_are_exact_in_memory_and_spilled() {
        let tight = Arc::new(SpillSpace::new(&std::env::temp_dir(), 0));
        for mut counter in [UnitCounter::new(), UnitCounter::in_space(tight, 0)] {
            let mut truth: HashMap<u64, u32> = HashMap::new();
            let mut state = 5u64;
            for _ in 0..2000 {
                let mut doc: Vec<u64> = (0..20)
                    .map(|_| crate::hash::splitmix64(&mut state) % 5000)
                    .collect();
                let mut unique = doc.clone();
                unique.sort_unstable();
                unique.dedup();
                for h in unique {
                    *truth.entry(h).or_default() += 1;
                }
                counter.add_document(&mut doc).unwrap();
            }
            let counts = counter.finish().unwrap();
            for (h, &n) in &truth {
                assert_eq!(counts.count(*h), n, "unit {h}");
            }
            assert_eq!(counts.count(u64::MAX), 1);
        }
    }

    #[test]
    fn gopher_repetition() {
        let r = repetition("a\nbb\na\ncccc\n\n");
        assert_eq!(r.duplicate_line_fraction, 0.5);
        assert_eq!(r.duplicate_line_char_fraction, 2.0 / 8.0);
        assert_eq!(repetition(""), Repetition::default());
    }
}

#[cfg(test)]
mod properties {
    use std::collections::{HashMap, HashSet};
    use std::ops::Range;
    use std::sync::Arc;

    use proptest::prelude::*;

    use crate::boilerplate::{
        Boilerplate, BoilerplateOptions, Unit, UnitCounter, group_seed, unit_hashes, unit_ranges,
    };
    use crate::normalize::Normalizer;
    use crate::normalize::properties::unicode_char;
    use crate::spill::SpillSpace;

    /// Text with many line breaks, `\r`s and blanks among characters of any script.
    fn text() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                4 => unicode_char(),
                2 => Just('\n'),
                1 => Just('\r'),
                1 => prop::sample::select(vec![' ', '\t', '\u{a0}', '\u{3000}']),
            ],
            0..80,
        )
        .prop_map(String::from_iter)
    }

    /// A page: lines from a small vocabulary (so that lines repeat across pages, in variants
    /// that normalize alike, and some that normalize to nothing) or of any text, each ended by
    /// `\n`, `\r\n`, a blank line, stray `\r`s, or nothing.
    fn page() -> impl Strategy<Value = String> {
        let line = prop_oneof![
            4 => prop::sample::select(vec![
                "Menu | Home", "menu home", "MENU HOME!", "story one", "Story One.", "footer",
                "...", "   ", "", "héllo wörld", "HÉLLO WÖRLD", "x",
            ])
            .prop_map(String::from),
            1 => prop::collection::vec(unicode_char(), 0..10).prop_map(String::from_iter),
        ];
        let end = prop::sample::select(vec![
            "\n", "\n", "\r\n", "\n\n", "\n \r\n", "\r\r\n", "\r", "",
        ]);
        prop::collection::vec((line, end), 0..8)
            .prop_map(|lines| lines.into_iter().map(|(l, e)| l + e).collect())
    }

    fn unit() -> impl Strategy<Value = Unit> {
        prop_oneof![Just(Unit::Line), Just(Unit::Paragraph)]
    }

    /// The lines of `text` without their terminators (`\n`, and any `\r`s before it).
    fn lines(text: &str) -> Vec<&str> {
        text.split('\n').map(|l| l.trim_end_matches('\r')).collect()
    }

    /// Whether `range` starts at a line start and ends where a line's content ends.
    fn on_line_bounds(text: &str, range: &Range<usize>) -> bool {
        let starts = range.start == 0 || text.as_bytes()[range.start - 1] == b'\n';
        let rest = text[range.end..].trim_start_matches('\r');
        starts && (rest.is_empty() || rest.starts_with('\n'))
    }

    /// The normalized, non-empty units of `text`, in order.
    fn normalized_units(text: &str, unit: Unit, normalizer: &Normalizer) -> Vec<String> {
        unit_ranges(text, unit)
            .into_iter()
            .map(|r| normalizer.normalize(&text[r]))
            .filter(|u| !u.is_empty())
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Line units are exactly the non-blank lines, in order, at their places. Paragraph
        /// units hold whole non-blank lines, together exactly the line units, and consecutive
        /// paragraphs are separated by at least one blank line.
        #[test]
        fn units_are_the_non_blank_lines_and_their_blocks(text in text()) {
            let line_units = unit_ranges(&text, Unit::Line);
            let non_blank: Vec<&str> = lines(&text).into_iter().filter(|l| !l.trim().is_empty()).collect();
            let found: Vec<&str> = line_units.iter().map(|r| &text[r.clone()]).collect();
            prop_assert_eq!(&found, &non_blank);
            let paragraphs = unit_ranges(&text, Unit::Paragraph);
            for units in [&line_units, &paragraphs] {
                for r in units.iter() {
                    prop_assert!(on_line_bounds(&text, r), "{:?} of {:?}", r, text);
                }
                prop_assert!(units.windows(2).all(|w| w[0].end < w[1].start));
            }
            let mut paragraph_lines = Vec::new();
            for r in &paragraphs {
                let inner = lines(&text[r.clone()]);
                prop_assert!(inner.iter().all(|l| !l.trim().is_empty()), "{:?}", &text[r.clone()]);
                paragraph_lines.extend(inner);
            }
            prop_assert_eq!(&paragraph_lines, &non_blank);
            for w in paragraphs.windows(2) {
                let between = &text[w[0].end..w[1].start];
                prop_assert!(between.matches('\n').count() >= 2, "{:?} between paragraphs", between);
            }
        }

        /// Counted over a corpus, stripping a page removes exactly the units (by normalized
        /// text) that occur in at least `min_docs` pages, each counted once per page, each with
        /// the whole of its lines, and keeps every other unit in order; the counts of units and
        /// bytes removed add up.
        #[test]
        fn stripping_removes_exactly_the_units_in_enough_pages(
            pages in prop::collection::vec(page(), 1..8),
            unit in unit(),
            min_docs in 1..=4u32,
        ) {
            let normalizer = Normalizer::default();
            let mut pages_with: HashMap<String, u32> = HashMap::new();
            let mut counter = UnitCounter::new();
            for page in &pages {
                let distinct: HashSet<String> =
                    normalized_units(page, unit, &normalizer).into_iter().collect();
                for u in distinct {
                    *pages_with.entry(u).or_default() += 1;
                }
                let mut hashes: Vec<u64> =
                    unit_hashes(page, unit, 0, &normalizer).into_iter().map(|(_, h)| h).collect();
                counter.add_document(&mut hashes).unwrap();
            }
            let bp = Boilerplate::new(counter.finish().unwrap(), BoilerplateOptions { min_docs, unit }, normalizer.clone());
            for page in &pages {
                let units = normalized_units(page, unit, &normalizer);
                let (kept, removed): (Vec<String>, Vec<String>) =
                    units.into_iter().partition(|u| pages_with[u] < min_docs);
                let stripped = bp.strip(page, 0);
                // Removed units go with the whole of their lines, terminators included.
                let removed_ranges: Vec<Range<usize>> = unit_ranges(page, unit)
                    .into_iter()
                    .filter(|r| {
                        let u = normalizer.normalize(&page[r.clone()]);
                        !u.is_empty() && pages_with[&u] >= min_docs
                    })
                    .collect();
                let mut whole_lines_removed = String::new();
                let mut at = 0;
                for line in page.split_inclusive('\n') {
                    if !removed_ranges.iter().any(|r| r.start <= at && at < r.end) {
                        whole_lines_removed.push_str(line);
                    }
                    at += line.len();
                }
                prop_assert_eq!(&stripped.text, &whole_lines_removed, "{:?}", page);
                prop_assert_eq!(&normalized_units(&stripped.text, unit, &normalizer), &kept, "{:?} -> {:?}", page, stripped.text);
                prop_assert_eq!(stripped.units_removed, removed.len() as u64);
                prop_assert_eq!(stripped.bytes_removed, (page.len() - stripped.text.len()) as u64);
                // The kept ranges are the stripped text; its spans are those ranges trimmed, in
                // characters of the page, the blank ones left out.
                let joined: String = stripped.kept.iter().map(|r| &page[r.clone()]).collect();
                prop_assert_eq!(&joined, &stripped.text);
                let chars: Vec<char> = page.chars().collect();
                let pieces: Vec<String> = stripped
                    .char_spans(page)
                    .iter()
                    .map(|span| chars[span.0 as usize..span.1 as usize].iter().collect())
                    .collect();
                let expected: Vec<&str> = stripped
                    .kept
                    .iter()
                    .map(|r| page[r.clone()].trim())
                    .filter(|piece| !piece.is_empty())
                    .collect();
                prop_assert_eq!(pieces, expected);
                let spans = stripped.char_spans(page);
                prop_assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0), "{:?}", spans);
            }
        }

        /// Counts are exact whatever the budget (runs spilled or not); the totals of documents
        /// and distinct units per document too.
        #[test]
        fn unit_counts_are_exact(
            documents in prop::collection::vec(prop::collection::vec(0..300u64, 0..30), 0..30),
            budget in prop_oneof![Just(u64::MAX), 0..4096u64],
        ) {
            let space = Arc::new(SpillSpace::new(&std::env::temp_dir(), 0));
            let mut counter = UnitCounter::in_space(space, budget);
            let mut truth: HashMap<u64, u32> = HashMap::new();
            let mut distinct_total = 0;
            for document in &documents {
                let distinct: HashSet<u64> = document.iter().copied().collect();
                distinct_total += distinct.len() as u64;
                for &h in &distinct {
                    *truth.entry(h).or_default() += 1;
                }
                counter.add_document(&mut document.clone()).unwrap();
            }
            let counts = counter.finish().unwrap();
            prop_assert_eq!(counts.documents(), documents.len() as u64);
            prop_assert_eq!(counts.units(), distinct_total);
            for (&h, &n) in &truth {
                prop_assert_eq!(counts.count(h), n, "unit {}", h);
            }
            for min_docs in 2..6 {
                let at_least = truth.values().filter(|&&n| n >= min_docs).count();
                prop_assert_eq!(counts.repeated(min_docs), at_least);
                let occurrences: u64 = truth.values().filter(|&&n| n >= min_docs).map(|&n| u64::from(n)).sum();
                prop_assert_eq!(counts.occurrences_at_least(min_docs), occurrences);
            }
        }

        /// A URL's group is its host's: whatever the scheme, path, query or fragment, with or
        /// without `www.`, in any letter case.
        #[test]
        fn url_groups_are_their_hosts(
            host in "[a-z]{1,8}(\\.[a-z]{2,4}){1,2}",
            scheme in prop::sample::select(vec!["http", "https", "HTTPS", "ftp"]),
            www in prop::sample::select(vec!["", "www.", "WWW.", "Www."]),
            upper in any::<prop::sample::Index>(),
            rest in "(/[a-z0-9.]{0,5}){0,3}(\\?[a-z=&/]{0,6})?(#[a-z/]{0,4})?",
        ) {
            let mut cased = host.clone();
            let at = upper.index(host.len());
            cased.replace_range(at..=at, &host[at..=at].to_ascii_uppercase());
            let url = format!("{scheme}://{www}{cased}{rest}");
            prop_assert_eq!(group_seed(Some(&url)), group_seed(Some(&host)), "{}", url);
        }
    }
}
