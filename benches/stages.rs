//! One criterion group per pipeline stage, each declaring its throughput, plus the whole pipeline.
//! Run with `cargo bench --bench stages` (or `scripts/bench-stages`).

use std::io::Write;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use neardup::lsh::{BandTables, LshParams};
use neardup::minhash::MinHasher;
use neardup::normalize::Normalizer;
use neardup::read::{Fields, Format, Parser, Record};
use neardup::report::Sink;
use neardup::shingle::{ShingleKind, Shingler};
use neardup::synth::{Corpus, CorpusSpec};
use neardup::{DedupBuilder, Input, InputSet};

fn corpus(docs: usize) -> Vec<String> {
    Corpus::new(CorpusSpec {
        docs,
        ..CorpusSpec::default()
    })
    .map(|d| d.text)
    .collect()
}

fn bytes(texts: &[String]) -> u64 {
    texts.iter().map(|t| t.len() as u64).sum()
}

fn parse(c: &mut Criterion) {
    let texts = corpus(500);
    let records: Vec<Record> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| Record {
            format: Format::Jsonl,
            origin: neardup::error::Origin {
                file: "b".into(),
                line: i as u64 + 1,
                offset: None,
            },
            bytes: serde_json::json!({"id": i, "text": t, "url": "http://example.com/x"})
                .to_string()
                .into_bytes(),
            location: None,
            stored: None,
        })
        .collect();
    let parser = Parser::new(Fields::default());
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Bytes(
        records.iter().map(|r| r.bytes.len() as u64).sum(),
    ));
    g.bench_function("jsonl", |b| {
        b.iter(|| {
            records
                .iter()
                .map(|r| parser.parse(r).unwrap().text.len())
                .sum::<usize>()
        })
    });
    g.finish();
}

fn normalize(c: &mut Criterion) {
    let texts = corpus(500);
    let normalizer = Normalizer::default();
    let mut g = c.benchmark_group("normalize");
    g.throughput(Throughput::Bytes(bytes(&texts)));
    let mut out = String::new();
    g.bench_function("ascii", |b| {
        b.iter(|| {
            texts
                .iter()
                .map(|t| {
                    normalizer.normalize_into(t, &mut out);
                    out.len()
                })
                .sum::<usize>()
        })
    });
    let accented: Vec<String> = texts.iter().map(|t| t.replace('a', "á")).collect();
    g.throughput(Throughput::Bytes(bytes(&accented)));
    g.bench_function("unicode", |b| {
        b.iter(|| {
            accented
                .iter()
                .map(|t| {
                    normalizer.normalize_into(t, &mut out);
                    out.len()
                })
                .sum::<usize>()
        })
    });
    g.finish();
}

fn shingle(c: &mut Criterion) {
    let normalizer = Normalizer::default();
    let texts: Vec<String> = corpus(500)
        .iter()
        .map(|t| normalizer.normalize(t))
        .collect();
    let mut g = c.benchmark_group("shingle");
    g.throughput(Throughput::Bytes(bytes(&texts)));
    let mut out = Vec::new();
    for kind in [ShingleKind::Words(5), ShingleKind::Chars(5)] {
        let shingler = Shingler::new(kind, 1, true);
        g.bench_function(BenchmarkId::from_parameter(kind), |b| {
            b.iter(|| {
                texts
                    .iter()
                    .map(|t| {
                        shingler.shingles_into(t, &mut out);
                        out.len()
                    })
                    .sum::<usize>()
            })
        });
    }
    g.finish();
}

fn minhash(c: &mut Criterion) {
    let normalizer = Normalizer::default();
    let shingler = Shingler::new(ShingleKind::Words(5), 1, true);
    let sets: Vec<Vec<u64>> = corpus(200)
        .iter()
        .map(|t| shingler.shingle_set(&normalizer.normalize(t)))
        .collect();
    let mut g = c.benchmark_group("minhash");
    g.throughput(Throughput::Elements(sets.len() as u64));
    for num_perm in [64, 128, 256] {
        let hasher = MinHasher::new(num_perm, 1).unwrap();
        let mut out = vec![0; num_perm];
        g.bench_function(BenchmarkId::new("docs", num_perm), |b| {
            b.iter(|| {
                sets.iter()
                    .map(|s| {
                        hasher.sign_into(s, &mut out);
                        out[0] as u64
                    })
                    .sum::<u64>()
            })
        });
    }
    g.finish();
}

fn lsh(c: &mut Criterion) {
    let params = LshParams::from_threshold(0.8, 128).unwrap();
    let hasher = MinHasher::new(128, 1).unwrap();
    let docs = 20_000u32;
    // Signatures of random sets; every tenth document repeats an earlier one.
    let signatures: Vec<Vec<u32>> = (0..docs)
        .map(|i| {
            let base = if i % 10 == 9 { i - 1 } else { i } as u64;
            let set: Vec<u64> = (0..50).map(|k| base * 1000 + k).collect();
            hasher.sign(&set).as_slice().to_vec()
        })
        .collect();
    let mut g = c.benchmark_group("lsh");
    g.throughput(Throughput::Elements(docs as u64));
    g.sample_size(20);
    g.bench_function("band_and_pair", |b| {
        b.iter(|| {
            let mut tables = BandTables::new(params);
            let mut keys = Vec::new();
            for (slot, sig) in signatures.iter().enumerate() {
                params.band_keys(sig, &mut keys);
                tables.insert(slot as u32, &keys);
            }
            tables.into_candidate_pairs().expect("in memory").len()
        })
    });
    g.finish();
}

struct Nothing;
impl Sink for Nothing {}

fn pipeline(c: &mut Criterion) {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let mut total = 0u64;
    for d in Corpus::new(CorpusSpec {
        docs: 5_000,
        ..CorpusSpec::default()
    }) {
        let line = serde_json::json!({"id": d.id, "text": d.text}).to_string();
        total += line.len() as u64 + 1;
        writeln!(file, "{line}").unwrap();
    }
    file.flush().unwrap();
    let dedup = DedupBuilder::new().build().unwrap();
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Bytes(total));
    g.sample_size(10);
    g.bench_function("clusters_5k_docs", |b| {
        b.iter(|| {
            let mut inputs = InputSet::new(
                vec![Input::Path(file.path().into())],
                Format::Jsonl,
                1 << 26,
            )
            .unwrap();
            dedup.run(&mut inputs, &mut Nothing).unwrap().clusters
        })
    });
    g.finish();
}

criterion_group!(stages, parse, normalize, shingle, minhash, lsh, pipeline);
criterion_main!(stages);
