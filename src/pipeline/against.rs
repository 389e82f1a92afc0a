//! Matching this run's distinct texts against indexes of documents kept before (`--against`).
//!
//! For each slot: its normalized-text hash is looked up in every index (an exact duplicate of an
//! indexed document); otherwise its band keys are, and each indexed candidate (among the first
//! members of its bucket, by the core's anchor rule) is decided as the core's judge decides for a
//! front-end that cannot check exactly: the indexed text is not at hand, so borderline and exact
//! verification decide these pairs on the estimate. Lookups binary-search memory-mapped sorted
//! tables.

use rayon::prelude::*;

use super::core::anchors::ANCHORS;
use super::{Analysis, Dedup};
use crate::error::Error;
use crate::index::{Index, IndexDoc};
use crate::lsh::BandKey;
use crate::minhash::estimate_jaccard_bbit;

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
    pub links: Vec<IndexLink>,
    /// Candidate pairs (slot, indexed document) examined.
    pub candidates: u64,
}

impl Dedup {
    /// Links each slot to the indexed documents it duplicates. `keys` are the band keys by band,
    /// then slot.
    pub(super) fn match_indexes(
        &self,
        analysis: &Analysis,
        keys: &[Vec<BandKey>],
        indexes: &[Index],
    ) -> Result<IndexMatches, Error> {
        if indexes.is_empty() {
            return Ok(IndexMatches::default());
        }
        let slots = analysis.signatures.len();
        let judge = self.judge();
        // Per slot: candidates examined, and verified (document, similarity, exact) links.
        type SlotLinks = (u64, Vec<(IndexedRef, f64, bool)>);
        let per_slot: Vec<SlotLinks> = (0..slots)
            .into_par_iter()
            .map(|slot| -> Result<SlotLinks, Error> {
                // A late copy's first copy holds the same text and makes the same links.
                if analysis.late.is_late(slot as u32) {
                    return Ok((0, Vec::new()));
                }
                let hash = analysis.text_hash(slot)?;
                let exact = indexes.iter().enumerate().find_map(|(i, index)| {
                    index.find_text(hash).map(|doc| IndexedRef {
                        index: i as u32,
                        doc,
                    })
                });
                if let Some(found) = exact {
                    return Ok((0, vec![(found, 1.0, true)]));
                }
                let mut candidates: Vec<IndexedRef> = Vec::new();
                let mut docs = Vec::new();
                for (i, index) in indexes.iter().enumerate() {
                    for (band, band_keys) in keys.iter().enumerate() {
                        docs.clear();
                        index.find_band(band, band_keys[slot], ANCHORS, &mut docs);
                        candidates.extend(docs.iter().map(|&doc| IndexedRef {
                            index: i as u32,
                            doc,
                        }));
                    }
                }
                candidates.sort_unstable();
                candidates.dedup();
                let signature = analysis.signatures.get(slot)?;
                let mut indexed = Vec::new();
                let mut links = Vec::new();
                for &r in &candidates {
                    indexes[r.index as usize].signature_into(r.doc, &mut indexed)?;
                    let similarity = estimate_jaccard_bbit(&signature, &indexed);
                    if judge.on_estimate(judge.of_jaccard(similarity)) {
                        links.push((r, similarity, false));
                    }
                }
                Ok((candidates.len() as u64, links))
            })
            .collect::<Result<_, Error>>()?;

        let mut nodes: Vec<IndexedRef> = per_slot
            .iter()
            .flat_map(|(_, links)| links.iter().map(|l| l.0))
            .collect();
        nodes.sort_unstable();
        nodes.dedup();
        let mut matches = IndexMatches {
            candidates: per_slot.iter().map(|(c, _)| c).sum(),
            ..IndexMatches::default()
        };
        for (slot, (_, links)) in per_slot.into_iter().enumerate() {
            for (r, similarity, exact) in links {
                let node = nodes.binary_search(&r).expect("node listed") as u32;
                matches.links.push(IndexLink {
                    slot: slot as u32,
                    node,
                    similarity,
                    exact,
                });
            }
        }
        matches.nodes = nodes;
        Ok(matches)
    }
}
