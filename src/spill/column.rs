//! Fixed-size records in spillable tables: [`FixedRecord`], [`Column`] (an append-only array of
//! them) and [`KeyedColumn`] (records appended in key order and found by key).

use std::io;
use std::marker::PhantomData;

use super::{Cursor, Persisted, SpillBytes, SpillSpace};

/// A record of fixed size, stored in a [`Column`] or sorted by a [`Sorter`](super::Sorter).
pub trait FixedRecord: Sized {
    const LEN: usize;
    fn encode(&self, out: &mut [u8]);
    fn decode(bytes: &[u8]) -> Self;
}

/// Numbers are stored little-endian.
macro_rules! fixed_number {
    ($($t:ty),*) => {$(
        impl FixedRecord for $t {
            const LEN: usize = std::mem::size_of::<$t>();
            fn encode(&self, out: &mut [u8]) {
                out.copy_from_slice(&self.to_le_bytes());
            }
            fn decode(bytes: &[u8]) -> Self {
                <$t>::from_le_bytes(bytes.try_into().expect("a number's bytes"))
            }
        }
    )*};
}

fixed_number!(u32, u64, u128, f64);

/// A pair of numbers (a candidate pair of slots), the first then the second.
impl FixedRecord for (u32, u32) {
    const LEN: usize = 8;
    fn encode(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(&self.0.to_le_bytes());
        out[4..8].copy_from_slice(&self.1.to_le_bytes());
    }
    fn decode(bytes: &[u8]) -> Self {
        let half = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        (half(0), half(4))
    }
}

/// An append-only array of fixed-size records over a [`SpillBytes`].
#[derive(Debug)]
pub struct Column<T> {
    bytes: SpillBytes,
    len: usize,
    _records: PhantomData<T>,
}

impl<T: FixedRecord> Column<T> {
    pub fn new(space: std::sync::Arc<SpillSpace>) -> Column<T> {
        Column {
            bytes: SpillBytes::new(space),
            len: 0,
            _records: PhantomData,
        }
    }

    /// A column whose file, in a space with a work directory, is named `name` there.
    pub fn named(space: std::sync::Arc<SpillSpace>, name: &str) -> Column<T> {
        Column {
            bytes: SpillBytes::named(space, name),
            len: 0,
            _records: PhantomData,
        }
    }

    /// See [`SpillBytes::persist`].
    pub fn persist(&mut self) -> io::Result<Persisted> {
        self.bytes.persist()
    }

    /// See [`SpillBytes::reopen`].
    pub fn reopen(
        space: std::sync::Arc<SpillSpace>,
        name: &str,
        persisted: Persisted,
    ) -> io::Result<Column<T>> {
        let bytes = SpillBytes::reopen(space, name, persisted)?;
        Ok(Column {
            len: (bytes.len() / T::LEN as u64) as usize,
            bytes,
            _records: PhantomData,
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, record: &T) -> io::Result<()> {
        let mut buffer = [0u8; 64];
        let encoded = &mut buffer[..T::LEN];
        record.encode(encoded);
        self.bytes.push(encoded)?;
        self.len += 1;
        Ok(())
    }

    /// The record at `index` (which must be below [`Column::len`]).
    pub fn get(&self, index: usize) -> io::Result<T> {
        let mut buffer = [0u8; 64];
        let encoded = &mut buffer[..T::LEN];
        self.bytes.read_into((index * T::LEN) as u64, encoded)?;
        Ok(T::decode(encoded))
    }

    /// Every record in order.
    pub fn iter(&self) -> ColumnIter<'_, T> {
        ColumnIter {
            cursor: self.bytes.cursor(),
            _records: PhantomData,
        }
    }
}

/// The records of a [`Column`] in order.
#[derive(Debug)]
pub struct ColumnIter<'a, T> {
    cursor: Cursor<'a>,
    _records: PhantomData<T>,
}

impl<T: FixedRecord> Iterator for ColumnIter<'_, T> {
    type Item = io::Result<T>;
    fn next(&mut self) -> Option<io::Result<T>> {
        match self.cursor.next_bytes(T::LEN) {
            Ok(Some(bytes)) => Some(Ok(T::decode(bytes))),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// Keys of a [`KeyedColumn`] per entry of its in-memory index.
const KEY_INDEX_STEP: usize = 64;

/// Records appended in increasing order of a key and found by key: a [`Column`] (spilled beyond
/// the budget like any other) with every 64th key in memory. A lookup is a binary search of that
/// index, then of one block of 64 records (a few positioned reads when the block is on disk).
#[derive(Debug)]
pub struct KeyedColumn<T, K> {
    records: Column<T>,
    index: Vec<K>,
    key: fn(&T) -> K,
    last: Option<K>,
}

impl<T: FixedRecord, K: Ord + Copy> KeyedColumn<T, K> {
    /// An empty column whose records are keyed by `key`.
    pub fn new(space: std::sync::Arc<SpillSpace>, key: fn(&T) -> K) -> KeyedColumn<T, K> {
        KeyedColumn {
            records: Column::new(space),
            index: Vec::new(),
            key,
            last: None,
        }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Appends `record`, whose key must be above every key appended before.
    pub fn push(&mut self, record: &T) -> io::Result<()> {
        let key = (self.key)(record);
        if self.last.is_some_and(|last| last >= key) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "keyed records must come in increasing order of key",
            ));
        }
        if self.records.len().is_multiple_of(KEY_INDEX_STEP) {
            self.index.push(key);
        }
        self.records.push(record)?;
        self.last = Some(key);
        Ok(())
    }

    /// The record of `key`, if there is one.
    pub fn get(&self, key: &K) -> io::Result<Option<T>> {
        Ok(self.find(key)?.map(|(_, record)| record))
    }

    /// The position of the record of `key` (its rank among the keys), if there is one.
    pub fn position(&self, key: &K) -> io::Result<Option<usize>> {
        Ok(self.find(key)?.map(|(at, _)| at))
    }

    /// The record at `position` (below [`KeyedColumn::len`]).
    pub fn at(&self, position: usize) -> io::Result<T> {
        self.records.get(position)
    }

    /// The position and record of `key`: the block that can hold it is read in one go (one
    /// positioned read when it is on disk) and searched in memory.
    fn find(&self, key: &K) -> io::Result<Option<(usize, T)>> {
        let block = self.index.partition_point(|first| first <= key);
        if block == 0 {
            return Ok(None);
        }
        let start = (block - 1) * KEY_INDEX_STEP;
        let end = (start + KEY_INDEX_STEP).min(self.records.len());
        let mut bytes = [0u8; 64 * KEY_INDEX_STEP];
        let bytes = &mut bytes[..(end - start) * T::LEN];
        self.records
            .bytes
            .read_into((start * T::LEN) as u64, bytes)?;
        let record = |at: usize| T::decode(&bytes[at * T::LEN..(at + 1) * T::LEN]);
        let (mut low, mut high) = (0, end - start);
        while low < high {
            let middle = (low + high) / 2;
            let found = record(middle);
            match (self.key)(&found).cmp(key) {
                std::cmp::Ordering::Equal => return Ok(Some((start + middle, found))),
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
            }
        }
        Ok(None)
    }

    /// Every record in key order.
    pub fn iter(&self) -> ColumnIter<'_, T> {
        self.records.iter()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::spill::tests::tight_space;
    use crate::spill::{Column, KeyedColumn};

    proptest! {
        /// A keyed column that spills at once finds every record by its key, and nothing else.
        #[test]
        fn a_keyed_column_finds_records_by_key(keys in prop::collection::btree_set(0u32..5_000, 0..2_000)) {
            let mut column = KeyedColumn::new(tight_space(), |record: &(u32, u32)| record.0);
            for &key in &keys {
                column.push(&(key, key.wrapping_mul(7))).unwrap();
            }
            prop_assert_eq!(column.len(), keys.len());
            for probe in 0..5_001u32 {
                let want = keys.contains(&probe).then(|| (probe, probe.wrapping_mul(7)));
                prop_assert_eq!(column.get(&probe).unwrap(), want);
                let rank = keys.range(..probe).count();
                prop_assert_eq!(column.position(&probe).unwrap(), want.map(|_| rank));
                if want.is_some() {
                    prop_assert_eq!(column.at(rank).unwrap(), want.unwrap());
                }
            }
            if let Some(&last) = keys.iter().next_back() {
                prop_assert!(column.push(&(last, 0)).is_err(), "keys must increase");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// A column reads back what was pushed, by index and in order, whatever spilled.
        #[test]
        fn column_reads_back_what_was_pushed(values in proptest::collection::vec(any::<u128>(), 0..200_000)) {
            let mut column = Column::<u128>::new(tight_space());
            for v in &values {
                column.push(v).unwrap();
            }
            prop_assert_eq!(column.len(), values.len());
            let back: Vec<u128> = column.iter().map(Result::unwrap).collect();
            prop_assert_eq!(&back, &values);
            for i in (0..values.len()).step_by(997) {
                prop_assert_eq!(column.get(i).unwrap(), values[i]);
            }
        }
    }
}
