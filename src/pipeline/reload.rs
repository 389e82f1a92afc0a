//! Shingle sets loaded again for exact checks, in bounded rounds.
//!
//! A pair checked exactly needs the shingle sets of its two texts, which pass 1 did not keep. A
//! text's first copy is read again: by its location in a plain file (`pread`), or, when it sits
//! in a compressed input or a stream, from a [`RecordSpool`]: one more read of the inputs copies
//! the records of every text that will be checked to a temporary file, from which they are read
//! by location too. Either way sets are loaded in rounds of a bounded number
//! (`verify::exact_similarities`), never all at once, and nothing is kept per document.

use std::io;
use std::ops::ControlFlow;
use std::sync::Arc;

use rayon::prelude::*;

use super::docs::DocState;
use super::{Analysis, Dedup};
use crate::error::{Error, Origin};
use crate::lsh::{CandidatePair, CandidatePairs};
use crate::read::{Format, InputSet, Parser, Record};
use crate::spill::Sorter;
use crate::spill::{Column, FixedRecord, KeyedColumn, SpillBytes, SpillSpace};
use crate::verify::LoadSets;
use crate::verify::{ExactSets, compact_set};

/// The records of the texts to check, copied from inputs that cannot be read back by location.
#[derive(Debug)]
pub(super) struct RecordSpool {
    bytes: SpillBytes,
    /// Each spooled text's slot and where its record sits in `bytes`, by slot.
    index: KeyedColumn<Spooled, u32>,
}

/// A spooled record: its text's slot, offset and length, and its input's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Spooled {
    slot: u32,
    offset: u64,
    len: u64,
    format: Format,
}

impl FixedRecord for Spooled {
    const LEN: usize = 21;
    fn encode(&self, out: &mut [u8]) {
        self.slot.encode(&mut out[..4]);
        self.offset.encode(&mut out[4..12]);
        self.len.encode(&mut out[12..20]);
        out[20] = match self.format {
            Format::Jsonl => 0,
            Format::Lines => 1,
            Format::Files => 2,
            Format::Warc => 3,
            Format::Wet => 4,
            Format::Parquet => 5,
        };
    }
    fn decode(bytes: &[u8]) -> Self {
        Spooled {
            slot: u32::decode(&bytes[..4]),
            offset: u64::decode(&bytes[4..12]),
            len: u64::decode(&bytes[12..20]),
            format: match bytes[20] {
                0 => Format::Jsonl,
                1 => Format::Lines,
                3 => Format::Warc,
                4 => Format::Wet,
                5 => Format::Parquet,
                _ => Format::Files,
            },
        }
    }
}

impl RecordSpool {
    /// The record of the text at `slot` and its format, if it was spooled.
    fn read(&self, slot: u32) -> io::Result<Option<(Vec<u8>, Format)>> {
        let Some(spooled) = self.index.get(&slot)? else {
            return Ok(None);
        };
        let mut bytes = vec![0; spooled.len as usize];
        self.bytes.read_into(spooled.offset, &mut bytes)?;
        Ok(Some((bytes, spooled.format)))
    }
}

impl Dedup {
    /// Reads the inputs once more and copies the records of the texts at `needed` (sorted slots,
    /// repeats allowed) to a spool in `space`. The reading stops after the last needed record;
    /// with none needed, nothing is read.
    pub(super) fn spool_records(
        &self,
        inputs: &mut InputSet,
        analysis: &Analysis,
        needed: impl Iterator<Item = io::Result<u32>>,
        space: &Arc<SpillSpace>,
    ) -> Result<RecordSpool, Error> {
        let error = |e| space.error(e);
        let mut spool = RecordSpool {
            bytes: SpillBytes::new(space.clone()),
            index: KeyedColumn::new(space.clone(), |spooled: &Spooled| spooled.slot),
        };
        let mut needed = needed.peekable();
        if needed.peek().is_none() {
            return Ok(spool);
        }
        let mut states = analysis.docs.states();
        self.for_each_batch_until(inputs, |batch, _| {
            for frame in &batch {
                let Some(state) = states.next() else {
                    return Err(Error::InputChanged);
                };
                // First copies come in slot order, as the needed slots do.
                let DocState::Unique(slot) = state? else {
                    continue;
                };
                while let Some(Ok(next)) = needed.peek()
                    && *next < slot
                {
                    needed.next();
                }
                match needed.peek() {
                    Some(Ok(next)) if *next == slot => {}
                    Some(Ok(_)) => continue,
                    Some(Err(_)) => return Err(error(needed.next().expect("peeked").unwrap_err())),
                    // Every needed record is spooled: the rest of the inputs is not read.
                    None => return Ok(ControlFlow::Break(())),
                }
                if let Ok(record) = frame.record() {
                    let offset = spool.bytes.push(&record.bytes).map_err(error)?;
                    let len = record.bytes.len() as u64;
                    let format = record.format;
                    spool
                        .index
                        .push(&Spooled {
                            slot,
                            offset,
                            len,
                            format,
                        })
                        .map_err(error)?;
                }
            }
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(spool)
    }

    /// Computes the shingle sets of the distinct texts at the sorted slots `needed`, reading their
    /// records back from `spool` when there is one, otherwise by location. A record that cannot
    /// be read back (the input changed) has no set: its pairs are decided on their estimates.
    pub(super) fn load_sets(
        &self,
        inputs: &InputSet,
        analysis: &Analysis,
        spool: Option<&RecordSpool>,
        needed: &[u32],
    ) -> Result<ExactSets, Error> {
        let parser = Parser::new(self.fields.clone());
        let reader = inputs.record_reader();
        let space = &analysis.space;
        let load = |slot: u32| -> Result<Option<Vec<u32>>, Error> {
            let (bytes, format, location) = match spool {
                Some(spool) => match spool.read(slot).map_err(|e| space.error(e))? {
                    Some((bytes, format)) => (bytes, format, None),
                    None => return Ok(None),
                },
                None => match analysis.location(slot)? {
                    Some(location) => match reader.read(location) {
                        Ok(bytes) => (
                            bytes,
                            inputs.format_of(location.input as usize),
                            Some(location),
                        ),
                        Err(_) => return Ok(None),
                    },
                    None => return Ok(None),
                },
            };
            let record = Record {
                origin: Origin {
                    file: String::new(),
                    line: 0,
                    offset: None,
                },
                bytes,
                format,
                location,
                stored: None,
            };
            Ok(parser
                .parse(&record)
                .ok()
                .map(|doc| compact_set(&self.normalize_and_shingle(&self.content(&doc).0).1)))
        };
        let mut sets = ExactSets::default();
        for chunk in needed.chunks(self.batch_docs) {
            let loaded = chunk
                .par_iter()
                .map(|&slot| Ok(load(slot)?.map(|set| (slot, set))))
                .collect::<Result<Vec<Option<(u32, Vec<u32>)>>, Error>>()?;
            let loaded = loaded.into_iter().flatten();
            for (slot, set) in loaded {
                sets.insert_compact(slot, set);
            }
        }
        Ok(sets)
    }
}

impl Dedup {
    /// Calls `each` with `pairs` a chunk at a time, in pair order, and a loader of the shingle
    /// sets of the texts of the chunk's pairs. When records cannot be read back by location
    /// (compressed inputs, streams), the pairs are stored first, and the records of the texts of
    /// the pairs `checked` picks (of each chunk) are spooled by one more read of the inputs.
    pub(super) fn with_sets_at_hand(
        &self,
        inputs: &mut InputSet,
        analysis: &Analysis,
        mut pairs: CandidatePairs,
        checked: impl Fn(&[CandidatePair]) -> Result<Vec<CandidatePair>, Error>,
        mut each: impl FnMut(&[CandidatePair], &mut LoadSets<'_>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let space = &analysis.space;
        let error = |e| space.error(e);
        let per_chunk = self.pairs_per_chunk();
        let mut chunk = Vec::new();
        if analysis.all_located {
            while pairs.next_chunk(per_chunk, &mut chunk).map_err(error)? {
                inputs.check_cancelled()?;
                each(&chunk, &mut |needed| {
                    self.load_sets(inputs, analysis, None, needed)
                })?;
            }
            return Ok(());
        }
        let mut stored: Column<CandidatePair> = Column::new(space.clone());
        let mut slots = Sorter::new(space.clone(), self.sort_budget());
        while pairs.next_chunk(per_chunk, &mut chunk).map_err(error)? {
            for pair in &chunk {
                stored.push(pair).map_err(error)?;
            }
            for (a, b) in checked(&chunk)? {
                slots.push(a).map_err(error)?;
                slots.push(b).map_err(error)?;
            }
        }
        drop(pairs);
        let needed = slots.into_sorted().map_err(error)?;
        let spool = self.spool_records(inputs, analysis, needed, space)?;
        let mut stored_pairs = stored.iter();
        loop {
            chunk.clear();
            for pair in stored_pairs.by_ref().take(per_chunk) {
                chunk.push(pair.map_err(error)?);
            }
            if chunk.is_empty() {
                return Ok(());
            }
            inputs.check_cancelled()?;
            each(&chunk, &mut |needed| {
                self.load_sets(inputs, analysis, Some(&spool), needed)
            })?;
        }
    }
}
