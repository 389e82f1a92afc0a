//! Ground truth for the benchmark, independent of neardup's pipeline: every pair of documents with
//! exact word-5-gram Jaccard ≥ the threshold (lowercase `\w+` runs, as scripts/evaluate.py does), found
//! by prefix filtering (shingles ordered rarest first; two sets at Jaccard ≥ t share a shingle among
//! their first `|x| - ceil(t·|x|) + 1`), then the connected components of that graph, written as
//! clusters JSON lines that `scripts/evaluate.py --truth-clusters` reads.
//!
//! usage: exact_truth DOCS.jsonl CLUSTERS.jsonl [THRESHOLD]

use std::io::{BufRead, BufReader, BufWriter, Write};

use rayon::prelude::*;
use xxhash_rust::xxh3::xxh3_64;

fn shingles(text: &str) -> Vec<u64> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return vec![];
    }
    let mut set: Vec<u64> = words
        .windows(5.min(words.len()))
        .map(|w| xxh3_64(w.join(" ").as_bytes()))
        .collect();
    set.sort_unstable();
    set.dedup();
    set
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threshold: f64 = args.get(3).map_or(0.8, |t| t.parse().unwrap());
    let lines: Vec<String> = BufReader::new(std::fs::File::open(&args[1]).unwrap())
        .lines()
        .map(Result::unwrap)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let (ids, sets): (Vec<String>, Vec<Vec<u64>>) = lines
        .par_iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let id = v["id"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v["id"].to_string());
            (id, shingles(v["text"].as_str().unwrap_or("")))
        })
        .unzip();
    drop(lines);
    // Any fixed global order of shingles is correct for prefix filtering; rarest first keeps the
    // posting lists short (boilerplate shingles, shared by thousands of documents, come last and
    // stay out of the prefixes). Frequencies come from one sort of all shingles; only shingles seen
    // more than once are kept in the table.
    let mut all: Vec<u64> = sets.iter().flatten().copied().collect();
    all.par_sort_unstable();
    let frequency: std::collections::HashMap<u64, u32> = all
        .chunk_by(|a, b| a == b)
        .filter(|run| run.len() > 1)
        .map(|run| (run[0], run.len() as u32))
        .collect();
    drop(all);
    let prefix_len = |n: usize| n - (threshold * n as f64 - 1e-9).ceil() as usize + 1;
    let prefixes: Vec<Vec<u64>> = sets
        .par_iter()
        .map(|set| {
            let mut order: Vec<(u32, u64)> = set
                .iter()
                .map(|s| (frequency.get(s).copied().unwrap_or(1), *s))
                .collect();
            order.sort_unstable();
            order.truncate(prefix_len(order.len()).min(order.len()));
            order.into_iter().map(|(_, s)| s).collect::<Vec<u64>>()
        })
        .collect();
    drop(frequency);
    let mut postings: Vec<(u64, u32)> = prefixes
        .iter()
        .enumerate()
        .flat_map(|(doc, prefix)| prefix.iter().map(move |&s| (s, doc as u32)))
        .collect();
    drop(prefixes);
    postings.par_sort_unstable();
    let mut candidates: Vec<(u32, u32)> = postings
        .par_chunk_by(|a, b| a.0 == b.0)
        .flat_map_iter(|run| {
            (0..run.len()).flat_map(move |i| (i + 1..run.len()).map(move |j| (run[i].1, run[j].1)))
        })
        .collect();
    drop(postings);
    candidates.par_sort_unstable();
    candidates.dedup();
    let jaccard = |a: &[u64], b: &[u64]| {
        let (mut i, mut j, mut shared) = (0, 0, 0usize);
        while i < a.len() && j < b.len() {
            match a[i].cmp(&b[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => (shared, i, j) = (shared + 1, i + 1, j + 1),
            }
        }
        shared as f64 / (a.len() + b.len() - shared) as f64
    };
    let edges: Vec<(u32, u32)> = candidates
        .into_par_iter()
        .filter(|&(x, y)| {
            let (a, b) = (&sets[x as usize], &sets[y as usize]);
            let (small, large) = (a.len().min(b.len()) as f64, a.len().max(b.len()) as f64);
            small >= threshold * large && jaccard(a, b) >= threshold - 1e-12
        })
        .collect();
    let mut parent: Vec<u32> = (0..ids.len() as u32).collect();
    fn find(p: &mut [u32], mut x: u32) -> u32 {
        while p[x as usize] != x {
            p[x as usize] = p[p[x as usize] as usize];
            x = p[x as usize];
        }
        x
    }
    for &(a, b) in &edges {
        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
        if ra != rb {
            parent[ra.max(rb) as usize] = ra.min(rb);
        }
    }
    let mut groups: std::collections::BTreeMap<u32, Vec<u32>> = Default::default();
    for doc in 0..ids.len() as u32 {
        let root = find(&mut parent, doc);
        groups.entry(root).or_default().push(doc);
    }
    let mut out = BufWriter::new(std::fs::File::create(&args[2]).unwrap());
    for members in groups.values().filter(|m| m.len() > 1) {
        let list: Vec<serde_json::Value> = members
            .iter()
            .map(|&m| serde_json::json!({"id": ids[m as usize]}))
            .collect();
        writeln!(out, "{}", serde_json::json!({"members": list})).unwrap();
    }
    eprintln!(
        "{} documents, {} pairs at Jaccard >= {threshold}",
        ids.len(),
        edges.len()
    );
}
