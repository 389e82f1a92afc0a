//! Matching this run's distinct texts against indexes of documents kept before (`--against`).
//!
//! For each slot: its normalized-text hash is looked up in every index (an exact duplicate of an
//! indexed document); otherwise its band keys are, and each indexed candidate (among the first
//! members of its bucket, by the core's anchor rule) is decided as the core's judge decides for a
//! front-end that cannot check exactly: the indexed text is not at hand, so borderline and exact
//! verification decide these pairs on the estimate. Lookups binary-search memory-mapped sorted
//! tables.
//!
//! Memory follows the matches, not the run: the band records are read band by band from the
//! run's band tables, and the (slot, indexed document) candidates they find go through a sorter
//! (within a sixteenth of the budget) that gives them back slot by slot.

use std::sync::Arc;

use rayon::prelude::*;

use super::core::anchors::ANCHORS;
use super::docs::SlotBits;
use super::{Analysis, Dedup};
use crate::error::Error;
use crate::index::{Index, IndexDoc};
use crate::lsh::{BandKey, BandTables};
use crate::minhash::estimate_jaccard_bbit;
use crate::spill::{Column, FixedRecord, KeyedColumn, Sorter, SpillSpace};

/// A document of one of the run's indexes; orders by index (as given), then by when it was added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct IndexedRef {
    pub index: u32,
    pub doc: IndexDoc,
}

/// One verified link from a slot to an indexed document.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct IndexLink {
    pub slot: u32,
    /// Position in [`IndexMatches::node`]'s numbering.
    pub node: u32,
    pub similarity: f64,
    pub exact: bool,
}

impl FixedRecord for IndexLink {
    const LEN: usize = 17;
    fn encode(&self, out: &mut [u8]) {
        self.slot.encode(&mut out[..4]);
        self.node.encode(&mut out[4..8]);
        self.similarity.encode(&mut out[8..16]);
        out[16] = u8::from(self.exact);
    }
    fn decode(bytes: &[u8]) -> Self {
        IndexLink {
            slot: u32::decode(&bytes[..4]),
            node: u32::decode(&bytes[4..8]),
            similarity: f64::decode(&bytes[8..16]),
            exact: bytes[16] == 1,
        }
    }
}

impl FixedRecord for IndexedRef {
    const LEN: usize = 12;
    fn encode(&self, out: &mut [u8]) {
        self.index.encode(&mut out[..4]);
        self.doc.segment.encode(&mut out[4..8]);
        self.doc.ordinal.encode(&mut out[8..12]);
    }
    fn decode(bytes: &[u8]) -> Self {
        IndexedRef {
            index: u32::decode(&bytes[..4]),
            doc: IndexDoc {
                segment: u32::decode(&bytes[4..8]),
                ordinal: u32::decode(&bytes[8..12]),
            },
        }
    }
}

/// A slot whose normalized text an index holds, and the indexed document (the first found).
#[derive(Debug, Clone, Copy, PartialEq)]
struct TextMatch {
    slot: u32,
    found: IndexedRef,
}

impl FixedRecord for TextMatch {
    const LEN: usize = 16;
    fn encode(&self, out: &mut [u8]) {
        self.slot.encode(&mut out[..4]);
        self.found.encode(&mut out[4..]);
    }
    fn decode(bytes: &[u8]) -> Self {
        TextMatch {
            slot: u32::decode(&bytes[..4]),
            found: IndexedRef::decode(&bytes[4..]),
        }
    }
}

/// A near link before the indexed documents are numbered.
#[derive(Debug, Clone, Copy, PartialEq)]
struct NearMatch {
    slot: u32,
    found: IndexedRef,
    similarity: f64,
}

impl FixedRecord for NearMatch {
    const LEN: usize = 24;
    fn encode(&self, out: &mut [u8]) {
        self.slot.encode(&mut out[..4]);
        self.found.encode(&mut out[4..16]);
        self.similarity.encode(&mut out[16..]);
    }
    fn decode(bytes: &[u8]) -> Self {
        NearMatch {
            slot: u32::decode(&bytes[..4]),
            found: IndexedRef::decode(&bytes[4..16]),
            similarity: f64::decode(&bytes[16..]),
        }
    }
}

/// Every link between this run's slots and indexed documents, in spillable tables.
#[derive(Debug)]
pub(super) struct IndexMatches {
    /// The indexed documents linked to, sorted; node `i` (its position) joins the sets as
    /// `slots + i`.
    nodes: KeyedColumn<IndexedRef, IndexedRef>,
    /// The links, by (slot, node).
    links: KeyedColumn<IndexLink, (u32, u32)>,
    /// The slots whose normalized text an index holds, and the document holding it.
    texts: KeyedColumn<TextMatch, u32>,
    /// The same slots, for tests made once per band record or member.
    text_slots: SlotBits,
    /// Candidate pairs (slot, indexed document) examined.
    pub candidates: u64,
}

impl IndexMatches {
    /// No links (a run against no index).
    pub fn none(space: &Arc<SpillSpace>) -> IndexMatches {
        IndexMatches {
            nodes: KeyedColumn::new(space.clone(), |r: &IndexedRef| *r),
            links: KeyedColumn::new(space.clone(), |l: &IndexLink| (l.slot, l.node)),
            texts: KeyedColumn::new(space.clone(), |t: &TextMatch| t.slot),
            text_slots: SlotBits::default(),
            candidates: 0,
        }
    }

    /// Indexed documents linked to.
    pub fn num_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// The indexed document numbered `node`.
    pub fn node(&self, node: u32) -> std::io::Result<IndexedRef> {
        self.nodes.at(node as usize)
    }

    /// Links found.
    pub fn num_links(&self) -> usize {
        self.links.len()
    }

    /// Every link, by slot then node.
    pub fn links(&self) -> impl Iterator<Item = std::io::Result<IndexLink>> + '_ {
        self.links.iter()
    }

    /// The link from `slot` to indexed document `node`, if there is one.
    pub fn link(&self, slot: u32, node: u32) -> std::io::Result<Option<IndexLink>> {
        self.links.get(&(slot, node))
    }

    /// Whether an index holds the normalized text of `slot`.
    pub fn indexed_text(&self, slot: u32) -> bool {
        self.text_slots.contains(slot)
    }
}

/// A slot and an indexed document one of its band keys finds: sorts by slot, then document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Candidate {
    slot: u32,
    found: IndexedRef,
}

impl FixedRecord for Candidate {
    const LEN: usize = 16;
    fn encode(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(&self.slot.to_le_bytes());
        out[4..8].copy_from_slice(&self.found.index.to_le_bytes());
        out[8..12].copy_from_slice(&self.found.doc.segment.to_le_bytes());
        out[12..16].copy_from_slice(&self.found.doc.ordinal.to_le_bytes());
    }
    fn decode(bytes: &[u8]) -> Self {
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        Candidate {
            slot: u32_at(0),
            found: IndexedRef {
                index: u32_at(4),
                doc: IndexDoc {
                    segment: u32_at(8),
                    ordinal: u32_at(12),
                },
            },
        }
    }
}

/// Band records looked up at a time (in parallel) before their candidates go to the sorter.
const LOOKUP_BATCH: usize = 1 << 16;

impl Dedup {
    /// Links each slot to the indexed documents it duplicates, reading the slots' band keys from
    /// `tables`.
    pub(super) fn match_indexes(
        &self,
        analysis: &Analysis,
        tables: &BandTables,
        indexes: &[Index],
    ) -> Result<IndexMatches, Error> {
        let space = &analysis.space;
        let error = |e| space.error(e);
        let mut matches = IndexMatches::none(space);
        if indexes.is_empty() {
            return Ok(matches);
        }
        let slots = analysis.signatures.len() as u32;
        // A late copy's first copy holds the same text and makes the same links. Slots are
        // looked up in parallel, a batch at a time, and their matches kept in slot order.
        for start in (0..slots).step_by(LOOKUP_BATCH) {
            let end = slots.min(start.saturating_add(LOOKUP_BATCH as u32));
            let found: Vec<TextMatch> = (start..end)
                .into_par_iter()
                .filter(|&slot| !analysis.late.is_late(slot))
                .map(|slot| -> Result<Option<TextMatch>, Error> {
                    let hash = analysis.text_hash(slot as usize)?;
                    Ok(indexes.iter().enumerate().find_map(|(i, index)| {
                        let doc = index.find_text(hash)?;
                        Some(TextMatch {
                            slot,
                            found: IndexedRef {
                                index: i as u32,
                                doc,
                            },
                        })
                    }))
                })
                .filter_map(Result::transpose)
                .collect::<Result<_, Error>>()?;
            for text in &found {
                matches.texts.push(text).map_err(error)?;
                matches.text_slots.insert(text.slot);
            }
        }
        // Slots with an indexed copy of their text link to it alone; the others look for near
        // duplicates among the first members of their buckets.
        let text_slots = &matches.text_slots;
        let looks = |slot: u32| !analysis.late.is_late(slot) && !text_slots.contains(slot);
        let mut sorter = Sorter::new(space.clone(), self.sort_budget());
        for band in 0..self.params.num_bands {
            let mut batch: Vec<(BandKey, u32)> = Vec::with_capacity(LOOKUP_BATCH);
            let mut flush = |batch: &mut Vec<(BandKey, u32)>| -> Result<(), Error> {
                let found: Vec<Candidate> = batch
                    .par_iter()
                    .flat_map_iter(|&(key, slot)| {
                        let mut docs = Vec::new();
                        let mut out = Vec::new();
                        for (i, index) in indexes.iter().enumerate() {
                            docs.clear();
                            index.find_band(band, key, ANCHORS, &mut docs);
                            out.extend(docs.iter().map(|&doc| Candidate {
                                slot,
                                found: IndexedRef {
                                    index: i as u32,
                                    doc,
                                },
                            }));
                        }
                        out
                    })
                    .collect();
                batch.clear();
                for candidate in found {
                    sorter.push(candidate).map_err(|e| space.error(e))?;
                }
                Ok(())
            };
            let mut failed = None;
            tables
                .for_each_record(band, |key, slot| {
                    if failed.is_some() || !looks(slot) {
                        return;
                    }
                    batch.push((key, slot));
                    if batch.len() == LOOKUP_BATCH
                        && let Err(e) = flush(&mut batch)
                    {
                        failed = Some(e);
                    }
                })
                .map_err(|e| space.error(e))?;
            if let Some(e) = failed {
                return Err(e);
            }
            flush(&mut batch)?;
        }

        // Slot by slot, its distinct candidates decided on the estimate.
        let judge = self.judge();
        let mut near: Column<NearMatch> = Column::new(space.clone());
        let mut linked = Sorter::new(space.clone(), self.sort_budget());
        let mut candidates: Vec<IndexedRef> = Vec::new();
        let (mut signature, mut indexed) = (vec![0u8; self.num_perm()], Vec::new());
        let slot_of: fn(&Candidate) -> u32 = |candidate| candidate.slot;
        let mut groups = sorter.into_sorted().map_err(error)?.groups(slot_of);
        let mut found: Vec<Candidate> = Vec::new();
        while groups.next_group(&mut found).map_err(error)? {
            let slot = found[0].slot;
            candidates.clear();
            candidates.extend(found.iter().map(|c| c.found));
            candidates.dedup();
            matches.candidates += candidates.len() as u64;
            analysis
                .signatures
                .read_into(slot as usize, &mut signature)?;
            for &r in &candidates {
                indexes[r.index as usize].signature_into(r.doc, &mut indexed)?;
                let similarity = estimate_jaccard_bbit(&signature, &indexed);
                if judge.on_estimate(judge.of_jaccard(similarity)) {
                    near.push(&NearMatch {
                        slot,
                        found: r,
                        similarity,
                    })
                    .map_err(error)?;
                    linked.push(r).map_err(error)?;
                }
            }
        }
        drop(groups);

        // The indexed documents linked to, numbered in order.
        for text in matches.texts.iter() {
            linked.push(text.map_err(error)?.found).map_err(error)?;
        }
        let mut last = None;
        for r in linked.into_sorted().map_err(error)? {
            let r = r.map_err(error)?;
            if last != Some(r) {
                matches.nodes.push(&r).map_err(error)?;
                last = Some(r);
            }
        }
        let node = |r: &IndexedRef| -> Result<u32, Error> {
            let at = matches.nodes.position(r).map_err(error)?;
            Ok(at.expect("every linked document is numbered") as u32)
        };
        // The links in (slot, node) order: a slot links exactly or near, never both, and its
        // near links come together.
        let mut links = Vec::new();
        let mut texts = matches.texts.iter().peekable();
        let mut near = near.iter().peekable();
        loop {
            let next_text = texts.peek().map(|t| t.as_ref().map(|t| t.slot).ok());
            let next_near = near.peek().map(|n| n.as_ref().map(|n| n.slot).ok());
            let take_text = match (next_text, next_near) {
                (None, None) => break,
                (Some(Some(a)), Some(Some(b))) => a < b,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                // An error: taken to report it.
                (Some(None), _) => true,
                (_, Some(None)) => false,
            };
            links.clear();
            if take_text {
                let text = texts.next().expect("peeked").map_err(error)?;
                links.push(IndexLink {
                    slot: text.slot,
                    node: node(&text.found)?,
                    similarity: 1.0,
                    exact: true,
                });
            } else {
                let first = near.next().expect("peeked").map_err(error)?;
                links.push(IndexLink {
                    slot: first.slot,
                    node: node(&first.found)?,
                    similarity: first.similarity,
                    exact: false,
                });
                while let Some(Ok(more)) = near.peek()
                    && more.slot == first.slot
                {
                    let more = near.next().expect("peeked").map_err(error)?;
                    links.push(IndexLink {
                        slot: more.slot,
                        node: node(&more.found)?,
                        similarity: more.similarity,
                        exact: false,
                    });
                }
                links.sort_unstable_by_key(|link| link.node);
            }
            for link in &links {
                matches.links.push(link).map_err(error)?;
            }
        }
        drop(texts);
        drop(near);
        Ok(matches)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::index::IndexDoc;
    use crate::pipeline::against::{IndexLink, IndexMatches, IndexedRef, TextMatch};
    use crate::spill::SpillSpace;

    #[test]
    fn links_are_found_by_slot_and_node() {
        let dir = tempfile::tempdir().unwrap();
        let space = Arc::new(SpillSpace::new(dir.path(), 0));
        let link = |slot, node, exact| IndexLink {
            slot,
            node,
            similarity: f64::from(slot) / 10.0,
            exact,
        };
        let mut matches = IndexMatches::none(&space);
        for l in [
            link(1, 0, false),
            link(1, 2, false),
            link(4, 1, false),
            link(7, 0, true),
        ] {
            matches.links.push(&l).unwrap();
        }
        let found = IndexedRef {
            index: 0,
            doc: IndexDoc {
                segment: 0,
                ordinal: 3,
            },
        };
        matches.texts.push(&TextMatch { slot: 7, found }).unwrap();
        matches.text_slots.insert(7);
        matches.nodes.push(&found).unwrap();
        assert_eq!(matches.link(7, 0).unwrap().map(|l| l.exact), Some(true));
        assert_eq!(matches.link(4, 1).unwrap().map(|l| l.similarity), Some(0.4));
        assert!(matches.link(4, 0).unwrap().is_none() && matches.link(0, 0).unwrap().is_none());
        let indexed: Vec<u32> = (0..9).filter(|&s| matches.indexed_text(s)).collect();
        assert_eq!(indexed, [7]);
        assert_eq!(matches.node(0).unwrap(), found);
        assert_eq!(matches.num_links(), 4);
        assert!(
            matches.links.push(&link(1, 1, false)).is_err(),
            "links come in (slot, node) order"
        );
    }
}
