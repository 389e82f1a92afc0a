//! Cluster assembly and order, and the document each cluster keeps.
//!
//! Verified pairs join texts into sets (`pipeline/sets.rs`); a batch run's documents join their text's set
//! (on sorted runs, in `pipeline/assemble.rs`), the exact copies of a text with it. A set of two or more documents (an indexed
//! document it is linked to counts) is a cluster. Clusters rank largest first, then by their
//! first member in input order ([`Rank`]). A cluster linked to indexed documents keeps the
//! earliest of them (kept by an earlier run, it wins); otherwise the keep policy picks among its
//! members ([`keep`]). Streaming and distributed runs form their sets their own way (a kept
//! document and what was removed as its duplicate; labels exchanged between workers) and
//! assemble and rank them here too ([`Assembly`]).

use std::collections::HashMap;
use std::hash::Hash;

use crate::cluster::KeepPolicy;
use crate::error::Error;
use crate::pipeline::docs::{DocState, DocTable};

/// Where a cluster ranks among a run's clusters: the largest first; of equal size, the one whose
/// first member comes first in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rank {
    /// Documents in the cluster (an indexed kept document included).
    pub size: usize,
    /// Input position of its first member of this run.
    pub first: u64,
}

impl Rank {
    /// A key that sorts as the rank does (for records sorted on disk).
    pub fn key(&self) -> (u64, u64) {
        (u64::MAX - self.size as u64, self.first)
    }
}

impl Ord for Rank {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for Rank {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// One cluster: its set, its members of this run in input order, and its size.
#[derive(Debug)]
pub(crate) struct Cluster<K, M> {
    pub set: K,
    pub members: Vec<M>,
    /// Members, and the indexed document the cluster keeps if it keeps one.
    pub size: usize,
}

/// Documents gathered by the set they belong to, in input order.
#[derive(Debug)]
pub(crate) struct Assembly<K, M> {
    index_of: HashMap<K, usize>,
    sets: Vec<(K, Vec<M>)>,
}

impl<K: Hash + Eq + Copy, M> Assembly<K, M> {
    pub fn new() -> Self {
        Assembly {
            index_of: HashMap::new(),
            sets: Vec::new(),
        }
    }

    /// Whether a member of `set` was added.
    pub fn contains(&self, set: K) -> bool {
        self.index_of.contains_key(&set)
    }

    /// Adds `member` to `set`; members come in input order.
    pub fn add(&mut self, set: K, member: M) {
        let sets = &mut self.sets;
        let index = *self.index_of.entry(set).or_insert_with(|| {
            sets.push((set, Vec::new()));
            sets.len() - 1
        });
        sets[index].1.push(member);
    }

    /// The clusters: sets of two or more documents, counting `outside(set)` documents that are
    /// not of this run (an indexed document the set keeps), ranked ([`Rank`]); `position` is a
    /// member's position in the input.
    pub fn into_clusters(
        self,
        outside: impl Fn(K) -> usize,
        position: impl Fn(&M) -> u64,
    ) -> Vec<Cluster<K, M>> {
        let mut clusters: Vec<Cluster<K, M>> = self
            .sets
            .into_iter()
            .map(|(set, members)| Cluster {
                size: members.len() + outside(set),
                set,
                members,
            })
            .filter(|c| c.size >= 2)
            .collect();
        clusters.sort_unstable_by_key(|c| Rank {
            size: c.size,
            first: position(&c.members[0]),
        });
        clusters
    }
}

/// What a cluster keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep<N> {
    /// Its member at this index.
    Member(usize),
    /// An indexed document, kept by an earlier run.
    Indexed(N),
}

/// The document a cluster keeps: the earliest indexed document it is linked to, when it has one
/// (kept before, it wins); otherwise the member the keep policy picks from the members' scores,
/// in input order (the first best).
pub(crate) fn keep<N>(
    policy: &KeepPolicy,
    indexed: Option<N>,
    scores: impl Iterator<Item = f64>,
) -> Keep<N> {
    match indexed {
        Some(node) => Keep::Indexed(node),
        None => Keep::Member(keep_among(policy, scores)),
    }
}

/// The member a cluster linked to no indexed document keeps (see [`keep`]): its index among the
/// members whose scores are given in input order.
pub(crate) fn keep_among(policy: &KeepPolicy, scores: impl Iterator<Item = f64>) -> usize {
    policy.choose(scores)
}

/// Calls `each` with the slot of every text that has exact copies, once per copy: such a text is
/// in a set (of its documents) even when no pair joins it to another.
pub(in crate::pipeline) fn for_each_copied_text(
    docs: &DocTable,
    mut each: impl FnMut(u32) -> Result<(), Error>,
) -> Result<(), Error> {
    for state in docs.states() {
        if let DocState::Exact(slot) = state? {
            each(slot)?;
        }
    }
    Ok(())
}

/// A document of a batch run in a set: its position, its text's slot, and whether it is a copy
/// of an earlier document's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Member {
    pub doc: usize,
    pub slot: u32,
    pub copy: bool,
}

#[cfg(test)]
mod tests {
    use crate::cluster::KeepPolicy;
    use crate::pipeline::core::clusters::{Assembly, Keep, Rank, keep};

    #[test]
    fn clusters_rank_largest_first_then_by_first_member() {
        let mut ranks = [
            Rank { size: 2, first: 1 },
            Rank { size: 3, first: 9 },
            Rank { size: 2, first: 0 },
            Rank { size: 3, first: 4 },
        ];
        ranks.sort();
        let order: Vec<(usize, u64)> = ranks.iter().map(|r| (r.size, r.first)).collect();
        assert_eq!(order, [(3, 4), (3, 9), (2, 0), (2, 1)]);
    }

    /// Sets of one are no clusters unless an outside document joins them; members stay in the
    /// order they were added.
    #[test]
    fn an_assembly_keeps_sets_of_two_or_more_documents() {
        let mut assembly: Assembly<char, u64> = Assembly::new();
        for (set, position) in [('a', 0), ('b', 1), ('a', 2), ('c', 3), ('d', 4), ('d', 5)] {
            assembly.add(set, position);
        }
        assert!(assembly.contains('c') && !assembly.contains('e'));
        let clusters = assembly.into_clusters(|set| usize::from(set == 'b'), |&p| p);
        let got: Vec<(char, Vec<u64>, usize)> = clusters
            .into_iter()
            .map(|c| (c.set, c.members, c.size))
            .collect();
        assert_eq!(
            got,
            [
                ('a', vec![0, 2], 2),
                ('b', vec![1], 2),
                ('d', vec![4, 5], 2)
            ]
        );
    }

    #[test]
    fn an_indexed_document_wins_its_cluster() {
        let scores = [1.0, 5.0, 5.0];
        assert_eq!(
            keep(&KeepPolicy::Longest, None::<u32>, scores.into_iter()),
            Keep::Member(1)
        );
        assert_eq!(
            keep(&KeepPolicy::Longest, Some(7u32), scores.into_iter()),
            Keep::Indexed(7)
        );
        assert_eq!(
            keep(&KeepPolicy::First, None::<u32>, scores.into_iter()),
            Keep::Member(0)
        );
    }
}
