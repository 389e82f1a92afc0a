//! What a batch run remembers of every document until it ends: its state, its id and its keep
//! score, in spillable columns ([`crate::spill`]), so that memory stays within the budget however
//! many documents are read.

use std::sync::Arc;

use crate::boilerplate::Span;
use crate::cluster::KeepPolicy;
use crate::error::Error;
use crate::read::Location;
use crate::report::DocId;
use crate::spill::{
    Column, ColumnIter, FixedRecord, Persisted, PersistedRuns, Sorter, SpillBytes, SpillSpace,
};

/// What the first pass learned about one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DocState {
    Rejected,
    /// No shingles: kept, never matched.
    Empty,
    /// The first copy of its normalized text; its signature is in this slot.
    Unique(u32),
    /// Same normalized text as an earlier document, which holds the given slot.
    Exact(u32),
}

impl FixedRecord for DocState {
    const LEN: usize = 5;
    fn encode(&self, out: &mut [u8]) {
        let (tag, slot) = match *self {
            DocState::Rejected => (0u8, 0u32),
            DocState::Empty => (1, 0),
            DocState::Unique(slot) => (2, slot),
            DocState::Exact(slot) => (3, slot),
        };
        out[0] = tag;
        out[1..5].copy_from_slice(&slot.to_le_bytes());
    }
    fn decode(bytes: &[u8]) -> Self {
        let slot = u32::from_le_bytes(bytes[1..5].try_into().expect("4 bytes"));
        match bytes[0] {
            0 => DocState::Rejected,
            1 => DocState::Empty,
            2 => DocState::Unique(slot),
            _ => DocState::Exact(slot),
        }
    }
}

impl DocState {
    /// The slot holding this document's signature (its own, or its first copy's).
    pub(super) fn slot(self) -> Option<u32> {
        match self {
            DocState::Unique(slot) | DocState::Exact(slot) => Some(slot),
            DocState::Rejected | DocState::Empty => None,
        }
    }
}

/// Where a first copy can be read again: present flag, input, offset, length.
impl FixedRecord for Option<Location> {
    const LEN: usize = 17;
    fn encode(&self, out: &mut [u8]) {
        let location = self.unwrap_or(Location {
            input: 0,
            offset: 0,
            len: 0,
        });
        out[0] = u8::from(self.is_some());
        out[1..5].copy_from_slice(&location.input.to_le_bytes());
        out[5..13].copy_from_slice(&location.offset.to_le_bytes());
        out[13..17].copy_from_slice(&location.len.to_le_bytes());
    }
    fn decode(bytes: &[u8]) -> Self {
        (bytes[0] == 1).then(|| Location {
            input: u32::from_le_bytes(bytes[1..5].try_into().expect("4 bytes")),
            offset: u64::from_le_bytes(bytes[5..13].try_into().expect("8 bytes")),
            len: u32::from_le_bytes(bytes[13..17].try_into().expect("4 bytes")),
        })
    }
}

/// A set of documents by input position (the removed ones), added and asked in increasing
/// order: a spillable column of positions, 8 bytes a member, none per other document.
#[derive(Debug)]
pub(super) struct DocSet {
    docs: Column<u64>,
}

impl DocSet {
    pub(super) fn new(space: Arc<SpillSpace>) -> DocSet {
        DocSet {
            docs: Column::new(space),
        }
    }

    /// Adds `doc`, above every document added before.
    pub(super) fn push(&mut self, doc: u64) -> std::io::Result<()> {
        self.docs.push(&doc)
    }

    /// Documents in the set.
    pub(super) fn len(&self) -> u64 {
        self.docs.len() as u64
    }

    /// Asks whether documents are members, in increasing order.
    pub(super) fn in_order(&self) -> InOrder<'_> {
        InOrder {
            docs: self.docs.iter(),
            next: None,
        }
    }
}

/// Membership in a [`DocSet`], asked in increasing order of documents.
pub(super) struct InOrder<'a> {
    docs: ColumnIter<'a, u64>,
    next: Option<u64>,
}

impl InOrder<'_> {
    /// Whether `doc` (at or above the last document asked) is in the set.
    pub(super) fn contains(&mut self, doc: u64) -> std::io::Result<bool> {
        loop {
            match self.next {
                Some(next) if next >= doc => return Ok(next == doc),
                _ => match self.docs.next() {
                    Some(next) => self.next = Some(next?),
                    None => return Ok(false),
                },
            }
        }
    }
}

/// A set of slots, one bit each up to the highest set (late copies, slots an index holds the
/// text of): for the membership tests made once per band record, which must not read a table.
#[derive(Debug, Default)]
pub(super) struct SlotBits {
    words: Vec<u64>,
}

impl SlotBits {
    pub(super) fn insert(&mut self, slot: u32) {
        let word = slot as usize / 64;
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        self.words[word] |= 1 << (slot % 64);
    }

    #[inline]
    pub(super) fn contains(&self, slot: u32) -> bool {
        self.words
            .get(slot as usize / 64)
            .is_some_and(|word| word >> (slot % 64) & 1 == 1)
    }
}

/// Slots inserted in increasing order, each with its rank among them (the ordinal of a kept
/// first copy in the index segment of kept documents): a bit per slot and a count per 64.
#[derive(Debug, Default)]
pub(super) struct RankedSlots {
    bits: Vec<u64>,
    /// Per word, the slots set in the words before it.
    before: Vec<u32>,
    len: u32,
}

impl RankedSlots {
    /// Adds `slot`, above every slot added before; returns its rank.
    pub(super) fn push(&mut self, slot: u32) -> u32 {
        let word = slot as usize / 64;
        while self.bits.len() <= word {
            self.before.push(self.len);
            self.bits.push(0);
        }
        self.bits[word] |= 1 << (slot % 64);
        self.len += 1;
        self.len - 1
    }

    /// The rank of `slot`, if it was added.
    pub(super) fn rank(&self, slot: u32) -> Option<u32> {
        let word = slot as usize / 64;
        let bits = *self.bits.get(word)?;
        let bit = 1u64 << (slot % 64);
        (bits & bit != 0).then(|| self.before[word] + (bits & (bit - 1)).count_ones())
    }
}

/// Byte strings by number, appended in order: one byte arena and the end offset of each.
#[derive(Debug)]
pub(super) struct Blobs {
    bytes: SpillBytes,
    ends: Column<u64>,
}

/// What reopens persisted [`Blobs`] (or [`Ids`]).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct PersistedIds {
    bytes: Persisted,
    ends: Persisted,
}

impl Blobs {
    pub(super) fn new(space: Arc<SpillSpace>) -> Blobs {
        Blobs {
            bytes: SpillBytes::new(space.clone()),
            ends: Column::new(space),
        }
    }

    /// Blobs whose files, in a work directory, are named after `name`.
    fn named(space: Arc<SpillSpace>, name: &str) -> Blobs {
        Blobs {
            bytes: SpillBytes::named(space.clone(), &format!("{name}.bytes")),
            ends: Column::named(space, &format!("{name}.ends")),
        }
    }

    fn persist(&mut self) -> std::io::Result<PersistedIds> {
        Ok(PersistedIds {
            bytes: self.bytes.persist()?,
            ends: self.ends.persist()?,
        })
    }

    fn reopen(space: Arc<SpillSpace>, name: &str, saved: &PersistedIds) -> std::io::Result<Blobs> {
        Ok(Blobs {
            bytes: SpillBytes::reopen(space.clone(), &format!("{name}.bytes"), saved.bytes)?,
            ends: Column::reopen(space, &format!("{name}.ends"), saved.ends)?,
        })
    }

    pub(super) fn push(&mut self, blob: &[u8]) -> std::io::Result<()> {
        self.bytes.push(blob)?;
        self.ends.push(&self.bytes.len())
    }

    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(super) fn get(&self, number: usize) -> std::io::Result<Vec<u8>> {
        let start = match number {
            0 => 0,
            _ => self.ends.get(number - 1)?,
        };
        let end = self.ends.get(number)?;
        let mut bytes = vec![0u8; (end - start) as usize];
        self.bytes.read_into(start, &mut bytes)?;
        Ok(bytes)
    }
}

/// Strings by number, appended in order.
#[derive(Debug)]
pub(super) struct Ids(Blobs);

impl Ids {
    pub(super) fn new(space: Arc<SpillSpace>) -> Ids {
        Ids(Blobs::new(space))
    }

    pub(super) fn push(&mut self, id: &str) -> std::io::Result<()> {
        self.0.push(id.as_bytes())
    }

    pub(super) fn get(&self, number: usize) -> std::io::Result<String> {
        // Ids were `&str` when pushed.
        Ok(String::from_utf8(self.0.get(number)?)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }
}

/// Each document's spans, as little-endian pairs of character offsets.
#[derive(Debug)]
struct SpanTable(Blobs);

impl SpanTable {
    fn push(&mut self, spans: &[Span]) -> std::io::Result<()> {
        let mut bytes = Vec::with_capacity(spans.len() * 16);
        for span in spans {
            bytes.extend_from_slice(&span.0.to_le_bytes());
            bytes.extend_from_slice(&span.1.to_le_bytes());
        }
        self.0.push(&bytes)
    }

    fn get(&self, doc: usize) -> std::io::Result<Vec<Span>> {
        let number = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
        Ok(self
            .0
            .get(doc)?
            .chunks_exact(16)
            .map(|pair| Span(number(&pair[..8]), number(&pair[8..])))
            .collect())
    }
}

/// What reopens a persisted [`DocTable`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct PersistedDocs {
    states: Persisted,
    ids: PersistedIds,
    scores: Option<Persisted>,
    #[serde(default)]
    spans: Option<PersistedIds>,
    id_hashes: PersistedRuns,
}

/// Per-document facts kept for the whole run: states, ids, and keep scores when the keep policy
/// uses them. Reading one fails only when a spilled column cannot be read back.
#[derive(Debug)]
pub(super) struct DocTable {
    space: Arc<SpillSpace>,
    states: Column<DocState>,
    ids: Ids,
    scores: Option<Column<f64>>,
    /// Each document's compared spans, when the run reports them.
    spans: Option<SpanTable>,
    /// Hashes of the ids of documents with text, for counting repeated ids.
    id_hashes: Sorter<u64>,
    sort_bytes: u64,
}

impl DocTable {
    /// A table whose columns live in `space`; the id hashes sorted for [`DocTable::duplicate_ids`]
    /// keep at most `sort_bytes` in memory.
    pub(super) fn new(
        keep: &KeepPolicy,
        spans: bool,
        space: Arc<SpillSpace>,
        sort_bytes: u64,
    ) -> Self {
        DocTable {
            states: Column::named(space.clone(), "states"),
            ids: Ids(Blobs::named(space.clone(), "ids")),
            scores: (*keep != KeepPolicy::First).then(|| Column::named(space.clone(), "scores")),
            spans: spans.then(|| SpanTable(Blobs::named(space.clone(), "spans"))),
            id_hashes: Sorter::named(space.clone(), "id-hashes", sort_bytes),
            space,
            sort_bytes,
        }
    }

    /// Saves the table to its work directory (see [`SpillBytes::persist`]).
    pub(super) fn persist(&mut self) -> Result<PersistedDocs, Error> {
        let saved = (|| {
            Ok(PersistedDocs {
                states: self.states.persist()?,
                ids: self.ids.0.persist()?,
                scores: self.scores.as_mut().map(Column::persist).transpose()?,
                spans: self.spans.as_mut().map(|t| t.0.persist()).transpose()?,
                id_hashes: self.id_hashes.persist()?,
            })
        })();
        saved.map_err(|e| self.temp(e))
    }

    /// The table as `saved`.
    pub(super) fn reopen(
        space: Arc<SpillSpace>,
        sort_bytes: u64,
        saved: &PersistedDocs,
    ) -> Result<Self, Error> {
        let reopened = (|| {
            Ok(DocTable {
                states: Column::reopen(space.clone(), "states", saved.states)?,
                ids: Ids(Blobs::reopen(space.clone(), "ids", &saved.ids)?),
                spans: saved
                    .spans
                    .as_ref()
                    .map(|t| Blobs::reopen(space.clone(), "spans", t).map(SpanTable))
                    .transpose()?,
                scores: saved
                    .scores
                    .map(|scores| Column::reopen(space.clone(), "scores", scores))
                    .transpose()?,
                id_hashes: Sorter::reopen(
                    space.clone(),
                    "id-hashes",
                    sort_bytes,
                    &saved.id_hashes,
                )?,
                space: space.clone(),
                sort_bytes,
            })
        })();
        reopened.map_err(|e| space.error(e))
    }

    fn temp(&self, source: std::io::Error) -> Error {
        self.space.error(source)
    }

    pub(super) fn push(&mut self, id: &str, state: DocState, score: f64) -> Result<(), Error> {
        let pushed = (|| {
            self.states.push(&state)?;
            self.ids.push(id)?;
            if let Some(scores) = &mut self.scores {
                scores.push(&score)?;
            }
            if state.slot().is_some() {
                self.id_hashes
                    .push(xxhash_rust::xxh3::xxh3_64(id.as_bytes()))?;
            }
            Ok(())
        })();
        pushed.map_err(|e| self.temp(e))
    }

    /// Documents read.
    pub(super) fn len(&self) -> usize {
        self.states.len()
    }

    /// Every document's state, in input order.
    pub(super) fn states(&self) -> impl Iterator<Item = Result<DocState, Error>> + '_ {
        self.states.iter().map(|r| r.map_err(|e| self.temp(e)))
    }

    /// The document that holds each of `slots` (sorted): the first copy of its text.
    pub(super) fn first_copies(
        &self,
        slots: &[u32],
    ) -> Result<std::collections::HashMap<u32, DocId>, Error> {
        let mut doc_of = std::collections::HashMap::with_capacity(slots.len());
        if slots.is_empty() {
            return Ok(doc_of);
        }
        for (doc, state) in self.states().enumerate() {
            if let DocState::Unique(slot) = state?
                && slots.binary_search(&slot).is_ok()
            {
                doc_of.insert(slot, DocId(doc as u64));
                if doc_of.len() == slots.len() {
                    break;
                }
            }
        }
        Ok(doc_of)
    }

    /// How many documents have a state `matching`.
    pub(super) fn count(&self, matching: impl Fn(DocState) -> bool) -> Result<u64, Error> {
        let mut count = 0;
        for state in self.states() {
            count += u64::from(matching(state?));
        }
        Ok(count)
    }

    pub(super) fn score(&self, doc: usize) -> Result<f64, Error> {
        match &self.scores {
            Some(scores) => scores.get(doc).map_err(|e| self.temp(e)),
            None => Ok(0.0),
        }
    }

    /// Adds the spans of the document pushed last (nothing when the table keeps none).
    pub(super) fn push_spans(&mut self, spans: &[Span]) -> Result<(), Error> {
        match &mut self.spans {
            Some(table) => table.push(spans).map_err(|e| self.space.error(e)),
            None => Ok(()),
        }
    }

    /// How many documents' spans the table holds, when it keeps them.
    pub(super) fn spans_len(&self) -> Option<usize> {
        self.spans.as_ref().map(|table| table.0.len())
    }

    /// The spans of `doc`, when the table keeps them.
    pub(super) fn spans(&self, doc: usize) -> Result<Option<Vec<Span>>, Error> {
        match &self.spans {
            Some(table) => table.get(doc).map(Some).map_err(|e| self.temp(e)),
            None => Ok(None),
        }
    }

    pub(super) fn id(&self, doc: usize) -> Result<String, Error> {
        self.ids.get(doc).map_err(|e| self.temp(e))
    }

    /// Rewrites every state through `update` (after late exact copies are resolved).
    pub(super) fn update_states(
        &mut self,
        mut update: impl FnMut(DocState) -> Result<DocState, Error>,
    ) -> Result<(), Error> {
        let mut states = Column::named(self.space.clone(), "states-final");
        for state in self.states.iter() {
            let state = update(state.map_err(|e| self.temp(e))?)?;
            states.push(&state).map_err(|e| self.temp(e))?;
        }
        self.states = states;
        Ok(())
    }

    /// Documents with text (neither rejected nor empty) whose id an earlier such document
    /// already had: the ids' hashes, sorted (spilled beyond the budget) and counted once.
    pub(super) fn duplicate_ids(&mut self) -> Result<u64, Error> {
        let space = self.space.clone();
        let hashes = std::mem::replace(&mut self.id_hashes, Sorter::new(space, self.sort_bytes));
        let mut previous = None;
        let mut repeated = 0;
        for hash in hashes.into_sorted().map_err(|e| self.temp(e))? {
            let hash = hash.map_err(|e| self.temp(e))?;
            repeated += u64::from(previous == Some(hash));
            previous = Some(hash);
        }
        Ok(repeated)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ranked_slots_count_the_slots_below() {
        let mut ranked = super::RankedSlots::default();
        let slots = [3u32, 64, 65, 200, 1_000];
        for (rank, &slot) in slots.iter().enumerate() {
            assert_eq!(ranked.push(slot), rank as u32);
        }
        for (rank, &slot) in slots.iter().enumerate() {
            assert_eq!(ranked.rank(slot), Some(rank as u32));
        }
        for slot in [0, 4, 63, 66, 199, 999, 1_001, 5_000] {
            assert_eq!(ranked.rank(slot), None, "{slot}");
        }
    }

    use std::sync::Arc;

    use crate::cluster::KeepPolicy;
    use crate::pipeline::docs::{DocState, DocTable};
    use crate::spill::SpillSpace;

    #[test]
    fn doc_table_round_trips_when_spilled() {
        let space = Arc::new(SpillSpace::new(&std::env::temp_dir(), 0));
        let mut t = DocTable::new(&KeepPolicy::Longest, false, space.clone(), 0);
        let n = 300_000;
        for doc in 0..n {
            let state = match doc % 4 {
                0 => DocState::Empty,
                1 => DocState::Rejected,
                2 => DocState::Unique(doc as u32),
                _ => DocState::Exact(doc as u32 - 1),
            };
            let id = if doc % 7 == 0 {
                "same".to_string()
            } else {
                format!("d{doc}")
            };
            t.push(&id, state, doc as f64).unwrap();
        }
        assert!(space.bytes_on_disk() > 0);
        assert_eq!(t.len(), n);
        assert_eq!(t.id(0).unwrap(), "same");
        assert_eq!(t.id(123_457).unwrap(), "d123457");
        assert_eq!(t.states().nth(6).unwrap().unwrap(), DocState::Unique(6));
        assert_eq!(t.states().nth(7).unwrap().unwrap().slot(), Some(6));
        assert_eq!(t.states().nth(1).unwrap().unwrap().slot(), None);
        assert_eq!(t.score(299_999).unwrap(), 299_999.0);
        assert_eq!(t.count(|s| s == DocState::Rejected).unwrap(), n as u64 / 4);
        // "same" is the id of every 7th document; those with text (doc % 4 ≥ 2) after the first.
        let with_text_same = (0..n).filter(|d| d % 7 == 0 && d % 4 >= 2).count() as u64;
        assert_eq!(t.duplicate_ids().unwrap(), with_text_same - 1);
        t.update_states(|s| {
            Ok(match s {
                DocState::Unique(slot) => DocState::Exact(slot),
                other => other,
            })
        })
        .unwrap();
        assert_eq!(t.states().nth(6).unwrap().unwrap(), DocState::Exact(6));
        assert_eq!(t.len(), n);
    }
}
