//! gaoya 0.2.2 on the benchmark task: lowercase word runs, word 5-grams, `MinHasher32` with 128
//! hashes signing in parallel (`bulk_create_signature`), a `MinHashIndex` of 9 bands × 13 rows at
//! threshold 0.8 filled with `par_bulk_insert` and asked with `par_bulk_query` (which checks the
//! signature similarity), then union-find. Output: clusters as JSON lines, like the Python peers.
//!
//! usage: gaoya-peer DOCS.jsonl CLUSTERS.jsonl

use std::io::{BufRead, BufReader, BufWriter, Write};

use gaoya::minhash::{MinHashIndex, MinHasher, MinHasher32};
use rayon::prelude::*;

/// Word 5-grams, each hashed once to a u64 (gaoya hashes whatever `Hash` item it is given).
fn shingles(text: &str, state: &ahash::RandomState) -> Vec<u64> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return vec![];
    }
    words.windows(5.min(words.len())).map(|w| state.hash_one(w)).collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (input, output) = (&args[1], &args[2]);
    let mut ids = Vec::new();
    let mut texts = Vec::new();
    for line in BufReader::new(std::fs::File::open(input).unwrap()).lines() {
        let line = line.unwrap();
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        ids.push(v["id"].as_str().map(str::to_string).unwrap_or_else(|| v["id"].to_string()));
        texts.push(v["text"].as_str().unwrap_or("").to_string());
    }
    let state = ahash::RandomState::with_seeds(1, 2, 3, 4);
    let sets: Vec<Vec<u64>> = texts.par_iter().map(|t| shingles(t, &state)).collect();
    drop(texts);
    let hasher = MinHasher32::new(117);
    let signatures = hasher.bulk_create_signature(&sets);
    let nonempty: Vec<usize> = (0..ids.len()).filter(|&i| !sets[i].is_empty()).collect();
    drop(sets);
    let mut index: MinHashIndex<u32, usize> = MinHashIndex::new(9, 13, 0.8);
    let keep: Vec<Vec<u32>> = nonempty.iter().map(|&i| signatures[i].clone()).collect();
    index.par_bulk_insert(nonempty.clone(), keep.clone());
    let found = index.par_bulk_query(&keep);

    let mut parent: Vec<usize> = (0..ids.len()).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    for (&i, matches) in nonempty.iter().zip(&found) {
        for &j in matches {
            let (a, b) = (find(&mut parent, i), find(&mut parent, j));
            if a != b {
                parent[a.max(b)] = a.min(b);
            }
        }
    }
    let mut groups: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for i in 0..ids.len() {
        let root = find(&mut parent, i);
        groups.entry(root).or_default().push(i);
    }
    let mut out = BufWriter::new(std::fs::File::create(output).unwrap());
    for members in groups.values().filter(|m| m.len() > 1) {
        let list: Vec<serde_json::Value> = members.iter().map(|&m| serde_json::json!({"id": ids[m]})).collect();
        writeln!(out, "{}", serde_json::json!({"members": list})).unwrap();
    }
}
