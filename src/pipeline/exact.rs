//! Exact copies, caught first and cheaply: the first copy of each normalized text wins.
//!
//! [`ExactTable`] maps the 128-bit hash of a normalized text to the slot of its first copy while
//! the first pass reads. Within its budget it is one hash map and every later copy is caught at
//! once (not signed, not banded). Beyond its budget the map moves to sorted runs and starts over;
//! a text whose first copy went to disk then gets a slot of its own (a *late* copy). At the end the
//! runs are merged by hash, and each late slot is resolved to its text's first slot
//! ([`LateCopies`]): the run then rewrites those documents' states and leaves the late slots out
//! of the band buckets, so the decisions are exactly those of a run that caught them at once.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use super::docs::SlotBits;
use crate::spill::{FixedRecord, KeyedColumn, PersistedRuns, Sorter, SpillSpace};

/// One (text hash, slot) record of a spilled map; sorts by hash, then slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct FirstCopy {
    hash: u128,
    slot: u32,
}

impl FixedRecord for FirstCopy {
    const LEN: usize = 20;
    fn encode(&self, out: &mut [u8]) {
        out[..16].copy_from_slice(&self.hash.to_le_bytes());
        out[16..20].copy_from_slice(&self.slot.to_le_bytes());
    }
    fn decode(bytes: &[u8]) -> Self {
        FirstCopy {
            hash: u128::from_le_bytes(bytes[..16].try_into().expect("16 bytes")),
            slot: u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes")),
        }
    }
}

/// The keys are xxh3-128 hashes, already uniform: their low 64 bits are the table's hash.
#[derive(Debug, Default)]
struct TextHashHasher(u64);

impl Hasher for TextHashHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; fold anything else so the hasher stays correct.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// A text hash as the map keeps it: four 32-bit words, so that an entry with its slot takes 20
/// bytes (a `u128` key is aligned to 16 bytes, which made each entry 32: 69 MB of buckets at 1M
/// texts instead of 44).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MapKey([u32; 4]);

impl MapKey {
    fn new(hash: u128) -> MapKey {
        MapKey([
            hash as u32,
            (hash >> 32) as u32,
            (hash >> 64) as u32,
            (hash >> 96) as u32,
        ])
    }

    fn hash(self) -> u128 {
        self.0
            .iter()
            .rev()
            .fold(0u128, |hash, &word| (hash << 32) | u128::from(word))
    }
}

impl std::hash::Hash for MapKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(u64::from(self.0[0]) | (u64::from(self.0[1]) << 32));
    }
}

/// Bytes one entry of the in-memory map takes, slack included (for sizing it from a budget).
const ENTRY_BYTES: u64 = 32;

/// First copies by normalized-text hash, within a memory budget.
#[derive(Debug)]
pub(super) struct ExactTable {
    map: HashMap<MapKey, u32, BuildHasherDefault<TextHashHasher>>,
    max_entries: usize,
    spilled: Sorter<FirstCopy>,
    any_spilled: bool,
    /// In a resumable run: the entries added since the table was last persisted.
    recent: Option<Vec<FirstCopy>>,
    space: Arc<SpillSpace>,
    sort_bytes: u64,
}

/// What reopens a persisted [`ExactTable`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct PersistedExact {
    runs: PersistedRuns,
}

/// What an [`ExactTable`] found at the end: slots given to texts whose first copy had gone to
/// disk, each with the first copy's slot.
#[derive(Debug, Default)]
pub(super) struct LateCopies {
    /// (late slot, first slot), by late slot.
    firsts: Option<KeyedColumn<(u32, u32), u32>>,
    /// The late slots.
    bits: SlotBits,
}

impl LateCopies {
    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Late slots found.
    pub(super) fn len(&self) -> usize {
        self.firsts.as_ref().map_or(0, KeyedColumn::len)
    }

    /// Whether `slot` is a late copy (to be left out of buckets and index lookups).
    #[inline]
    pub(super) fn is_late(&self, slot: u32) -> bool {
        self.bits.contains(slot)
    }

    /// The first slot of the text in `slot` (`slot` itself unless it is late).
    pub(super) fn first(&self, slot: u32) -> std::io::Result<u32> {
        if !self.is_late(slot) {
            return Ok(slot);
        }
        let firsts = self.firsts.as_ref().expect("a late slot has a first");
        Ok(firsts.get(&slot)?.map_or(slot, |(_, first)| first))
    }
}

impl ExactTable {
    /// A table holding at most `max_bytes` of map in memory (`None`: no limit); spilled runs go
    /// to `space`.
    pub(super) fn new(max_bytes: Option<u64>, space: Arc<SpillSpace>) -> ExactTable {
        let max_entries = max_bytes.map_or(usize::MAX, |bytes| {
            usize::try_from(bytes / ENTRY_BYTES)
                .unwrap_or(usize::MAX)
                .max(1024)
        });
        let sort_bytes = max_bytes.unwrap_or(u64::MAX);
        ExactTable {
            map: HashMap::default(),
            max_entries,
            recent: space.keeps_files().then(Vec::new),
            spilled: Sorter::named(space.clone(), "first-copies", sort_bytes),
            any_spilled: false,
            space,
            sort_bytes,
        }
    }

    /// Saves what a resumed run needs: the entries added since the last save go to a sorted run
    /// (and stay in the map too; [`ExactTable::finish`] drops the repeats).
    pub(super) fn persist(&mut self) -> std::io::Result<PersistedExact> {
        for entry in self.recent.iter_mut().flat_map(std::mem::take) {
            self.spilled.push(entry)?;
        }
        self.any_spilled = true;
        Ok(PersistedExact {
            runs: self.spilled.persist()?,
        })
    }

    /// The table as saved: its map empty, what it held in runs.
    pub(super) fn reopen(
        max_bytes: Option<u64>,
        space: Arc<SpillSpace>,
        saved: &PersistedExact,
    ) -> std::io::Result<ExactTable> {
        let mut table = ExactTable::new(max_bytes, space.clone());
        let sort_bytes = max_bytes.unwrap_or(u64::MAX);
        table.spilled = Sorter::reopen(space, "first-copies", sort_bytes, &saved.runs)?;
        table.any_spilled = true;
        Ok(table)
    }

    /// The first slot of the text hashed `hash`, if the table still holds it; otherwise records
    /// `slot` as its first copy and returns `None`.
    pub(super) fn first_or_insert(
        &mut self,
        hash: u128,
        slot: u32,
    ) -> std::io::Result<Option<u32>> {
        use std::collections::hash_map::Entry;
        match self.map.entry(MapKey::new(hash)) {
            Entry::Occupied(e) => return Ok(Some(*e.get())),
            Entry::Vacant(e) => {
                e.insert(slot);
            }
        }
        if let Some(recent) = &mut self.recent {
            recent.push(FirstCopy { hash, slot });
        }
        if self.map.len() >= self.max_entries {
            self.any_spilled = true;
            for (key, slot) in self.map.drain() {
                let hash = key.hash();
                self.spilled.push(FirstCopy { hash, slot })?;
            }
            self.map.shrink_to_fit();
            if let Some(recent) = &mut self.recent {
                recent.clear();
            }
        }
        Ok(None)
    }

    /// Merges what went to disk with what stayed, and resolves every late copy.
    pub(super) fn finish(mut self) -> std::io::Result<LateCopies> {
        if !self.any_spilled {
            return Ok(LateCopies::default());
        }
        for (key, slot) in self.map.drain() {
            let hash = key.hash();
            self.spilled.push(FirstCopy { hash, slot })?;
        }
        let mut bits = SlotBits::default();
        let mut firsts = Sorter::new(self.space.clone(), self.sort_bytes);
        let mut group: Option<FirstCopy> = None;
        let mut previous: Option<FirstCopy> = None;
        for record in self.spilled.into_sorted()? {
            let record = record?;
            // A saved run repeats entries that were also in the map, or in a later run.
            if previous.replace(record) == Some(record) {
                continue;
            }
            match group {
                Some(first) if first.hash == record.hash => {
                    firsts.push((record.slot, first.slot))?;
                    bits.insert(record.slot);
                }
                _ => group = Some(record),
            }
        }
        let mut by_slot = KeyedColumn::new(self.space.clone(), |late: &(u32, u32)| late.0);
        for late in firsts.into_sorted()? {
            by_slot.push(&late?)?;
        }
        let late = LateCopies {
            firsts: Some(by_slot),
            bits,
        };
        Ok(late)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use crate::pipeline::exact::{ExactTable, MapKey};
    use crate::spill::SpillSpace;

    /// Issue 15: the map's 20-byte key gives back the 128-bit hash it was made from.
    #[test]
    fn issue15_map_keys_keep_the_whole_hash_in_20_byte_entries() {
        for hash in [
            0u128,
            1,
            u128::MAX,
            1 << 64,
            (1 << 96) | 7,
            0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
        ] {
            assert_eq!(MapKey::new(hash).hash(), hash);
        }
        assert_eq!(std::mem::size_of::<(MapKey, u32)>(), 20);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// With any budget, every document resolves to the same first slot as with no budget.
        #[test]
        fn budgeted_table_resolves_like_an_unbounded_one(
            texts in proptest::collection::vec(0u128..300, 1..6000),
            budget in 0u64..200_000,
        ) {
            let space = Arc::new(SpillSpace::new(&std::env::temp_dir(), 0));
            let mut unbounded = ExactTable::new(None, space.clone());
            let mut bounded = ExactTable::new(Some(budget), space);
            // Per document: the first slot its text resolves to in each table.
            let (mut expected, mut got_raw) = (Vec::new(), Vec::new());
            let (mut slots_a, mut slots_b) = (0u32, 0u32);
            for &text in &texts {
                match unbounded.first_or_insert(text, slots_a).unwrap() {
                    Some(first) => expected.push(first),
                    None => { expected.push(slots_a); slots_a += 1; }
                }
                match bounded.first_or_insert(text, slots_b).unwrap() {
                    Some(first) => got_raw.push(first),
                    None => { got_raw.push(slots_b); slots_b += 1; }
                }
            }
            prop_assert!(unbounded.finish().unwrap().is_empty());
            let late = bounded.finish().unwrap();
            prop_assert_eq!(late.len() as u32, slots_b - slots_a);
            // Live slots, renumbered densely in order, are the unbounded table's slots.
            let live: Vec<u32> = (0..slots_b).filter(|&s| !late.is_late(s)).collect();
            let dense = |s: u32| live.binary_search(&s).unwrap() as u32;
            let got: Vec<u32> = got_raw.iter().map(|&s| dense(late.first(s).unwrap())).collect();
            prop_assert_eq!(got, expected);
        }

        /// A resumable table saved every `every` documents, killed after `killed` documents and
        /// reopened from its last save (the documents after it read again), still resolves every
        /// document like an unbounded table.
        #[test]
        fn a_saved_and_reopened_table_resolves_like_an_unbounded_one(
            texts in proptest::collection::vec(0u128..300, 1..4000),
            budget in 0u64..100_000,
            every in 1usize..900,
            killed in 0usize..4000,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let space = || Arc::new(SpillSpace::new(&std::env::temp_dir(), 0).with_work_dir(dir.path()));
            let mut unbounded = ExactTable::new(None, Arc::new(SpillSpace::unbounded()));
            let mut expected = Vec::new();
            let mut slots_a = 0u32;
            for &text in &texts {
                match unbounded.first_or_insert(text, slots_a).unwrap() {
                    Some(first) => expected.push(first),
                    None => { expected.push(slots_a); slots_a += 1; }
                }
            }
            // (documents done, slots given, saved table) at the last save.
            let mut table = ExactTable::new(Some(budget), space());
            let mut saved = (0usize, 0u32, table.persist().unwrap());
            let (mut got_raw, mut slots_b, mut doc) = (Vec::new(), 0u32, 0usize);
            let mut killed = Some(killed.min(texts.len()));
            while doc < texts.len() {
                if killed == Some(doc) {
                    killed = None;
                    drop(table);
                    table = ExactTable::reopen(Some(budget), space(), &saved.2).unwrap();
                    (doc, slots_b) = (saved.0, saved.1);
                    got_raw.truncate(doc);
                    continue;
                }
                match table.first_or_insert(texts[doc], slots_b).unwrap() {
                    Some(first) => got_raw.push(first),
                    None => { got_raw.push(slots_b); slots_b += 1; }
                }
                doc += 1;
                if doc % every == 0 {
                    saved = (doc, slots_b, table.persist().unwrap());
                }
            }
            let late = table.finish().unwrap();
            let live: Vec<u32> = (0..slots_b).filter(|&s| !late.is_late(s)).collect();
            prop_assert_eq!(live.len() as u32, slots_a);
            let dense = |s: u32| live.binary_search(&s).unwrap() as u32;
            let got: Vec<u32> = got_raw.iter().map(|&s| dense(late.first(s).unwrap())).collect();
            prop_assert_eq!(got, expected);
        }
    }
}
