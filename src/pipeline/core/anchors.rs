//! Which members of a band bucket pair: the anchor rule.
//!
//! A bucket is the documents that share one band key, in input order (slots, positions and
//! indexed documents are all numbered in input order, and an index's documents come before the
//! run's). Each member pairs with the earlier members among the bucket's first [`ANCHORS`], its
//! *anchors*: a bucket of up to `ANCHORS + 1` members gives all its pairs; a larger one (almost
//! always one big family of copies) gives `ANCHORS` pairs per member instead of a quadratic
//! number. A batch run applies the rule to whole sorted buckets ([`bucket_pairs`]), a
//! distributed run to the buckets each worker gathers, a streaming run to buckets that grow one
//! kept document at a time ([`is_anchor`]), and a lookup in an index asks for at most
//! [`ANCHORS`] members of a bucket.

/// How many earlier members of its bucket a member pairs with, at most: the bucket's first ones.
pub(crate) const ANCHORS: usize = 64;

/// Calls `pair(earlier, later)` with the positions inside a bucket of `len` members (0 for the
/// first) of every pair the bucket gives, later member by later member.
#[inline]
pub(crate) fn bucket_pairs(len: usize, mut pair: impl FnMut(usize, usize)) {
    for later in 1..len {
        for earlier in 0..later.min(ANCHORS) {
            pair(earlier, later);
        }
    }
}

/// Whether the member at `position` of a bucket (0 for the first) is an anchor: one that later
/// members pair with. A front-end that adds members one at a time need remember only these.
#[inline]
pub(crate) fn is_anchor(position: usize) -> bool {
    position < ANCHORS
}

#[cfg(test)]
mod tests {
    use crate::pipeline::core::anchors::{ANCHORS, bucket_pairs, is_anchor};

    /// Every pair in small buckets; in large ones, each member with the first `ANCHORS` only,
    /// and the members `is_anchor` names are exactly those that appear as earlier members.
    #[test]
    fn members_pair_with_the_anchors_of_their_bucket() {
        let mut pairs = Vec::new();
        bucket_pairs(4, |a, b| pairs.push((a, b)));
        assert_eq!(pairs, [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]);
        let len = ANCHORS + 10;
        pairs.clear();
        bucket_pairs(len, |a, b| pairs.push((a, b)));
        assert_eq!(pairs.len(), ANCHORS * (ANCHORS + 1) / 2 + 9 * ANCHORS);
        assert!(pairs.iter().all(|&(a, b)| a < b && is_anchor(a)));
        let earlier: std::collections::BTreeSet<usize> = pairs.iter().map(|p| p.0).collect();
        assert_eq!(earlier.len(), ANCHORS);
        assert!(!is_anchor(ANCHORS));
        bucket_pairs(1, |_, _| panic!("a bucket of one gives no pair"));
    }
}
