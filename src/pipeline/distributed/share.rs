//! The start of a run (before step 1): this worker's share of the inputs, and who owns every
//! record.
//!
//! Every worker cuts the inputs the same way ([`InputSet::pieces`]: byte ranges of plain files cut
//! at line starts, whole compressed inputs) and counts the records of its own pieces. With
//! everyone's counts, each piece knows its first record's position in the whole input (what one
//! process would number it), and every worker knows which worker owns which positions
//! ([`Owners`]): the later steps route by position with it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use timely::worker::Worker;

use super::exchange::exchange;
use crate::error::Error;
use crate::read::{FormatChoice, Input, InputSet};

/// Where one of this worker's pieces starts in the whole input, and how many records it holds.
#[derive(Debug, Clone, Copy)]
pub(super) struct Start {
    pub first: u64,
    pub records: u64,
}

/// The first of a run of positions that one worker owns.
#[derive(Debug, Clone, Copy)]
struct Span {
    first: u64,
    owner: u64,
}

/// Which worker owns each position (the same table on every worker).
#[derive(Debug, Clone)]
pub(super) struct Owners {
    spans: Arc<Vec<Span>>,
}

impl Owners {
    /// The worker that owns `position`.
    pub fn of(&self, position: u64) -> u64 {
        let i = self.spans.partition_point(|span| span.first <= position);
        self.spans[i.saturating_sub(1)].owner
    }

    /// A route for [`exchange`]: each item goes to the owner of the position `key` picks from it.
    pub fn by<D: 'static>(
        &self,
        key: impl Fn(&D) -> u64 + 'static,
    ) -> impl Fn(&D) -> u64 + 'static {
        let owners = self.clone();
        move |item| owners.of(key(item))
    }
}

/// This worker's share of the inputs.
pub(super) struct Share {
    /// This worker's index among all workers (of every process).
    pub worker: usize,
    /// All workers of the run.
    pub workers: usize,
    /// The inputs, restricted to this worker's pieces (each numbering its lines as one process
    /// would).
    pub set: InputSet,
    /// Where each of those pieces starts, in reading order.
    pub starts: Vec<Start>,
    pub owners: Owners,
}

/// The record count of one piece, on its way to `to` (every worker hears of every piece).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PieceCount {
    to: u64,
    input: usize,
    part: usize,
    records: u64,
}

/// A piece of the whole input with its first record's position (sorted by input, then part).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Numbered {
    input: usize,
    part: usize,
    records: u64,
    first: u64,
}

impl Share {
    /// Cuts the inputs, counts this worker's pieces and learns everyone's counts. Collective:
    /// every worker calls it.
    pub fn new(
        worker: &mut Worker,
        inputs: &[Input],
        format: FormatChoice,
        max_doc_bytes: usize,
    ) -> Result<Share, Error> {
        let peers = worker.peers() as u64;
        let mut set = InputSet::new(inputs.to_vec(), format, max_doc_bytes)?;
        let mut pieces = set.pieces(worker.index(), peers as usize);
        let counted: Vec<PieceCount> = pieces
            .iter()
            .flat_map(|piece| {
                let records = set.count_records(piece);
                (0..peers).map(move |to| PieceCount {
                    to,
                    input: piece.input,
                    part: piece.part,
                    records,
                })
            })
            .collect();
        let mut all: Vec<Numbered> = exchange(worker, counted, |c| c.to)?
            .into_iter()
            .map(|c| Numbered {
                input: c.input,
                part: c.part,
                records: c.records,
                first: 0,
            })
            .collect();
        all.sort_unstable();
        let owners = number(&mut all, peers);
        let input_base: HashMap<usize, u64> = {
            let mut base = HashMap::new();
            for piece in &all {
                base.entry(piece.input).or_insert(piece.first);
            }
            base
        };
        let mut starts = Vec::new();
        for piece in pieces.iter_mut() {
            let numbered = *all
                .iter()
                .find(|c| (c.input, c.part) == (piece.input, piece.part))
                .expect("every piece counted");
            piece.first_line = numbered.first - input_base[&piece.input];
            starts.push(Start {
                first: numbered.first,
                records: numbered.records,
            });
        }
        set.restrict_to(pieces);
        Ok(Share {
            worker: worker.index(),
            workers: peers as usize,
            set,
            starts,
            owners,
        })
    }
}

/// Numbers every worker's pieces (`all`, sorted) one after the other, and says who owns which
/// positions: the part of a split file, `input mod peers` for a whole input.
fn number(all: &mut [Numbered], peers: u64) -> Owners {
    let splits: HashSet<usize> = all.iter().filter(|c| c.part > 0).map(|c| c.input).collect();
    let mut next = 0u64;
    let mut spans = Vec::new();
    for piece in all.iter_mut() {
        piece.first = next;
        let owner = if splits.contains(&piece.input) || peers == 1 {
            piece.part as u64
        } else {
            piece.input as u64 % peers
        };
        if piece.records > 0 {
            spans.push(Span { first: next, owner });
        }
        next += piece.records;
    }
    Owners {
        spans: Arc::new(spans),
    }
}
