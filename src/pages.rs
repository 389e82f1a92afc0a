//! The `--report` pages of `dedup`, `clusters` and `stats`: gathering what they show.

use std::collections::HashMap;
use std::io::Write;

use anyhow::Result;
use neardup::html::{CalibrationBand, ReportCluster, ReportData, SamplePair};
use neardup::output::Output;
use neardup::pipeline::{CorpusStats, ShownText};
use neardup::report::{CandidateSample, DocId, Summary};

use crate::sink::ReportCollector;

/// Documents shown in a report, read again after the run.
pub type Texts = HashMap<u64, ShownText>;

/// What the page shows of `doc`: the text its run compared.
fn shown(texts: &Texts, doc: Option<DocId>) -> String {
    doc.and_then(|d| texts.get(&d.0))
        .map(|t| t.compared.clone())
        .unwrap_or_else(|| "(text not available)".to_string())
}

/// The documents a report shows of its candidate samples.
pub fn sample_docs(samples: &[CandidateSample]) -> impl Iterator<Item = DocId> + '_ {
    samples.iter().flat_map(|s| [s.a, s.b])
}

/// The calibration bands: 0.5-0.6 … 0.9-1.0, the pairs in each (from the 0.05-wide histogram)
/// and its sampled pairs with their exact similarity. Samples whose texts could not be read
/// again are left out.
fn calibration(
    dedup: &neardup::Dedup,
    histogram: &[u64],
    samples: &[CandidateSample],
    texts: &Texts,
) -> Vec<CalibrationBand> {
    let mut bands: Vec<CalibrationBand> = (5..10)
        .map(|tenth| CalibrationBand {
            from: tenth as f64 / 10.0,
            to: (tenth + 1) as f64 / 10.0,
            pairs: histogram.iter().skip(2 * tenth).take(2).sum(),
            samples: Vec::new(),
        })
        .collect();
    for sample in samples {
        let (Some(a), Some(b)) = (texts.get(&sample.a.0), texts.get(&sample.b.0)) else {
            continue;
        };
        let Some(band) = bands.get_mut(sample.band) else {
            continue;
        };
        band.samples.push(SamplePair {
            a_id: a.id.clone(),
            a_text: a.compared.clone(),
            b_id: b.id.clone(),
            b_text: b.compared.clone(),
            estimate: sample.estimate,
            exact: dedup.similarity(&a.compared, &b.compared),
        });
    }
    bands
}

/// The exact similarity of two shown documents, when both were read.
fn exact_of(
    dedup: &neardup::Dedup,
    texts: &Texts,
    a: Option<DocId>,
    b: Option<DocId>,
) -> Option<f64> {
    let a = texts.get(&a?.0)?;
    let b = texts.get(&b?.0)?;
    Some(dedup.similarity(&a.compared, &b.compared))
}

/// The report page of a `dedup` or `clusters` run. A streaming run reads nothing again: its page
/// shows ids and counts only.
pub fn run_report(
    dedup: &neardup::Dedup,
    summary: &Summary,
    collected: ReportCollector,
    texts: &Texts,
    streaming: bool,
) -> ReportData {
    let rows = [
        ("documents read", summary.docs_read.to_string()),
        ("kept", summary.kept.to_string()),
        ("exact duplicates", summary.exact_duplicates.to_string()),
        ("near duplicates", summary.near_duplicates.to_string()),
        ("rejected", summary.rejected.to_string()),
        ("empty", summary.empty.to_string()),
        ("clusters", summary.clusters.to_string()),
        ("largest cluster", summary.largest_cluster.to_string()),
        ("redundancy", format!("{:.2}%", summary.redundancy_percent)),
        ("candidate pairs", summary.candidate_pairs.to_string()),
        ("verified pairs", summary.verified_pairs.to_string()),
        ("pairs checked exactly", summary.exact_checks.to_string()),
        ("measure", format!("{:?}", dedup.measure()).to_lowercase()),
        (
            "bands × rows",
            format!("{} × {}", summary.num_bands, summary.rows_per_band),
        ),
        ("time", format!("{:.2} s", summary.seconds)),
    ];
    ReportData {
        title: format!("neardup: {} documents", summary.docs_read),
        summary: rows.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        cluster_sizes: collected.sizes.into_iter().collect(),
        similarity_histogram: summary.candidate_similarity_histogram.clone(),
        params: Some(dedup.params()),
        threshold: dedup.threshold(),
        clusters: collected
            .top
            .iter()
            .map(|t| ReportCluster {
                size: t.size,
                kept_id: t.kept_id.clone(),
                kept_text: shown(texts, Some(t.kept_doc)),
                member_id: t.member_id.clone(),
                member_text: shown(texts, Some(t.member_doc)),
                similarity: t.similarity,
                exact_similarity: t
                    .similarity
                    .is_nan()
                    .then(|| exact_of(dedup, texts, Some(t.kept_doc), Some(t.member_doc)))
                    .flatten(),
                through_others: t.similarity.is_nan(),
            })
            .collect(),
        calibration: calibration(
            dedup,
            &summary.candidate_similarity_histogram,
            &summary.candidate_samples,
            texts,
        ),
        calibration_note: streaming.then(|| {
            "A streaming run keeps no texts to show: use --mode batch to see sample pairs."
                .to_string()
        }),
        boilerplate_stripped: dedup.strips_boilerplate().is_some(),
    }
}

/// Writes the page into `out` (committed with the run's other outputs).
pub fn write_report(out: &mut Output, data: &ReportData) -> Result<()> {
    out.write_all(neardup::html::render(data).as_bytes())
        .map_err(|e| out.error(e))?;
    Ok(())
}

/// The report page of `stats`.
pub fn stats_report(dedup: &neardup::Dedup, stats: &CorpusStats, texts: &Texts) -> ReportData {
    let mut summary = vec![
        ("documents".to_string(), stats.docs_read.to_string()),
        (
            "distinct texts".to_string(),
            stats.distinct_texts.to_string(),
        ),
        (
            "exact duplicates".to_string(),
            format!(
                "{} ({:.2}%)",
                stats.exact_duplicates, stats.exact_duplicate_percent
            ),
        ),
    ];
    for t in &stats.near {
        summary.push((
            format!("removed at threshold {}", t.threshold),
            format!(
                "{} ({:.2}%; {} near, {} clusters)",
                t.removed, t.redundancy_percent, t.near_duplicates, t.clusters
            ),
        ));
    }
    let b = &stats.boilerplate;
    summary.push((
        "boilerplate units".to_string(),
        format!(
            "{} of {} ({:.2}%)",
            b.boilerplate_units, b.units, b.boilerplate_percent
        ),
    ));
    let r = &stats.repetition;
    summary.push((
        "mean duplicate lines / characters in them".to_string(),
        format!(
            "{:.2}% / {:.2}%",
            100.0 * r.mean_duplicate_line_fraction,
            100.0 * r.mean_duplicate_line_char_fraction
        ),
    ));
    summary.push((
        "over Gopher's limits (lines / characters)".to_string(),
        format!("{} / {}", r.docs_over_line_limit, r.docs_over_char_limit),
    ));
    ReportData {
        title: format!("neardup stats: {} documents", stats.docs_read),
        summary,
        cluster_sizes: stats.cluster_sizes.clone(),
        similarity_histogram: stats.candidate_similarity_histogram.clone(),
        params: Some(dedup.params()),
        threshold: stats.main_threshold,
        clusters: stats
            .top_clusters
            .iter()
            .map(|c| {
                let (kept, member) = (c.docs.first().copied(), c.docs.get(1).copied());
                ReportCluster {
                    size: c.size,
                    kept_id: c.kept.clone(),
                    kept_text: shown(texts, kept),
                    member_id: c.members.first().cloned().unwrap_or_default(),
                    member_text: shown(texts, member),
                    // `stats` keeps no similarity per member: the page measures the pair shown.
                    similarity: f64::NAN,
                    exact_similarity: exact_of(dedup, texts, kept, member),
                    through_others: false,
                }
            })
            .collect(),
        calibration: calibration(
            dedup,
            &stats.candidate_similarity_histogram,
            &stats.candidate_samples,
            texts,
        ),
        calibration_note: None,
        boilerplate_stripped: false,
    }
}
