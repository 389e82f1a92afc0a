//! A batch run's cluster assembly on sorted runs: from the sets of texts to ranked clusters and
//! then removals in input order, with memory bounded by the budget whatever the number of
//! duplicates.
//!
//! Three sorts, each keeping at most a sixteenth of the budget in memory and spilling sorted runs
//! beyond it ([`Sorter`]):
//! 1. every document whose text is in a set, by (set, input position) ([`members_by_set`]): the
//!    members of each set in input order, from which the cluster's kept document is chosen;
//! 2. the members of each cluster, by the cluster's [`Rank`] and then input position
//!    ([`RankedClusters`]): the clusters in the order they are numbered and reported;
//! 3. the removed documents (and, for `--annotate`, the kept members) by input position
//!    ([`Decisions`]): the order removals are reported and records annotated in.
//!
//! Only one cluster's members are in memory at a time. The rules (which document a cluster keeps,
//! how clusters rank) are the decision core's (`core::clusters`); this file only moves records.

use std::sync::Arc;

use crate::error::Error;
use crate::pipeline::core::clusters::{Keep, Member, Rank};
use crate::pipeline::core::members::Relation;
use crate::pipeline::docs::{DocState, DocTable};
use crate::pipeline::sets::{Labels, Sets};
use crate::report::Role;
use crate::spill::{ColumnIter, FixedRecord, Groups, KeyedColumn, Sorter, SpillSpace};

/// One cluster of a batch run: its members in input order, how many documents it has, and the
/// one it keeps (an indexed document is its node among the run's index matches).
#[derive(Debug)]
pub(super) struct Cluster {
    pub members: Vec<Member>,
    pub size: usize,
    pub kept: Keep<u32>,
}

impl Cluster {
    /// The kept member's slot, when the cluster keeps a document of this run.
    pub fn kept_slot(&self) -> Option<u32> {
        match self.kept {
            Keep::Member(kept) => Some(self.members[kept].slot),
            Keep::Indexed(_) => None,
        }
    }

    /// The kept member, when the cluster keeps a document of this run.
    pub fn kept_doc(&self) -> Option<usize> {
        match self.kept {
            Keep::Member(kept) => Some(self.members[kept].doc),
            Keep::Indexed(_) => None,
        }
    }

    /// What the cluster keeps, by input position rather than by place among its members.
    pub fn kept_ref(&self) -> KeptRef {
        match self.kept {
            Keep::Member(kept) => KeptRef::Doc(self.members[kept].doc as u64),
            Keep::Indexed(node) => KeptRef::Indexed(node),
        }
    }
}

/// The document a cluster keeps: one of this run (by input position) or an indexed one (by node).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum KeptRef {
    Doc(u64),
    Indexed(u32),
}

impl KeptRef {
    const LEN: usize = 9;

    fn encode(self, out: &mut [u8]) {
        let (tag, value) = match self {
            KeptRef::Doc(doc) => (0u8, doc),
            KeptRef::Indexed(node) => (1, u64::from(node)),
        };
        out[0] = tag;
        out[1..9].copy_from_slice(&value.to_le_bytes());
    }

    fn decode(bytes: &[u8]) -> KeptRef {
        let value = le_u64(&bytes[1..9]);
        match bytes[0] {
            0 => KeptRef::Doc(value),
            _ => KeptRef::Indexed(value as u32),
        }
    }
}

fn le_u64(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"))
}

fn le_u32(bytes: &[u8]) -> u32 {
    u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"))
}

fn encode_member(member: &Member, out: &mut [u8]) {
    out[..8].copy_from_slice(&(member.doc as u64).to_le_bytes());
    out[8..12].copy_from_slice(&member.slot.to_le_bytes());
    out[12] = u8::from(member.copy);
}

fn decode_member(bytes: &[u8]) -> Member {
    Member {
        doc: le_u64(bytes) as usize,
        slot: le_u32(&bytes[8..12]),
        copy: bytes[12] == 1,
    }
}

const MEMBER_LEN: usize = 13;

/// A document in a set: sorts by set, then input position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SetMember {
    root: u32,
    member: Member,
}

impl Ord for SetMember {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.root, self.member.doc).cmp(&(other.root, other.member.doc))
    }
}

impl PartialOrd for SetMember {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl FixedRecord for SetMember {
    const LEN: usize = 4 + MEMBER_LEN;
    fn encode(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(&self.root.to_le_bytes());
        encode_member(&self.member, &mut out[4..]);
    }
    fn decode(bytes: &[u8]) -> Self {
        SetMember {
            root: le_u32(bytes),
            member: decode_member(&bytes[4..]),
        }
    }
}

/// The documents of a batch run whose text is in one of `sets`, set by set (named by root), each
/// set's members in input order.
pub(super) struct SetGroups {
    groups: Groups<SetMember, fn(&SetMember) -> u32>,
    records: Vec<SetMember>,
    space: Arc<SpillSpace>,
}

/// Sorts the documents whose text is in one of `sets` by set, keeping at most `max_bytes` of
/// records in memory.
///
/// Sets held in memory are asked document by document. Labelled sets (sorted by slot, on disk)
/// are joined to the documents by merging: the first copies of texts come in slot order already,
/// so they are merged with the labels as they are read; the later copies are sorted by slot first.
pub(super) fn members_by_set(
    docs: &DocTable,
    sets: &mut Sets,
    space: &Arc<SpillSpace>,
    max_bytes: u64,
) -> Result<SetGroups, Error> {
    let error = |e| space.error(e);
    let mut sorter = Sorter::new(space.clone(), max_bytes);
    let members = docs
        .states()
        .enumerate()
        .filter_map(|(doc, state)| match state {
            Ok(state) => state.slot().map(|slot| {
                Ok(Member {
                    doc,
                    slot,
                    copy: matches!(state, DocState::Exact(_)),
                })
            }),
            Err(e) => Some(Err(e)),
        });
    match sets {
        Sets::Memory(sets) => {
            for member in members {
                let member = member?;
                if let Some(root) = sets.find(member.slot) {
                    sorter.push(SetMember { root, member }).map_err(error)?;
                }
            }
        }
        Sets::Labelled(Labels { labels, .. }) => {
            let mut in_order = LabelCursor::new(labels);
            let mut later = Sorter::new(space.clone(), max_bytes);
            let mut last_slot = None;
            for member in members {
                let member = member?;
                if member.copy || last_slot.is_some_and(|last| member.slot <= last) {
                    later.push(BySlot(member)).map_err(error)?;
                    continue;
                }
                last_slot = Some(member.slot);
                if let Some(root) = in_order.label(member.slot).map_err(error)? {
                    sorter.push(SetMember { root, member }).map_err(error)?;
                }
            }
            let mut sorted_later = LabelCursor::new(labels);
            for member in later.into_sorted().map_err(error)? {
                let BySlot(member) = member.map_err(error)?;
                if let Some(root) = sorted_later.label(member.slot).map_err(error)? {
                    sorter.push(SetMember { root, member }).map_err(error)?;
                }
            }
        }
    }
    let root: fn(&SetMember) -> u32 = |record| record.root;
    Ok(SetGroups {
        groups: sorter.into_sorted().map_err(error)?.groups(root),
        records: Vec::new(),
        space: space.clone(),
    })
}

/// Reads the labels of slots asked in increasing order.
struct LabelCursor<'a> {
    labels: ColumnIter<'a, (u32, u32)>,
    next: Option<(u32, u32)>,
}

impl<'a> LabelCursor<'a> {
    fn new(labels: &'a KeyedColumn<(u32, u32), u32>) -> Self {
        LabelCursor {
            labels: labels.iter(),
            next: None,
        }
    }

    /// The label of `slot` (asked in increasing order, repeats allowed), if it has one.
    fn label(&mut self, slot: u32) -> std::io::Result<Option<u32>> {
        loop {
            match self.next {
                Some((at, label)) if at == slot => return Ok(Some(label)),
                Some((at, _)) if at > slot => return Ok(None),
                _ => match self.labels.next() {
                    Some(record) => self.next = Some(record?),
                    None => return Ok(None),
                },
            }
        }
    }
}

/// A document sorted by its text's slot, then input position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BySlot(Member);

impl Ord for BySlot {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0.slot, self.0.doc).cmp(&(other.0.slot, other.0.doc))
    }
}

impl PartialOrd for BySlot {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl FixedRecord for BySlot {
    const LEN: usize = MEMBER_LEN;
    fn encode(&self, out: &mut [u8]) {
        encode_member(&self.0, out);
    }
    fn decode(bytes: &[u8]) -> Self {
        BySlot(decode_member(bytes))
    }
}

/// The clusters of a batch run, ranked: the sets of `sets` with two or more documents, counting
/// the indexed document `indexed_of(root)` names (the earliest one linked to the set, which it
/// keeps; asked once per set, in increasing order of `root`), each keeping what
/// `choose(indexed, members)` says (members in input order). Keeps at most `max_bytes` of
/// records in memory per sort.
pub(super) fn rank_clusters(
    docs: &DocTable,
    sets: &mut Sets,
    space: &Arc<SpillSpace>,
    max_bytes: u64,
    indexed_of: &mut dyn FnMut(u32) -> Result<Option<u32>, Error>,
    mut choose: impl FnMut(Option<u32>, &[Member]) -> Result<Keep<u32>, Error>,
) -> Result<Ranked, Error> {
    let mut groups = members_by_set(docs, sets, space, max_bytes)?;
    let mut ranked = RankedClusters::new(space, max_bytes);
    let mut members = Vec::new();
    while let Some(root) = groups.next_set(&mut members)? {
        let indexed = indexed_of(root)?;
        let size = members.len() + usize::from(indexed.is_some());
        if size < 2 {
            continue;
        }
        let kept = choose(indexed, &members)?;
        let cluster = Cluster {
            members: std::mem::take(&mut members),
            size,
            kept,
        };
        ranked.push(&cluster)?;
        members = cluster.members;
    }
    ranked.into_ranked()
}

impl SetGroups {
    /// The next set's root, its members (in input order) in `members`; `None` after the last.
    pub fn next_set(&mut self, members: &mut Vec<Member>) -> Result<Option<u32>, Error> {
        members.clear();
        let more = self
            .groups
            .next_group(&mut self.records)
            .map_err(|e| self.space.error(e))?;
        members.extend(self.records.iter().map(|r| r.member));
        Ok(more.then(|| self.records[0].root))
    }
}

/// A cluster's member with what the cluster is: sorts by the cluster's rank, then input position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RankedMember {
    rank: Rank,
    member: Member,
    kept: KeptRef,
}

impl RankedMember {
    fn key(&self) -> ((u64, u64), usize) {
        (self.rank.key(), self.member.doc)
    }
}

impl Ord for RankedMember {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for RankedMember {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl FixedRecord for RankedMember {
    const LEN: usize = 16 + MEMBER_LEN + KeptRef::LEN;
    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&(self.rank.size as u64).to_le_bytes());
        out[8..16].copy_from_slice(&self.rank.first.to_le_bytes());
        encode_member(&self.member, &mut out[16..]);
        self.kept.encode(&mut out[16 + MEMBER_LEN..]);
    }
    fn decode(bytes: &[u8]) -> Self {
        RankedMember {
            rank: Rank {
                size: le_u64(bytes) as usize,
                first: le_u64(&bytes[8..16]),
            },
            member: decode_member(&bytes[16..]),
            kept: KeptRef::decode(&bytes[16 + MEMBER_LEN..]),
        }
    }
}

/// Clusters pushed in any order and read back ranked ([`Rank`]), one at a time.
pub(super) struct RankedClusters {
    sorter: Sorter<RankedMember>,
    space: Arc<SpillSpace>,
}

impl RankedClusters {
    pub fn new(space: &Arc<SpillSpace>, max_bytes: u64) -> RankedClusters {
        RankedClusters {
            sorter: Sorter::new(space.clone(), max_bytes),
            space: space.clone(),
        }
    }

    /// Adds a cluster (members in input order).
    pub fn push(&mut self, cluster: &Cluster) -> Result<(), Error> {
        let rank = Rank {
            size: cluster.size,
            first: cluster.members[0].doc as u64,
        };
        let kept = cluster.kept_ref();
        for &member in &cluster.members {
            self.sorter
                .push(RankedMember { rank, member, kept })
                .map_err(|e| self.space.error(e))?;
        }
        Ok(())
    }

    /// The clusters in rank order.
    pub fn into_ranked(self) -> Result<Ranked, Error> {
        let rank: fn(&RankedMember) -> Rank = |record| record.rank;
        Ok(Ranked {
            groups: self
                .sorter
                .into_sorted()
                .map_err(|e| self.space.error(e))?
                .groups(rank),
            records: Vec::new(),
            space: self.space,
        })
    }
}

/// The clusters of [`RankedClusters`] in rank order.
pub(super) struct Ranked {
    groups: Groups<RankedMember, fn(&RankedMember) -> Rank>,
    records: Vec<RankedMember>,
    space: Arc<SpillSpace>,
}

impl Ranked {
    /// The next cluster, or `None` after the last.
    pub fn next_cluster(&mut self) -> Result<Option<Cluster>, Error> {
        let more = self
            .groups
            .next_group(&mut self.records)
            .map_err(|e| self.space.error(e))?;
        if !more {
            return Ok(None);
        }
        let first = self.records[0];
        let members: Vec<Member> = self.records.iter().map(|r| r.member).collect();
        let kept = match first.kept {
            KeptRef::Indexed(node) => Keep::Indexed(node),
            KeptRef::Doc(doc) => Keep::Member(
                members
                    .iter()
                    .position(|m| m.doc as u64 == doc)
                    .expect("a cluster's kept document is one of its members"),
            ),
        };
        Ok(Some(Cluster {
            members,
            size: first.rank.size,
            kept,
        }))
    }
}

/// What was decided about a cluster member: whether it is removed, its cluster's number, the
/// document the cluster keeps, its similarity to it, what its text is to the kept one's, and its
/// role under containment. Kept members are recorded only for `--annotate`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Decision {
    pub doc: u64,
    pub removed: bool,
    pub cluster: u64,
    pub kept: KeptRef,
    pub similarity: f64,
    pub relation: Relation,
    pub role: Option<Role>,
}

impl Eq for Decision {}

impl Ord for Decision {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.doc.cmp(&other.doc)
    }
}

impl PartialOrd for Decision {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl FixedRecord for Decision {
    const LEN: usize = 8 + KeptRef::LEN + 8 + 1 + 8;
    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.doc.to_le_bytes());
        self.kept.encode(&mut out[8..]);
        let at = 8 + KeptRef::LEN;
        out[at + 9..at + 17].copy_from_slice(&self.cluster.to_le_bytes());
        out[at..at + 8].copy_from_slice(&self.similarity.to_bits().to_le_bytes());
        let role = match self.role {
            None => 0u8,
            Some(Role::Copy) => 1,
            Some(Role::Container) => 2,
        };
        out[at + 8] = u8::from(self.relation.same_text_as_kept)
            | u8::from(self.relation.copy_of_earlier) << 1
            | role << 2
            | u8::from(self.removed) << 4;
    }
    fn decode(bytes: &[u8]) -> Self {
        let at = 8 + KeptRef::LEN;
        let flags = bytes[at + 8];
        Decision {
            doc: le_u64(bytes),
            removed: flags >> 4 & 1 == 1,
            cluster: le_u64(&bytes[at + 9..]),
            kept: KeptRef::decode(&bytes[8..]),
            similarity: f64::from_bits(le_u64(&bytes[at..])),
            relation: Relation {
                same_text_as_kept: flags & 1 == 1,
                copy_of_earlier: flags & 2 == 2,
            },
            role: match flags >> 2 & 3 {
                0 => None,
                1 => Some(Role::Copy),
                _ => Some(Role::Container),
            },
        }
    }
}

/// Cluster members' decisions pushed in cluster order and read back in input order.
pub(super) struct Decisions {
    sorter: Sorter<Decision>,
    space: Arc<SpillSpace>,
}

impl Decisions {
    pub fn new(space: &Arc<SpillSpace>, max_bytes: u64) -> Decisions {
        Decisions {
            sorter: Sorter::new(space.clone(), max_bytes),
            space: space.clone(),
        }
    }

    pub fn push(&mut self, removed: Decision) -> Result<(), Error> {
        self.sorter.push(removed).map_err(|e| self.space.error(e))
    }

    /// Every decision, in input order.
    pub fn into_sorted(self) -> Result<impl Iterator<Item = Result<Decision, Error>>, Error> {
        let space = self.space;
        let sorted = self.sorter.into_sorted().map_err(|e| space.error(e))?;
        Ok(sorted.map(move |r| r.map_err(|e| space.error(e))))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use crate::pipeline::assemble::{Cluster, Decision, Decisions, KeptRef, RankedClusters};
    use crate::pipeline::core::clusters::{Keep, Member, Rank};
    use crate::pipeline::core::members::Relation;
    use crate::report::Role;
    use crate::spill::SpillSpace;

    fn clusters_strategy() -> impl Strategy<Value = Vec<(Vec<usize>, usize, Option<u32>)>> {
        // Distinct documents dealt into clusters: (members in input order, outside, indexed).
        (prop::collection::vec(0usize..6, 1..600), any::<u64>()).prop_map(|(sizes, seed)| {
            let mut next_doc = 0usize;
            let mut docs: Vec<usize> = Vec::new();
            let total: usize = sizes.iter().map(|s| s + 1).sum();
            docs.extend(0..total);
            // A fixed shuffle so that clusters interleave in input order.
            let mut state = seed | 1;
            for i in (1..docs.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                docs.swap(i, (state % (i as u64 + 1)) as usize);
            }
            sizes
                .iter()
                .map(|&extra| {
                    let mut members: Vec<usize> = docs[next_doc..next_doc + extra + 1].to_vec();
                    next_doc += extra + 1;
                    members.sort_unstable();
                    let indexed = (extra % 3 == 0).then_some(extra as u32);
                    (members, extra % 4, indexed)
                })
                .collect()
        })
    }

    proptest! {
        /// Ranked clusters come back as the in-memory sort by [`Rank`] gives them, whatever the
        /// budget, each with its members and kept document.
        #[test]
        fn ranked_clusters_equal_the_in_memory_ranking(
            spec in clusters_strategy(),
            tight in any::<bool>(),
        ) {
            let space = Arc::new(SpillSpace::new(&std::env::temp_dir(), 0));
            let mut ranked = RankedClusters::new(&space, if tight { 0 } else { u64::MAX });
            let mut expected = Vec::new();
            for (members, kept_at, indexed) in &spec {
                let members: Vec<Member> = members
                    .iter()
                    .map(|&doc| Member { doc, slot: doc as u32 * 3, copy: doc.is_multiple_of(2) })
                    .collect();
                let kept = match indexed {
                    Some(node) => Keep::Indexed(*node),
                    None => Keep::Member(kept_at % members.len()),
                };
                let cluster = Cluster { size: members.len() + 1, members, kept };
                ranked.push(&cluster).unwrap();
                expected.push(cluster);
            }
            expected.sort_by_key(|c| Rank { size: c.size, first: c.members[0].doc as u64 });
            let mut ranked = ranked.into_ranked().unwrap();
            for want in &expected {
                let got = ranked.next_cluster().unwrap().expect("as many clusters");
                prop_assert_eq!(got.size, want.size);
                prop_assert_eq!(got.kept, want.kept);
                let docs = |c: &Cluster| -> Vec<(usize, u32, bool)> {
                    c.members.iter().map(|m| (m.doc, m.slot, m.copy)).collect()
                };
                prop_assert_eq!(docs(&got), docs(want));
            }
            prop_assert!(ranked.next_cluster().unwrap().is_none());
        }

        /// Decisions round-trip through their record and come back in input order.
        #[test]
        fn decisions_come_back_in_input_order(
            docs in prop::collection::hash_set(any::<u64>(), 0..3000),
            tight in any::<bool>(),
        ) {
            let space = Arc::new(SpillSpace::new(&std::env::temp_dir(), 0));
            let mut removals = Decisions::new(&space, if tight { 0 } else { u64::MAX });
            let make = |doc: u64| Decision {
                doc,
                removed: !doc.is_multiple_of(11),
                cluster: doc.rotate_left(17),
                kept: if doc.is_multiple_of(3) { KeptRef::Indexed(doc as u32) } else { KeptRef::Doc(doc / 2) },
                similarity: (doc % 1000) as f64 / 999.0,
                relation: Relation { same_text_as_kept: doc.is_multiple_of(5), copy_of_earlier: doc.is_multiple_of(7) },
                role: match doc % 3 { 0 => None, 1 => Some(Role::Copy), _ => Some(Role::Container) },
            };
            for &doc in &docs {
                removals.push(make(doc)).unwrap();
            }
            let mut expected: Vec<u64> = docs.into_iter().collect();
            expected.sort_unstable();
            let got: Vec<Decision> = removals.into_sorted().unwrap().map(|r| r.unwrap()).collect();
            prop_assert_eq!(got.len(), expected.len());
            for (got, doc) in got.iter().zip(expected) {
                prop_assert_eq!(*got, make(doc));
            }
        }
    }
}
