//! One criterion group per pipeline stage, each declaring its throughput, plus the whole pipeline.
//! Run with `cargo bench --bench stages`.

use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use neardup::cluster::{SparseUnionFind, UnionFind};
use neardup::lsh::{BandKey, BandTables, CandidatePair, LshParams};
use neardup::minhash::{MinHasher, SignatureStore};
use neardup::normalize::Normalizer;
use neardup::output::Output;
use neardup::read::{Fields, Format, Parser, Record};
use neardup::report::{ClusterReport, DocId, KeptRecord, MemberReport, Sink};
use neardup::shingle::{ShingleKind, Shingler};
use neardup::spill::SpillSpace;
use neardup::synth::{Corpus, CorpusSpec};
use neardup::verify::{ExactSets, MAX_SETS_PER_ROUND, Measure, exact_similarities};
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

/// The distinct texts of a generated corpus as the stages after `lsh` see them: each first copy's
/// shingle set, b-bit signature (in a [`SignatureStore`], by slot) and band keys; exact copies
/// are left out, as the pipeline leaves them out before signing. Shared by `candidates`,
/// `verify` and `union_find`.
struct Signed {
    params: LshParams,
    keys: Vec<Vec<BandKey>>,
    store: SignatureStore,
    sets: ExactSets,
    /// The candidate pairs of the band tables (in memory), sorted.
    pairs: Vec<CandidatePair>,
    /// The candidate pairs at exact Jaccard >= 0.8: what union-find joins.
    verified: Vec<CandidatePair>,
}

fn signed(docs: usize) -> Signed {
    let normalizer = Normalizer::default();
    let shingler = Shingler::new(ShingleKind::Words(5), 1, true);
    let hasher = MinHasher::new(128, 1).unwrap();
    let params = LshParams::from_threshold(0.8, 128).unwrap();
    let mut store = SignatureStore::new(128);
    let (mut keys, mut sets, mut seen) = (Vec::new(), ExactSets::default(), HashSet::new());
    for text in corpus(docs) {
        let normalized = normalizer.normalize(&text);
        if !seen.insert(normalized.clone()) {
            continue;
        }
        let set = shingler.shingle_set(&normalized);
        let signature = hasher.sign(&set);
        let slot = store.push(signature.as_slice()).unwrap() as u32;
        let mut band = Vec::new();
        params.band_keys(signature.as_slice(), &mut band);
        keys.push(band);
        sets.insert(slot, &set);
    }
    let mut tables = BandTables::new(params);
    for (slot, band) in keys.iter().enumerate() {
        tables.insert(slot as u32, band);
    }
    let pairs = tables.into_candidate_pairs().unwrap();
    let verified = pairs
        .iter()
        .copied()
        .filter(|&(a, b)| {
            Measure::Jaccard.of_sets(sets.get(a).unwrap(), sets.get(b).unwrap()) >= 0.8
        })
        .collect();
    Signed {
        params,
        keys,
        store,
        sets,
        pairs,
        verified,
    }
}

/// Band tables -> candidate pairs (sort every band, pair its buckets by the anchor rule, merge the
/// bands' pairs into one sorted distinct list). Inserting the band records is the `lsh` group's
/// and is left out (criterion's batched setup). Throughput: distinct texts (slots).
fn candidates(c: &mut Criterion, signed: &Signed) {
    let fill = |mut tables: BandTables, spill: bool| {
        for (slot, band) in signed.keys.iter().enumerate() {
            tables.insert(slot as u32, band);
            if spill && slot % 1024 == 1023 {
                tables.spill_if_over_budget().unwrap();
            }
        }
        tables
    };
    let records = signed.keys.len() * signed.params.num_bands;
    let temp = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("candidates");
    g.throughput(Throughput::Elements(signed.keys.len() as u64));
    g.sample_size(20);
    g.bench_function("in_memory", |b| {
        b.iter_batched(
            || fill(BandTables::new(signed.params), false),
            |tables| tables.into_candidate_pairs().unwrap().len(),
            BatchSize::LargeInput,
        )
    });
    // A budget of a quarter of the records: a few sorted runs, merged back from disk with what
    // is left in memory (the pairs' sorter gets half the budget, which these pairs fit).
    let budget = (records * 12 / 4) as u64;
    g.sample_size(10);
    g.bench_function("spilled", |b| {
        b.iter_batched(
            || {
                let space = Arc::new(SpillSpace::new(temp.path(), budget));
                let tables = fill(BandTables::with_budget(signed.params, budget, space), true);
                assert!(tables.runs_spilled() > 0);
                tables
            },
            |tables| tables.into_candidate_pairs().unwrap().len(),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// Checking candidate pairs: the b-bit signature estimate from the store, the exact Jaccard of two
/// compact shingle sets, and `exact_similarities` (its components and rounds, and its parallel
/// comparisons; the loader hands over sets made in advance, so the re-read, parse and shingling
/// of the pipeline's loader are not in it). Every candidate pair is checked, not only the
/// borderline ones (which pairs those are is the decision core's, not public). Throughput:
/// candidate pairs.
fn verify(c: &mut Criterion, signed: &Signed) {
    let pairs = &signed.pairs;
    let mut g = c.benchmark_group("verify");
    g.throughput(Throughput::Elements(pairs.len() as u64));
    g.bench_function("signature_estimate", |b| {
        b.iter(|| {
            pairs
                .iter()
                .map(|&(a, b)| signed.store.similarity(a as usize, b as usize).unwrap())
                .filter(|&j| j >= 0.8)
                .count()
        })
    });
    g.bench_function("exact_jaccard", |b| {
        b.iter(|| {
            pairs
                .iter()
                .map(|&(a, b)| {
                    Measure::Jaccard
                        .of_sets(signed.sets.get(a).unwrap(), signed.sets.get(b).unwrap())
                })
                .filter(|&j| j >= 0.8)
                .count()
        })
    });
    g.bench_function("exact_similarities", |b| {
        b.iter(|| {
            let mut load = |slots: &[u32]| {
                let mut sets = ExactSets::default();
                for &slot in slots {
                    sets.insert_compact(slot, signed.sets.get(slot).unwrap().to_vec());
                }
                Ok(sets)
            };
            exact_similarities(pairs, MAX_SETS_PER_ROUND, Measure::Jaccard, &mut load)
                .unwrap()
                .len()
        })
    });
    g.finish();
}

/// Joining verified pairs into sets: `SparseUnionFind` over the slots in a pair (what a batch run
/// uses), `UnionFind` over every slot (a distributed run's), each built, joined and then asked
/// for every member's root; and the sparse one on a graph of a 1M-document run's size. Cluster
/// assembly and the keep policy's choice (the decision core's `clusters`) are not public.
/// Throughput: pairs joined.
fn union_find(c: &mut Criterion, signed: &Signed) {
    let verified = &signed.verified;
    let slots = signed.keys.len();
    let roots_sparse = |pairs: &[CandidatePair]| {
        let mut sets = SparseUnionFind::new(pairs.iter().flat_map(|&(a, b)| [a, b]).collect());
        for &(a, b) in pairs {
            sets.union(a, b);
        }
        pairs
            .iter()
            .map(|&(a, _)| sets.find(a).unwrap() as u64)
            .sum::<u64>()
    };
    let mut g = c.benchmark_group("union_find");
    g.throughput(Throughput::Elements(verified.len() as u64));
    g.bench_function("sparse", |b| b.iter(|| roots_sparse(verified)));
    g.bench_function("dense", |b| {
        b.iter(|| {
            let mut sets = UnionFind::new(slots);
            for &(a, b) in verified {
                sets.union(a, b);
            }
            (0..slots as u32).map(|x| sets.find(x) as u64).sum::<u64>()
        })
    });
    // 200,000 pairs among 1M slots (a generated 1M corpus has about 231,000 pairs at exact
    // Jaccard >= 0.8): 30% of them within blocks of 8 neighbouring slots, the rest between
    // random slots, so that sets grow past pairs and the joins miss the cache.
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let large: Vec<CandidatePair> = (0..200_000)
        .map(|i| {
            let a = (next() % 1_000_000) as u32;
            let b = if i % 10 < 3 {
                (a / 8 * 8 + (next() % 8) as u32).min(999_999)
            } else {
                (next() % 1_000_000) as u32
            };
            (a.min(b), a.max(b))
        })
        .collect();
    g.throughput(Throughput::Elements(large.len() as u64));
    g.sample_size(20);
    g.bench_function("sparse_200k_pairs_of_1m", |b| {
        b.iter(|| roots_sparse(&large))
    });
    g.finish();
}

/// A JSON Lines file of `docs` generated documents (`id`, `text`) and its size in bytes.
fn jsonl_file(docs: usize) -> (tempfile::NamedTempFile, u64) {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let mut total = 0u64;
    for d in Corpus::new(CorpusSpec {
        docs,
        ..CorpusSpec::default()
    }) {
        let line = serde_json::json!({"id": d.id, "text": d.text}).to_string();
        total += line.len() as u64 + 1;
        writeln!(file, "{line}").unwrap();
    }
    file.flush().unwrap();
    (file, total)
}

/// A cluster as a run reports it, owned.
struct OwnedCluster {
    cluster: usize,
    kept: String,
    size: usize,
    members: Vec<(DocId, String, f64)>,
}

/// Copies what a run hands over: kept records' bytes and clusters.
#[derive(Default)]
struct Collect {
    kept: Vec<Vec<u8>>,
    clusters: Vec<OwnedCluster>,
}

impl Sink for Collect {
    fn cluster(&mut self, c: &ClusterReport<'_>) -> Result<(), neardup::Error> {
        self.clusters.push(OwnedCluster {
            cluster: c.cluster,
            kept: c.kept.to_string(),
            size: c.size,
            members: c
                .members
                .iter()
                .map(|m| (m.doc, m.id.to_string(), m.similarity))
                .collect(),
        });
        Ok(())
    }

    fn wants_kept_records(&self) -> bool {
        true
    }

    fn kept(&mut self, record: &KeptRecord<'_>) -> Result<(), neardup::Error> {
        self.kept.push(record.bytes.to_vec());
        Ok(())
    }
}

/// Writes each kept record as its line of a JSON Lines output, as `dedup -o kept.jsonl` does
/// for a JSON Lines input.
struct WriteKept(Option<Output>);

impl Sink for WriteKept {
    fn wants_kept_records(&self) -> bool {
        true
    }

    fn kept(&mut self, record: &KeptRecord<'_>) -> Result<(), neardup::Error> {
        self.0.as_mut().expect("open").write_line(record.bytes)
    }
}

/// Writing results, into files of a temporary directory through the library's `Output`
/// (created as a temporary file, compressed by its name's extension, synced and renamed into
/// place by `finish`): the kept records of a 5k-document run as JSON Lines, plain and zstd
/// (throughput: bytes written, before compression); its clusters as JSON Lines like `clusters -o`
/// (throughput: members written); and a run's whole write stage (the second pass that frames
/// the input again and hands the kept records to a sink writing them; the summary's
/// `stage_seconds.write` plus `finish`; throughput: input bytes). The CLI's kept-record writer
/// (`KeptWriter`: Parquet rows, WARC records) and its cluster table are the binary's, not the
/// library's, so the sinks here write the lines themselves.
fn write(c: &mut Criterion) {
    let (file, input_bytes) = jsonl_file(5_000);
    let dedup = DedupBuilder::new().build().unwrap();
    let inputs = || {
        InputSet::new(
            vec![Input::Path(file.path().into())],
            Format::Jsonl,
            1 << 26,
        )
        .unwrap()
    };
    let mut run = Collect::default();
    dedup.run(&mut inputs(), &mut run).unwrap();
    let kept_bytes: u64 = run.kept.iter().map(|r| r.len() as u64 + 1).sum();
    let members: usize = run.clusters.iter().map(|c| c.members.len()).sum();
    let dir = tempfile::tempdir().unwrap();
    let name = |file: &str| dir.path().join(file).to_str().unwrap().to_string();
    let mut g = c.benchmark_group("write");
    g.throughput(Throughput::Bytes(kept_bytes));
    for (file, samples) in [("kept.jsonl", 20), ("kept.jsonl.zst", 10)] {
        let path = name(file);
        g.sample_size(samples);
        g.bench_function(file, |b| {
            b.iter(|| {
                let mut out = Output::create(&path).unwrap();
                for record in &run.kept {
                    out.write_line(record).unwrap();
                }
                out.finish().unwrap();
            })
        });
    }
    g.throughput(Throughput::Elements(members as u64));
    g.sample_size(20);
    let path = name("clusters.jsonl");
    g.bench_function("clusters.jsonl", |b| {
        b.iter(|| {
            let mut out = Output::create(&path).unwrap();
            for c in &run.clusters {
                let report = ClusterReport {
                    cluster: c.cluster,
                    kept: &c.kept,
                    kept_doc: None,
                    kept_in: None,
                    size: c.size,
                    members: c
                        .members
                        .iter()
                        .map(|(doc, id, similarity)| MemberReport {
                            doc: *doc,
                            id,
                            similarity: *similarity,
                            role: None,
                            spans: None,
                        })
                        .collect(),
                };
                serde_json::to_writer(&mut out, &report).unwrap();
                out.write_all(b"\n").unwrap();
            }
            out.finish().unwrap();
        })
    });
    g.throughput(Throughput::Bytes(input_bytes));
    g.sample_size(10);
    let path = name("kept-run.jsonl");
    g.bench_function("second_pass_5k_docs", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let mut sink = WriteKept(Some(Output::create(&path).unwrap()));
                let summary = dedup.run(&mut inputs(), &mut sink).unwrap();
                let finishing = Instant::now();
                sink.0.take().unwrap().finish().unwrap();
                spent += finishing.elapsed() + Duration::from_secs_f64(summary.stage_seconds.write);
            }
            spent
        })
    });
    g.finish();
}

fn after_lsh(c: &mut Criterion) {
    let signed = signed(10_000);
    candidates(c, &signed);
    verify(c, &signed);
    union_find(c, &signed);
}

criterion_group!(
    stages, parse, normalize, shingle, minhash, lsh, pipeline, after_lsh, write
);
criterion_main!(stages);
