//! Pass 2 (candidates, verification, clusters, removals) and pass 3 (writing kept records) of a
//! batch run: the data of the run, and the decision core's rules (`core`) applied to it.

use rayon::prelude::*;

use std::sync::Arc;

use super::assemble::{self, Cluster, Decision, Decisions, KeptRef};
use super::core::clusters::{self, Keep, Member};
use super::core::counts::{Counts, Histogram, PairSamples};
use super::core::judge::{ExactTable, ExactValues};
use super::core::members::{self, Relation};
use super::docs::{DocSet, DocState, DocTable, Ids};
use super::sets::SetsBuilder;
use super::{Analysis, Dedup, RunOptions};
use crate::error::Error;
use crate::index::SegmentData;
use crate::lsh::{BandTables, CandidatePairs};
use crate::minhash::estimate_jaccard_bbit;
use crate::read::{Frame, InputSet};
use crate::report::{
    AnnotatedRecord, ClusterReport, DocId, Duplicate, DuplicateKind, KeptRecord, MemberReport,
    Removal, Sink, Summary,
};
use crate::spill::{Column, ColumnIter, FixedRecord, Sorter, SpillSpace};
use crate::verify::exact_similarities;

/// What pass 2 decided.
pub(super) struct Decided {
    /// The removed documents.
    pub removed: DocSet,
    /// What `--annotate` adds to each cluster member, in input order.
    pub annotations: Option<Annotations>,
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
        let started = std::time::Instant::now();
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
        let mut samples = PairSamples::default();
        let (mut candidates, mut verified_pairs) = (0u64, 0u64);
        let sizes = |a, b| analysis.pair_sizes(a, b);
        self.with_sets_at_hand(
            inputs,
            analysis,
            pairs,
            |chunk| judge.pairs_to_check(chunk, &analysis.signatures, &sizes),
            |chunk, load| {
                let (chunk_histogram, chunk_samples) = chunk
                    .par_iter()
                    .map(|&(a, b)| Ok::<_, Error>((a, b, self.estimate(analysis, a, b)?)))
                    .try_fold(
                        <(Histogram, PairSamples)>::default,
                        |(mut histogram, mut samples), pair| {
                            let (a, b, s) = pair?;
                            histogram.add(s);
                            samples.offer(a, b, s);
                            Ok::<_, Error>((histogram, samples))
                        },
                    )
                    .try_reduce(
                        Default::default,
                        |(h1, s1): (Histogram, PairSamples), (h2, s2)| {
                            Ok((h1.merged(&h2), s1.merged(&s2)))
                        },
                    )?;
                histogram = histogram.merged(&chunk_histogram);
                samples = std::mem::take(&mut samples).merged(&chunk_samples);
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
        summary.candidate_samples = samples.documents(&docs.first_copies(&samples.slots())?);
        summary.stage_seconds.pairs = started.elapsed().as_secs_f64();
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
        let index_names = super::index_names(options.against);
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
        let mut removals = Decisions::new(&analysis.space, self.sort_budget());
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
                let removed = cluster.kept != Keep::Member(at);
                if removed || options.annotate {
                    removals.push(Decision {
                        doc: member.doc as u64,
                        removed,
                        cluster: number as u64,
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
                    spans: docs.spans(member.doc)?,
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
        let mut annotations = options.annotate.then(|| Annotations::new(space));
        for r in removals.into_sorted()? {
            let r = r?;
            if !r.removed {
                if let Some(annotations) = &mut annotations {
                    annotations.push_kept(r.doc, r.cluster)?;
                }
                continue;
            }
            removed.push(r.doc).map_err(|e| space.error(e))?;
            let kind = r.relation.kind();
            counts.removed(kind, matches!(r.kept, KeptRef::Indexed(_)));
            let (duplicate_of, duplicate_in) = kept_id(r.kept)?;
            if let Some(annotations) = &mut annotations {
                let index = match r.kept {
                    KeptRef::Indexed(node) => {
                        Some(matches.node(node).map_err(|e| space.error(e))?.index)
                    }
                    KeptRef::Doc(_) => None,
                };
                annotations.push_removed(&r, &duplicate_of, index, kind)?;
            }
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
        summary.stage_seconds.clusters =
            started.elapsed().as_secs_f64() - summary.stage_seconds.pairs;
        Ok(Decided {
            removed,
            annotations,
            kept,
            band_temp_bytes,
        })
    }

    /// Pass 3: frame the inputs again and hand every kept record to the sink, in input order;
    /// with `annotations` (`--annotate`), every record that is not rejected, with what was decided
    /// about it. Returns how many kept records it handed over.
    pub(super) fn write_kept(
        &self,
        inputs: &mut InputSet,
        docs: &DocTable,
        decided: &Decided,
        index_names: &[String],
        sink: &mut dyn Sink,
    ) -> Result<u64, Error> {
        let mut doc = 0usize;
        let mut written = 0u64;
        let mut states = docs.states();
        let mut removed = decided.removed.in_order();
        let mut annotations = decided.annotations.as_ref().map(Annotations::in_order);
        self.for_each_batch(inputs, |batch, _| {
            for frame in &batch {
                let Some(state) = states.next() else {
                    return Err(Error::InputChanged);
                };
                let position = doc as u64;
                doc += 1;
                let Frame::Record(record) = frame else {
                    continue;
                };
                if state? == DocState::Rejected {
                    continue;
                }
                let is_removed = removed.contains(position).map_err(|e| self.temp_error(e))?;
                if let Some(annotations) = &mut annotations {
                    let found = annotations.of(position).map_err(|e| self.temp_error(e))?;
                    let duplicate = found.as_ref().and_then(|a| a.duplicate.as_ref());
                    sink.annotated(&AnnotatedRecord {
                        doc: DocId(position),
                        origin: &record.origin,
                        bytes: &record.bytes,
                        format: record.format,
                        cluster: found.as_ref().map(|a| a.cluster),
                        duplicate: duplicate.map(|d| Duplicate {
                            of: &d.of,
                            of_index: d.index.map(|i| index_names[i as usize].as_str()),
                            similarity: d.similarity,
                            kind: d.kind,
                        }),
                    })?;
                } else if !is_removed {
                    sink.kept(&KeptRecord {
                        doc: DocId(position),
                        origin: &record.origin,
                        bytes: &record.bytes,
                        format: record.format,
                        stored: record.stored.as_deref(),
                    })?;
                }
                written += u64::from(!is_removed);
            }
            Ok(())
        })?;
        if states.next().is_some() {
            return Err(Error::InputChanged);
        }
        Ok(written)
    }
}

/// What `--annotate` adds to the records of clusters: per member in input order, its cluster
/// and, when it is removed, what it duplicates (the id in a spillable byte arena).
pub(super) struct Annotations {
    members: Column<AnnotatedMember>,
    duplicate_ids: Ids,
    space: Arc<SpillSpace>,
}

/// A cluster member as [`Annotations`] stores it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct AnnotatedMember {
    doc: u64,
    cluster: u64,
    similarity: f64,
    /// 0: kept; 1: an exact duplicate; 2: a near one.
    kind: u8,
    /// The index holding the kept document, plus one (0: this run's document).
    index: u32,
}

impl FixedRecord for AnnotatedMember {
    const LEN: usize = 29;
    fn encode(&self, out: &mut [u8]) {
        self.doc.encode(&mut out[..8]);
        self.cluster.encode(&mut out[8..16]);
        self.similarity.encode(&mut out[16..24]);
        out[24] = self.kind;
        self.index.encode(&mut out[25..29]);
    }
    fn decode(bytes: &[u8]) -> Self {
        AnnotatedMember {
            doc: u64::decode(&bytes[..8]),
            cluster: u64::decode(&bytes[8..16]),
            similarity: f64::decode(&bytes[16..24]),
            kind: bytes[24],
            index: u32::decode(&bytes[25..29]),
        }
    }
}

/// One member's annotation, read back.
struct Annotation {
    cluster: u64,
    duplicate: Option<AnnotatedDuplicate>,
}

struct AnnotatedDuplicate {
    of: String,
    index: Option<u32>,
    similarity: f64,
    kind: DuplicateKind,
}

impl Annotations {
    fn new(space: &Arc<SpillSpace>) -> Annotations {
        Annotations {
            members: Column::new(space.clone()),
            duplicate_ids: Ids::new(space.clone()),
            space: space.clone(),
        }
    }

    fn push_kept(&mut self, doc: u64, cluster: u64) -> Result<(), Error> {
        let space = &self.space;
        self.members
            .push(&AnnotatedMember {
                doc,
                cluster,
                similarity: 1.0,
                kind: 0,
                index: 0,
            })
            .map_err(|e| space.error(e))
    }

    fn push_removed(
        &mut self,
        decision: &Decision,
        of: &str,
        index: Option<u32>,
        kind: DuplicateKind,
    ) -> Result<(), Error> {
        let space = &self.space;
        let member = AnnotatedMember {
            doc: decision.doc,
            cluster: decision.cluster,
            similarity: decision.similarity,
            kind: match kind {
                DuplicateKind::Exact => 1,
                DuplicateKind::Near => 2,
            },
            index: index.map_or(0, |i| i + 1),
        };
        self.members.push(&member).map_err(|e| space.error(e))?;
        self.duplicate_ids.push(of).map_err(|e| space.error(e))
    }

    fn in_order(&self) -> AnnotationsInOrder<'_> {
        AnnotationsInOrder {
            annotations: self,
            members: self.members.iter(),
            next: None,
            removed_seen: 0,
        }
    }
}

/// The annotations of documents asked in increasing order.
struct AnnotationsInOrder<'a> {
    annotations: &'a Annotations,
    members: ColumnIter<'a, AnnotatedMember>,
    next: Option<AnnotatedMember>,
    /// Removed members read so far: the number of the next one's id.
    removed_seen: usize,
}

impl AnnotationsInOrder<'_> {
    fn of(&mut self, doc: u64) -> std::io::Result<Option<Annotation>> {
        loop {
            match self.next {
                Some(member) if member.doc >= doc => {
                    if member.doc > doc {
                        return Ok(None);
                    }
                    self.next = None;
                    let duplicate = match member.kind {
                        0 => None,
                        kind => {
                            let of = self.annotations.duplicate_ids.get(self.removed_seen)?;
                            self.removed_seen += 1;
                            Some(AnnotatedDuplicate {
                                of,
                                index: member.index.checked_sub(1),
                                similarity: member.similarity,
                                kind: if kind == 1 {
                                    DuplicateKind::Exact
                                } else {
                                    DuplicateKind::Near
                                },
                            })
                        }
                    };
                    return Ok(Some(Annotation {
                        cluster: member.cluster,
                        duplicate,
                    }));
                }
                Some(member) => {
                    // Asked past it: skip its id too.
                    self.removed_seen += usize::from(member.kind != 0);
                    self.next = None;
                }
                None => match self.members.next() {
                    Some(member) => self.next = Some(member?),
                    None => return Ok(None),
                },
            }
        }
    }
}
