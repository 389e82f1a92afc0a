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

use rayon::prelude::*;

use super::core::anchors::ANCHORS;
use super::{Analysis, Dedup};
use crate::error::Error;
use crate::index::{Index, IndexDoc};
use crate::lsh::{BandKey, BandTables};
use crate::minhash::estimate_jaccard_bbit;
use crate::spill::{FixedRecord, Sorter};

/// A document of one of the run's indexes; orders by index (as given), then by when it was added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct IndexedRef {
    pub index: u32,
    pub doc: IndexDoc,
}

/// One verified link from a slot to an indexed document.
#[derive(Debug, Clone, Copy)]
pub(super) struct IndexLink {
    pub slot: u32,
    /// Position in [`IndexMatches::nodes`].
    pub node: u32,
    pub similarity: f64,
    pub exact: bool,
}

/// Every link between this run's slots and indexed documents.
#[derive(Debug, Default)]
pub(super) struct IndexMatches {
    /// The indexed documents linked to, sorted; node `i` joins the union-find as `slots + i`.
    pub nodes: Vec<IndexedRef>,
    /// Sorted by slot, then node.
    pub links: Vec<IndexLink>,
    /// Candidate pairs (slot, indexed document) examined.
    pub candidates: u64,
}

impl IndexMatches {
    /// The link from `slot` to indexed document `node`, if there is one.
    pub fn link(&self, slot: u32, node: u32) -> Option<&IndexLink> {
        self.links
            .binary_search_by_key(&(slot, node), |link| (link.slot, link.node))
            .ok()
            .map(|at| &self.links[at])
    }

    /// Whether an index holds the normalized text of `slot`.
    pub fn indexed_text(&self, slot: u32) -> bool {
        let from = self.links.partition_point(|link| link.slot < slot);
        self.links[from..]
            .iter()
            .take_while(|link| link.slot == slot)
            .any(|link| link.exact)
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
        if indexes.is_empty() {
            return Ok(IndexMatches::default());
        }
        let space = &analysis.space;
        let slots = analysis.signatures.len();
        // A late copy's first copy holds the same text and makes the same links.
        let exact: Vec<(u32, IndexedRef)> = (0..slots as u32)
            .into_par_iter()
            .filter(|&slot| !analysis.late.is_late(slot))
            .map(|slot| -> Result<Option<(u32, IndexedRef)>, Error> {
                let hash = analysis.text_hash(slot as usize)?;
                Ok(indexes.iter().enumerate().find_map(|(i, index)| {
                    let doc = index.find_text(hash)?;
                    Some((
                        slot,
                        IndexedRef {
                            index: i as u32,
                            doc,
                        },
                    ))
                }))
            })
            .filter_map(Result::transpose)
            .collect::<Result<_, Error>>()?;
        // Slots with an indexed copy of their text link to it alone; the others look for near
        // duplicates among the first members of their buckets.
        let looks = |slot: u32| {
            !analysis.late.is_late(slot) && exact.binary_search_by_key(&slot, |e| e.0).is_err()
        };
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
        let mut matches = IndexMatches::default();
        let mut near: Vec<(u32, IndexedRef, f64)> = Vec::new();
        let mut candidates: Vec<IndexedRef> = Vec::new();
        let (mut signature, mut indexed) = (vec![0u8; self.num_perm()], Vec::new());
        let slot_of: fn(&Candidate) -> u32 = |candidate| candidate.slot;
        let mut groups = sorter
            .into_sorted()
            .map_err(|e| space.error(e))?
            .groups(slot_of);
        let mut found: Vec<Candidate> = Vec::new();
        while groups.next_group(&mut found).map_err(|e| space.error(e))? {
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
                    near.push((slot, r, similarity));
                }
            }
        }

        let mut nodes: Vec<IndexedRef> = exact
            .iter()
            .map(|e| e.1)
            .chain(near.iter().map(|n| n.1))
            .collect();
        nodes.sort_unstable();
        nodes.dedup();
        let node = |r: &IndexedRef| nodes.binary_search(r).expect("node listed") as u32;
        let exact_links = exact.iter().map(|(slot, r)| IndexLink {
            slot: *slot,
            node: node(r),
            similarity: 1.0,
            exact: true,
        });
        let near_links = near.iter().map(|(slot, r, similarity)| IndexLink {
            slot: *slot,
            node: node(r),
            similarity: *similarity,
            exact: false,
        });
        let mut links: Vec<IndexLink> = exact_links.chain(near_links).collect();
        links.sort_unstable_by_key(|link| (link.slot, link.node));
        matches.links = links;
        matches.nodes = nodes;
        Ok(matches)
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::against::{IndexLink, IndexMatches};

    #[test]
    fn links_are_found_by_slot_and_node() {
        let link = |slot, node, exact| IndexLink {
            slot,
            node,
            similarity: f64::from(slot) / 10.0,
            exact,
        };
        let matches = IndexMatches {
            links: vec![
                link(1, 0, false),
                link(1, 2, true),
                link(4, 1, false),
                link(7, 0, true),
            ],
            ..IndexMatches::default()
        };
        assert_eq!(matches.link(1, 2).map(|l| l.exact), Some(true));
        assert_eq!(matches.link(4, 1).map(|l| l.similarity), Some(0.4));
        assert!(matches.link(4, 0).is_none() && matches.link(0, 0).is_none());
        let indexed: Vec<u32> = (0..9).filter(|&s| matches.indexed_text(s)).collect();
        assert_eq!(indexed, [1, 7]);
    }
}
