//! Clustering: verified pairs → connected components → one kept document per cluster.
//!
//! [`UnionFind`] joins verified pairs (path halving, union by size). [`KeepPolicy`] then names the
//! member of each cluster that stays; every other member is removed as a duplicate of it.

use crate::error::ConfigError;
use crate::read::FieldPath;

/// Disjoint sets over `0..n`, with path halving and union by size.
#[derive(Debug, Clone)]
pub struct UnionFind {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl UnionFind {
    pub fn new(n: usize) -> Self {
        UnionFind {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
        }
    }

    pub fn len(&self) -> usize {
        self.parent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }

    /// The representative of `x`'s set.
    pub fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let grandparent = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = grandparent;
            x = grandparent;
        }
        x
    }

    /// Joins the sets of `a` and `b`; returns false when they were already one set.
    pub fn union(&mut self, a: u32, b: u32) -> bool {
        let (mut ra, mut rb) = (self.find(a), self.find(b));
        if ra == rb {
            return false;
        }
        if self.size[ra as usize] < self.size[rb as usize] {
            std::mem::swap(&mut ra, &mut rb);
        }
        self.parent[rb as usize] = ra;
        self.size[ra as usize] += self.size[rb as usize];
        true
    }

    /// Size of `x`'s set.
    pub fn set_size(&mut self, x: u32) -> usize {
        let root = self.find(x);
        self.size[root as usize] as usize
    }
}

/// Disjoint sets over a sparse subset of `u32` ids (the slots that appear in a verified pair or
/// have exact copies): memory follows the duplicates, not the corpus. Every other id is a set of
/// its own, for which [`SparseUnionFind::find`] says `None`. Sets are named by their root's
/// *node*, a dense number below [`SparseUnionFind::len`].
#[derive(Debug, Clone)]
pub struct SparseUnionFind {
    /// The member ids, sorted and distinct; node `i` is `ids[i]`.
    ids: Vec<u32>,
    sets: UnionFind,
}

impl SparseUnionFind {
    /// Sets over `ids` (any order, repeats allowed), each alone.
    pub fn new(mut ids: Vec<u32>) -> Self {
        ids.sort_unstable();
        ids.dedup();
        ids.shrink_to_fit();
        let sets = UnionFind::new(ids.len());
        SparseUnionFind { ids, sets }
    }

    /// Member nodes.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The node of member `id`.
    pub fn node(&self, id: u32) -> Option<u32> {
        self.ids.binary_search(&id).ok().map(|at| at as u32)
    }

    /// The root node of `id`'s set, or `None` when `id` is not a member (a set of its own).
    pub fn find(&mut self, id: u32) -> Option<u32> {
        let node = self.node(id)?;
        Some(self.sets.find(node))
    }

    /// Members in the set of `id` (1 for an id that is not a member).
    pub fn set_size(&mut self, id: u32) -> usize {
        match self.node(id) {
            Some(node) => self.sets.set_size(node),
            None => 1,
        }
    }

    /// Joins the sets of members `a` and `b`; ids that are not members are left alone.
    pub fn union(&mut self, a: u32, b: u32) -> bool {
        match (self.node(a), self.node(b)) {
            (Some(a), Some(b)) => self.sets.union(a, b),
            _ => false,
        }
    }
}

/// Which member of a cluster is kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum KeepPolicy {
    /// The first in input order.
    #[default]
    First,
    /// The one with the longest text (in bytes); ties go to input order.
    Longest,
    /// The one with the largest value of a numeric JSON field; a missing or non-numeric value counts
    /// as lowest; ties go to input order.
    Max(FieldPath),
}

impl KeepPolicy {
    /// The JSON field this policy reads, if any.
    pub fn field(&self) -> Option<&FieldPath> {
        match self {
            KeepPolicy::Max(field) => Some(field),
            _ => None,
        }
    }

    /// Picks the kept member from the members' scores, given in input order (text length for
    /// `Longest`, the field's value for `Max`, ignored by `First`). Returns the chosen index.
    pub fn choose(&self, scores: impl Iterator<Item = f64>) -> usize {
        match self {
            KeepPolicy::First => 0,
            KeepPolicy::Longest | KeepPolicy::Max(_) => {
                let mut best = (0, f64::NEG_INFINITY);
                for (i, score) in scores.enumerate() {
                    // Strictly greater: ties stay with the earlier member. NaN never wins.
                    if score > best.1 {
                        best = (i, score);
                    }
                }
                best.0
            }
        }
    }
}

impl std::str::FromStr for KeepPolicy {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "first" => Ok(KeepPolicy::First),
            "longest" => Ok(KeepPolicy::Longest),
            _ => match s.strip_prefix("max:") {
                Some(field) if !field.is_empty() => Ok(KeepPolicy::Max(field.parse()?)),
                _ => Err(ConfigError::KeepPolicy(s.to_string())),
            },
        }
    }
}

impl std::fmt::Display for KeepPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeepPolicy::First => f.write_str("first"),
            KeepPolicy::Longest => f.write_str("longest"),
            KeepPolicy::Max(field) => write!(f, "max:{field}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cluster::{KeepPolicy, UnionFind};
    use crate::read::FieldPath;

    #[test]
    fn union_find_joins_transitively() {
        let mut uf = UnionFind::new(6);
        assert!(uf.union(0, 1));
        assert!(uf.union(1, 2));
        assert!(!uf.union(0, 2));
        uf.union(4, 5);
        assert_eq!(uf.find(0), uf.find(2));
        assert_ne!(uf.find(0), uf.find(4));
        assert_eq!(uf.set_size(2), 3);
        assert_eq!(uf.set_size(3), 1);
    }

    #[test]
    fn union_by_size_keeps_trees_shallow() {
        let n = 1 << 12;
        let mut uf = UnionFind::new(n);
        for i in 1..n as u32 {
            uf.union(i - 1, i);
        }
        assert_eq!(uf.set_size(0), n);
        // Every node reaches the root within log2(n) steps.
        for x in 0..n as u32 {
            let (mut steps, mut y) = (0, x);
            while uf.parent[y as usize] != y {
                y = uf.parent[y as usize];
                steps += 1;
            }
            assert!(steps <= 12, "depth {steps}");
        }
    }

    #[test]
    fn keep_policies_break_ties_by_input_order() {
        let scores = [3.0, 7.0, 7.0, 1.0];
        assert_eq!(KeepPolicy::First.choose(scores.into_iter()), 0);
        assert_eq!(KeepPolicy::Longest.choose(scores.into_iter()), 1);
        let all_missing = [f64::NEG_INFINITY; 3];
        assert_eq!(
            KeepPolicy::Max(FieldPath::key("n")).choose(all_missing.into_iter()),
            0
        );
        assert_eq!(KeepPolicy::Longest.choose([f64::NAN, 1.0].into_iter()), 1);
    }

    #[test]
    fn parses_policies() {
        assert_eq!(
            "max:score".parse::<KeepPolicy>(),
            Ok(KeepPolicy::Max(FieldPath::key("score")))
        );
        assert!("max:".parse::<KeepPolicy>().is_err());
        assert!("biggest".parse::<KeepPolicy>().is_err());
    }
}

#[cfg(test)]
mod properties {
    use std::collections::VecDeque;

    use proptest::prelude::*;

    use crate::cluster::{KeepPolicy, UnionFind};
    use crate::read::FieldPath;

    /// Up to 80 elements and up to 200 pairs among them: a chain `0-1-2-…` through some of
    /// them (the worst order for a union-find without union by size), then any pairs
    /// (self-pairs and repeats included).
    fn graph() -> impl Strategy<Value = (usize, Vec<(u32, u32)>)> {
        (1..=80usize).prop_flat_map(|n| {
            let node = 0..n as u32;
            (
                Just(n),
                0..=n as u32,
                prop::collection::vec((node.clone(), node), 0..120),
            )
                .prop_map(|(n, chain, pairs)| {
                    let chain = (1..chain).map(|i| (i - 1, i));
                    (n, chain.chain(pairs).collect())
                })
        })
    }

    /// Component number of every element, by breadth-first search over `edges`.
    fn components(n: usize, edges: &[(u32, u32)]) -> Vec<usize> {
        let mut adjacent = vec![Vec::new(); n];
        for &(a, b) in edges {
            adjacent[a as usize].push(b as usize);
            adjacent[b as usize].push(a as usize);
        }
        let mut component = vec![usize::MAX; n];
        for start in 0..n {
            if component[start] != usize::MAX {
                continue;
            }
            component[start] = start;
            let mut queue = VecDeque::from([start]);
            while let Some(x) = queue.pop_front() {
                for &y in &adjacent[x] {
                    if component[y] == usize::MAX {
                        component[y] = start;
                        queue.push_back(y);
                    }
                }
            }
        }
        component
    }

    /// A score as `choose` may see it: small values (so ties happen), NaN and infinities.
    fn score() -> impl Strategy<Value = f64> {
        prop_oneof![
            6 => (-3..4i32).prop_map(f64::from),
            1 => Just(f64::NAN),
            1 => Just(f64::NEG_INFINITY),
            1 => Just(f64::INFINITY),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// After joining any pairs, two elements share a representative exactly when a search
        /// over the pairs connects them; set sizes are component sizes; `union` reports true
        /// once per merge (so n - components times); and trees stay within log2(n) deep.
        #[test]
        fn union_find_components_equal_breadth_first_search((n, edges) in graph()) {
            let mut uf = UnionFind::new(n);
            let mut merges = 0;
            for (i, &(a, b)) in edges.iter().enumerate() {
                let before = components(n, &edges[..i]);
                let merged = uf.union(a, b);
                prop_assert_eq!(merged, before[a as usize] != before[b as usize], "pair {}", i);
                merges += usize::from(merged);
            }
            // Before any `find` outside `union` shortens the paths.
            let depth_limit = (n as f64).log2().floor() as usize;
            for x in 0..n {
                let (mut depth, mut y) = (0, x as u32);
                while uf.parent[y as usize] != y {
                    y = uf.parent[y as usize];
                    depth += 1;
                }
                prop_assert!(depth <= depth_limit, "depth {} of {} elements", depth, n);
            }
            let component = components(n, &edges);
            let count = (0..n).filter(|&x| component[x] == x).count();
            prop_assert_eq!(merges, n - count);
            for x in 0..n {
                let size = component.iter().filter(|&&c| c == component[x]).count();
                prop_assert_eq!(uf.set_size(x as u32), size);
                for y in 0..n {
                    prop_assert_eq!(
                        uf.find(x as u32) == uf.find(y as u32),
                        component[x] == component[y],
                        "{} and {}", x, y
                    );
                }
            }
        }

        /// `first` keeps the first member; `longest` and `max:` keep the first member with the
        /// highest score, NaN never winning and nothing above minus infinity meaning the first.
        #[test]
        fn keep_policies_choose_the_first_best(scores in prop::collection::vec(score(), 1..10)) {
            let best = scores
                .iter()
                .copied()
                .filter(|s| !s.is_nan())
                .fold(f64::NEG_INFINITY, f64::max);
            let expected = if best == f64::NEG_INFINITY {
                0
            } else {
                scores.iter().position(|&s| s == best).expect("the best is a score")
            };
            prop_assert_eq!(KeepPolicy::First.choose(scores.iter().copied()), 0);
            prop_assert_eq!(KeepPolicy::Longest.choose(scores.iter().copied()), expected);
            prop_assert_eq!(KeepPolicy::Max(FieldPath::key("n")).choose(scores.iter().copied()), expected);
        }

        /// A keep policy reads back from how it prints.
        #[test]
        fn keep_policies_parse_what_they_print(
            policy in prop_oneof![
                Just(KeepPolicy::First),
                Just(KeepPolicy::Longest),
                "\\PC{1,12}".prop_map(|k| KeepPolicy::Max(FieldPath::key(&k))),
            ],
        ) {
            prop_assert_eq!(policy.to_string().parse::<KeepPolicy>(), Ok(policy));
        }
    }
}
