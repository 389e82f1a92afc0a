//! Sets of texts (connected components of the verified pairs), within the memory budget.
//!
//! A batch run's verified pairs, its links to indexed documents and its texts with exact copies
//! are gathered by a [`SetsBuilder`] in spillable columns. [`SetsBuilder::finish`] joins them:
//! - in memory, with a union-find over the ids that occur ([`SparseUnionFind`], 12 bytes an id),
//!   when their count fits the share of the budget it is given;
//! - otherwise on sorted runs ([`label_components`]): the alternating large-star and small-star
//!   rounds of Kiveris et al. (*Connected Components in MapReduce and Beyond*, 2014), each round two
//!   external sorts of the edges, O(log² n) rounds; at their fixed point every set is a star around
//!   its smallest id, and each id is labelled with that smallest id.
//!
//! Either way a set is named by one of its members, and nothing downstream depends on which: the
//! clusters are grouped by the name and ranked by their members (`core::clusters::Rank`).

use std::io;
use std::sync::Arc;

use crate::cluster::SparseUnionFind;
use crate::spill::{Column, FixedRecord, KeyedColumn, Sorter, SpillSpace};

/// Memory of the in-memory union-find, per id that occurs (ids, parents and sizes; the id list
/// is built with repeats before they are removed).
const UNION_FIND_BYTES_PER_ID: u64 = 16;

/// Rounds of large-star and small-star after which labelling gives up. The rounds needed grow as
/// O(log² n); this is far beyond what 2³² ids can need.
const MAX_ROUNDS: usize = 1024;

/// The labels of [`label_components`]: each id that occurs and the smallest id of its set,
/// sorted by id, and how many rounds labelling took.
#[derive(Debug)]
pub(crate) struct Labels {
    pub labels: KeyedColumn<(u32, u32), u32>,
    pub rounds: u64,
}

/// Edges and lone members gathered for [`SetsBuilder::finish`].
#[derive(Debug)]
pub(crate) struct SetsBuilder {
    edges: Column<(u32, u32)>,
    alone: Column<u32>,
    space: Arc<SpillSpace>,
    max_bytes: u64,
}

/// Sets over the ids of a [`SetsBuilder`]: an id in no edge and not alone is in no set.
#[derive(Debug)]
pub(crate) enum Sets {
    /// A union-find over the ids that occur.
    Memory(SparseUnionFind),
    /// Each id that occurs and the smallest id of its set, sorted by id.
    Labelled(Labels),
}

impl SetsBuilder {
    /// A builder whose in-memory union-find may take `max_bytes`; beyond that, sets are labelled
    /// on sorted runs of at most `max_bytes` each.
    pub fn new(space: &Arc<SpillSpace>, max_bytes: u64) -> SetsBuilder {
        SetsBuilder {
            edges: Column::new(space.clone()),
            alone: Column::new(space.clone()),
            space: space.clone(),
            max_bytes,
        }
    }

    /// `a` and `b` are in one set.
    pub fn join(&mut self, a: u32, b: u32) -> io::Result<()> {
        self.edges.push(&(a, b))
    }

    /// `id` is in a set, joined to others or alone.
    pub fn add(&mut self, id: u32) -> io::Result<()> {
        self.alone.push(&id)
    }

    /// The sets.
    pub fn finish(self) -> io::Result<Sets> {
        let ids = 2 * self.edges.len() as u64 + self.alone.len() as u64;
        if ids.saturating_mul(UNION_FIND_BYTES_PER_ID) <= self.max_bytes {
            let mut all = Vec::with_capacity(ids as usize);
            for id in self.alone.iter() {
                all.push(id?);
            }
            for edge in self.edges.iter() {
                let (a, b) = edge?;
                all.extend([a, b]);
            }
            let mut sets = SparseUnionFind::new(all);
            for edge in self.edges.iter() {
                let (a, b) = edge?;
                sets.union(a, b);
            }
            return Ok(Sets::Memory(sets));
        }
        label_components(
            self.edges.iter(),
            self.alone.iter(),
            &self.space,
            self.max_bytes,
        )
        .map(Sets::Labelled)
    }
}

/// Labels the connected components of `edges` (and of `alone` ids, each in a set even with no
/// edge) on sorted runs of at most `max_bytes`: each id that occurs, with the smallest id of its
/// component, sorted by id.
pub(crate) fn label_components(
    edges: impl Iterator<Item = io::Result<(u32, u32)>>,
    alone: impl Iterator<Item = io::Result<u32>>,
    space: &Arc<SpillSpace>,
    max_bytes: u64,
) -> io::Result<Labels> {
    // The graph as distinct edges (low, high); an id alone is a loop (id, id).
    let mut sorter = Sorter::new(space.clone(), max_bytes);
    for edge in edges {
        let (a, b) = edge?;
        sorter.push((a.min(b), a.max(b)))?;
    }
    for id in alone {
        let id = id?;
        sorter.push((id, id))?;
    }
    let mut graph = distinct(sorter, space)?;
    let mut rounds = 0;
    loop {
        let large = star_round(&graph, Star::Large, space, max_bytes)?;
        if large.input_is_stars {
            break;
        }
        graph = star_round(&large.graph, Star::Small, space, max_bytes)?.graph;
        rounds += 1;
        if rounds == MAX_ROUNDS {
            return Err(io::Error::other(
                "connected components did not converge (an internal error)",
            ));
        }
    }
    // Stars around each set's smallest id: an id's label is its smallest neighbour or itself.
    let mut labels = KeyedColumn::new(space.clone(), |label: &(u32, u32)| label.0);
    let mut groups = both_directions(&graph, space, max_bytes)?.groups(|edge: &(u32, u32)| edge.0);
    let mut group = Vec::new();
    while groups.next_group(&mut group)? {
        let id = group[0].0;
        labels.push(&(id, group[0].1.min(id)))?;
    }
    Ok(Labels {
        labels,
        rounds: rounds as u64 + 1,
    })
}

/// The kind of round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Star {
    /// Every id's larger neighbours are joined to the smallest of its neighbours and itself.
    Large,
    /// Every id and its smaller neighbours are joined to the smallest of them.
    Small,
}

/// What a round made of a graph.
struct Round {
    /// The new graph, distinct edges (low, high), sorted.
    graph: Column<(u32, u32)>,
    /// Whether the round's input was already stars around each component's smallest id: every
    /// id either has only larger neighbours (a centre) or exactly one neighbour, a smaller one.
    input_is_stars: bool,
}

/// One round over `graph` (distinct edges (low, high)). Both kinds of round keep each
/// component's ids connected and never add an edge across components.
fn star_round(
    graph: &Column<(u32, u32)>,
    star: Star,
    space: &Arc<SpillSpace>,
    max_bytes: u64,
) -> io::Result<Round> {
    let mut out = Sorter::new(space.clone(), max_bytes);
    let mut input_is_stars = true;
    let mut groups = both_directions(graph, space, max_bytes)?.groups(|edge: &(u32, u32)| edge.0);
    let mut group = Vec::new();
    while groups.next_group(&mut group)? {
        let id = group[0].0;
        // Neighbours come sorted: the first is the smallest (a loop is the id itself).
        let smallest = group[0].1.min(id);
        if group.iter().all(|&(_, v)| v == id) {
            // An id with no neighbour but itself stays, alone.
            out.push((id, id))?;
            continue;
        }
        let leaf = group.len() == 1 && smallest < id;
        input_is_stars &= leaf || smallest == id;
        match star {
            Star::Large => {
                for &(_, v) in group.iter().filter(|&&(_, v)| v > id) {
                    out.push((smallest, v))?;
                }
            }
            Star::Small => {
                for &(_, v) in group.iter().filter(|&&(_, v)| v < id && v != smallest) {
                    out.push((smallest, v))?;
                }
                if smallest != id {
                    out.push((smallest, id))?;
                }
            }
        }
    }
    Ok(Round {
        graph: distinct(out, space)?,
        input_is_stars,
    })
}

/// Every edge of `graph` in both directions (a loop once), sorted by its first id.
fn both_directions(
    graph: &Column<(u32, u32)>,
    space: &Arc<SpillSpace>,
    max_bytes: u64,
) -> io::Result<crate::spill::Sorted<(u32, u32)>> {
    let mut sorter = Sorter::new(space.clone(), max_bytes);
    for edge in graph.iter() {
        let (a, b) = edge?;
        sorter.push((a, b))?;
        if a != b {
            sorter.push((b, a))?;
        }
    }
    sorter.into_sorted()
}

/// The sorted records of `sorter`, each once.
fn distinct<T: FixedRecord + Ord + Copy + Send>(
    sorter: Sorter<T>,
    space: &Arc<SpillSpace>,
) -> io::Result<Column<T>> {
    let mut column = Column::new(space.clone());
    let mut last = None;
    for record in sorter.into_sorted()? {
        let record = record?;
        if last != Some(record) {
            column.push(&record)?;
            last = Some(record);
        }
    }
    Ok(column)
}

impl Sets {
    /// Rounds of labelling on sorted runs (0: joined in memory).
    pub fn label_rounds(&self) -> u64 {
        match self {
            Sets::Memory(_) => 0,
            Sets::Labelled(labels) => labels.rounds,
        }
    }

    /// The name of `id`'s set (one of its members), or `None` when `id` is in no set. In a
    /// labelled set this is a binary search on disk: for a few ids (indexed documents), not for
    /// every document.
    pub fn set_of(&mut self, id: u32) -> io::Result<Option<u32>> {
        match self {
            Sets::Memory(sets) => Ok(sets.find(id)),
            Sets::Labelled(Labels { labels, .. }) => Ok(labels.get(&id)?.map(|(_, label)| label)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use proptest::prelude::*;

    use crate::cluster::SparseUnionFind;
    use crate::pipeline::sets::{Sets, SetsBuilder, label_components};
    use crate::spill::SpillSpace;

    /// A space that spills at once, so every sort of the labelling goes through runs on disk.
    fn tight_space(dir: &std::path::Path) -> Arc<SpillSpace> {
        Arc::new(SpillSpace::new(dir, 0))
    }

    /// The partition `labels` make of the ids, as the sorted lists of each set's ids.
    fn partition(labels: impl Iterator<Item = (u32, u32)>) -> Vec<Vec<u32>> {
        let mut by_label: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for (id, label) in labels {
            by_label.entry(label).or_default().push(id);
        }
        let mut sets: Vec<Vec<u32>> = by_label.into_values().collect();
        sets.sort();
        sets
    }

    fn union_find_partition(edges: &[(u32, u32)], alone: &[u32]) -> Vec<Vec<u32>> {
        let mut ids: Vec<u32> = alone.to_vec();
        ids.extend(edges.iter().flat_map(|&(a, b)| [a, b]));
        let mut sets = SparseUnionFind::new(ids.clone());
        for &(a, b) in edges {
            sets.union(a, b);
        }
        ids.sort_unstable();
        ids.dedup();
        partition(ids.into_iter().map(|id| (id, sets.find(id).unwrap())))
    }

    proptest! {
        /// Labelling on sorted runs gives the union-find's sets, each labelled with its smallest
        /// id, whatever the graph (chains, stars, loops, repeats) and with every sort spilled.
        #[test]
        fn issue11_labelled_components_equal_union_find(
            edges in prop::collection::vec((0u32..60, 0u32..60), 0..120),
            alone in prop::collection::vec(0u32..80, 0..10),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let space = tight_space(dir.path());
            let labels = label_components(
                edges.iter().copied().map(Ok),
                alone.iter().copied().map(Ok),
                &space,
                64,
            )
            .unwrap();
            let labels: Vec<(u32, u32)> = labels.labels.iter().map(Result::unwrap).collect();
            prop_assert!(labels.windows(2).all(|w| w[0].0 < w[1].0), "sorted by id, once each");
            let got = partition(labels.iter().copied());
            prop_assert_eq!(&got, &union_find_partition(&edges, &alone));
            for &(id, label) in &labels {
                let set = got.iter().find(|s| s.contains(&id)).unwrap();
                prop_assert_eq!(label, set[0], "labelled with the set's smallest id");
            }
        }
    }

    /// A long chain (the worst case for propagating labels one step a round) is one set.
    #[test]
    fn issue11_a_long_chain_is_one_set() {
        let dir = tempfile::tempdir().unwrap();
        let space = tight_space(dir.path());
        // Ids shuffled along the chain, so that no order helps.
        let order: Vec<u32> = (0..2_000u32).map(|i| (i * 7919) % 2_000).collect();
        let edges: Vec<(u32, u32)> = order.windows(2).map(|w| (w[0], w[1])).collect();
        let labels =
            label_components(edges.into_iter().map(Ok), std::iter::empty(), &space, 4096).unwrap();
        assert_eq!(labels.labels.len(), 2_000);
        assert!(labels.labels.iter().all(|l| l.unwrap().1 == 0));
        assert!(labels.rounds > 1);
    }

    /// The builder joins in memory when it may, on sorted runs when it may not, and both name
    /// the same sets.
    #[test]
    fn issue11_sets_in_memory_and_labelled_agree() {
        let dir = tempfile::tempdir().unwrap();
        let space = tight_space(dir.path());
        let build = |max_bytes: u64| {
            let mut builder = SetsBuilder::new(&space, max_bytes);
            for (a, b) in [(1, 2), (2, 5), (7, 8), (9, 9)] {
                builder.join(a, b).unwrap();
            }
            builder.add(11).unwrap();
            builder.add(1).unwrap();
            builder.finish().unwrap()
        };
        let mut memory = build(u64::MAX);
        let mut labelled = build(0);
        assert!(matches!(memory, Sets::Memory(_)));
        assert!(matches!(labelled, Sets::Labelled(_)));
        for sets in [&mut memory, &mut labelled] {
            assert_eq!(sets.set_of(1).unwrap(), sets.set_of(5).unwrap());
            assert_ne!(sets.set_of(1).unwrap(), sets.set_of(7).unwrap());
            assert!(sets.set_of(11).unwrap().is_some() && sets.set_of(9).unwrap().is_some());
            assert_eq!(sets.set_of(3).unwrap(), None);
        }
        assert_eq!(labelled.set_of(5).unwrap(), Some(1));
    }
}
