//! Steps 4 and 5 of a run: clusters, their kept documents, and the decision about every removed
//! document.
//!
//! 4. [`labels`]: each worker reduces its verified edges to a spanning forest; worker 0 merges
//!    the forests with union-find and sends each document's cluster label (the earliest position
//!    of its cluster, its root) back to its owner; exact copies get their representative's label
//!    from its owner.
//! 5. [`Dedup::choose_kept`]: the root's owner asks the decision core which member the cluster
//!    keeps. Under exact verification, [`Dedup::check_kept_exactly`] computes the exact
//!    similarity of every removed document to its kept one. [`decisions`]: each removed document
//!    asks for that similarity and the kept document's id, and the core says its `kind`.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use timely::worker::Worker;

use super::exchange::exchange;
use super::owned::{Own, Owned};
use super::pairs::Pair;
use super::share::{Owners, Share};
use crate::cluster::UnionFind;
use crate::error::Error;
use crate::minhash::estimate_jaccard_bbit;
use crate::pipeline::Dedup;
use crate::pipeline::core::clusters::keep_among;
use crate::pipeline::core::members::Relation;
use crate::report::DuplicateKind;

/// A document and the root of its component (the component's earliest position).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(super) struct Label {
    pub position: u64,
    pub root: u64,
}

/// An exact copy's question to its representative's owner: which root has it?
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Ask {
    representative: u64,
    position: u64,
}

/// The roots of this worker's documents that are in a cluster.
#[derive(Debug)]
pub(super) struct Labels {
    /// Of representatives that are a node of a verified edge.
    of_representative: HashMap<u64, u64>,
    /// Of exact copies (their representative's root, or the representative).
    of_copy: HashMap<u64, u64>,
}

impl Labels {
    /// The root of the cluster of `position` (itself when it is in none).
    pub fn root(&self, position: u64) -> u64 {
        match self.of_copy.get(&position) {
            Some(&root) => root,
            None => *self.of_representative.get(&position).unwrap_or(&position),
        }
    }
}

/// A cluster member at its root's owner, for the keep policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Contender {
    root: u64,
    position: u64,
    score: f64,
    representative: u64,
}

/// The kept document of a cluster, and its representative.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(super) struct Kept {
    pub position: u64,
    pub representative: u64,
}

/// A member's kept document, on its way to the member's owner.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Verdict {
    member: u64,
    kept: Kept,
}

/// A removed document's question about its kept one, first at the owner of the later of the two
/// representatives (which fills in `jaccard` when that pair was checked exactly), then at the
/// kept one's owner.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SimilarityRequest {
    position: u64,
    kept: u64,
    representative: u64,
    kept_representative: u64,
    /// The removed document's signature.
    signature: Vec<u8>,
    /// Exact Jaccard of the two representatives, when known (NaN otherwise).
    jaccard: f64,
}

impl SimilarityRequest {
    /// The pair of the two representatives.
    fn pair(&self) -> Pair {
        let (a, b) = (self.representative, self.kept_representative);
        Pair {
            first: a.min(b),
            second: a.max(b),
        }
    }
}

/// The kept document's answer, on its way to the removed one's owner.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Answer {
    position: u64,
    similarity: f64,
    /// Its text is the kept one's or an earlier document's.
    exact: bool,
    kept_id: String,
}

/// The decision about one owned document that is not kept as is.
#[derive(Debug, Clone)]
pub(super) struct Decision {
    pub similarity: f64,
    pub kind: DuplicateKind,
    pub kept_id: String,
}

/// Step 4: the roots of this worker's documents, from the verified `edges` of every worker and
/// the representatives `reps`. Collective.
pub(super) fn labels(
    worker: &mut Worker,
    owners: &Owners,
    edges: Vec<Pair>,
    reps: &HashMap<u64, u64>,
) -> Result<Labels, Error> {
    // A spanning forest: an edge from every node to the earliest node of its local component.
    let forest: Vec<Pair> = components(&edges)
        .into_iter()
        .filter(|label| label.position != label.root)
        .map(|label| Pair {
            first: label.root,
            second: label.position,
        })
        .collect();
    drop(edges);
    let all_edges = exchange(worker, forest, |_| 0)?;
    let mut labels: Vec<Label> = Vec::new();
    if worker.index() == 0 {
        labels = components(&all_edges);
    }
    drop(all_edges);
    let of_representative: HashMap<u64, u64> =
        exchange(worker, labels, owners.by(|l: &Label| l.position))?
            .into_iter()
            .map(|l| (l.position, l.root))
            .collect();
    // Exact copies ask their representative's owner for its label.
    let asks: Vec<Ask> = reps
        .iter()
        .filter(|(pos, rep)| pos != rep)
        .map(|(&position, &representative)| Ask {
            representative,
            position,
        })
        .collect();
    let replies: Vec<Label> = exchange(worker, asks, owners.by(|a: &Ask| a.representative))?
        .into_iter()
        .map(|ask| Label {
            position: ask.position,
            root: *of_representative
                .get(&ask.representative)
                .unwrap_or(&ask.representative),
        })
        .collect();
    let of_copy: HashMap<u64, u64> = exchange(worker, replies, owners.by(|l: &Label| l.position))?
        .into_iter()
        .map(|l| (l.position, l.root))
        .collect();
    Ok(Labels {
        of_representative,
        of_copy,
    })
}

/// The label of every node of `edges`, the root being the earliest position of its component.
fn components(edges: &[Pair]) -> Vec<Label> {
    let mut nodes: Vec<u64> = edges.iter().flat_map(|e| [e.first, e.second]).collect();
    nodes.sort_unstable();
    nodes.dedup();
    let index = |n: u64| nodes.binary_search(&n).expect("a node of an edge") as u32;
    let mut sets = UnionFind::new(nodes.len());
    for edge in edges {
        sets.union(index(edge.first), index(edge.second));
    }
    let mut earliest: HashMap<u32, u64> = HashMap::new();
    for (i, &node) in nodes.iter().enumerate() {
        let root = sets.find(i as u32);
        let entry = earliest.entry(root).or_insert(node);
        *entry = (*entry).min(node);
    }
    nodes
        .iter()
        .enumerate()
        .map(|(i, &node)| Label {
            position: node,
            root: earliest[&sets.find(i as u32)],
        })
        .collect()
}

impl Dedup {
    /// Step 5: the kept document of every owned cluster member, by position. The root's owner
    /// hears from every member and asks the core, as one process does (the keep policy's first
    /// best; the earliest under `--keep first`). Collective.
    pub(super) fn choose_kept(
        &self,
        worker: &mut Worker,
        owners: &Owners,
        owned: &Owned,
        labels: &Labels,
        reps: &HashMap<u64, u64>,
    ) -> Result<HashMap<u64, Kept>, Error> {
        let members: Vec<Contender> = owned
            .iter()
            .filter(|(pos, own)| matches!(own, Own::Doc { .. }) && labels.root(*pos) != *pos)
            .map(|(pos, _)| Contender {
                root: labels.root(*pos),
                position: *pos,
                score: owned.score(*pos),
                representative: reps[pos],
            })
            .collect();
        let mut at_root = exchange(worker, members, owners.by(|m: &Contender| m.root))?;
        // The root itself is a member of its cluster.
        let roots: HashSet<u64> = at_root.iter().map(|m| m.root).collect();
        at_root.extend(roots.iter().map(|&root| Contender {
            root,
            position: root,
            score: owned.score(root),
            representative: root,
        }));
        at_root.sort_by_key(|m| (m.root, m.position));
        let mut verdicts: Vec<Verdict> = Vec::new();
        for cluster in at_root.chunk_by(|x, y| x.root == y.root) {
            let best = &cluster[keep_among(&self.keep, cluster.iter().map(|m| m.score))];
            let kept = Kept {
                position: best.position,
                representative: best.representative,
            };
            verdicts.extend(cluster.iter().map(|m| Verdict {
                member: m.position,
                kept,
            }));
        }
        Ok(
            exchange(worker, verdicts, owners.by(|v: &Verdict| v.member))?
                .into_iter()
                .map(|v| (v.member, v.kept))
                .collect(),
        )
    }

    /// Under exact verification every removed document's similarity to the kept one is exact,
    /// as one process reports it: pairs of representatives not checked yet (not in `exact`) are
    /// checked now and added to `exact`. Collective.
    pub(super) fn check_kept_exactly(
        &self,
        worker: &mut Worker,
        share: &mut Share,
        owned: &Owned,
        reps: &HashMap<u64, u64>,
        kept_of: &HashMap<u64, Kept>,
        exact: &mut HashMap<Pair, f64>,
    ) -> Result<(), Error> {
        let mut report: Vec<Pair> = owned
            .iter()
            .filter_map(|(pos, own)| match (own, kept_of.get(pos)) {
                (Own::Doc { .. }, Some(kept)) if kept.position != *pos => {
                    let (rep, kept_rep) = (reps[pos], kept.representative);
                    (rep != kept_rep).then(|| Pair {
                        first: rep.min(kept_rep),
                        second: rep.max(kept_rep),
                    })
                }
                _ => None,
            })
            .collect();
        report.sort_unstable();
        report.dedup();
        let mut report: Vec<Pair> = exchange(worker, report, share.owners.by(|p: &Pair| p.second))?
            .into_iter()
            .filter(|pair| !exact.contains_key(pair))
            .collect();
        report.sort_unstable();
        report.dedup();
        for (pair, j) in self.exact_pairs(worker, share, report)? {
            exact.insert(pair, j);
        }
        Ok(())
    }
}

/// The decision about every owned document that is removed, by position: each asks for its
/// similarity to the kept one (exact when `exact` holds its representatives' pair, as one process
/// reports it; 1 for an exact copy; the estimate otherwise) and the kept id. Every owned
/// document was signed (an exact copy has its representative's signature). Collective.
pub(super) fn decisions(
    worker: &mut Worker,
    owners: &Owners,
    owned: &Owned,
    reps: &HashMap<u64, u64>,
    kept_of: &HashMap<u64, Kept>,
    exact: HashMap<Pair, f64>,
) -> Result<HashMap<u64, Decision>, Error> {
    let requests: Vec<SimilarityRequest> = owned
        .iter()
        .filter_map(|(pos, own)| match (own, kept_of.get(pos)) {
            (Own::Doc { signature, .. }, Some(kept)) if kept.position != *pos => {
                Some(SimilarityRequest {
                    position: *pos,
                    kept: kept.position,
                    representative: reps[pos],
                    kept_representative: kept.representative,
                    signature: signature.clone(),
                    jaccard: f64::NAN,
                })
            }
            _ => None,
        })
        .collect();
    let route = owners.by(|r: &SimilarityRequest| r.pair().second);
    let mut at_later = exchange(worker, requests, route)?;
    for request in at_later.iter_mut() {
        request.jaccard = exact.get(&request.pair()).copied().unwrap_or(f64::NAN);
    }
    drop(exact);
    let at_kept = exchange(worker, at_later, owners.by(|r: &SimilarityRequest| r.kept))?;
    let answers: Vec<Answer> = at_kept
        .into_iter()
        .map(|r| {
            let relation = Relation {
                same_text_as_kept: r.representative == r.kept_representative,
                copy_of_earlier: r.representative != r.position,
            };
            let similarity = relation.similarity(Some(r.jaccard), || {
                estimate_jaccard_bbit(&r.signature, owned.signature(r.kept))
            });
            Answer {
                position: r.position,
                similarity,
                exact: relation.kind() == DuplicateKind::Exact,
                kept_id: owned.id(r.kept).to_string(),
            }
        })
        .collect();
    Ok(
        exchange(worker, answers, owners.by(|a: &Answer| a.position))?
            .into_iter()
            .map(|a| {
                let kind = if a.exact {
                    DuplicateKind::Exact
                } else {
                    DuplicateKind::Near
                };
                let decision = Decision {
                    similarity: a.similarity,
                    kind,
                    kept_id: a.kept_id,
                };
                (a.position, decision)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use crate::pipeline::distributed::clusters::{Label, components};
    use crate::pipeline::distributed::pairs::Pair;

    #[test]
    fn components_label_with_the_earliest_position() {
        let edges = [(5, 9), (9, 2), (7, 8)].map(|(first, second)| Pair { first, second });
        let mut labels: Vec<(u64, u64)> = components(&edges)
            .into_iter()
            .map(|Label { position, root }| (position, root))
            .collect();
        labels.sort_unstable();
        assert_eq!(labels, [(2, 2), (5, 2), (7, 7), (8, 7), (9, 2)]);
    }
}
