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

use crate::spill::{FixedRecord, Sorter, SpillSpace};

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
        // Only `write_u128` is used; fold anything else so the hasher stays correct.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u128(&mut self, value: u128) {
        self.0 = value as u64;
    }
}

/// Bytes one entry of the in-memory map takes, slack included (for sizing it from a budget).
const ENTRY_BYTES: u64 = 48;

/// First copies by normalized-text hash, within a memory budget.
#[derive(Debug)]
pub(super) struct ExactTable {
    map: HashMap<u128, u32, BuildHasherDefault<TextHashHasher>>,
    max_entries: usize,
    spilled: Sorter<FirstCopy>,
    any_spilled: bool,
}

/// What an [`ExactTable`] found at the end: slots given to texts whose first copy had gone to
/// disk, each with the first copy's slot.
#[derive(Debug, Default)]
pub(super) struct LateCopies {
    /// (late slot, first slot), sorted by late slot.
    firsts: Vec<(u32, u32)>,
    /// One bit per slot: set for late slots.
    bits: Vec<u64>,
}

impl LateCopies {
    pub(super) fn is_empty(&self) -> bool {
        self.firsts.is_empty()
    }

    /// Late slots found.
    pub(super) fn len(&self) -> usize {
        self.firsts.len()
    }

    /// Whether `slot` is a late copy (to be left out of buckets and index lookups).
    #[inline]
    pub(super) fn is_late(&self, slot: u32) -> bool {
        self.bits
            .get(slot as usize / 64)
            .is_some_and(|word| word >> (slot % 64) & 1 == 1)
    }

    /// The first slot of the text in `slot` (`slot` itself unless it is late).
    pub(super) fn first(&self, slot: u32) -> u32 {
        match self.firsts.binary_search_by_key(&slot, |&(late, _)| late) {
            Ok(at) => self.firsts[at].1,
            Err(_) => slot,
        }
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
            spilled: Sorter::new(space, sort_bytes),
            any_spilled: false,
        }
    }

    /// The first slot of the text hashed `hash`, if the table still holds it; otherwise records
    /// `slot` as its first copy and returns `None`.
    pub(super) fn first_or_insert(
        &mut self,
        hash: u128,
        slot: u32,
    ) -> std::io::Result<Option<u32>> {
        use std::collections::hash_map::Entry;
        match self.map.entry(hash) {
            Entry::Occupied(e) => return Ok(Some(*e.get())),
            Entry::Vacant(e) => {
                e.insert(slot);
            }
        }
        if self.map.len() >= self.max_entries {
            self.any_spilled = true;
            for (hash, slot) in self.map.drain() {
                self.spilled.push(FirstCopy { hash, slot })?;
            }
            self.map.shrink_to_fit();
        }
        Ok(None)
    }

    /// Merges what went to disk with what stayed, and resolves every late copy. `slots` is the
    /// number of slots given out.
    pub(super) fn finish(mut self, slots: usize) -> std::io::Result<LateCopies> {
        if !self.any_spilled {
            return Ok(LateCopies::default());
        }
        for (hash, slot) in self.map.drain() {
            self.spilled.push(FirstCopy { hash, slot })?;
        }
        let mut late = LateCopies {
            firsts: Vec::new(),
            bits: vec![0; slots.div_ceil(64)],
        };
        let mut group: Option<FirstCopy> = None;
        for record in self.spilled.into_sorted()? {
            let record = record?;
            match group {
                Some(first) if first.hash == record.hash => {
                    late.firsts.push((record.slot, first.slot));
                    late.bits[record.slot as usize / 64] |= 1 << (record.slot % 64);
                }
                _ => group = Some(record),
            }
        }
        late.firsts.sort_unstable();
        Ok(late)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use crate::pipeline::exact::ExactTable;
    use crate::spill::SpillSpace;

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
            prop_assert!(unbounded.finish(slots_a as usize).unwrap().is_empty());
            let late = bounded.finish(slots_b as usize).unwrap();
            prop_assert_eq!(late.len() as u32, slots_b - slots_a);
            // Live slots, renumbered densely in order, are the unbounded table's slots.
            let live: Vec<u32> = (0..slots_b).filter(|&s| !late.is_late(s)).collect();
            let dense = |s: u32| live.binary_search(&s).unwrap() as u32;
            let got: Vec<u32> = got_raw.iter().map(|&s| dense(late.first(s))).collect();
            prop_assert_eq!(got, expected);
        }
    }
}
