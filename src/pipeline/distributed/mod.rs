//! A run spread over several processes (and threads) on timely dataflow.
//!
//! Every worker (thread of a process; `workers × processes` in all) reads its pieces of the inputs
//! ([`crate::read::InputSet::pieces`]: byte ranges of plain files cut at line starts, whole
//! compressed inputs); the pieces' record counts are exchanged so that every record gets the
//! position one process would give it ([`share`]). A worker parses, normalizes, shingles and
//! signs only its records ([`owned`]), so text never leaves the worker that read it. What crosses
//! the network, exchanged by key (a position goes to its owner) in bulk-synchronous steps
//! ([`exchange`]), is small:
//!
//! 0. Every worker's rejection counts by kind, with the first rejection of each, to every worker:
//!    a run that one process would fail for its rejected records (every record rejected, or any
//!    under `strict`) fails on every worker with the same error, before anything is written.
//! 1. `(text hash, position)` by hash: the earliest position of each text is its representative;
//!    every owner learns which of its records are exact copies ([`pairs`], as are 2 and 3).
//! 2. `(band, key, position)` by `(band, key)`: buckets, and candidate pairs from them by the
//!    decision core's anchor rule, as in one process; pairs by pair, to drop repeats.
//! 3. Each pair visits the owner of its first document (collecting its 8-bit signature) and then
//!    the owner of its second, which asks the core's judge for the call on the estimate.
//! 4. Each worker reduces its verified edges to a spanning forest; worker 0 merges the forests
//!    with union-find and sends each document's cluster label (the earliest position of its
//!    cluster) back to its owner; exact copies get their representative's label from its owner
//!    ([`clusters`], as is the keep policy of 5).
//! 5. The root's owner asks the core which member is kept (the keep policy on the members'
//!    scores); owners ask the kept document's owner for its id and similarity, write their part
//!    of the kept records, removals and rejections (lines with positions, see [`crate::parts`]),
//!    and send cluster members' ids to worker 0, which assembles and ranks the clusters as the
//!    core does and writes the clusters file ([`outputs`]). After a
//!    final barrier, worker 0 merges the parts when it can see them (a shared directory);
//!    otherwise `neardup merge` does, on any machine that has them all.
//!
//! [`Dedup::distributed_worker`] takes these steps in this order, one call each.
//!
//! Borderline pairs (default verification) are decided on exact Jaccard: both owners compute
//! their document's shingle set from one more read of their records, and the first's set travels
//! to the second's owner. The result is byte-identical to a single-process run with the same
//! settings (any `--verify` mode and keep policy; the Jaccard measure). Timely is fail-stop:
//! if a process dies, the others fail rather than wait ([`note_thread_panic`]); run the job again
//! (`--checkpoint` keeps the signing that was done).
//!
//! Before all that, the processes connect to each other and agree (see [`agreement`]): every
//! process sends every other one a fingerprint of its settings and inputs ([`fingerprint`],
//! [`content`]), and when any two differ, every process stops with [`Error::Disagreement`] before
//! it reads or writes anything.

mod agreement;
mod clusters;
mod exchange;
mod outputs;
mod owned;
mod pairs;
mod share;

use std::path::{Path, PathBuf};

use timely::worker::Worker;

use crate::error::{ConfigError, Error};
use crate::pipeline::fingerprint::Fingerprint;
use crate::pipeline::{Dedup, Instant};
use crate::read::{FormatChoice, Input};
use crate::report::Summary;
use crate::verify::Measure;
use outputs::Tally;
use share::Share;

pub use exchange::note_thread_panic;
pub(super) use owned::Own;

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
            let (builders, guard) = timely::CommunicationConfig::Process(self.workers)
                .try_build()
                .map_err(cannot_start)?;
            return Ok(Communication { builders, guard });
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
        Ok(Communication {
            builders: builders.into_iter().map(AllocatorBuilder::Tcp).collect(),
            guard: Box::new(guard),
        })
    }
}

/// Timely's communication for one process.
struct Communication {
    /// Allocator builders, one per worker.
    builders: Vec<timely::communication::allocator::AllocatorBuilder>,
    /// What must live as long as the workers run (the guard of the network threads).
    guard: Box<dyn std::any::Any + Send>,
}

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

/// What every worker of a run is given (the same on every worker).
#[derive(Debug, Clone)]
struct Job {
    inputs: Vec<Input>,
    format: FormatChoice,
    max_doc_bytes: usize,
    outputs: DistributedOutputs,
}

impl Dedup {
    /// Runs over `cluster`'s processes; every process calls this with the same inputs and
    /// settings. Returns the result on process 0, `None` on the others.
    pub fn run_distributed(
        &self,
        inputs: &[Input],
        format: impl Into<FormatChoice>,
        max_doc_bytes: usize,
        cluster: &ClusterConfig,
        outputs: &DistributedOutputs,
    ) -> Result<Option<DistributedResult>, Error> {
        let format = format.into();
        if self.measure != Measure::Jaccard || self.strip.is_some() {
            return Err(Error::Config(ConfigError::Distributed));
        }
        if self.spans {
            return Err(Error::Config(ConfigError::DistributedSpans));
        }
        // WARC records cannot be cut into byte-range pieces (issue 16 covers them).
        if let Some(warc) = crate::read::expand(inputs.to_vec(), format)?
            .into_iter()
            .find(|e| format.format_of(&e.input).is_warc())
        {
            let name = warc.input.display_name();
            return Err(Error::Config(ConfigError::DistributedWarc(name)));
        }
        let started = Instant::now();
        // Agree with the other processes before anything is read or written.
        let communication = cluster.communication(|| {
            Fingerprint::new(
                self.agreement_settings(format, max_doc_bytes, cluster, outputs),
                inputs,
            )
        })?;
        // Timely's communication threads panic when they give up on a peer; the program's panic
        // hook tells us through `note_thread_panic`.
        exchange::forget_failed_peers();
        let this = self.clone();
        let job = Job {
            inputs: inputs.to_vec(),
            format,
            max_doc_bytes,
            outputs: outputs.clone(),
        };
        let guards = timely::execute::execute_from(
            communication.builders,
            communication.guard,
            timely::WorkerConfig::default(),
            move |worker| {
                let result = this.distributed_worker(worker, &job);
                if result.is_err() {
                    exchange::note_worker_failure();
                    // Timely steps a worker's dataflows to completion after it returns; those
                    // of a failed step never complete, so they go.
                    for dataflow in worker.installed_dataflows() {
                        worker.drop_dataflow(dataflow);
                    }
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
                        Some(known) => {
                            exchange::is_knock_on(known) && !exchange::is_knock_on(&error)
                        }
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

    /// One worker's whole run: the steps of the module documentation, in order. Every step that
    /// exchanges is collective: every worker takes it, in the same order.
    fn distributed_worker(
        &self,
        worker: &mut Worker,
        job: &Job,
    ) -> Result<Option<DistributedResult>, Error> {
        // Share the inputs; read and sign what this worker owns.
        let mut share = Share::new(worker, &job.inputs, job.format, job.max_doc_bytes)?;
        let mut owned = self.sign_owned(&mut share, job)?;
        owned::check_rejections(worker, &owned, self.strict)?;
        let read = owned.len() as u64;
        let mut tally = Tally {
            read,
            checkpointed: if owned.from_checkpoint { read } else { 0 },
            byte_order_marks: owned.byte_order_marks,
            ..Tally::default()
        };

        // 1. Exact copies, 2. candidate pairs, 3. verification.
        let reps = pairs::exact_copies(worker, &share.owners, &owned)?;
        let candidates = self.candidate_pairs(worker, &mut owned, &reps)?;
        tally.candidates = candidates.len() as u64;
        let verified = self.verify(worker, &mut share, &owned, candidates)?;
        tally.verified = verified.edges.len() as u64;
        tally.exact_checks = verified.exact_checks;
        tally.histogram = verified.histogram;

        // 4. Clusters; 5. their kept documents, and the decision about every removed document.
        let labels = clusters::labels(worker, &share.owners, verified.edges, &reps)?;
        let kept_of = self.choose_kept(worker, &share.owners, &owned, &labels, &reps)?;
        let mut exact = verified.exact;
        if self.judge().reports_exact_similarity() {
            self.check_kept_exactly(worker, &mut share, &owned, &reps, &kept_of, &mut exact)?;
        }
        let decisions = clusters::decisions(worker, &share.owners, &owned, &reps, &kept_of, exact)?;

        // Parts: removals and rejections now; kept records after one more read. Then worker 0
        // writes the clusters and the summary, and merges the parts.
        self.write_parts(&mut share, &job.outputs, &owned, &decisions, &mut tally)?;
        let members = outputs::members(&owned, &kept_of, &labels, &decisions);
        self.finish(worker, &job.outputs, owned, members, tally)
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::ClusterConfig;

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
