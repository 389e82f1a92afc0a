//! The end of a run: each worker writes its part of the kept records, removals and rejections
//! (lines with positions, see [`crate::parts`]) and sends its cluster members and its
//! [`Tally`] to worker 0, which writes the clusters file and the summary. After a final
//! barrier, worker 0 merges the parts when it can see them (a shared directory); otherwise
//! `neardup merge` does, on any machine that has them all.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use timely::worker::Worker;

use super::clusters::{Decision, Kept, Labels};
use super::exchange::{barrier, exchange};
use super::owned::{Own, Owned, Positions};
use super::share::Share;
use super::{DistributedOutputs, DistributedResult};
use crate::error::{Error, RejectKind, Rejection};
use crate::parts::{PartWriter, part_name};
use crate::pipeline::Dedup;
use crate::pipeline::core::clusters::{Assembly, Cluster};
use crate::pipeline::core::counts::{Counts, Histogram};
use crate::read::Frame;
use crate::report::{ClusterReport, DocId, MemberReport, Removal, Summary};

/// What one worker counted, for the summary (worker 0 adds everyone's up).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Tally {
    /// Records read (or loaded from a checkpoint).
    pub read: u64,
    /// Records loaded from a checkpoint.
    pub checkpointed: u64,
    pub rejected: u64,
    /// Rejected records by kind.
    pub rejected_by_reason: BTreeMap<RejectKind, u64>,
    pub empty: u64,
    /// Documents removed, by kind.
    pub counts: Counts,
    /// Distinct candidate pairs.
    pub candidates: u64,
    /// Pairs at or above the threshold.
    pub verified: u64,
    /// Pairs checked on exact Jaccard.
    pub exact_checks: u64,
    /// Candidate pairs by estimated similarity.
    pub histogram: Histogram,
    /// Repeated ids among the ids routed to this worker.
    pub duplicate_ids: u64,
    /// Byte-order marks skipped at the start of this worker's pieces.
    pub byte_order_marks: u64,
}

/// A cluster member, on its way to worker 0.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Member {
    root: u64,
    position: u64,
    id: String,
    /// Similarity to the kept one (1 for the kept one).
    similarity: f64,
    /// It is the kept one.
    kept: bool,
}

/// The kept member of a cluster (the first when none is marked kept).
fn kept(cluster: &Cluster<u64, Member>) -> &Member {
    cluster
        .members
        .iter()
        .find(|m| m.kept)
        .unwrap_or(&cluster.members[0])
}

impl Dedup {
    /// Writes this worker's parts of the removals, rejections and (after one more read) kept
    /// records, and counts its rejected, empty and removed records into `tally`.
    pub(super) fn write_parts(
        &self,
        share: &mut Share,
        outputs: &DistributedOutputs,
        owned: &Owned,
        decisions: &HashMap<u64, Decision>,
        tally: &mut Tally,
    ) -> Result<(), Error> {
        let (me, total) = (share.worker, share.workers);
        if let Some(path) = &outputs.removed {
            let mut part = PartWriter::create(Path::new(&part_name(path, me, total)))?;
            for (pos, own) in owned.iter() {
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
            for (pos, own) in owned.iter() {
                if let Own::Rejected { rejection } = own {
                    part.push(*pos, &rejection_line(rejection))?;
                }
            }
            part.finish()?;
        }
        for (pos, own) in owned.iter() {
            match own {
                Own::Rejected { rejection } => {
                    tally.rejected += 1;
                    *tally
                        .rejected_by_reason
                        .entry(rejection.reason.kind())
                        .or_default() += 1;
                }
                Own::Empty => tally.empty += 1,
                Own::Doc { .. } => {
                    if let Some(decision) = decisions.get(pos) {
                        tally.counts.removed(decision.kind, false);
                    }
                }
            }
        }
        if let Some(path) = &outputs.kept {
            let keep: HashSet<u64> = owned
                .iter()
                .filter(|(pos, own)| {
                    !matches!(own, Own::Rejected { .. }) && !decisions.contains_key(pos)
                })
                .map(|(pos, _)| *pos)
                .collect();
            write_owned_kept(share, &keep, Path::new(&part_name(path, me, total)))?;
        }
        Ok(())
    }

    /// Sends the cluster `members` and `tally` to worker 0, which writes the clusters file, adds
    /// up the summary and, after a barrier (everyone's parts are finished), merges the parts it
    /// can see. Collective; returns the result on worker 0, `None` on the others.
    pub(super) fn finish(
        &self,
        worker: &mut Worker,
        outputs: &DistributedOutputs,
        owned: Owned,
        members: Vec<Member>,
        mut tally: Tally,
    ) -> Result<Option<DistributedResult>, Error> {
        let members = exchange(worker, members, |_| 0)?;
        tally.duplicate_ids = duplicate_ids(worker, &owned)?;
        let tallies = exchange(worker, vec![tally], |_| 0)?;
        drop(owned);
        if worker.index() != 0 {
            // Wait until worker 0 has merged (it reads every part).
            barrier(worker)?;
            return Ok(None);
        }
        let (mut summary, mut counts) = self.add_up(&tallies);
        let clusters = clusters(members);
        for cluster in &clusters {
            counts.cluster(cluster.size);
        }
        counts.write_to(&mut summary);
        if let Some(path) = &outputs.clusters {
            write_clusters(path, &clusters)?;
        }
        // Everyone's parts are finished once they reach this barrier.
        let unmerged = merge_parts(outputs, worker.peers())?;
        barrier(worker)?;
        Ok(Some(DistributedResult { summary, unmerged }))
    }

    /// The summary of everyone's tallies (kept is filled in later: what remains), and their
    /// counts of removals.
    fn add_up(&self, tallies: &[Tally]) -> (Summary, Counts) {
        let mut summary = Summary::empty(self.params, self.num_perm(), self.threshold);
        let mut counts = Counts::default();
        let mut histogram = Histogram::default();
        for t in tallies {
            summary.docs_read += t.read;
            summary.rejected += t.rejected;
            for (&kind, &count) in &t.rejected_by_reason {
                *summary.rejected_by_reason.entry(kind).or_default() += count;
            }
            summary.empty += t.empty;
            counts.add(&t.counts);
            summary.candidate_pairs += t.candidates;
            summary.verified_pairs += t.verified;
            summary.checkpointed_docs += t.checkpointed;
            summary.exact_checks += t.exact_checks;
            histogram = histogram.merged(&t.histogram);
            summary.duplicate_ids += t.duplicate_ids;
            summary.inputs.byte_order_marks += t.byte_order_marks;
        }
        summary.candidate_similarity_histogram = histogram.to_vec();
        (summary, counts)
    }
}

/// A rejected record's line in the rejected output: what one process writes for it.
fn rejection_line(rejection: &Rejection) -> Vec<u8> {
    serde_json::json!({
        "file": rejection.origin.file,
        "line": rejection.origin.line,
        "reason": rejection.reason.to_string(),
    })
    .to_string()
    .into_bytes()
}

/// Every owned cluster member, with its root, its similarity to the kept one and whether it is
/// the kept one.
pub(super) fn members(
    owned: &Owned,
    kept_of: &HashMap<u64, Kept>,
    labels: &Labels,
    decisions: &HashMap<u64, Decision>,
) -> Vec<Member> {
    owned
        .iter()
        .filter_map(|(pos, own)| match (own, kept_of.get(pos)) {
            (Own::Doc { id, .. }, Some(kept)) => Some(Member {
                root: labels.root(*pos),
                position: *pos,
                id: id.clone(),
                similarity: decisions.get(pos).map_or(1.0, |d| d.similarity),
                kept: kept.position == *pos,
            }),
            _ => None,
        })
        .collect()
}

/// Frames the inputs again and writes the kept records this worker owns to its part.
fn write_owned_kept(share: &mut Share, keep: &HashSet<u64>, part: &Path) -> Result<(), Error> {
    let mut writer = PartWriter::create(part)?;
    let mut positions = Positions::new(&share.starts);
    for frame in share.set.frames() {
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

/// Repeated ids among every worker's documents, as counted here: each id's hash goes to one
/// worker, which counts the repeats it gets. Collective.
fn duplicate_ids(worker: &mut Worker, owned: &Owned) -> Result<u64, Error> {
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
    Ok(id_hashes.windows(2).filter(|w| w[0] == w[1]).count() as u64)
}

/// Clusters from their members by root, ranked by the decision core.
fn clusters(mut members: Vec<Member>) -> Vec<Cluster<u64, Member>> {
    members.sort_unstable_by_key(|m| m.position);
    let mut assembly = Assembly::new();
    for member in members {
        assembly.add(member.root, member);
    }
    assembly.into_clusters(|_| 0, |m| m.position)
}

/// Writes the clusters file.
fn write_clusters(path: &str, clusters: &[Cluster<u64, Member>]) -> Result<(), Error> {
    let mut out = crate::output::Output::create(path)?;
    for (number, cluster) in clusters.iter().enumerate() {
        let kept = kept(cluster);
        let report = ClusterReport {
            cluster: number,
            kept: &kept.id,
            kept_doc: Some(DocId(kept.position)),
            kept_in: None,
            size: cluster.size,
            members: cluster
                .members
                .iter()
                .map(|m| MemberReport {
                    doc: DocId(m.position),
                    id: &m.id,
                    similarity: m.similarity,
                    role: None,
                    spans: None,
                })
                .collect(),
        };
        out.write_line(&serde_json::to_vec(&report).expect("a cluster serializes"))?;
    }
    out.finish()
}

/// Merges the parts of the kept, removed and rejected outputs that worker 0 can see (and removes
/// them); returns the outputs it cannot (still in parts).
fn merge_parts(outputs: &DistributedOutputs, total: usize) -> Result<Vec<String>, Error> {
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
    Ok(unmerged)
}
