//! The records this worker owns: read and signed once (or loaded from a checkpoint), looked up
//! by position by the later steps, and framed again when a step needs their shingle sets.
//!
//! A worker parses, normalizes, shingles and signs only its own records, so text never leaves
//! the worker that read it: an [`Own`] keeps the id, the text hash, the 8-bit signature, the band
//! keys and the keep score of a document, and the rejection of a record that is not one. Before
//! anything is written, the workers learn everyone's rejections ([`check_rejections`]), so that a
//! run fails on its rejected records as one process does.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use timely::worker::Worker;

use super::Job;
use super::exchange::{exchange, peer_failed};
use super::share::{Share, Start};
use crate::error::{AllRejected, Error, RejectKind, Rejection};
use crate::pipeline::{Dedup, Prepared, checkpoint};
use crate::read::{Frame, Parser};

/// One record this worker owns.
#[derive(Debug, Clone)]
pub(in crate::pipeline) enum Own {
    Rejected {
        rejection: Rejection,
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
    /// Byte-order marks skipped at the start of this worker's pieces when they were read.
    pub byte_order_marks: u64,
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

/// One worker's rejections, sent to every worker: how many records it owns, and per kind how
/// many it rejected and the first of them.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Rejections {
    to: u64,
    read: u64,
    by_kind: Vec<KindRejections>,
}

/// The rejections of one kind: how many, and the first (by position) with its position.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct KindRejections {
    kind: RejectKind,
    count: u64,
    first_position: u64,
    first: Rejection,
}

/// Fails on every worker, before anything is written, where one process fails on rejected
/// records: under `strict`, with the first rejected record of the run ([`Error::Rejected`]);
/// when every record was rejected, with [`Error::AllRejected`] (the most common kind, and its
/// first record in input order). Collective.
pub(super) fn check_rejections(
    worker: &mut Worker,
    owned: &Owned,
    strict: bool,
) -> Result<(), Error> {
    let mut mine: BTreeMap<RejectKind, KindRejections> = BTreeMap::new();
    for (position, own) in owned.iter() {
        if let Own::Rejected { rejection } = own {
            mine.entry(rejection.reason.kind())
                .or_insert_with(|| KindRejections {
                    kind: rejection.reason.kind(),
                    count: 0,
                    first_position: *position,
                    first: rejection.clone(),
                })
                .count += 1;
        }
    }
    let by_kind: Vec<KindRejections> = mine.into_values().collect();
    let sent: Vec<Rejections> = (0..worker.peers() as u64)
        .map(|to| Rejections {
            to,
            read: owned.len() as u64,
            by_kind: by_kind.clone(),
        })
        .collect();
    let everyone = exchange(worker, sent, |r| r.to)?;
    let read: u64 = everyone.iter().map(|r| r.read).sum();
    let mut all: BTreeMap<RejectKind, KindRejections> = BTreeMap::new();
    for kind in everyone.into_iter().flat_map(|r| r.by_kind) {
        match all.get_mut(&kind.kind) {
            None => {
                all.insert(kind.kind, kind);
            }
            Some(known) => {
                known.count += kind.count;
                if kind.first_position < known.first_position {
                    known.first_position = kind.first_position;
                    known.first = kind.first;
                }
            }
        }
    }
    if strict && let Some(first) = all.values().min_by_key(|k| k.first_position) {
        return Err(Error::Rejected(first.first.clone()));
    }
    let rejected: u64 = all.values().map(|k| k.count).sum();
    if read == 0 || rejected < read {
        return Ok(());
    }
    // The most common kind (the last of equals, as `RejectionTally::check` picks).
    let most = all
        .into_values()
        .max_by_key(|k| k.count)
        .expect("rejected records have kinds");
    Err(Error::AllRejected(Box::new(AllRejected {
        records: read,
        reason: most.kind,
        with_reason: most.count,
        first: most.first,
    })))
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
        let signed = match loaded {
            Some(signed) => signed,
            None => {
                let signed = checkpoint::Signed {
                    records: self.read_owned(share)?,
                    byte_order_marks: share.set.report().byte_order_marks,
                };
                if let Some((path, fingerprint)) = &checkpoint {
                    checkpoint::write(path, *fingerprint, &signed)?;
                }
                signed
            }
        };
        Ok(Owned {
            records: signed.records,
            from_checkpoint,
            byte_order_marks: signed.byte_order_marks,
        })
    }

    /// Frames this worker's pieces (on a reader thread, ahead of the work), and prepares and
    /// signs their records in parallel.
    fn read_owned(&self, share: &mut Share) -> Result<Vec<(u64, Own)>, Error> {
        let parser = Parser::new(self.fields.clone());
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
        Ok(owned)
    }

    /// Prepares and signs one owned record.
    fn own(&self, parser: &Parser, frame: &Frame) -> Own {
        match self.prepare(parser, frame) {
            Prepared::Rejected(rejection) => Own::Rejected { rejection },
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
        let parser = Parser::new(self.fields.clone());
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
