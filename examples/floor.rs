//! The floor for the benchmark: only what any deduplicator must do. Reads JSON Lines, parses each
//! record's text, lowercases it, splits it into word runs, hashes each word once with xxh3 and each
//! word 5-gram once (a combine of the five word hashes), in parallel over batches of lines, and
//! prints a checksum so nothing is optimized away. No signatures, no index, no output.
//!
//! usage: floor DOCS.jsonl

use std::io::{BufRead, BufReader};

use rayon::prelude::*;
use xxhash_rust::xxh3::xxh3_64;

#[derive(serde::Deserialize)]
struct Doc<'a> {
    #[serde(borrow)]
    text: std::borrow::Cow<'a, str>,
}

fn shingle_sum(line: &str) -> u64 {
    let Ok(doc) = serde_json::from_str::<Doc>(line) else {
        return 0;
    };
    let lower = doc.text.to_lowercase();
    let words: Vec<u64> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| xxh3_64(w.as_bytes()))
        .collect();
    let n = 5.min(words.len().max(1));
    words
        .windows(n)
        .map(|w| w.iter().fold(0u64, |h, &x| h.rotate_left(9) ^ x))
        .fold(0, u64::wrapping_add)
}

fn main() {
    let path = std::env::args().nth(1).expect("usage: floor DOCS.jsonl");
    let mut reader = BufReader::with_capacity(1 << 20, std::fs::File::open(path).unwrap());
    let (mut docs, mut sum) = (0u64, 0u64);
    loop {
        let mut batch = Vec::with_capacity(4096);
        let mut line = String::new();
        while batch.len() < 4096 && reader.read_line(&mut line).unwrap() > 0 {
            batch.push(std::mem::take(&mut line));
        }
        if batch.is_empty() {
            break;
        }
        docs += batch.len() as u64;
        sum = sum.wrapping_add(
            batch
                .par_iter()
                .map(|l| shingle_sum(l))
                .reduce(|| 0, u64::wrapping_add),
        );
    }
    println!("{docs} documents, checksum {sum:016x}");
}
