//! The `--report FILE.html` page: one self-contained file (inline CSS and SVG, no script, no
//! network fetch) that shows what a run found.
//!
//! Sections: the summary table; a histogram of cluster sizes; the similarity distribution of the
//! candidate pairs drawn over the S-curve of the chosen bands × rows, with the threshold marked, so
//! a reader sees what LSH let through and what the threshold cut; the largest clusters, each with
//! its kept document and a word-level diff of one member against it.

use std::fmt::Write;

use crate::lsh::LshParams;

/// Everything the page shows.
#[derive(Debug, Clone, Default)]
pub struct ReportData {
    pub title: String,
    /// `(label, value)` rows of the summary table.
    pub summary: Vec<(String, String)>,
    /// `(smallest size of the bucket, clusters)`: 2, 3-4, 5-8, …
    pub cluster_sizes: Vec<(u64, u64)>,
    /// Candidate pairs by estimated similarity, 20 bins of 0.05.
    pub similarity_histogram: Vec<u64>,
    pub params: Option<LshParams>,
    pub threshold: f64,
    pub clusters: Vec<ReportCluster>,
}

/// One cluster shown in full.
#[derive(Debug, Clone, Default)]
pub struct ReportCluster {
    pub size: u64,
    pub kept_id: String,
    pub kept_text: String,
    pub member_id: String,
    pub member_text: String,
    pub similarity: f64,
}

/// The cluster-size bucket of `size` (≥ 2): 2, 3 (3-4), 5 (5-8), 9 (9-16), …
pub fn size_bucket(size: u64) -> u64 {
    (1u64 << (63 - size.saturating_sub(1).max(1).leading_zeros())) + 1
}

/// Escapes text for HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Words compared by the diff (at most this many of each text; the rest is shown plain).
const DIFF_WORDS: usize = 2000;

/// One step of a word diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffOp<'a> {
    Same(&'a str),
    /// Only in the kept document.
    Removed(&'a str),
    /// Only in the member.
    Added(&'a str),
}

/// A word-level diff of `member` against `kept` (longest common subsequence of words).
pub fn word_diff<'a>(kept: &'a str, member: &'a str) -> Vec<DiffOp<'a>> {
    let a: Vec<&str> = kept.split_whitespace().take(DIFF_WORDS).collect();
    let b: Vec<&str> = member.split_whitespace().take(DIFF_WORDS).collect();
    let (n, m) = (a.len(), b.len());
    // lcs[i][j]: LCS length of a[i..] and b[j..].
    let mut lcs = vec![0u16; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[at(i, j)] = if a[i] == b[j] {
                lcs[at(i + 1, j + 1)] + 1
            } else {
                lcs[at(i + 1, j)].max(lcs[at(i, j + 1)])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::with_capacity(n.max(m)));
    while i < n && j < m {
        if a[i] == b[j] {
            out.push(DiffOp::Same(a[i]));
            i += 1;
            j += 1;
        } else if lcs[at(i + 1, j)] >= lcs[at(i, j + 1)] {
            out.push(DiffOp::Removed(a[i]));
            i += 1;
        } else {
            out.push(DiffOp::Added(b[j]));
            j += 1;
        }
    }
    out.extend(a[i..].iter().map(|w| DiffOp::Removed(w)));
    out.extend(b[j..].iter().map(|w| DiffOp::Added(w)));
    out
}

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;\
color:#222;padding:0 1em}h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}\
table{border-collapse:collapse}td,th{padding:.2em .8em;border-bottom:1px solid #ddd;\
text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}\
svg{background:#fafafa;border:1px solid #ddd}.doc{white-space:pre-wrap;max-height:22em;\
overflow:auto;border:1px solid #ddd;padding:.6em;background:#fcfcfc;font-size:.9em}\
ins{background:#d4f7d4;text-decoration:none}del{background:#f9d0d0}\
.pair{display:grid;grid-template-columns:1fr 1fr;gap:1em}.note{color:#666;font-size:.9em}";

/// Renders the page.
pub fn render(data: &ReportData) -> String {
    let mut html = String::new();
    let title = escape(&data.title);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head><body>\n<h1>{title}</h1>\n"
    );
    html.push_str("<h2>Summary</h2>\n<table>\n");
    for (label, value) in &data.summary {
        let _ = writeln!(
            html,
            "<tr><th>{}</th><td class=\"n\">{}</td></tr>",
            escape(label),
            escape(value)
        );
    }
    html.push_str("</table>\n");

    html.push_str("<h2>Cluster sizes</h2>\n");
    if data.cluster_sizes.is_empty() {
        html.push_str("<p>No clusters.</p>\n");
    } else {
        html.push_str(&size_chart(&data.cluster_sizes));
    }

    html.push_str("<h2>Candidate pairs by similarity</h2>\n");
    html.push_str(&similarity_chart(data));

    html.push_str("<h2>Largest clusters</h2>\n");
    if data.clusters.is_empty() {
        html.push_str("<p>No clusters.</p>\n");
    }
    for (n, c) in data.clusters.iter().enumerate() {
        let _ = write!(
            html,
            "<h3>#{} · {} documents · kept <code>{}</code></h3>\n\
             <p class=\"note\">Member <code>{}</code>, {}. \
             <del>struck</del> words are only in the kept document, <ins>marked</ins> words only \
             in the member.</p>\n<div class=\"pair\"><div class=\"doc\">{}</div><div class=\"doc\">",
            n + 1,
            c.size,
            escape(&c.kept_id),
            escape(&c.member_id),
            if c.similarity.is_nan() {
                "joined through other members".to_string()
            } else {
                format!("similarity {:.3} to the kept document", c.similarity)
            },
            escape(&c.kept_text),
        );
        for op in word_diff(&c.kept_text, &c.member_text) {
            match op {
                DiffOp::Same(w) => {
                    let _ = write!(html, "{} ", escape(w));
                }
                DiffOp::Removed(w) => {
                    let _ = write!(html, "<del>{}</del> ", escape(w));
                }
                DiffOp::Added(w) => {
                    let _ = write!(html, "<ins>{}</ins> ", escape(w));
                }
            }
        }
        html.push_str("</div></div>\n");
    }
    html.push_str("</body></html>\n");
    html
}

/// Bars of clusters per size bucket.
fn size_chart(sizes: &[(u64, u64)]) -> String {
    let (width, height, pad) = (640.0, 220.0, 40.0);
    let max = sizes.iter().map(|s| s.1).max().unwrap_or(1).max(1) as f64;
    let bar = (width - 2.0 * pad) / sizes.len() as f64;
    let mut svg = format!(
        "<svg width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" \
         role=\"img\" aria-label=\"clusters per size\">"
    );
    for (i, (from, count)) in sizes.iter().enumerate() {
        // Logarithmic heights: a few large clusters stay visible next to many pairs.
        let h = (height - 2.0 * pad) * ((*count as f64).ln_1p() / max.ln_1p());
        let x = pad + i as f64 * bar;
        let label = if *from == 2 {
            "2".to_string()
        } else {
            format!("{}-{}", from, from * 2 - 2)
        };
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#4a7bd0\">\
             <title>size {label}: {count} clusters</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{count}</text>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{label}</text>",
            x + 2.0,
            height - pad - h,
            bar - 4.0,
            h,
            x + bar / 2.0,
            height - pad - h - 4.0,
            x + bar / 2.0,
            height - pad + 14.0,
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">documents per cluster \
         (bar heights on a log scale)</text></svg>",
        width / 2.0,
        height - 6.0
    );
    svg
}

/// The candidate pairs' similarity histogram over the S-curve, with the threshold.
fn similarity_chart(data: &ReportData) -> String {
    let (width, height, pad) = (640.0, 260.0, 40.0);
    let plot_w = width - 2.0 * pad;
    let plot_h = height - 2.0 * pad;
    let x_of = |s: f64| pad + s * plot_w;
    let y_of = |p: f64| height - pad - p * plot_h;
    let mut svg = format!(
        "<svg width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" \
         role=\"img\" aria-label=\"candidate pairs by similarity\">"
    );
    let max = data
        .similarity_histogram
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let bins = data.similarity_histogram.len().max(1) as f64;
    for (i, &count) in data.similarity_histogram.iter().enumerate() {
        let h = plot_h * (count as f64).ln_1p() / max.ln_1p();
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#9bb7e8\">\
             <title>{:.2}-{:.2}: {count} pairs</title></rect>",
            x_of(i as f64 / bins) + 1.0,
            height - pad - h,
            plot_w / bins - 2.0,
            h,
            i as f64 / bins,
            (i + 1) as f64 / bins,
        );
    }
    if let Some(params) = data.params {
        let points: Vec<String> = (0..=100)
            .map(|i| {
                let s = i as f64 / 100.0;
                format!("{:.1},{:.1}", x_of(s), y_of(params.probability(s)))
            })
            .collect();
        let _ = write!(
            svg,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"#c0392b\" stroke-width=\"2\">\
             <title>P(candidate) for {} bands × {} rows</title></polyline>",
            points.join(" "),
            params.num_bands,
            params.rows_per_band
        );
    }
    let tx = x_of(data.threshold);
    let _ = write!(
        svg,
        "<line x1=\"{tx:.1}\" x2=\"{tx:.1}\" y1=\"{}\" y2=\"{}\" stroke=\"#222\" \
         stroke-dasharray=\"4 3\"/><text x=\"{:.1}\" y=\"{}\" font-size=\"12\">threshold {}</text>",
        pad - 10.0,
        height - pad,
        tx + 4.0,
        pad - 14.0,
        data.threshold
    );
    for tick in 0..=10 {
        let s = tick as f64 / 10.0;
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{s:.1}</text>",
            x_of(s),
            height - pad + 14.0
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">estimated similarity \
         of candidate pairs (bars, log scale) and the chance LSH makes a pair a candidate \
         (red)</text></svg>",
        width / 2.0,
        height - 6.0
    );
    svg
}

#[cfg(test)]
mod tests {
    use crate::html::{DiffOp, ReportCluster, ReportData, render, size_bucket, word_diff};
    use crate::lsh::LshParams;

    #[test]
    fn size_buckets_double() {
        let buckets: Vec<u64> = [2, 3, 4, 5, 8, 9, 16, 17].map(size_bucket).to_vec();
        assert_eq!(buckets, [2, 3, 3, 5, 5, 9, 9, 17]);
    }

    #[test]
    fn diff_marks_only_what_differs() {
        let ops = word_diff("a b c d", "a x c d e");
        assert_eq!(
            ops,
            [
                DiffOp::Same("a"),
                DiffOp::Removed("b"),
                DiffOp::Added("x"),
                DiffOp::Same("c"),
                DiffOp::Same("d"),
                DiffOp::Added("e"),
            ]
        );
    }

    #[test]
    fn page_is_self_contained_and_escaped() {
        let page = render(&ReportData {
            title: "t <b>".into(),
            summary: vec![("docs".into(), "3".into())],
            cluster_sizes: vec![(2, 5), (3, 1)],
            similarity_histogram: vec![1; 20],
            params: Some(LshParams::new(14, 9, 128).unwrap()),
            threshold: 0.8,
            clusters: vec![ReportCluster {
                size: 2,
                kept_id: "k".into(),
                kept_text: "<script>alert(1)</script> one two".into(),
                member_id: "m".into(),
                member_text: "one three".into(),
                similarity: 0.5,
            }],
        });
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(!page.contains("<script"));
        assert!(page.contains("&lt;script&gt;"));
        assert!(page.contains("<ins>three</ins>"));
        assert!(!page.contains("http://") && !page.contains("https://"));
        assert_eq!(page.matches("<svg").count(), 2);
    }
}
