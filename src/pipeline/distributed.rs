//! A run spread over several processes (and threads) on timely dataflow.
//!
//! Every worker (thread of a process; `workers × processes` in all) reads its pieces of the inputs
//! ([`InputSet::pieces`]: byte ranges of plain files cut at line starts, whole compressed inputs);
//! the pieces' record counts are exchanged so that every record gets the position one process
//! would give it. A worker parses, normalizes, shingles and signs only its records, so text never
//! leaves the worker that read it. What crosses the network, exchanged by key (a position goes to
//! its owner) in bulk-synchronous steps, is small:
//!
//! 1. `(text hash, position)` by hash: the earliest position of each text is its representative;
//!    every owner learns which of its records are exact copies.
//! 2. `(band, key, position)` by `(band, key)`: buckets, and candidate pairs from them with the
//!    same anchor rule as one process; pairs by pair, to drop repeats.
//! 3. Each pair visits the owner of its first document (collecting its 8-bit signature) and then
//!    the owner of its second, which checks the estimate against the threshold.
//! 4. Each worker reduces its verified edges to a spanning forest; worker 0 merges the forests
//!    with union-find and sends each document's cluster label (the earliest position of its
//!    cluster) back to its owner; exact copies get their representative's label from its owner.
//! 5. The root's owner applies the keep policy to the members' scores; owners ask the kept
//!    document's owner for its id and similarity, write their part of the kept
//!    records, removals and rejections (lines with positions, see [`crate::parts`]), and send
//!    cluster members' ids to worker 0, which writes the clusters file. After a final barrier,
//!    worker 0 merges the parts when it can see them (a shared directory); otherwise `neardup
//!    merge` does, on any machine that has them all.
//!
//! Borderline pairs (default verification) are decided on exact Jaccard: both owners compute
//! their document's shingle set from one more read of their records, and the first's set travels
//! to the second's owner. The result is byte-identical to a single-process run with the same
//! settings (any `--verify` mode and keep policy; the Jaccard measure). Timely is fail-stop:
//! if a process dies, the others fail rather than wait; run the job again (`--checkpoint` keeps
//! the signing that was done).
//!
//! Before all that, the processes connect to each other and agree (see [`agreement`]): every
//! process sends every other one a fingerprint of its settings and inputs, and when any two
//! differ, every process stops with [`Error::Disagreement`] before it reads or writes anything.

mod agreement;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rayon::prelude::*;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::InputHandle;
use timely::dataflow::channels::pact::Exchange as ExchangePact;
use timely::dataflow::operators::Input as _;
use timely::dataflow::operators::generic::operator::Operator;
use timely::worker::Worker;

use super::{Dedup, Prepared};
use crate::cluster::UnionFind;
use crate::error::{ConfigError, Error};
use crate::hash::mix64;
use crate::lsh::ANCHORS;
use crate::minhash::estimate_jaccard_bbit;
use crate::parts::{PartWriter, part_name};
use crate::pipeline::Instant;
use crate::read::{Format, Input};
use crate::read::{Frame, InputSet, Parser};
use crate::report::{ClusterReport, DocId, DuplicateKind, MemberReport, Removal, Summary};
use crate::shingle::jaccard;
use crate::verify::{Measure, Verifier, VerifyMode};
use agreement::{Fingerprint, PROCESSES, Setting};

/// Where the processes of a distributed run are and which one this is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// Worker threads per process.
    pub workers: usize,
    /// This process's index in `addresses`.
    pub process: usize,
    /// `host:port` of every process, in process order (one for a single process).
    pub addresses: Vec<String>,
}

impl ClusterConfig {
    /// Checks the numbers against each other.
    pub fn new(
        workers: usize,
        process: usize,
        addresses: Vec<String>,
    ) -> Result<ClusterConfig, ConfigError> {
        if workers == 0 {
            return Err(ConfigError::Zero("workers"));
        }
        if addresses.is_empty() || process >= addresses.len() {
            return Err(ConfigError::Process {
                process,
                processes: addresses.len(),
            });
        }
        Ok(ClusterConfig {
            workers,
            process,
            addresses,
        })
    }

    /// Reads a hostfile: one `host:port` per line; blank lines and `#` comments skipped.
    pub fn read_hostfile(path: &Path) -> Result<Vec<String>, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Input {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(text
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").trim())
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }

    pub fn processes(&self) -> usize {
        self.addresses.len()
    }

    /// Timely's communication for this process: its workers' allocators, and what must live as
    /// long as they run. With several processes, connects to the others first (quietly) and
    /// checks that this process's `fingerprint` is every process's.
    fn communication(
        &self,
        fingerprint: impl FnOnce() -> Fingerprint,
    ) -> Result<Communication, Error> {
        use timely::communication::allocator::zero_copy::initialize::initialize_networking_from_sockets;
        use timely::communication::allocator::{AllocatorBuilder, ProcessBuilder};

        let cannot_start = |e: String| Error::Distributed(format!("cannot start the workers: {e}"));
        if self.processes() == 1 {
            return timely::CommunicationConfig::Process(self.workers)
                .try_build()
                .map_err(cannot_start);
        }
        let sockets = agreement::connect(&self.addresses, self.process, &fingerprint())?;
        let hooks = timely::communication::Hooks::default();
        let allocators = ProcessBuilder::new_typed_vector(
            self.workers,
            hooks.refill.clone(),
            hooks.spill.clone(),
        );
        let (builders, guard) = initialize_networking_from_sockets(
            allocators,
            sockets,
            self.process,
            self.workers,
            hooks,
        )
        .map_err(|e| cannot_start(e.to_string()))?;
        Ok((
            builders.into_iter().map(AllocatorBuilder::Tcp).collect(),
            Box::new(guard),
        ))
    }
}

/// Timely's allocator builders, one per worker, and the guard of its network threads.
type Communication = (
    Vec<timely::communication::allocator::AllocatorBuilder>,
    Box<dyn std::any::Any + Send>,
);

/// The files a distributed run writes (each as parts first).
#[derive(Debug, Clone, Default)]
pub struct DistributedOutputs {
    pub kept: Option<String>,
    pub removed: Option<String>,
    pub clusters: Option<String>,
    pub rejected: Option<String>,
    /// Where each worker checkpoints its signed records (see `checkpoint.rs`); a rerun with the
    /// same directory, inputs and settings loads them instead of signing again.
    pub checkpoint: Option<PathBuf>,
}

/// What a distributed run did, as seen by process 0.
#[derive(Debug)]
pub struct DistributedResult {
    pub summary: Summary,
    /// Outputs still in parts (worker 0 could not see every part): merge them with `merge`.
    pub unmerged: Vec<String>,
}

/// Set when one of timely's communication threads panics: a peer process died or went away.
/// Timely does not tell the workers, which would otherwise wait for it forever.
static PEER_FAILED: AtomicBool = AtomicBool::new(false);

/// Tells a distributed run that a thread panicked: call it from the program's panic hook (the
/// library installs none) with the panicking thread's name. When the thread is one of timely's
/// communication threads, a peer process died or went away, and the workers stop at their next
/// step instead of waiting for it forever.
pub fn note_thread_panic(thread_name: Option<&str>) {
    if thread_name.is_some_and(|name| name.starts_with("timely:")) {
        PEER_FAILED.store(true, Ordering::SeqCst);
    }
}

/// Set when a worker of this process stops with an error: the other workers stop at their next
/// step instead of waiting for it forever (their processes' peers then see this one go away).
static WORKER_FAILED: AtomicBool = AtomicBool::new(false);

/// The messages of a worker that stopped because another one failed.
const PEER_FAILED_MESSAGE: &str = "a peer process failed or went away";
const OTHER_WORKER_MESSAGE: &str = "another worker of this process failed";

/// Whether `error` only says that a worker stopped because another one failed.
fn is_knock_on(error: &Error) -> bool {
    matches!(error, Error::Distributed(m) if m == PEER_FAILED_MESSAGE || m == OTHER_WORKER_MESSAGE)
}

fn peer_failed() -> Result<(), Error> {
    if WORKER_FAILED.load(Ordering::SeqCst) {
        return Err(Error::Distributed(OTHER_WORKER_MESSAGE.to_string()));
    }
    if PEER_FAILED.load(Ordering::SeqCst) {
        Err(Error::Distributed(PEER_FAILED_MESSAGE.to_string()))
    } else {
        Ok(())
    }
}

/// Sends each item to worker `route(item) mod workers`; returns what this worker received.
/// Every worker must call it, in the same order (a bulk-synchronous step). Fails when a peer
/// process has gone away.
fn exchange<D: timely::ExchangeData + Clone>(
    worker: &mut Worker,
    data: Vec<D>,
    route: impl Fn(&D) -> u64 + 'static,
) -> Result<Vec<D>, Error> {
    let received: Rc<RefCell<Vec<D>>> = Rc::new(RefCell::new(Vec::new()));
    let store = received.clone();
    let mut input: InputHandle<u64, CapacityContainerBuilder<Vec<D>>> = InputHandle::new();
    worker.dataflow::<u64, _, _>(|scope| {
        scope.input_from(&mut input).sink(
            ExchangePact::new(route),
            "Collect",
            move |(handle, _)| {
                handle.for_each(|_, data| store.borrow_mut().append(data));
            },
        );
    });
    for item in data {
        input.send(item);
    }
    drop(input);
    while worker.step_or_park(Some(Duration::from_millis(100))) {
        peer_failed()?;
    }
    peer_failed()?;
    Ok(received.take())
}

/// One record this worker owns.
#[derive(Debug, Clone)]
pub(super) enum Own {
    Rejected {
        line: String,
    },
    Empty,
    Doc {
        id: String,
        hash: (u64, u64),
        /// 8-bit signature values.
        signature: Vec<u8>,
        keys: Vec<u32>,
        /// What the keep policy compares (0 under `--keep first`).
        score: f64,
    },
}

/// The decision about one owned document that is not kept as is.
#[derive(Debug, Clone)]
struct Decision {
    similarity: f64,
    kind: DuplicateKind,
    kept_id: String,
}

impl Dedup {
    /// Runs over `cluster`'s processes; every process calls this with the same inputs and
    /// settings. Returns the result on process 0, `None` on the others.
    pub fn run_distributed(
        &self,
        inputs: &[Input],
        format: Format,
        max_doc_bytes: usize,
        cluster: &ClusterConfig,
        outputs: &DistributedOutputs,
    ) -> Result<Option<DistributedResult>, Error> {
        if self.measure != Measure::Jaccard || self.strip.is_some() {
            return Err(Error::Config(ConfigError::Distributed));
        }
        let started = Instant::now();
        // Agree with the other processes before anything is read or written.
        let (builders, network) = cluster.communication(|| {
            Fingerprint::new(
                self.agreement_settings(format, max_doc_bytes, cluster, outputs),
                inputs,
            )
        })?;
        // Timely's communication threads panic when they give up on a peer; the program's panic
        // hook tells us through `note_thread_panic`.
        PEER_FAILED.store(false, Ordering::SeqCst);
        WORKER_FAILED.store(false, Ordering::SeqCst);
        let this = self.clone();
        let inputs = inputs.to_vec();
        let outputs = outputs.clone();
        let guards = timely::execute::execute_from(
            builders,
            network,
            timely::WorkerConfig::default(),
            move |worker| {
                let result =
                    this.distributed_worker(worker, &inputs, format, max_doc_bytes, &outputs);
                if result.is_err() {
                    WORKER_FAILED.store(true, Ordering::SeqCst);
                }
                result
            },
        )
        .map_err(|e| Error::Distributed(format!("cannot start the workers: {e}")))?;
        let mut first = None;
        // The error to report: the one that stopped a worker, not the others' "stopped because
        // of it".
        let mut failure: Option<Error> = None;
        for (i, result) in guards.join().into_iter().enumerate() {
            match result.map_err(|e| Error::Distributed(format!("a worker failed: {e}")))? {
                Ok(result) if i == 0 => first = result,
                Ok(_) => {}
                Err(error) => {
                    let replace = match &failure {
                        None => true,
                        Some(known) => is_knock_on(known) && !is_knock_on(&error),
                    };
                    if replace {
                        failure = Some(error);
                    }
                }
            }
        }
        if let Some(error) = failure {
            return Err(error);
        }
        let Some(mut result) = first else {
            return Ok(None);
        };
        // The workers count what they read, rejected and removed; kept is what remains.
        let s = &mut result.summary;
        s.kept = s.docs_read - s.rejected - s.exact_duplicates - s.near_duplicates;
        s.finish(started)?;
        Ok(Some(result))
    }

    /// Every setting that shapes the output of a distributed run or the steps its processes take
    /// together, by name and as text, for the start-up agreement. (Batch sizes, the memory
    /// budget, temporary and checkpoint directories are each process's own.)
    fn agreement_settings(
        &self,
        format: Format,
        max_doc_bytes: usize,
        cluster: &ClusterConfig,
        outputs: &DistributedOutputs,
    ) -> Vec<Setting> {
        let on = |list: &[(bool, &str)]| {
            let names: Vec<&str> = list.iter().filter(|o| o.0).map(|o| o.1).collect();
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        };
        let normalize = self.normalizer.options();
        let optional = |field: &Option<String>| field.clone().unwrap_or_else(|| "none".to_string());
        vec![
            Setting::new("version", env!("CARGO_PKG_VERSION")),
            Setting::new(PROCESSES, cluster.processes()),
            Setting::new("workers", cluster.workers),
            Setting::new("threshold", self.threshold),
            Setting::new("num_perm", self.num_perm()),
            Setting::new("seed", self.seed),
            Setting::new(
                "bands × rows",
                format!("{} × {}", self.params.num_bands, self.params.rows_per_band),
            ),
            Setting::new("shingle", self.shingler.kind()),
            Setting::new(
                "normalization",
                on(&[
                    (normalize.nfkc, "nfkc"),
                    (normalize.lowercase, "lowercase"),
                    (normalize.strip_punctuation, "strip_punctuation"),
                    (normalize.collapse_whitespace, "collapse_whitespace"),
                ]),
            ),
            Setting::new("verify", format!("{:?}", self.verify).to_lowercase()),
            Setting::new("measure", format!("{:?}", self.measure).to_lowercase()),
            Setting::new("keep", &self.keep),
            Setting::new("text field", &self.fields.text),
            Setting::new("id field", &self.fields.id),
            Setting::new("keep field", optional(&self.fields.keep)),
            Setting::new("group field", optional(&self.fields.group)),
            Setting::new("strict", self.strict),
            Setting::new("format", format!("{format:?}").to_lowercase()),
            Setting::new("max_doc_bytes", max_doc_bytes),
            Setting::new("boilerplate", optional(&self.index_params().boilerplate)),
            Setting::new(
                "outputs",
                on(&[
                    (outputs.kept.is_some(), "kept"),
                    (outputs.removed.is_some(), "removed"),
                    (outputs.clusters.is_some(), "clusters"),
                    (outputs.rejected.is_some(), "rejected"),
                ]),
            ),
        ]
    }

    /// One worker's whole run.
    fn distributed_worker(
        &self,
        worker: &mut Worker,
        inputs: &[Input],
        format: Format,
        max_doc_bytes: usize,
        outputs: &DistributedOutputs,
    ) -> Result<Option<DistributedResult>, Error> {
        let index = worker.index() as u64;
        let peers = worker.peers() as u64;
        let mut set = InputSet::new(inputs.to_vec(), format, max_doc_bytes)?;

        // Share the inputs: every worker cuts them the same way and counts the records of its
        // own pieces; with everyone's counts, each piece knows its first record's position in
        // the whole input (what one process would number it), and every worker knows who owns
        // which positions.
        let mut pieces = set.pieces(index as usize, peers as usize);
        let counted: Vec<(u64, usize, usize, u64)> = pieces
            .iter()
            .flat_map(|piece| {
                let count = set.count_records(piece);
                (0..peers).map(move |target| (target, piece.input, piece.part, count))
            })
            .collect();
        let mut all_counts: Vec<(usize, usize, u64, u64)> = exchange(worker, counted, |c| c.0)?
            .into_iter()
            .map(|(_, input, part, count)| (input, part, count, 0))
            .collect();
        all_counts.sort_unstable();
        // Owner of each piece: the part of a split file, `input mod peers` for a whole input.
        let splits: std::collections::HashSet<usize> =
            all_counts.iter().filter(|c| c.1 > 0).map(|c| c.0).collect();
        let mut next = 0u64;
        let mut table: Vec<(u64, u64)> = Vec::new(); // (first position, owner)
        for c in all_counts.iter_mut() {
            c.3 = next;
            let owner = if splits.contains(&c.0) || peers == 1 {
                c.1 as u64
            } else {
                c.0 as u64 % peers
            };
            if c.2 > 0 {
                table.push((next, owner));
            }
            next += c.2;
        }
        let input_base: HashMap<usize, u64> = {
            let mut base = HashMap::new();
            for c in &all_counts {
                base.entry(c.0).or_insert(c.3);
            }
            base
        };
        let mut starts: Vec<(u64, u64)> = Vec::new(); // own pieces: (first position, records)
        for piece in pieces.iter_mut() {
            let (_, _, count, first) = *all_counts
                .iter()
                .find(|c| (c.0, c.1) == (piece.input, piece.part))
                .expect("every piece counted");
            piece.first_line = first - input_base[&piece.input];
            starts.push((first, count));
        }
        set.restrict_to(pieces);
        let table = Arc::new(table);
        let owner = move |pos: u64| -> u64 {
            let i = table.partition_point(|(first, _)| *first <= pos);
            table[i.saturating_sub(1)].1
        };

        // Read and sign what this worker owns.
        let checkpoint = outputs.checkpoint.as_ref().map(|dir| {
            let settings = format!(
                "{:?} {:?} {:?} {} {}",
                self.index_params(),
                self.fields,
                format,
                max_doc_bytes,
                self.threshold
            );
            (
                super::checkpoint::path(dir, index as usize, peers as usize),
                super::checkpoint::fingerprint(&settings, inputs, peers as usize),
            )
        });
        let loaded = checkpoint
            .as_ref()
            .and_then(|(path, fingerprint)| super::checkpoint::read(path, *fingerprint));
        let from_checkpoint = loaded.is_some();
        let mut owned = match loaded {
            Some(owned) => owned,
            None => {
                let owned = self.read_owned(&mut set, &starts)?;
                if let Some((path, fingerprint)) = &checkpoint {
                    super::checkpoint::write(path, *fingerprint, &owned)?;
                }
                owned
            }
        };
        let docs_read_here = owned.len() as u64;

        // 1. Exact copies: the earliest position of each text represents it.
        let hashes: Vec<(u64, u64, u64)> = owned
            .iter()
            .filter_map(|(pos, own)| match own {
                Own::Doc { hash, .. } => Some((hash.0, hash.1, *pos)),
                _ => None,
            })
            .collect();
        let mut by_hash = exchange(worker, hashes, |h| h.0)?;
        by_hash.sort_unstable();
        let mut reps: Vec<(u64, u64)> = Vec::new(); // (position, its representative)
        for group in by_hash.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
            let rep = group[0].2;
            reps.extend(group.iter().map(|h| (h.2, rep)));
        }
        let by = owner.clone();
        let rep_of: HashMap<u64, u64> = exchange(worker, reps, move |r| by(r.0))?
            .into_iter()
            .collect();

        // 2. Buckets and candidate pairs, as one process forms them; one band at a time, so
        // that only one band's records are in flight.
        let num_bands = self.params.num_bands;
        let mut pairs: Vec<(u64, u64)> = Vec::new();
        for band in 0..num_bands {
            let records: Vec<(u32, u64)> = owned
                .iter()
                .filter(|(pos, _)| rep_of.get(pos) == Some(pos))
                .filter_map(|(pos, own)| match own {
                    Own::Doc { keys, .. } => Some((keys[band], *pos)),
                    _ => None,
                })
                .collect();
            let mut buckets = exchange(worker, records, |r| mix64(u64::from(r.0)))?;
            buckets.sort_unstable();
            for bucket in buckets.chunk_by(|a, b| a.0 == b.0) {
                for (i, later) in bucket.iter().enumerate().skip(1) {
                    for earlier in &bucket[..i.min(ANCHORS)] {
                        pairs.push((earlier.1, later.1));
                    }
                }
            }
        }
        // Band keys are not needed any more.
        for (_, own) in owned.iter_mut() {
            if let Own::Doc { keys, .. } = own {
                *keys = Vec::new();
            }
        }
        let mut pairs = exchange(worker, pairs, |p| mix64(p.0 ^ mix64(p.1)))?;
        pairs.sort_unstable();
        pairs.dedup();
        let candidates_here = pairs.len() as u64;

        // 3. Verification: collect the first signature, then check at the second's owner.
        // `owned` is in position order: look documents up by binary search, not hash maps.
        let doc = |pos: u64| -> &Own {
            let i = owned
                .binary_search_by_key(&pos, |(p, _)| *p)
                .expect("a position routed here is owned here");
            &owned[i].1
        };
        let signature_of = |pos: u64| -> &[u8] {
            match doc(pos) {
                Own::Doc { signature, .. } => signature,
                _ => &[],
            }
        };
        let by = owner.clone();
        let at_first = exchange(worker, pairs, move |p| by(p.0))?;
        let with_first: Vec<(u64, u64, Vec<u8>)> = at_first
            .into_iter()
            .map(|(a, b)| (b, a, signature_of(a).to_vec()))
            .collect();
        let by = owner.clone();
        let at_second = exchange(worker, with_first, move |p| by(p.0))?;
        // As one process decides: on the estimate where it is clear, on exact Jaccard near the
        // threshold (borderline verification).
        let margin = Verifier::new(self.verify, self.threshold, self.num_perm()).margin();
        let judged: Vec<(u64, u64, f64)> = at_second
            .par_iter()
            .map(|(b, a, sig_a)| (*a, *b, estimate_jaccard_bbit(sig_a, signature_of(*b))))
            .collect();
        drop(at_second);
        let mut histogram = vec![0u64; 20];
        for (_, _, estimate) in &judged {
            histogram[((estimate * 20.0) as usize).min(19)] += 1;
        }
        let mut edges: Vec<(u64, u64)> = Vec::new();
        let mut borderline: Vec<(u64, u64)> = Vec::new();
        let mut borderline_estimate: HashMap<(u64, u64), f64> = HashMap::new();
        for (a, b, estimate) in judged {
            let clear = self.verify == VerifyMode::Signature
                || (self.verify == VerifyMode::Borderline
                    && (estimate - self.threshold).abs() > margin);
            if clear {
                if estimate >= self.threshold {
                    edges.push((a, b));
                }
            } else {
                borderline.push((a, b));
                borderline_estimate.insert((a, b), estimate);
            }
        }
        // Borderline pairs: both owners compute their document's shingle set (one more read of
        // their records); the first's set travels to the second's owner.
        let checked = self.exact_pairs(worker, &mut set, &starts, owner.clone(), borderline)?;
        let exact_checks_here = checked.len() as u64;
        let mut exact_of: HashMap<(u64, u64), f64> = HashMap::new();
        for (a, b, j) in checked {
            let decided = if j.is_nan() {
                borderline_estimate[&(a, b)]
            } else {
                j
            };
            if decided >= self.threshold {
                edges.push((a, b));
            }
            exact_of.insert((a, b), j);
        }
        let verified_here = edges.len() as u64;

        // 4. Components: each worker reduces its verified edges to a spanning forest (an edge from
        // every node to the earliest node of its local component), worker 0 merges the forests,
        // and labels go back to the owners.
        let forest: Vec<(u64, u64)> = components(&edges)
            .into_iter()
            .filter(|(node, root)| node != root)
            .collect();
        drop(edges);
        let all_edges = exchange(worker, forest, |_| 0)?;
        let mut labels: Vec<(u64, u64)> = Vec::new();
        if index == 0 {
            labels = components(&all_edges);
        }
        drop(all_edges);
        let root_of_rep: HashMap<u64, u64> = exchange(worker, labels, {
            let by = owner.clone();
            move |l| by(l.0)
        })?
        .into_iter()
        .collect();

        // Exact copies ask their representative's owner for its label.
        let asks: Vec<(u64, u64)> = rep_of
            .iter()
            .filter(|(pos, rep)| pos != rep)
            .map(|(&pos, &rep)| (rep, pos))
            .collect();
        let by = owner.clone();
        let replies: Vec<(u64, u64)> = exchange(worker, asks, move |a| by(a.0))?
            .into_iter()
            .map(|(rep, pos)| (pos, *root_of_rep.get(&rep).unwrap_or(&rep)))
            .collect();
        let root_of_copy: HashMap<u64, u64> = exchange(worker, replies, {
            let by = owner.clone();
            move |r| by(r.0)
        })?
        .into_iter()
        .collect();

        // 5. The kept document of each cluster: the root's owner hears from every member and
        // applies the keep policy as one process does (the first best wins; the earliest under
        // `--keep first`).
        let root = |pos: u64| match root_of_copy.get(&pos) {
            Some(&root) => root,
            None => *root_of_rep.get(&pos).unwrap_or(&pos),
        };
        let score_of = |pos: u64| -> f64 {
            match doc(pos) {
                Own::Doc { score, .. } => *score,
                _ => f64::NEG_INFINITY,
            }
        };
        // (member, kept, kept's representative) for every member of a cluster.
        let kept_of: HashMap<u64, (u64, u64)> = {
            let members: Vec<(u64, u64, f64, u64)> = owned
                .iter()
                .filter(|(pos, own)| matches!(own, Own::Doc { .. }) && root(*pos) != *pos)
                .map(|(pos, _)| (root(*pos), *pos, score_of(*pos), rep_of[pos]))
                .collect();
            let by = owner.clone();
            let mut at_root = exchange(worker, members, move |m| by(m.0))?;
            // The root itself is a member of its cluster.
            let roots: std::collections::HashSet<u64> = at_root.iter().map(|m| m.0).collect();
            at_root.extend(roots.iter().map(|&r| (r, r, score_of(r), r)));
            at_root.sort_by_key(|m| (m.0, m.1));
            let mut verdicts: Vec<(u64, u64, u64)> = Vec::new();
            for cluster in at_root.chunk_by(|x, y| x.0 == y.0) {
                let best = cluster[self.keep.choose(cluster.iter().map(|m| m.2))];
                verdicts.extend(cluster.iter().map(|m| (m.1, best.1, best.3)));
            }
            let by = owner.clone();
            exchange(worker, verdicts, move |v| by(v.0))?
                .into_iter()
                .map(|(pos, kept, kept_rep)| (pos, (kept, kept_rep)))
                .collect()
        };

        // Under exact verification every removed document's similarity to the kept one is exact,
        // as one process reports it: pairs of representatives not checked yet are checked now.
        if self.verify == VerifyMode::Exact {
            let mut report: Vec<(u64, u64)> = owned
                .iter()
                .filter_map(|(pos, own)| match (own, kept_of.get(pos)) {
                    (Own::Doc { .. }, Some(&(kept, kept_rep))) if kept != *pos => {
                        let rep = rep_of[pos];
                        (rep != kept_rep).then(|| (rep.min(kept_rep), rep.max(kept_rep)))
                    }
                    _ => None,
                })
                .collect();
            report.sort_unstable();
            report.dedup();
            let by = owner.clone();
            let mut report: Vec<(u64, u64)> = exchange(worker, report, move |p| by(p.1))?
                .into_iter()
                .filter(|pair| !exact_of.contains_key(pair))
                .collect();
            report.sort_unstable();
            report.dedup();
            for (a, b, j) in self.exact_pairs(worker, &mut set, &starts, owner.clone(), report)? {
                exact_of.insert((a, b), j);
            }
        }

        // Each removed document asks for its similarity to the kept one and the kept id: first at
        // the owner of the later of the two representatives (which holds the exact Jaccard when
        // that pair was checked exactly, as one process reports it), then at the kept one's owner.
        // Every owned document was signed (an exact copy has its representative's signature).
        let requests: Vec<SimilarityRequest> = owned
            .iter()
            .filter_map(|(pos, own)| match (own, kept_of.get(pos)) {
                (Own::Doc { signature, .. }, Some(&(kept, kept_rep))) if kept != *pos => {
                    let rep = rep_of[pos];
                    let later = rep.max(kept_rep);
                    Some((
                        later,
                        *pos,
                        kept,
                        rep,
                        kept_rep,
                        signature.clone(),
                        f64::NAN,
                    ))
                }
                _ => None,
            })
            .collect();
        let by = owner.clone();
        let at_later = exchange(worker, requests, move |r| by(r.0))?;
        let forwarded: Vec<SimilarityRequest> = at_later
            .into_iter()
            .map(|(later, pos, kept, rep, kept_rep, sig, _)| {
                let pair = (rep.min(kept_rep), rep.max(kept_rep));
                let exact = exact_of.get(&pair).copied().unwrap_or(f64::NAN);
                (kept, pos, later, rep, kept_rep, sig, exact)
            })
            .collect();
        drop(exact_of);
        let by = owner.clone();
        let at_kept = exchange(worker, forwarded, move |r| by(r.0))?;
        let id_of = |pos: u64| -> &str {
            match doc(pos) {
                Own::Doc { id, .. } => id,
                _ => "",
            }
        };
        let answers: Vec<(u64, u64, f64, bool, String)> = at_kept
            .into_iter()
            .map(|(kept, pos, _, rep, kept_rep, sig, checked)| {
                // The kept document's text, or an earlier document's (as in one process: `kind`
                // says what the document is).
                let exact = rep == kept_rep || rep != pos;
                let similarity = if rep == kept_rep {
                    1.0
                } else if !checked.is_nan() {
                    checked
                } else {
                    estimate_jaccard_bbit(&sig, signature_of(kept))
                };
                (pos, kept, similarity, exact, id_of(kept).to_string())
            })
            .collect();
        let by = owner.clone();
        let decisions: HashMap<u64, Decision> = exchange(worker, answers, move |a| by(a.0))?
            .into_iter()
            .map(|(pos, _, similarity, exact, kept_id)| {
                let kind = if exact {
                    DuplicateKind::Exact
                } else {
                    DuplicateKind::Near
                };
                (
                    pos,
                    Decision {
                        similarity,
                        kind,
                        kept_id,
                    },
                )
            })
            .collect();

        // Parts: removals and rejections now; kept records after one more read.
        let total = peers as usize;
        let me = index as usize;
        let mut counts = Counts {
            read: docs_read_here,
            checkpointed: if from_checkpoint { docs_read_here } else { 0 },
            ..Counts::default()
        };
        if let Some(path) = &outputs.removed {
            let mut part = PartWriter::create(Path::new(&part_name(path, me, total)))?;
            for (pos, own) in &owned {
                if let (Own::Doc { id, .. }, Some(d)) = (own, decisions.get(pos)) {
                    let line = serde_json::to_vec(&Removal {
                        doc: DocId(*pos),
                        id,
                        duplicate_of: &d.kept_id,
                        duplicate_in: None,
                        similarity: d.similarity,
                        kind: d.kind,
                        role: None,
                    })
                    .expect("a removal serializes");
                    part.push(*pos, &line)?;
                }
            }
            part.finish()?;
        }
        if let Some(path) = &outputs.rejected {
            let mut part = PartWriter::create(Path::new(&part_name(path, me, total)))?;
            for (pos, own) in &owned {
                if let Own::Rejected { line } = own {
                    part.push(*pos, line.as_bytes())?;
                }
            }
            part.finish()?;
        }
        for (pos, own) in &owned {
            match own {
                Own::Rejected { .. } => counts.rejected += 1,
                Own::Empty => counts.empty += 1,
                Own::Doc { .. } => match decisions.get(pos).map(|d| d.kind) {
                    Some(DuplicateKind::Exact) => counts.exact += 1,
                    Some(DuplicateKind::Near) => counts.near += 1,
                    None => {}
                },
            }
        }
        if let Some(path) = &outputs.kept {
            let keep: std::collections::HashSet<u64> = owned
                .iter()
                .filter(|(pos, own)| {
                    !matches!(own, Own::Rejected { .. }) && !decisions.contains_key(pos)
                })
                .map(|(pos, _)| *pos)
                .collect();
            self.write_owned_kept(
                &mut set,
                &starts,
                &keep,
                Path::new(&part_name(path, me, total)),
            )?;
        }

        // Every cluster member to worker 0: (root, position, id, similarity to the kept one,
        // whether it is the kept one).
        let members: Vec<(u64, u64, String, f64, bool)> = owned
            .iter()
            .filter_map(|(pos, own)| match (own, kept_of.get(pos)) {
                (Own::Doc { id, .. }, Some(&(kept, _))) => {
                    let similarity = decisions.get(pos).map_or(1.0, |d| d.similarity);
                    Some((root(*pos), *pos, id.clone(), similarity, kept == *pos))
                }
                _ => None,
            })
            .collect();
        let members = exchange(worker, members, |_| 0)?;
        // Duplicate ids: each id's hash goes to one worker, which counts the repeats it gets.
        let peers = worker.peers() as u64;
        let id_hashes: Vec<u64> = owned
            .iter()
            .filter_map(|(_, own)| match own {
                Own::Doc { id, .. } => Some(xxhash_rust::xxh3::xxh3_64(id.as_bytes())),
                _ => None,
            })
            .collect();
        let mut id_hashes = exchange(worker, id_hashes, move |h| *h % peers)?;
        id_hashes.sort_unstable();
        let duplicate_ids_here = id_hashes.windows(2).filter(|w| w[0] == w[1]).count() as u64;
        drop(id_hashes);
        let tallies = exchange(
            worker,
            vec![(
                counts.read,
                counts.rejected,
                counts.empty,
                counts.exact,
                counts.near,
                candidates_here,
                verified_here,
                counts.checkpointed,
                exact_checks_here,
                histogram,
                duplicate_ids_here,
            )],
            |_| 0,
        )?;
        drop(owned);
        if index != 0 {
            // Wait until worker 0 has merged (it reads every part).
            exchange::<u8>(worker, Vec::new(), |_| 0)?;
            return Ok(None);
        }

        let mut summary = Summary::empty(self.params, self.num_perm(), self.threshold);
        for t in &tallies {
            summary.docs_read += t.0;
            summary.rejected += t.1;
            summary.empty += t.2;
            summary.exact_duplicates += t.3;
            summary.near_duplicates += t.4;
            summary.candidate_pairs += t.5;
            summary.verified_pairs += t.6;
            summary.checkpointed_docs += t.7;
            summary.exact_checks += t.8;
            for (total, here) in summary.candidate_similarity_histogram.iter_mut().zip(&t.9) {
                *total += here;
            }
            summary.duplicate_ids += t.10;
        }
        let clusters = cluster_reports(members);
        summary.clusters = clusters.len() as u64;
        summary.largest_cluster = clusters.first().map_or(0, |c| c.1.len() as u64);
        if let Some(path) = &outputs.clusters {
            let mut out = crate::output::Output::create(path)?;
            for (number, (kept, members)) in clusters.iter().enumerate() {
                let reports = members
                    .iter()
                    .map(|(pos, id, similarity)| MemberReport {
                        doc: DocId(*pos),
                        id,
                        similarity: *similarity,
                        role: None,
                    })
                    .collect();
                let report = ClusterReport {
                    cluster: number,
                    kept: &kept.1,
                    kept_doc: Some(DocId(kept.0)),
                    kept_in: None,
                    size: members.len(),
                    members: reports,
                };
                out.write_line(&serde_json::to_vec(&report).expect("a cluster serializes"))?;
            }
            out.finish()?;
        }
        // Everyone's parts are finished once they reach this barrier.
        let mut unmerged = Vec::new();
        for path in [&outputs.kept, &outputs.removed, &outputs.rejected]
            .into_iter()
            .flatten()
        {
            let parts: Vec<PathBuf> = (0..total)
                .map(|w| PathBuf::from(part_name(path, w, total)))
                .collect();
            if parts.iter().all(|p| p.exists()) {
                let mut out = crate::output::Output::create(path)?;
                crate::parts::merge(&parts, &mut out)?;
                out.finish()?;
                for part in &parts {
                    let _ = std::fs::remove_file(part);
                }
            } else {
                unmerged.push(path.clone());
            }
        }
        exchange::<u8>(worker, Vec::new(), |_| 0)?;
        Ok(Some(DistributedResult { summary, unmerged }))
    }

    /// Frames this worker's pieces (on a reader thread, ahead of the work), and prepares and
    /// signs their records in parallel.
    fn read_owned(
        &self,
        set: &mut InputSet,
        starts: &[(u64, u64)],
    ) -> Result<Vec<(u64, Own)>, Error> {
        let parser = Parser::new(set.format(), self.fields.clone());
        let mut owned = Vec::new();
        let mut positions = Positions::new(starts);
        self.for_each_batch(set, |batch, _| {
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

    /// Exact Jaccard of `pairs` (first position < second), each listed at its second's owner;
    /// returns `(first, second, jaccard)` there (NaN where a set could not be read). Both owners
    /// read their documents' sets once more; the first's set travels to the second's owner.
    /// Collective: every worker calls it.
    fn exact_pairs(
        &self,
        worker: &mut Worker,
        set: &mut InputSet,
        starts: &[(u64, u64)],
        owner: impl Fn(u64) -> u64 + Clone + 'static,
        pairs: Vec<(u64, u64)>,
    ) -> Result<Vec<(u64, u64, f64)>, Error> {
        let by = owner.clone();
        let at_a = exchange(worker, pairs.clone(), move |p| by(p.0))?;
        let needed: std::collections::HashSet<u64> = at_a
            .iter()
            .map(|p| p.0)
            .chain(pairs.iter().map(|p| p.1))
            .collect();
        let sets = if needed.is_empty() {
            HashMap::new()
        } else {
            self.owned_sets(set, starts, &needed)?
        };
        let with_set: Vec<(u64, u64, Vec<u32>)> = at_a
            .into_iter()
            .map(|(a, b)| (b, a, sets.get(&a).cloned().unwrap_or_default()))
            .collect();
        let at_b = exchange(worker, with_set, move |p| owner(p.0))?;
        Ok(at_b
            .into_iter()
            .map(|(b, a, set_a)| {
                let j = match sets.get(&b) {
                    Some(set_b) if !set_a.is_empty() => jaccard(&set_a, set_b),
                    _ => f64::NAN,
                };
                (a, b, j)
            })
            .collect())
    }

    /// The shingle sets (32-bit hashes, sorted, distinct, as one process's exact checks use them)
    /// of the owned records at `needed` positions, by framing the inputs again.
    fn owned_sets(
        &self,
        set: &mut InputSet,
        starts: &[(u64, u64)],
        needed: &std::collections::HashSet<u64>,
    ) -> Result<HashMap<u64, Vec<u32>>, Error> {
        let parser = Parser::new(set.format(), self.fields.clone());
        let mut sets = HashMap::new();
        let mut positions = Positions::new(starts);
        self.for_each_batch(set, |batch, _| {
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

    /// Frames the inputs again and writes the kept records this worker owns to its part.
    fn write_owned_kept(
        &self,
        set: &mut InputSet,
        starts: &[(u64, u64)],
        keep: &std::collections::HashSet<u64>,
        part: &Path,
    ) -> Result<(), Error> {
        let mut writer = PartWriter::create(part)?;
        let mut positions = Positions::new(starts);
        for frame in set.frames() {
            if let Frame::Failed(failure) = frame {
                return Err(Error::InputFailed(failure));
            }
            let position = positions.next();
            if keep.contains(&position)
                && let Frame::Record(record) = frame
            {
                writer.push(position, &record.bytes)?;
            }
        }
        writer.finish()
    }
}

/// The positions of this worker's records, in reading order: each piece's first position and
/// record count.
struct Positions<'a> {
    starts: &'a [(u64, u64)],
    piece: usize,
    within: u64,
}

impl<'a> Positions<'a> {
    fn new(starts: &'a [(u64, u64)]) -> Self {
        Positions {
            starts,
            piece: 0,
            within: 0,
        }
    }

    /// The next record's position.
    fn next(&mut self) -> u64 {
        while let Some(&(_, count)) = self.starts.get(self.piece) {
            if self.within < count {
                break;
            }
            self.piece += 1;
            self.within = 0;
        }
        let first = self.starts.get(self.piece).map_or(u64::MAX, |s| s.0);
        self.within += 1;
        first + self.within - 1
    }
}

/// A removed document's question about its kept one: (route-to position, position, kept,
/// representative, kept's representative, signature, exact Jaccard when known).
type SimilarityRequest = (u64, u64, u64, u64, u64, Vec<u8>, f64);

/// Documents counted by one worker.
#[derive(Debug, Default)]
struct Counts {
    read: u64,
    checkpointed: u64,
    rejected: u64,
    empty: u64,
    exact: u64,
    near: u64,
}

/// `(node, root)` for every node of `edges`, the root being the earliest position of its
/// component.
fn components(edges: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut nodes: Vec<u64> = edges.iter().flat_map(|&(a, b)| [a, b]).collect();
    nodes.sort_unstable();
    nodes.dedup();
    let index = |n: u64| nodes.binary_search(&n).expect("a node of an edge") as u32;
    let mut sets = UnionFind::new(nodes.len());
    for &(a, b) in edges {
        sets.union(index(a), index(b));
    }
    let mut earliest: HashMap<u32, u64> = HashMap::new();
    for (i, &node) in nodes.iter().enumerate() {
        let root = sets.find(i as u32);
        let entry = earliest.entry(root).or_insert(node);
        *entry = (*entry).min(node);
    }
    nodes
        .iter()
        .enumerate()
        .map(|(i, &node)| (node, earliest[&sets.find(i as u32)]))
        .collect()
}

/// A cluster: its kept document (position, id) and all its members (position, id, similarity),
/// in input order.
type Cluster = ((u64, String), Vec<(u64, String, f64)>);

/// Clusters from their members `(root, position, id, similarity, is kept)`, largest first, ties
/// by the first member's position.
fn cluster_reports(mut members: Vec<(u64, u64, String, f64, bool)>) -> Vec<Cluster> {
    members.sort_by_key(|m| (m.0, m.1));
    let mut clusters: Vec<Cluster> = members
        .chunk_by(|a, b| a.0 == b.0)
        .map(|group| {
            let kept = group
                .iter()
                .find(|m| m.4)
                .map_or((group[0].1, group[0].2.clone()), |m| (m.1, m.2.clone()));
            let all = group
                .iter()
                .map(|(_, pos, id, similarity, _)| (*pos, id.clone(), *similarity))
                .collect();
            (kept, all)
        })
        .collect();
    clusters.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.1[0].0.cmp(&b.1[0].0)));
    clusters
}

#[cfg(test)]
mod tests {
    use crate::pipeline::ClusterConfig;
    use crate::pipeline::distributed::components;

    #[test]
    fn components_label_with_the_earliest_position() {
        let mut labels = components(&[(5, 9), (9, 2), (7, 8)]);
        labels.sort_unstable();
        assert_eq!(labels, [(2, 2), (5, 2), (7, 7), (8, 7), (9, 2)]);
    }

    #[test]
    fn hostfile_skips_blanks_and_comments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        std::fs::write(&path, "# cluster\nnode1:2101\n\n node2:2101 # second\n").unwrap();
        assert_eq!(
            ClusterConfig::read_hostfile(&path).unwrap(),
            ["node1:2101", "node2:2101"]
        );
        assert!(ClusterConfig::new(1, 2, vec!["a:1".into(), "b:1".into()]).is_err());
        assert!(ClusterConfig::new(0, 0, vec!["a:1".into()]).is_err());
    }
}
