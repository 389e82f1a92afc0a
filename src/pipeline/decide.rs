//! Pass 2 (candidates, verification, clusters, removals) and pass 3 (writing kept records).

use std::collections::HashMap;

use rayon::prelude::*;

use super::against::IndexMatches;
use super::docs::{DocSet, DocState, DocTable};
use super::{Analysis, Dedup, RunOptions};
use crate::cluster::SparseUnionFind;
use crate::error::Error;
use crate::index::SegmentData;
use crate::lsh::BandTables;
use crate::minhash::estimate_jaccard_bbit;
use crate::read::{Frame, InputSet};
use crate::report::{
    ClusterReport, DocId, DuplicateKind, KeptRecord, MemberReport, Removal, Role, Sink, Summary,
};
use crate::verify::{Measure, Verifier, VerifyMode, exact_similarities};

/// What pass 2 decided.
pub(super) struct Decided {
    /// The removed documents.
    pub removed: DocSet,
    /// The kept documents as an index segment, when asked for.
    pub kept: Option<SegmentData>,
    /// Bytes of band records spilled to disk.
    pub band_temp_bytes: u64,
}

/// Which document a cluster keeps.
#[derive(Debug, Clone, Copy)]
enum Kept {
    /// A document of this run.
    Local(usize),
    /// An indexed document (its node in [`IndexMatches::nodes`]): kept before, it wins.
    Indexed(u32),
}

/// A document of a cluster: its position, its signature's slot, and whether it is a copy of an
/// earlier document's normalized text.
#[derive(Debug, Clone, Copy)]
struct Member {
    doc: usize,
    slot: u32,
    exact: bool,
}

/// One cluster: its members in input order and the one it keeps.
#[derive(Debug)]
struct Cluster {
    members: Vec<Member>,
    kept: Kept,
}

impl Cluster {
    /// Documents in the cluster, an indexed kept document included.
    fn size(&self) -> usize {
        self.members.len() + usize::from(matches!(self.kept, Kept::Indexed(_)))
    }

    /// The kept member's slot, when the cluster keeps a document of this run.
    fn kept_slot(&self) -> Option<u32> {
        let Kept::Local(kept) = self.kept else {
            return None;
        };
        self.members.iter().find(|m| m.doc == kept).map(|m| m.slot)
    }
}

/// A removed document and why.
#[derive(Debug, Clone, Copy)]
struct Removed {
    doc: usize,
    slot: u32,
    /// Its cluster's number.
    cluster: usize,
    similarity: f64,
    kind: DuplicateKind,
}

impl Dedup {
    /// Pass 2: candidates → verified pairs (and links to indexed documents) → clusters → removals.
    pub(super) fn cluster(
        &self,
        inputs: &mut InputSet,
        analysis: &Analysis,
        tables: BandTables,
        options: RunOptions<'_>,
        sink: &mut dyn Sink,
        summary: &mut Summary,
    ) -> Result<Decided, Error> {
        let docs = &analysis.docs;
        let slots = analysis.signatures.len();
        let keys = (options.collect_kept || !options.against.is_empty())
            .then(|| tables.keys_by_slot(slots))
            .transpose()
            .map_err(|e| self.temp_error(e))?;
        let matches = match &keys {
            Some(keys) => self.match_indexes(analysis, keys, options.against)?,
            None => IndexMatches::default(),
        };
        summary.spilled_runs = tables.runs_spilled() as u64;
        let band_temp_bytes = tables.bytes_spilled();
        let pairs = tables
            .into_candidate_pairs_without(|slot| analysis.late.is_late(slot))
            .map_err(|e| self.temp_error(e))?;
        let histogram = pairs
            .par_iter()
            .map(|&(a, b)| self.estimate(analysis, a, b))
            .try_fold(
                || [0u64; 20],
                |mut bins, s| {
                    bins[((s? * 20.0) as usize).min(19)] += 1;
                    Ok::<_, Error>(bins)
                },
            )
            .try_reduce(
                || [0u64; 20],
                |mut a, b| {
                    a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                    Ok(a)
                },
            )?;
        summary.candidate_similarity_histogram = histogram.to_vec();
        let verifier =
            Verifier::new(self.verify, self.threshold, self.num_perm()).with_measure(self.measure);
        // Sets are loaded in bounded rounds when records can be read back by location; a round
        // that must re-read whole inputs (compressed files, stdin) is done once.
        let max_sets = if analysis.all_located {
            self.max_sets_per_round()
        } else {
            usize::MAX
        };
        let verified = verifier.verify(
            &pairs,
            &analysis.signatures,
            &analysis.sizes,
            max_sets,
            &mut |needed| self.load_sets(inputs, analysis, needed),
        )?;
        summary.candidate_pairs = pairs.len() as u64 + matches.candidates;
        summary.exact_checks = verified.exact_checks;
        summary.verified_pairs = (verified.pairs.len() + matches.links.len()) as u64;
        drop(pairs);
        let mut exact = verified.exact;

        // Slots and indexed nodes share one 32-bit numbering. The sets hold only what can be in
        // a cluster: slots of verified pairs, of links and of texts with exact copies.
        u32::try_from(slots + matches.nodes.len()).map_err(|_| Error::TooManyDocuments)?;
        let indexed_id_of = |node: u32| (slots + node as usize) as u32;
        let mut members_of_sets: Vec<u32> = Vec::new();
        for &(a, b) in &verified.pairs {
            members_of_sets.extend([a, b]);
        }
        for link in &matches.links {
            members_of_sets.extend([link.slot, indexed_id_of(link.node)]);
        }
        for state in docs.states() {
            if let DocState::Exact(slot) = state? {
                members_of_sets.push(slot);
            }
        }
        let mut sets = SparseUnionFind::new(members_of_sets);
        for &(a, b) in &verified.pairs {
            sets.union(a, b);
        }
        let mut link_of: HashMap<(u32, u32), (f64, bool)> = HashMap::new();
        for link in &matches.links {
            sets.union(link.slot, indexed_id_of(link.node));
            link_of.insert((link.slot, link.node), (link.similarity, link.exact));
        }
        // The earliest indexed document of each set that has one (nodes are sorted).
        let mut indexed_of_root: HashMap<u32, u32> = HashMap::new();
        for node in 0..matches.nodes.len() as u32 {
            if let Some(root) = sets.find(indexed_id_of(node)) {
                indexed_of_root.entry(root).or_insert(node);
            }
        }

        // Group documents by their set's root, in input order. A set forms a cluster when it has
        // two documents of this run, or one and an indexed document.
        let mut root_count = vec![0u32; sets.len()];
        for state in docs.states() {
            if let Some(root) = state?.slot().and_then(|slot| sets.find(slot)) {
                root_count[root as usize] += 1;
            }
        }
        for root in indexed_of_root.keys() {
            root_count[*root as usize] += 1;
        }
        let mut cluster_of_root: HashMap<u32, usize> = HashMap::new();
        let mut members: Vec<Vec<Member>> = Vec::new();
        let mut roots: Vec<u32> = Vec::new();
        for (doc, state) in docs.states().enumerate() {
            let state = state?;
            let Some(slot) = state.slot() else { continue };
            let Some(root) = sets.find(slot) else {
                continue;
            };
            if root_count[root as usize] < 2 {
                continue;
            }
            let index = *cluster_of_root.entry(root).or_insert_with(|| {
                members.push(Vec::new());
                roots.push(root);
                members.len() - 1
            });
            members[index].push(Member {
                doc,
                slot,
                exact: matches!(state, DocState::Exact(_)),
            });
        }
        drop(root_count);
        drop(cluster_of_root);
        let mut clusters = Vec::with_capacity(members.len());
        for (members, root) in members.into_iter().zip(roots) {
            let kept = match indexed_of_root.get(&root) {
                Some(&node) => Kept::Indexed(node),
                None => {
                    let scores = members.iter().map(|m| docs.score(m.doc)).collect::<Result<
                        Vec<f64>,
                        Error,
                    >>(
                    )?;
                    Kept::Local(members[self.keep.choose(scores.into_iter())].doc)
                }
            };
            clusters.push(Cluster { members, kept });
        }
        // Largest first; ties by first member (input order).
        clusters.sort_by(|a, b| {
            b.size()
                .cmp(&a.size())
                .then(a.members[0].doc.cmp(&b.members[0].doc))
        });
        summary.clusters = clusters.len() as u64;
        summary.largest_cluster = clusters.first().map_or(0, |c| c.size() as u64);

        // Under exact verification, the exact similarity of every member to its local kept
        // document (a member joined through a chain was never paired with it).
        if self.verify == VerifyMode::Exact {
            let mut report_pairs: Vec<(u32, u32)> = Vec::new();
            for cluster in &clusters {
                let Some(kept_slot) = cluster.kept_slot() else {
                    continue;
                };
                for member in &cluster.members {
                    let pair = (member.slot.min(kept_slot), member.slot.max(kept_slot));
                    if member.slot != kept_slot && !exact.contains_key(&pair) {
                        report_pairs.push(pair);
                    }
                }
            }
            report_pairs.sort_unstable();
            report_pairs.dedup();
            let values = exact_similarities(
                &report_pairs,
                slots,
                max_sets,
                self.measure,
                &mut |needed| self.load_sets(inputs, analysis, needed),
            )?;
            exact.extend(report_pairs.into_iter().zip(values));
        }
        let local_similarity = |a: u32, b: u32| match exact.get(&(a.min(b), a.max(b))) {
            Some(j) if !j.is_nan() => Ok(*j),
            _ => self.estimate(analysis, a, b),
        };
        let index_names: Vec<String> = options
            .against
            .iter()
            .map(|i| i.dir().display().to_string())
            .collect();
        let indexed_id = |node: u32| -> Result<String, Error> {
            let r = matches.nodes[node as usize];
            Ok(options.against[r.index as usize].id(r.doc)?)
        };
        // (member, cluster) → similarity to the kept document, and kind.
        let mut indexed = Vec::new();
        let mut local = vec![0u8; self.num_perm()];
        let mut judge = |member: Member,
                         cluster: &Cluster|
         -> Result<(f64, DuplicateKind), Error> {
            Ok(match cluster.kept {
                Kept::Local(_) => {
                    let kept_slot = cluster.kept_slot().expect("a local kept member");
                    if member.slot == kept_slot {
                        (1.0, DuplicateKind::Exact)
                    } else {
                        (
                            local_similarity(member.slot, kept_slot)?,
                            DuplicateKind::Near,
                        )
                    }
                }
                Kept::Indexed(node) => match link_of.get(&(member.slot, node)) {
                    Some(&(_, true)) => (1.0, DuplicateKind::Exact),
                    Some(&(similarity, false)) => (similarity, DuplicateKind::Near),
                    None => {
                        let r = matches.nodes[node as usize];
                        options.against[r.index as usize].signature_into(r.doc, &mut indexed)?;
                        analysis
                            .signatures
                            .read_into(member.slot as usize, &mut local)?;
                        (estimate_jaccard_bbit(&local, &indexed), DuplicateKind::Near)
                    }
                },
            })
        };

        // Under containment: is the member in `slot` the copy or the container of the kept one?
        let role = |slot: u32, cluster: &Cluster| -> Option<Role> {
            let kept_slot = cluster.kept_slot()?;
            if self.measure != Measure::Containment || slot == kept_slot {
                return None;
            }
            Some(
                if analysis.sizes[slot as usize] <= analysis.sizes[kept_slot as usize] {
                    Role::Copy
                } else {
                    Role::Container
                },
            )
        };
        // Per cluster, the id of the document it keeps and the index holding it.
        let mut kept_ids: Vec<(String, Option<&str>)> = Vec::with_capacity(clusters.len());
        let mut removals: Vec<Removed> = Vec::new();
        for (number, cluster) in clusters.iter().enumerate() {
            let ids = cluster
                .members
                .iter()
                .map(|m| docs.id(m.doc))
                .collect::<Result<Vec<String>, Error>>()?;
            let mut reports = Vec::with_capacity(cluster.members.len());
            for (member, id) in cluster.members.iter().zip(&ids) {
                let (similarity, mut kind) = judge(*member, cluster)?;
                // A byte-identical copy (after normalization) of an earlier document is an exact
                // duplicate whichever member the cluster keeps: `kind` says what the document is,
                // `similarity` how close it is to the kept one.
                if member.exact {
                    kind = DuplicateKind::Exact;
                }
                if !matches!(cluster.kept, Kept::Local(k) if k == member.doc) {
                    removals.push(Removed {
                        doc: member.doc,
                        slot: member.slot,
                        cluster: number,
                        similarity,
                        kind,
                    });
                }
                reports.push(MemberReport {
                    doc: DocId(member.doc as u64),
                    id,
                    similarity,
                    role: role(member.slot, cluster),
                });
            }
            let kept_id = match cluster.kept {
                Kept::Local(kept) => {
                    let at = cluster.members.iter().position(|m| m.doc == kept);
                    (ids[at.expect("the kept member")].clone(), None)
                }
                Kept::Indexed(node) => (
                    indexed_id(node)?,
                    Some(index_names[matches.nodes[node as usize].index as usize].as_str()),
                ),
            };
            sink.cluster(&ClusterReport {
                cluster: number,
                kept: &kept_id.0,
                kept_doc: match cluster.kept {
                    Kept::Local(kept) => Some(DocId(kept as u64)),
                    Kept::Indexed(_) => None,
                },
                kept_in: kept_id.1,
                size: cluster.size(),
                members: reports,
            })?;
            kept_ids.push(kept_id);
        }

        removals.sort_by_key(|r| r.doc);
        let mut removed = DocSet::default();
        for r in &removals {
            removed.insert(r.doc);
            match r.kind {
                DuplicateKind::Exact => summary.exact_duplicates += 1,
                DuplicateKind::Near => summary.near_duplicates += 1,
            }
            let cluster = &clusters[r.cluster];
            if matches!(cluster.kept, Kept::Indexed(_)) {
                summary.indexed_duplicates += 1;
            }
            let (duplicate_of, duplicate_in) = &kept_ids[r.cluster];
            sink.removed(&Removal {
                doc: DocId(r.doc as u64),
                id: &docs.id(r.doc)?,
                duplicate_of,
                duplicate_in: *duplicate_in,
                similarity: r.similarity,
                kind: r.kind,
                role: role(r.slot, cluster),
            })?;
        }
        let kept = match options.collect_kept {
            true => Some(self.segment_of_kept(
                analysis,
                keys.as_deref().unwrap_or_default(),
                &removed,
            )?),
            false => None,
        };
        Ok(Decided {
            removed,
            kept,
            band_temp_bytes,
        })
    }

    /// Pass 3: frame the inputs again and hand every kept record to the sink, in input order.
    /// Returns how many records it handed over.
    pub(super) fn write_kept(
        &self,
        inputs: &mut InputSet,
        docs: &DocTable,
        removed: &DocSet,
        sink: &mut dyn Sink,
    ) -> Result<u64, Error> {
        let mut doc = 0usize;
        let mut written = 0u64;
        let mut states = docs.states();
        self.for_each_batch(inputs, |batch, _| {
            for frame in &batch {
                let Some(state) = states.next() else {
                    return Err(Error::InputChanged);
                };
                if let Frame::Record(record) = frame
                    && state? != DocState::Rejected
                    && !removed.contains(doc)
                {
                    sink.kept(&KeptRecord {
                        doc: DocId(doc as u64),
                        origin: &record.origin,
                        bytes: &record.bytes,
                    })?;
                    written += 1;
                }
                doc += 1;
            }
            Ok(())
        })?;
        if states.next().is_some() {
            return Err(Error::InputChanged);
        }
        Ok(written)
    }
}
