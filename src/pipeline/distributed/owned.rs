//! The records this worker owns: read and signed once (or loaded from a checkpoint), looked up
//! by position by the later steps, and framed again when a step needs their shingle sets.
//!
//! A worker parses, normalizes, shingles and signs only its own records, so text never leaves
//! the worker that read it: an [`Own`] keeps the id, the text hash, the 8-bit signature, the band
//! keys and the keep score of a document, and the rejection line of a record that is not one.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use rayon::prelude::*;

use super::Job;
use super::exchange::peer_failed;
use super::share::{Share, Start};
use crate::error::Error;
use crate::pipeline::{Dedup, Prepared, checkpoint};
use crate::read::{Frame, Parser};

/// One record this worker owns.
#[derive(Debug, Clone)]
pub(in crate::pipeline) enum Own {
    Rejected {
        line: String,
    },
    Empty,
    Doc {
        id: String,
        hash: (u64, u64),
        /// 8-bit signature values.
        signature: Vec<u8>,
        /// Band keys, in band order (the full 64 bits of each band's hash).
        keys: Vec<u64>,
        /// What the keep policy compares (0 under `--keep first`).
        score: f64,
    },
}

/// This worker's records with their positions, in position order.
#[derive(Debug)]
pub(super) struct Owned {
    records: Vec<(u64, Own)>,
    /// Whether they were loaded from a checkpoint.
    pub from_checkpoint: bool,
}

impl Owned {
    /// The records with their positions, in position order.
    pub fn iter(&self) -> std::slice::Iter<'_, (u64, Own)> {
        self.records.iter()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// The record at `position`, which this worker owns (found by binary search: the records
    /// are in position order).
    pub fn get(&self, position: u64) -> &Own {
        let i = self
            .records
            .binary_search_by_key(&position, |(p, _)| *p)
            .expect("a position routed here is owned here");
        &self.records[i].1
    }

    /// The signature of the document at `position` (empty for any other record).
    pub fn signature(&self, position: u64) -> &[u8] {
        match self.get(position) {
            Own::Doc { signature, .. } => signature,
            _ => &[],
        }
    }

    /// The keep score of the document at `position` (the lowest for any other record).
    pub fn score(&self, position: u64) -> f64 {
        match self.get(position) {
            Own::Doc { score, .. } => *score,
            _ => f64::NEG_INFINITY,
        }
    }

    /// The id of the document at `position` (empty for any other record).
    pub fn id(&self, position: u64) -> &str {
        match self.get(position) {
            Own::Doc { id, .. } => id,
            _ => "",
        }
    }

    /// Drops the band keys, once the candidate pairs are formed.
    pub fn forget_band_keys(&mut self) {
        for (_, own) in self.records.iter_mut() {
            if let Own::Doc { keys, .. } = own {
                *keys = Vec::new();
            }
        }
    }
}

/// The positions of this worker's records, in reading order, from its pieces' starts.
pub(super) struct Positions<'a> {
    starts: &'a [Start],
    piece: usize,
    within: u64,
}

impl<'a> Positions<'a> {
    pub fn new(starts: &'a [Start]) -> Self {
        Positions {
            starts,
            piece: 0,
            within: 0,
        }
    }

    /// The next record's position.
    pub fn next(&mut self) -> u64 {
        while let Some(start) = self.starts.get(self.piece) {
            if self.within < start.records {
                break;
            }
            self.piece += 1;
            self.within = 0;
        }
        let first = self.starts.get(self.piece).map_or(u64::MAX, |s| s.first);
        self.within += 1;
        first + self.within - 1
    }
}

impl Dedup {
    /// Reads and signs the records this worker owns, or loads them from its checkpoint when
    /// `job` has a checkpoint directory holding them; writes the checkpoint after signing.
    pub(super) fn sign_owned(&self, share: &mut Share, job: &Job) -> Result<Owned, Error> {
        let (index, peers) = (share.worker, share.workers);
        let checkpoint = job.outputs.checkpoint.as_ref().map(|dir| {
            let settings = format!(
                "{:?} {:?} {:?} {} {}",
                self.index_params(),
                self.fields,
                job.format,
                job.max_doc_bytes,
                self.threshold
            );
            let path: PathBuf = checkpoint::path(dir, index, peers);
            (path, checkpoint::fingerprint(&settings, &job.inputs, peers))
        });
        let loaded = checkpoint
            .as_ref()
            .and_then(|(path, fingerprint)| checkpoint::read(path, *fingerprint));
        let from_checkpoint = loaded.is_some();
        let records = match loaded {
            Some(records) => records,
            None => {
                let records = self.read_owned(share)?;
                if let Some((path, fingerprint)) = &checkpoint {
                    checkpoint::write(path, *fingerprint, &records)?;
                }
                records
            }
        };
        Ok(Owned {
            records,
            from_checkpoint,
        })
    }

    /// Frames this worker's pieces (on a reader thread, ahead of the work), and prepares and
    /// signs their records in parallel.
    fn read_owned(&self, share: &mut Share) -> Result<Vec<(u64, Own)>, Error> {
        let parser = Parser::new(share.set.format(), self.fields.clone());
        let mut owned = Vec::new();
        let mut positions = Positions::new(&share.starts);
        self.for_each_batch(&mut share.set, |batch, _| {
            let at: Vec<u64> = batch.iter().map(|_| positions.next()).collect();
            let done: Vec<(u64, Own)> = batch
                .par_iter()
                .zip(&at)
                .map(|(frame, &pos)| (pos, self.own(&parser, frame)))
                .collect();
            owned.extend(done);
            peer_failed()
        })?;
        if self.strict
            && let Some((_, Own::Rejected { line })) = owned
                .iter()
                .find(|(_, o)| matches!(o, Own::Rejected { .. }))
        {
            return Err(Error::Distributed(format!("a record was rejected: {line}")));
        }
        Ok(owned)
    }

    /// Prepares and signs one owned record.
    fn own(&self, parser: &Parser, frame: &Frame) -> Own {
        match self.prepare(parser, frame) {
            Prepared::Rejected(rejection) => Own::Rejected {
                line: serde_json::json!({
                    "file": rejection.origin.file,
                    "line": rejection.origin.line,
                    "reason": rejection.reason.to_string(),
                })
                .to_string(),
            },
            Prepared::Doc { shingles, .. } if shingles.is_empty() => Own::Empty,
            Prepared::Doc {
                id,
                text_hash,
                shingles,
                score,
                ..
            } => {
                let mut signature = vec![0u32; self.num_perm()];
                self.hasher.sign_into(&shingles, &mut signature);
                let mut keys = Vec::with_capacity(self.params.num_bands);
                self.params.band_keys(&signature, &mut keys);
                Own::Doc {
                    id,
                    hash: ((text_hash >> 64) as u64, text_hash as u64),
                    signature: signature.iter().map(|&v| v as u8).collect(),
                    keys: keys.iter().map(|k| k.0).collect(),
                    score,
                }
            }
        }
    }

    /// The shingle sets (32-bit hashes, sorted, distinct, as one process's exact checks use them)
    /// of the owned records at `needed` positions, by framing the inputs again.
    pub(super) fn owned_sets(
        &self,
        share: &mut Share,
        needed: &HashSet<u64>,
    ) -> Result<HashMap<u64, Vec<u32>>, Error> {
        let parser = Parser::new(share.set.format(), self.fields.clone());
        let mut sets = HashMap::new();
        let mut positions = Positions::new(&share.starts);
        self.for_each_batch(&mut share.set, |batch, _| {
            let at: Vec<u64> = batch.iter().map(|_| positions.next()).collect();
            let loaded: Vec<(u64, Vec<u32>)> = batch
                .par_iter()
                .zip(&at)
                .filter_map(|(frame, &pos)| {
                    if !needed.contains(&pos) {
                        return None;
                    }
                    let Frame::Record(record) = frame else {
                        return None;
                    };
                    let doc = parser.parse(record).ok()?;
                    let shingles = self.normalize_and_shingle(&self.content(&doc).0).1;
                    let mut small: Vec<u32> = shingles.iter().map(|&h| h as u32).collect();
                    small.sort_unstable();
                    small.dedup();
                    Some((pos, small))
                })
                .collect();
            sets.extend(loaded);
            peer_failed()
        })?;
        Ok(sets)
    }
}
