//! The `--report` pages of `dedup`, `clusters` and `stats`: gathering what they show.

use std::collections::HashMap;
use std::io::Write;

use anyhow::Result;
use neardup::html::{ReportCluster, ReportData};
use neardup::output::Output;
use neardup::pipeline::CorpusStats;
use neardup::report::{DocId, Summary};

use crate::sink::ReportCollector;

/// The report page of a `dedup` or `clusters` run.
pub fn run_report(
    dedup: &neardup::Dedup,
    summary: &Summary,
    collected: ReportCollector,
    texts: &HashMap<u64, String>,
) -> ReportData {
    let text = |doc: DocId| {
        texts
            .get(&doc.0)
            .cloned()
            .unwrap_or_else(|| "(text not available)".to_string())
    };
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
                kept_text: text(t.kept_doc),
                member_id: t.member_id.clone(),
                member_text: text(t.member_doc),
                similarity: t.similarity,
            })
            .collect(),
    }
}

/// Writes the page into `out` (committed with the run's other outputs).
pub fn write_report(out: &mut Output, data: &ReportData) -> Result<()> {
    out.write_all(neardup::html::render(data).as_bytes())
        .map_err(|e| out.error(e))?;
    Ok(())
}

/// The report page of `stats`.
pub fn stats_report(
    dedup: &neardup::Dedup,
    stats: &CorpusStats,
    texts: &HashMap<u64, String>,
) -> ReportData {
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
    let text = |doc: Option<&DocId>| {
        doc.and_then(|d| texts.get(&d.0))
            .cloned()
            .unwrap_or_else(|| "(text not available)".to_string())
    };
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
            .map(|c| ReportCluster {
                size: c.size,
                kept_id: c.kept.clone(),
                kept_text: text(c.docs.first()),
                member_id: c.members.first().cloned().unwrap_or_default(),
                member_text: text(c.docs.get(1)),
                similarity: f64::NAN,
            })
            .collect(),
    }
}
