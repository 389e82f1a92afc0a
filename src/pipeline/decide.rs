//! Pass 2 (candidates, verification, clusters, removals) and pass 3 (writing kept records).

use std::borrow::Cow;
use std::collections::HashMap;

use rayon::prelude::*;

use super::against::IndexMatches;
use super::{Analysis, Dedup, DocState, DocTable, RunOptions};
use crate::cluster::UnionFind;
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
    /// Per document, whether it was removed.
    pub removed: Vec<bool>,
    /// The kept documents as an index segment, when asked for.
    pub kept: Option<SegmentData>,
}

/// Which document a cluster keeps.
#[derive(Debug, Clone, Copy)]
enum Kept {
    /// A document of this run.
    Local(usize),
    /// An indexed document (its node in [`IndexMatches::nodes`]): kept before, it wins.
    Indexed(u32),
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
        let pairs = tables
            .into_candidate_pairs()
            .map_err(|e| self.temp_error(e))?;
        let estimates: Vec<f64> = pairs
            .par_iter()
            .map(|&(a, b)| self.estimate(analysis, a, b))
            .collect();
        for s in estimates {
            summary.candidate_similarity_histogram[((s * 20.0) as usize).min(19)] += 1;
        }
        let verifier =
            Verifier::new(self.verify, self.threshold, self.num_perm()).with_measure(self.measure);
        // Sets are loaded in bounded rounds when records can be read back by location; a round
        // that must re-read whole inputs (compressed files, stdin) is done once.
        let max_sets = if analysis.locations.iter().all(Option::is_some) {
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

        // Slots and indexed nodes share one 32-bit numbering.
        u32::try_from(slots + matches.nodes.len()).map_err(|_| Error::TooManyDocuments)?;
        let mut sets = UnionFind::new(slots + matches.nodes.len());
        for &(a, b) in &verified.pairs {
            sets.union(a, b);
        }
        let mut link_of: HashMap<(u32, u32), (f64, bool)> = HashMap::new();
        for link in &matches.links {
            sets.union(link.slot, (slots + link.node as usize) as u32);
            link_of.insert((link.slot, link.node), (link.similarity, link.exact));
        }
        // The earliest indexed document of each set that has one (nodes are sorted).
        let mut indexed_of_root: HashMap<u32, u32> = HashMap::new();
        for node in 0..matches.nodes.len() as u32 {
            let root = sets.find((slots + node as usize) as u32);
            indexed_of_root.entry(root).or_insert(node);
        }

        // Group documents by their set's root, in input order. A set forms a cluster when it has
        // two documents of this run, or one and an indexed document.
        let mut cluster_of_root: HashMap<u32, usize> = HashMap::new();
        let mut members: Vec<Vec<usize>> = Vec::new();
        let mut roots: Vec<u32> = Vec::new();
        let mut root_count = vec![0u32; slots + matches.nodes.len()];
        for doc in 0..docs.states.len() {
            if let Some(slot) = docs.slot(doc) {
                root_count[sets.find(slot) as usize] += 1;
            }
        }
        for root in indexed_of_root.keys() {
            root_count[*root as usize] += 1;
        }
        for doc in 0..docs.states.len() {
            let Some(slot) = docs.slot(doc) else { continue };
            let root = sets.find(slot);
            if root_count[root as usize] < 2 {
                continue;
            }
            let index = *cluster_of_root.entry(root).or_insert_with(|| {
                members.push(Vec::new());
                roots.push(root);
                members.len() - 1
            });
            members[index].push(doc);
        }
        drop(root_count);
        let kept_of_members = |c: &Vec<usize>, root: u32| match indexed_of_root.get(&root) {
            Some(&node) => Kept::Indexed(node),
            None => Kept::Local(c[self.keep.choose(c.iter().map(|&d| docs.score(d)))]),
        };
        let size =
            |c: &Vec<usize>, kept: Kept| c.len() + usize::from(matches!(kept, Kept::Indexed(_)));
        let mut clusters: Vec<(Vec<usize>, Kept)> = members
            .into_iter()
            .zip(roots)
            .map(|(c, root)| {
                let kept = kept_of_members(&c, root);
                (c, kept)
            })
            .collect();
        // Largest first; ties by first member (input order).
        clusters.sort_by(|a, b| {
            size(&b.0, b.1)
                .cmp(&size(&a.0, a.1))
                .then(a.0[0].cmp(&b.0[0]))
        });
        summary.clusters = clusters.len() as u64;
        summary.largest_cluster = clusters.first().map_or(0, |c| size(&c.0, c.1) as u64);

        // Under exact verification, the exact similarity of every member to its local kept
        // document (a member joined through a chain was never paired with it).
        if self.verify == VerifyMode::Exact {
            let mut report_pairs: Vec<(u32, u32)> = Vec::new();
            for (cluster, kept) in &clusters {
                let Kept::Local(kept) = *kept else { continue };
                let kept_slot = docs.slot(kept).expect("cluster members have slots");
                for &doc in cluster {
                    let slot = docs.slot(doc).expect("cluster members have slots");
                    let pair = (slot.min(kept_slot), slot.max(kept_slot));
                    if slot != kept_slot && !exact.contains_key(&pair) {
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
            Some(j) if !j.is_nan() => *j,
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
        // (slot, kept) → similarity and kind.
        let mut indexed = Vec::new();
        let mut judge = |slot: u32, kept: Kept| -> Result<(f64, DuplicateKind), Error> {
            Ok(match kept {
                Kept::Local(kept) => {
                    let kept_slot = docs.slot(kept).expect("cluster members have slots");
                    if slot == kept_slot {
                        (1.0, DuplicateKind::Exact)
                    } else {
                        (local_similarity(slot, kept_slot), DuplicateKind::Near)
                    }
                }
                Kept::Indexed(node) => match link_of.get(&(slot, node)) {
                    Some(&(_, true)) => (1.0, DuplicateKind::Exact),
                    Some(&(similarity, false)) => (similarity, DuplicateKind::Near),
                    None => {
                        let r = matches.nodes[node as usize];
                        options.against[r.index as usize].signature_into(r.doc, &mut indexed)?;
                        let similarity =
                            estimate_jaccard_bbit(analysis.signatures.get(slot as usize), &indexed);
                        (similarity, DuplicateKind::Near)
                    }
                },
            })
        };

        // Under containment: is the member at `slot` the copy or the container of the kept one?
        let role = |slot: u32, kept: Kept| -> Option<Role> {
            let Kept::Local(kept) = kept else { return None };
            let kept_slot = docs.slot(kept).expect("cluster members have slots");
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
        let mut removals: Vec<(usize, Kept, f64, DuplicateKind)> = Vec::new();
        for (number, (cluster, kept)) in clusters.iter().enumerate() {
            let mut reports = Vec::with_capacity(cluster.len());
            for &doc in cluster {
                let slot = docs.slot(doc).expect("cluster members have slots");
                let (similarity, mut kind) = judge(slot, *kept)?;
                // A byte-identical copy (after normalization) of an earlier document is an exact
                // duplicate whichever member the cluster keeps: `kind` says what the document is,
                // `similarity` how close it is to the kept one.
                if matches!(docs.states[doc], DocState::Exact(_)) {
                    kind = DuplicateKind::Exact;
                }
                if !matches!(kept, Kept::Local(k) if *k == doc) {
                    removals.push((doc, *kept, similarity, kind));
                }
                reports.push(MemberReport {
                    doc: DocId(doc as u64),
                    id: docs.id(doc),
                    similarity,
                    role: role(slot, *kept),
                });
            }
            let (kept_id, kept_in) = match *kept {
                Kept::Local(kept) => (Cow::Borrowed(docs.id(kept)), None),
                Kept::Indexed(node) => (
                    Cow::Owned(indexed_id(node)?),
                    Some(index_names[matches.nodes[node as usize].index as usize].as_str()),
                ),
            };
            sink.cluster(&ClusterReport {
                cluster: number,
                kept: &kept_id,
                kept_doc: match *kept {
                    Kept::Local(kept) => Some(DocId(kept as u64)),
                    Kept::Indexed(_) => None,
                },
                kept_in,
                size: size(cluster, *kept),
                members: reports,
            })?;
        }

        removals.sort_by_key(|r| r.0);
        let mut removed = vec![false; docs.states.len()];
        for &(doc, kept, similarity, kind) in &removals {
            removed[doc] = true;
            match kind {
                DuplicateKind::Exact => summary.exact_duplicates += 1,
                DuplicateKind::Near => summary.near_duplicates += 1,
            }
            let (duplicate_of, duplicate_in) = match kept {
                Kept::Local(kept) => (Cow::Borrowed(docs.id(kept)), None),
                Kept::Indexed(node) => {
                    summary.indexed_duplicates += 1;
                    (
                        Cow::Owned(indexed_id(node)?),
                        Some(index_names[matches.nodes[node as usize].index as usize].as_str()),
                    )
                }
            };
            let slot = docs.slot(doc).expect("removed documents have slots");
            sink.removed(&Removal {
                doc: DocId(doc as u64),
                id: docs.id(doc),
                duplicate_of: &duplicate_of,
                duplicate_in,
                similarity,
                kind,
                role: role(slot, kept),
            })?;
        }
        let kept = options
            .collect_kept
            .then(|| self.segment_of_kept(analysis, keys.as_deref().unwrap_or_default(), &removed));
        Ok(Decided { removed, kept })
    }

    /// Pass 3: frame the inputs again and hand every kept record to the sink, in input order.
    /// Returns how many records it handed over.
    pub(super) fn write_kept(
        &self,
        inputs: &mut InputSet,
        docs: &DocTable,
        removed: &[bool],
        sink: &mut dyn Sink,
    ) -> Result<u64, Error> {
        let mut doc = 0usize;
        let mut written = 0u64;
        self.for_each_batch(inputs, |batch, _| {
            for frame in &batch {
                if doc >= docs.states.len() {
                    return Err(Error::InputChanged);
                }
                if let Frame::Record(record) = frame
                    && docs.states[doc] != DocState::Rejected
                    && !removed[doc]
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
        if doc != docs.states.len() {
            return Err(Error::InputChanged);
        }
        Ok(written)
    }
}
