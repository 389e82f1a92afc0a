//! Pass 2 (candidates, verification, clusters, removals) and pass 3 (writing kept records) of a
//! batch run: the data of the run, and the decision core's rules (`core`) applied to it.

use rayon::prelude::*;

use super::assemble::{self, Cluster, KeptRef, Removals, Removed};
use super::core::clusters::{self, Keep, Member};
use super::core::counts::{Counts, Histogram};
use super::core::judge::{ExactTable, ExactValues};
use super::core::members::{self, Relation};
use super::docs::{DocSet, DocState, DocTable};
use super::sets::SetsBuilder;
use super::{Analysis, Dedup, RunOptions};
use crate::error::Error;
use crate::index::SegmentData;
use crate::lsh::{BandTables, CandidatePairs};
use crate::minhash::estimate_jaccard_bbit;
use crate::read::{Frame, InputSet};
use crate::report::{ClusterReport, DocId, KeptRecord, MemberReport, Removal, Sink, Summary};
use crate::spill::Sorter;
use crate::verify::exact_similarities;

/// What pass 2 decided.
pub(super) struct Decided {
    /// The removed documents.
    pub removed: DocSet,
    /// The kept documents as an index segment, when asked for.
    pub kept: Option<SegmentData>,
    /// Bytes of band records spilled to disk.
    pub band_temp_bytes: u64,
}

impl Dedup {
    /// Pass 2: candidates → verified pairs (and links to indexed documents) → clusters → removals.
    pub(super) fn cluster(
        &self,
        inputs: &mut InputSet,
        analysis: &Analysis,
        mut tables: BandTables,
        options: RunOptions<'_>,
        sink: &mut dyn Sink,
        summary: &mut Summary,
    ) -> Result<Decided, Error> {
        let docs = &analysis.docs;
        let slots = analysis.signatures.len();
        let matches = self.match_indexes(analysis, &tables, options.against)?;
        summary.spilled_runs = tables.runs_spilled() as u64;
        let band_temp_bytes = tables.bytes_spilled();
        // The band records are read again for the segment of kept documents, when one is asked
        // for; otherwise they go as they are paired.
        let late = |slot| analysis.late.is_late(slot);
        let pairs = match options.collect_kept {
            true => tables.candidate_pairs_without(late),
            false => std::mem::replace(&mut tables, BandTables::new(self.params))
                .into_candidate_pairs_without(late),
        }
        .map_err(|e| self.temp_error(e))?;
        let space = &analysis.space;
        let judge = self.judge();
        let max_sets = self.max_sets_per_round();
        // The pairs are verified a chunk at a time, in pair order: the verified ones go to the
        // sets, the exact measures to a table sorted by pair.
        let mut sets = SetsBuilder::new(space, self.sets_budget());
        let mut exact = ExactTable::new(space);
        let mut histogram = Histogram::default();
        let (mut candidates, mut verified_pairs) = (0u64, 0u64);
        let sizes = |a, b| analysis.pair_sizes(a, b);
        self.with_sets_at_hand(
            inputs,
            analysis,
            pairs,
            |chunk| judge.pairs_to_check(chunk, &analysis.signatures, &sizes),
            |chunk, load| {
                let chunk_histogram = chunk
                    .par_iter()
                    .map(|&(a, b)| self.estimate(analysis, a, b))
                    .try_fold(Histogram::default, |mut histogram, s| {
                        histogram.add(s?);
                        Ok::<_, Error>(histogram)
                    })
                    .try_reduce(Histogram::default, |a, b| Ok(a.merged(&b)))?;
                histogram = histogram.merged(&chunk_histogram);
                let verified = judge.verify(chunk, &analysis.signatures, &sizes, max_sets, load)?;
                candidates += chunk.len() as u64;
                verified_pairs += verified.pairs.len() as u64;
                for &(a, b) in &verified.pairs {
                    sets.join(a, b).map_err(|e| space.error(e))?;
                }
                exact.append(&verified.exact).map_err(|e| space.error(e))
            },
        )?;
        summary.candidate_similarity_histogram = histogram.to_vec();
        summary.candidate_pairs = candidates + matches.candidates;
        summary.exact_checks = exact.len() as u64;
        summary.verified_pairs = verified_pairs + matches.num_links() as u64;

        // Slots and indexed nodes share one 32-bit numbering. The sets hold only what can be in
        // a cluster: slots of verified pairs, of links and of texts with exact copies.
        u32::try_from(slots + matches.num_nodes()).map_err(|_| Error::TooManyDocuments)?;
        let indexed_id_of = |node: u32| (slots + node as usize) as u32;
        for link in matches.links() {
            let link = link.map_err(|e| space.error(e))?;
            sets.join(link.slot, indexed_id_of(link.node))
                .map_err(|e| space.error(e))?;
        }
        clusters::for_each_copied_text(docs, |slot| sets.add(slot).map_err(|e| space.error(e)))?;
        let mut sets = sets.finish().map_err(|e| space.error(e))?;
        summary.label_rounds = sets.label_rounds();
        // The indexed documents of each set that has one, by set: the first is its earliest.
        let mut indexed_by_set = Sorter::<(u32, u32)>::new(space.clone(), self.sort_budget());
        for node in 0..matches.num_nodes() as u32 {
            if let Some(root) = sets
                .set_of(indexed_id_of(node))
                .map_err(|e| space.error(e))?
            {
                indexed_by_set
                    .push((root, node))
                    .map_err(|e| space.error(e))?;
            }
        }
        let mut indexed_by_set = indexed_by_set
            .into_sorted()
            .map_err(|e| space.error(e))?
            .peekable();
        // Sets are asked in increasing order of their names.
        let mut earliest_indexed = |root: u32| -> Result<Option<u32>, Error> {
            while let Some(Ok((set, _))) = indexed_by_set.peek()
                && *set < root
            {
                indexed_by_set.next();
            }
            match indexed_by_set.peek() {
                Some(Ok((set, node))) if *set == root => Ok(Some(*node)),
                Some(Err(_)) => {
                    Err(space.error(indexed_by_set.next().expect("peeked").unwrap_err()))
                }
                _ => Ok(None),
            }
        };

        // Clusters ranked, each keeping its earliest indexed document or the keep policy's
        // choice; under exact verification, the pairs of members and kept documents the run has
        // not checked (a member joined through a chain was never paired with its kept document).
        let reports_exact = judge.reports_exact_similarity();
        let mut report_pairs = Sorter::<(u32, u32)>::new(space.clone(), self.sort_budget());
        let mut ranked = assemble::rank_clusters(
            docs,
            &mut sets,
            &analysis.space,
            self.sort_budget(),
            &mut earliest_indexed,
            |indexed, members| {
                let scores = match indexed {
                    Some(_) => Vec::new(),
                    None => members
                        .iter()
                        .map(|m| docs.score(m.doc))
                        .collect::<Result<Vec<f64>, Error>>()?,
                };
                let kept = clusters::keep(&self.keep, indexed, scores.into_iter());
                if let (true, Keep::Member(at)) = (reports_exact, kept) {
                    let kept_slot = members[at].slot;
                    for member in members {
                        let pair = (member.slot.min(kept_slot), member.slot.max(kept_slot));
                        if member.slot != kept_slot
                            && exact.get(&pair).map_err(|e| space.error(e))?.is_none()
                        {
                            report_pairs.push(pair).map_err(|e| space.error(e))?;
                        }
                    }
                }
                Ok(kept)
            },
        )?;
        drop(sets);
        // The exact measures of the pairs of members and kept documents not checked yet, a chunk
        // at a time in pair order (under exact verification only).
        let mut reported_exact = ExactTable::new(space);
        let report_pairs =
            CandidatePairs::new(report_pairs.into_sorted().map_err(|e| space.error(e))?);
        self.with_sets_at_hand(
            inputs,
            analysis,
            report_pairs,
            |chunk| Ok(chunk.to_vec()),
            |chunk, load| {
                let values = exact_similarities(chunk, max_sets, self.measure, load)?;
                reported_exact
                    .append(&ExactValues::new(chunk.to_vec(), values))
                    .map_err(|e| space.error(e))
            },
        )?;
        let exact_of = |pair: (u32, u32)| -> Result<Option<f64>, Error> {
            match exact.get(&pair).map_err(|e| space.error(e))? {
                Some(value) => Ok(Some(value)),
                None => reported_exact.get(&pair).map_err(|e| space.error(e)),
            }
        };
        let index_names: Vec<String> = options
            .against
            .iter()
            .map(|i| i.dir().display().to_string())
            .collect();
        // The id of the document a cluster keeps, and the index holding it (read when needed, so
        // that no id is held per cluster).
        let kept_id = |kept: KeptRef| -> Result<(String, Option<&str>), Error> {
            Ok(match kept {
                KeptRef::Doc(doc) => (docs.id(doc as usize)?, None),
                KeptRef::Indexed(node) => {
                    let r = matches.node(node).map_err(|e| space.error(e))?;
                    (
                        options.against[r.index as usize].id(r.doc)?,
                        Some(index_names[r.index as usize].as_str()),
                    )
                }
            })
        };
        // What a member's text is to its cluster's kept document's.
        let relation = |member: &Member, cluster: &Cluster| -> Result<Relation, Error> {
            let error = |e| space.error(e);
            Ok(Relation {
                same_text_as_kept: match cluster.kept {
                    Keep::Member(_) => cluster.kept_slot() == Some(member.slot),
                    Keep::Indexed(node) => matches
                        .link(member.slot, node)
                        .map_err(error)?
                        .is_some_and(|l| l.exact),
                },
                copy_of_earlier: member.copy || matches.indexed_text(member.slot),
            })
        };
        // A member's similarity to its cluster's kept document.
        let (mut indexed, mut local) = (Vec::new(), vec![0u8; self.num_perm()]);
        let mut similarity =
            |member: &Member, cluster: &Cluster, relation: Relation| -> Result<f64, Error> {
                match cluster.kept {
                    Keep::Member(kept) => {
                        let (a, b) = (member.slot, cluster.members[kept].slot);
                        relation.try_similarity(exact_of((a.min(b), a.max(b)))?, || {
                            self.estimate(analysis, a, b)
                        })
                    }
                    // No indexed text at hand: the estimate (the link's, when there is one).
                    Keep::Indexed(node) => relation.try_similarity(None, || {
                        if let Some(link) = matches
                            .link(member.slot, node)
                            .map_err(|e| space.error(e))?
                        {
                            return Ok(link.similarity);
                        }
                        let r = matches.node(node).map_err(|e| space.error(e))?;
                        options.against[r.index as usize].signature_into(r.doc, &mut indexed)?;
                        analysis
                            .signatures
                            .read_into(member.slot as usize, &mut local)?;
                        Ok(estimate_jaccard_bbit(&local, &indexed))
                    }),
                }
            };
        // Under containment: is the member the copy or the container of the kept one?
        let role = |member: &Member, cluster: &Cluster, relation: Relation| {
            let Some(kept_slot) = cluster.kept_slot() else {
                return Ok(None);
            };
            members::role(self.measure, relation, || {
                analysis.pair_sizes(member.slot, kept_slot)
            })
        };
        let mut counts = Counts::default();
        let mut removals = Removals::new(&analysis.space, self.sort_budget());
        let mut number = 0usize;
        while let Some(cluster) = ranked.next_cluster()? {
            counts.cluster(cluster.size);
            let ids = cluster
                .members
                .iter()
                .map(|m| docs.id(m.doc))
                .collect::<Result<Vec<String>, Error>>()?;
            let mut reports = Vec::with_capacity(cluster.members.len());
            for (at, (member, id)) in cluster.members.iter().zip(&ids).enumerate() {
                let relation = relation(member, &cluster)?;
                let similarity = similarity(member, &cluster, relation)?;
                let role = role(member, &cluster, relation)?;
                if cluster.kept != Keep::Member(at) {
                    removals.push(Removed {
                        doc: member.doc as u64,
                        kept: cluster.kept_ref(),
                        similarity,
                        relation,
                        role,
                    })?;
                }
                reports.push(MemberReport {
                    doc: DocId(member.doc as u64),
                    id,
                    similarity,
                    role,
                });
            }
            let kept_id = match cluster.kept {
                Keep::Member(kept) => (ids[kept].clone(), None),
                Keep::Indexed(_) => kept_id(cluster.kept_ref())?,
            };
            sink.cluster(&ClusterReport {
                cluster: number,
                kept: &kept_id.0,
                kept_doc: cluster.kept_doc().map(|doc| DocId(doc as u64)),
                kept_in: kept_id.1,
                size: cluster.size,
                members: reports,
            })?;
            number += 1;
        }
        drop(ranked);

        let mut removed = DocSet::new(space.clone());
        for r in removals.into_sorted()? {
            let r = r?;
            removed.push(r.doc).map_err(|e| space.error(e))?;
            let kind = r.relation.kind();
            counts.removed(kind, matches!(r.kept, KeptRef::Indexed(_)));
            let (duplicate_of, duplicate_in) = kept_id(r.kept)?;
            sink.removed(&Removal {
                doc: DocId(r.doc),
                id: &docs.id(r.doc as usize)?,
                duplicate_of: &duplicate_of,
                duplicate_in,
                similarity: r.similarity,
                kind,
                role: r.role,
            })?;
        }
        counts.write_to(summary);
        let kept = match options.collect_kept {
            true => Some(self.segment_of_kept(analysis, &tables, &removed)?),
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
        let mut removed = removed.in_order();
        self.for_each_batch(inputs, |batch, _| {
            for frame in &batch {
                let Some(state) = states.next() else {
                    return Err(Error::InputChanged);
                };
                if let Frame::Record(record) = frame
                    && state? != DocState::Rejected
                    && !removed
                        .contains(doc as u64)
                        .map_err(|e| self.temp_error(e))?
                {
                    sink.kept(&KeptRecord {
                        doc: DocId(doc as u64),
                        origin: &record.origin,
                        bytes: &record.bytes,
                        format: record.format,
                        stored: record.stored.as_deref(),
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
