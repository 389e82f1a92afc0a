//! Oracle tests: on generated corpora, compare clusters with the exact Jaccard graph computed here
//! by brute force over all pairs (with the library's own normalizer and shingler, so that only
//! LSH, verification and clustering are under test).

use std::collections::{BTreeSet, HashMap};
use std::io::Write;

use neardup::error::Error;
use neardup::normalize::Normalizer;
use neardup::report::{ClusterReport, Sink};
use neardup::shingle::{ShingleKind, Shingler, jaccard};
use neardup::synth::{Corpus, CorpusSpec, SynthDoc};
use neardup::{DedupBuilder, Format, Input, InputSet, VerifyMode};

#[derive(Default)]
struct Clusters(Vec<(String, Vec<(String, f64)>)>);

impl Sink for Clusters {
    fn cluster(&mut self, c: &ClusterReport<'_>) -> Result<(), Error> {
        let members = c
            .members
            .iter()
            .map(|m| (m.id.to_string(), m.similarity))
            .collect();
        self.0.push((c.kept.to_string(), members));
        Ok(())
    }
}

fn corpus(seed: u64) -> Vec<SynthDoc> {
    Corpus::new(CorpusSpec {
        docs: 250,
        seed,
        dup_fraction: 0.5,
        mean_words: 60,
    })
    .collect()
}

fn run(docs: &[SynthDoc], builder: DedupBuilder) -> Clusters {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    for d in docs {
        writeln!(file, "{}", d.json_line()).unwrap();
    }
    file.flush().unwrap();
    let mut inputs = InputSet::new(
        vec![Input::Path(file.path().into())],
        Format::Jsonl,
        1 << 20,
    )
    .unwrap();
    let mut sink = Clusters::default();
    let summary = builder
        .build()
        .unwrap()
        .run(&mut inputs, &mut sink)
        .unwrap();
    assert!(summary.adds_up());
    sink
}

/// Shingle sets by id, computed as the pipeline does with default settings.
fn shingle_sets(docs: &[SynthDoc]) -> HashMap<String, Vec<u64>> {
    let normalizer = Normalizer::default();
    let shingler = Shingler::new(ShingleKind::Words(5), 1, true);
    docs.iter()
        .map(|d| {
            (
                d.id.clone(),
                shingler.shingle_set(&normalizer.normalize(&d.text)),
            )
        })
        .collect()
}

/// Connected components (of two or more) of the graph of pairs with exact Jaccard ≥ threshold.
fn exact_components(docs: &[SynthDoc], threshold: f64) -> BTreeSet<BTreeSet<String>> {
    let sets = shingle_sets(docs);
    let mut parent: Vec<usize> = (0..docs.len()).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            x = p[x];
        }
        x
    }
    for i in 0..docs.len() {
        for j in i + 1..docs.len() {
            if jaccard(&sets[&docs[i].id], &sets[&docs[j].id]) >= threshold {
                let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                parent[a] = b;
            }
        }
    }
    let mut groups: HashMap<usize, BTreeSet<String>> = HashMap::new();
    for (i, doc) in docs.iter().enumerate() {
        let root = find(&mut parent, i);
        groups.entry(root).or_default().insert(doc.id.clone());
    }
    groups.into_values().filter(|g| g.len() > 1).collect()
}

fn as_sets(c: &Clusters) -> BTreeSet<BTreeSet<String>> {
    c.0.iter()
        .map(|(_, members)| members.iter().map(|(id, _)| id.clone()).collect())
        .collect()
}

#[test]
fn with_exact_verification_and_high_recall_bands_clusters_equal_exact_components() {
    for (seed, threshold) in [(1, 0.8), (2, 0.5), (3, 0.7), (4, 0.9)] {
        let docs = corpus(seed);
        let truth = exact_components(&docs, threshold);
        assert!(truth.len() > 20, "the corpus has families to find");
        // 64 bands of 2 rows: a pair at Jaccard 0.5 collides with probability 1 - 0.75^64 ≈ 1.
        let got = run(
            &docs,
            DedupBuilder::new()
                .threshold(threshold)
                .verify(VerifyMode::Exact)
                .bands(64, 2),
        );
        assert_eq!(as_sets(&got), truth, "seed {seed}, threshold {threshold}");
    }
}

#[test]
fn with_exact_verification_no_cluster_joins_unrelated_documents() {
    let docs = corpus(5);
    let sets = shingle_sets(&docs);
    let threshold = 0.8;
    let got = run(
        &docs,
        DedupBuilder::new()
            .threshold(threshold)
            .verify(VerifyMode::Exact),
    );
    assert!(!got.0.is_empty());
    let truth = exact_components(&docs, threshold);
    for (kept, members) in &got.0 {
        let ids: BTreeSet<String> = members.iter().map(|(id, _)| id.clone()).collect();
        // Every predicted cluster lies inside one exact component: connected by exact pairs.
        assert!(truth.iter().any(|t| ids.is_subset(t)), "{ids:?}");
        for (id, similarity) in members {
            // Reported similarities are the exact Jaccard to the kept document.
            let exact = if id == kept {
                1.0
            } else {
                jaccard(&sets[id], &sets[kept])
            };
            assert!(
                (similarity - exact).abs() < 1e-12,
                "{id}: {similarity} vs {exact}"
            );
        }
    }
}

/// Precision and recall of predicted clusters' pairs against the exact components' pairs.
fn pair_scores(truth: &BTreeSet<BTreeSet<String>>, got: &BTreeSet<BTreeSet<String>>) -> (f64, f64) {
    let pairs = |groups: &BTreeSet<BTreeSet<String>>| -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for g in groups {
            let v: Vec<&String> = g.iter().collect();
            for i in 0..v.len() {
                for j in i + 1..v.len() {
                    out.insert((v[i].clone(), v[j].clone()));
                }
            }
        }
        out
    };
    let (t, g) = (pairs(truth), pairs(got));
    let hit = t.intersection(&g).count() as f64;
    (hit / g.len().max(1) as f64, hit / t.len().max(1) as f64)
}

#[test]
fn signature_verification_finds_most_pairs_and_borderline_checks_fix_the_rest() {
    let docs: Vec<SynthDoc> = Corpus::new(CorpusSpec {
        docs: 400,
        seed: 6,
        dup_fraction: 0.5,
        mean_words: 200,
    })
    .collect();
    let truth = exact_components(&docs, 0.8);
    let by_signature = as_sets(&run(
        &docs,
        DedupBuilder::new().verify(VerifyMode::Signature),
    ));
    let (precision, recall) = pair_scores(&truth, &by_signature);
    // Signature estimates have ±0.035 noise at 128 permutations: a few pairs near 0.8 flip.
    assert!(
        precision > 0.93 && recall > 0.90,
        "signature: precision {precision}, recall {recall}"
    );
    // The default re-checks pairs near the threshold on exact Jaccard: only LSH misses remain.
    let by_default = as_sets(&run(&docs, DedupBuilder::new()));
    let (precision_b, recall_b) = pair_scores(&truth, &by_default);
    assert!(precision_b >= 0.995, "borderline: precision {precision_b}");
    assert!(
        recall_b >= recall,
        "borderline: recall {recall_b} < {recall}"
    );
}
