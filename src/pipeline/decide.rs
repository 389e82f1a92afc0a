//! Pass 2 (candidates, verification, clusters, removals) and pass 3 (writing kept records).

use std::collections::HashMap;

use super::*;

impl Dedup {
    /// Pass 2: candidates → verified pairs → clusters → removals. Returns, per document, whether it
    /// was removed.
    pub(super) fn cluster(
        &self,
        inputs: &mut InputSet,
        analysis: &Analysis,
        tables: BandTables,
        sink: &mut dyn Sink,
        summary: &mut Summary,
    ) -> Result<Vec<bool>, Error> {
        let docs = &analysis.docs;
        let pairs = tables.into_candidate_pairs();
        let verifier = Verifier::new(self.verify, self.threshold, self.num_perm());
        // Sets are loaded in bounded rounds when records can be read back by location; a round
        // that must re-read whole inputs (compressed files, stdin) is done once.
        let max_sets = if analysis.locations.iter().all(Option::is_some) {
            MAX_SETS_PER_ROUND
        } else {
            usize::MAX
        };
        let verified = verifier.verify(&pairs, &analysis.signatures, max_sets, &mut |needed| {
            self.load_sets(inputs, analysis, needed)
        })?;
        summary.candidate_pairs = pairs.len() as u64;
        summary.exact_checks = verified.exact_checks;
        summary.verified_pairs = verified.pairs.len() as u64;
        drop(pairs);
        let mut exact = verified.exact;

        let mut sets = UnionFind::new(analysis.signatures.len());
        for &(a, b) in &verified.pairs {
            sets.union(a, b);
        }

        // Group documents by their set's root, in input order.
        let mut cluster_of_root: HashMap<u32, usize> = HashMap::new();
        let mut members: Vec<Vec<usize>> = Vec::new();
        let mut root_count = vec![0u32; analysis.signatures.len()];
        for doc in 0..docs.states.len() {
            if let Some(slot) = docs.slot(doc) {
                root_count[sets.find(slot) as usize] += 1;
            }
        }
        for doc in 0..docs.states.len() {
            let Some(slot) = docs.slot(doc) else { continue };
            let root = sets.find(slot);
            if root_count[root as usize] < 2 {
                continue;
            }
            let index = *cluster_of_root.entry(root).or_insert_with(|| {
                members.push(Vec::new());
                members.len() - 1
            });
            members[index].push(doc);
        }
        drop(root_count);
        // Largest first; ties by first member (input order).
        members.sort_by(|a, b| b.len().cmp(&a.len()).then(a[0].cmp(&b[0])));
        summary.clusters = members.len() as u64;
        summary.largest_cluster = members.first().map_or(0, |m| m.len() as u64);

        // The kept member of each cluster, and, under exact verification, the exact similarity of
        // every member to it (a member joined through a chain was never paired with it).
        let kept_of: Vec<usize> = members
            .iter()
            .map(|c| c[self.keep.choose(c.iter().map(|&d| docs.score(d)))])
            .collect();
        if self.verify == VerifyMode::Exact {
            let mut report_pairs: Vec<(u32, u32)> = Vec::new();
            for (cluster, &kept) in members.iter().zip(&kept_of) {
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
            let values = exact_jaccards(
                &report_pairs,
                analysis.signatures.len(),
                max_sets,
                &mut |needed| self.load_sets(inputs, analysis, needed),
            )?;
            exact.extend(report_pairs.into_iter().zip(values));
        }
        let similarity = |a: u32, b: u32| match exact.get(&(a.min(b), a.max(b))) {
            Some(j) if !j.is_nan() => *j,
            _ => analysis.signatures.similarity(a as usize, b as usize),
        };

        let mut removals: Vec<(usize, usize, f64, DuplicateKind)> = Vec::new();
        for (number, (cluster, &kept)) in members.iter().zip(&kept_of).enumerate() {
            let kept_slot = docs.slot(kept).expect("cluster members have slots");
            let mut reports = Vec::with_capacity(cluster.len());
            for &doc in cluster {
                let slot = docs.slot(doc).expect("cluster members have slots");
                let (similarity, kind) = if slot == kept_slot {
                    (1.0, DuplicateKind::Exact)
                } else {
                    (similarity(slot, kept_slot), DuplicateKind::Near)
                };
                if doc != kept {
                    removals.push((doc, kept, similarity, kind));
                }
                reports.push(MemberReport {
                    doc: DocId(doc as u64),
                    id: docs.id(doc),
                    similarity,
                });
            }
            sink.cluster(&ClusterReport {
                cluster: number,
                kept: docs.id(kept),
                size: cluster.len(),
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
            sink.removed(&Removal {
                doc: DocId(doc as u64),
                id: docs.id(doc),
                duplicate_of: docs.id(kept),
                similarity,
                kind,
            })?;
        }
        Ok(removed)
    }

    /// Pass 3: frame the inputs again and hand every kept record to the sink, in input order.
    pub(super) fn write_kept(
        &self,
        inputs: &mut InputSet,
        docs: &DocTable,
        removed: &[bool],
        sink: &mut dyn Sink,
    ) -> Result<(), Error> {
        let mut doc = 0usize;
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
                }
                doc += 1;
            }
            Ok(())
        })?;
        if doc != docs.states.len() {
            return Err(Error::InputChanged);
        }
        Ok(())
    }
}
