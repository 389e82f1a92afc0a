//! The `--report FILE.html` page: one self-contained file (inline CSS and SVG, no script, no
//! network fetch) that shows what a run found.
//!
//! Sections: the summary table; a histogram of cluster sizes; the similarity distribution of the
//! candidate pairs drawn over the S-curve of the chosen bands × rows, with the threshold marked, so
//! a reader sees what LSH let through and what the threshold cut; the calibration view, a few
//! candidate pairs of each tenth of similarity from 0.5 up side by side with their exact
//! similarity, so a reader picks a threshold by looking; the largest clusters, each with its kept
//! document beside one member. Side-by-side texts keep their own line breaks and mark the words
//! the other text lacks.

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
    /// The calibration view's bands, lowest first.
    pub calibration: Vec<CalibrationBand>,
    /// Why the calibration view shows no sample pairs, when it cannot.
    pub calibration_note: Option<String>,
    /// The texts shown are what the run compared: without their boilerplate.
    pub boilerplate_stripped: bool,
}

/// One band of the calibration view: candidate pairs whose estimated similarity is in
/// `from..to`, and a few of them.
#[derive(Debug, Clone, Default)]
pub struct CalibrationBand {
    pub from: f64,
    pub to: f64,
    pub pairs: u64,
    pub samples: Vec<SamplePair>,
}

/// A candidate pair shown side by side.
#[derive(Debug, Clone, Default)]
pub struct SamplePair {
    pub a_id: String,
    pub a_text: String,
    pub b_id: String,
    pub b_text: String,
    pub estimate: f64,
    /// The exact similarity of the texts shown, under the run's measure.
    pub exact: f64,
}

/// One cluster shown in full.
#[derive(Debug, Clone, Default)]
pub struct ReportCluster {
    pub size: u64,
    pub kept_id: String,
    pub kept_text: String,
    pub member_id: String,
    pub member_text: String,
    /// The member's similarity to the kept document as the run decided it (NaN when the member
    /// joined the cluster through other members).
    pub similarity: f64,
    /// The exact similarity of the two texts shown, when `similarity` is NaN.
    pub exact_similarity: Option<f64>,
    /// The member joined the cluster through other members, not as a duplicate of the kept one.
    pub through_others: bool,
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

/// Words compared by the diff (at most this many of each text; the rest is shown unmarked).
const DIFF_WORDS: usize = 2000;

/// A word of a text as a diff shows it: the word, the whitespace after it (so each side keeps
/// its own line breaks), and whether the other text has it at this place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiffWord<'a> {
    pub word: &'a str,
    pub space: &'a str,
    pub shared: bool,
}

/// One text of a side-by-side diff: its leading whitespace, its first 2,000 words each
/// marked, and the rest of the text, unmarked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffSide<'a> {
    pub lead: &'a str,
    pub words: Vec<DiffWord<'a>>,
    pub rest: &'a str,
}

/// `text` as words with their trailing whitespace, for at most `limit` words.
fn diff_side(text: &str, limit: usize) -> DiffSide<'_> {
    let start = text.len() - text.trim_start().len();
    let mut words = Vec::new();
    let mut at = start;
    while at < text.len() && words.len() < limit {
        let rest = &text[at..];
        let word_len = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let after = &rest[word_len..];
        let space_len = after.len() - after.trim_start().len();
        words.push(DiffWord {
            word: &rest[..word_len],
            space: &after[..space_len],
            shared: false,
        });
        at += word_len + space_len;
    }
    DiffSide {
        lead: &text[..start],
        words,
        rest: &text[at..],
    }
}

/// A word-level diff of two texts (a longest common subsequence of their words), as both texts
/// with the words the other one lacks marked.
pub fn word_diff<'a>(a: &'a str, b: &'a str) -> (DiffSide<'a>, DiffSide<'a>) {
    let (mut left, mut right) = (diff_side(a, DIFF_WORDS), diff_side(b, DIFF_WORDS));
    let (x, y) = (&mut left.words, &mut right.words);
    let (n, m) = (x.len(), y.len());
    // lcs[i][j]: LCS length of x[i..] and y[j..].
    let mut lcs = vec![0u16; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[at(i, j)] = if x[i].word == y[j].word {
                lcs[at(i + 1, j + 1)] + 1
            } else {
                lcs[at(i + 1, j)].max(lcs[at(i, j + 1)])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    while i < n && j < m {
        if x[i].word == y[j].word {
            x[i].shared = true;
            y[j].shared = true;
            i += 1;
            j += 1;
        } else if lcs[at(i + 1, j)] >= lcs[at(i, j + 1)] {
            i += 1;
        } else {
            j += 1;
        }
    }
    (left, right)
}

/// One side of a diff as HTML, the words the other side lacks inside `tag`.
fn render_side(side: &DiffSide<'_>, tag: &str) -> String {
    let mut html = escape(side.lead);
    for w in &side.words {
        if w.shared {
            html.push_str(&escape(w.word));
        } else {
            let _ = write!(html, "<{tag}>{}</{tag}>", escape(w.word));
        }
        html.push_str(&escape(w.space));
    }
    html.push_str(&escape(side.rest));
    html
}

/// Two texts side by side, each with its own line breaks, the words only in the first struck
/// and the words only in the second marked.
fn render_pair(a: &str, b: &str) -> String {
    let (left, right) = word_diff(a, b);
    format!(
        "<div class=\"pair\"><div class=\"doc\">{}</div><div class=\"doc\">{}</div></div>\n",
        render_side(&left, "del"),
        render_side(&right, "ins")
    )
}

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;\
color:#222;padding:0 1em}h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}\
h3{font-size:1.05em;margin:1.4em 0 .3em}table{border-collapse:collapse}\
td,th{padding:.2em .8em;border-bottom:1px solid #ddd;text-align:left}\
td.n{text-align:right;font-variant-numeric:tabular-nums}figure{margin:1em 0}\
figcaption{color:#444;font-size:.9em;max-width:640px}\
svg{background:#fafafa;border:1px solid #ddd;max-width:100%;height:auto}\
.doc{white-space:pre-wrap;overflow-wrap:anywhere;max-height:22em;overflow:auto;\
border:1px solid #ddd;padding:.6em;background:#fcfcfc;font-size:.9em}\
ins{background:#d4f7d4;text-decoration:none}del{background:#f9d0d0}\
.pair{display:grid;grid-template-columns:1fr 1fr;gap:1em}.note{color:#666;font-size:.9em}\
.sample{margin:.6em 0 1.4em}.yes{color:#1e7b34;font-weight:600}.no{color:#a33;font-weight:600}";

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

    html.push_str(&calibration_section(data));

    html.push_str("<h2 id=\"clusters\">Largest clusters</h2>\n");
    if data.clusters.is_empty() {
        html.push_str("<p>No clusters.</p>\n");
    } else {
        html.push_str(
            "<p class=\"note\">Each cluster's kept document on the left and one member on the \
             right: <del>struck</del> words are only in the kept document, <ins>marked</ins> \
             words only in the member.</p>\n",
        );
    }
    for (n, c) in data.clusters.iter().enumerate() {
        let through = match c.through_others {
            true => " (it joined the cluster through other members)",
            false => "",
        };
        let similarity = match (c.similarity.is_nan(), c.exact_similarity) {
            (false, _) => format!("similarity {:.3} to the kept document", c.similarity),
            (true, Some(exact)) => {
                format!("exact similarity {exact:.3} to the kept document{through}")
            }
            (true, None) => format!("similarity not known{through}"),
        };
        let _ = write!(
            html,
            "<h3>#{} · {} documents · kept <code>{}</code></h3>\n\
             <p class=\"note\">Member <code>{}</code>: {}.</p>\n",
            n + 1,
            c.size,
            escape(&c.kept_id),
            escape(&c.member_id),
            similarity,
        );
        html.push_str(&render_pair(&c.kept_text, &c.member_text));
    }
    html.push_str("</body></html>\n");
    html
}

/// The calibration view: per tenth of similarity from 0.5 up, its candidate pairs and a few of
/// them side by side.
fn calibration_section(data: &ReportData) -> String {
    let mut html =
        String::from("<h2 id=\"calibration\">Calibration: pairs near the threshold</h2>\n");
    let _ = writeln!(
        html,
        "<p class=\"note\">Candidate pairs by the similarity their signatures estimate, and a few \
         of each band side by side (left the first document, right the second; <del>struck</del> \
         words only on the left, <ins>marked</ins> words only on the right), with their exact \
         similarity{} and what it makes of the pair at the threshold, {} (a run that verifies \
         only borderline pairs decides a pair far from the threshold on its estimate). Read down \
         the bands to see where copies stop being copies, and pick the threshold there.</p>",
        if data.boilerplate_stripped {
            " (of the texts without their boilerplate, as shown)"
        } else {
            ""
        },
        data.threshold
    );
    html.push_str(
        "<table>\n<tr><th>estimated similarity</th><th>candidate pairs</th>\
         <th>samples shown</th></tr>\n",
    );
    for band in &data.calibration {
        let label = format!("{:.1} – {:.1}", band.from, band.to);
        let label = match band.samples.is_empty() {
            true => label,
            false => format!("<a href=\"#band-{:.1}\">{label}</a>", band.from),
        };
        let _ = writeln!(
            html,
            "<tr><td>{label}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            band.pairs,
            band.samples.len(),
        );
    }
    html.push_str("</table>\n");
    if let Some(note) = &data.calibration_note {
        let _ = writeln!(html, "<p class=\"note\">{}</p>", escape(note));
    }
    for band in data.calibration.iter().rev() {
        if band.samples.is_empty() {
            continue;
        }
        let _ = writeln!(
            html,
            "<h3 id=\"band-{from:.1}\">Estimated similarity {from:.1} – {to:.1}: {} candidate \
             pairs</h3>",
            band.pairs,
            from = band.from,
            to = band.to,
        );
        for sample in &band.samples {
            let verdict = if sample.exact >= data.threshold {
                "<span class=\"yes\">a duplicate</span>"
            } else {
                "<span class=\"no\">not a duplicate</span>"
            };
            let _ = writeln!(
                html,
                "<div class=\"sample\"><p><code>{}</code> and <code>{}</code>: exact similarity \
                 <b>{:.3}</b> (estimated {:.3}), {verdict} by it at threshold {}</p>",
                escape(&sample.a_id),
                escape(&sample.b_id),
                sample.exact,
                sample.estimate,
                data.threshold,
            );
            html.push_str(&render_pair(&sample.a_text, &sample.b_text));
            html.push_str("</div>\n");
        }
    }
    html
}

/// Where a chart draws: its size and the plot area inside the axes.
struct Frame {
    width: f64,
    height: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

impl Frame {
    const CHART: Frame = Frame {
        width: 680.0,
        height: 260.0,
        left: 58.0,
        right: 52.0,
        top: 26.0,
        bottom: 40.0,
    };

    fn plot_width(&self) -> f64 {
        self.width - self.left - self.right
    }

    fn plot_height(&self) -> f64 {
        self.height - self.top - self.bottom
    }

    /// The y of a fraction of the plot's height (0 at the axis).
    fn y(&self, fraction: f64) -> f64 {
        self.height - self.bottom - fraction * self.plot_height()
    }

    fn open(&self, label: &str) -> String {
        format!(
            "<figure><svg width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" \
             aria-label=\"{label}\"><line x1=\"{l}\" x2=\"{l}\" y1=\"{t}\" y2=\"{b}\" \
             stroke=\"#444\"/><line x1=\"{l}\" x2=\"{r}\" y1=\"{b}\" y2=\"{b}\" stroke=\"#444\"/>",
            w = self.width,
            h = self.height,
            l = self.left,
            r = self.width - self.right,
            t = self.top,
            b = self.height - self.bottom,
        )
    }

    /// A logarithmic y axis up to `max` on the left: ticks at 1, 10, 100, …, and its title.
    fn log_axis(&self, max: u64, title: &str) -> String {
        let mut svg = String::new();
        let top = (max.max(1) as f64).ln_1p();
        let mut tick = 1u64;
        let mut ticks = vec![0u64];
        while tick <= max.max(1) {
            ticks.push(tick);
            tick = tick.saturating_mul(10);
        }
        for t in ticks {
            let y = self.y((t as f64).ln_1p() / top);
            let _ = write!(
                svg,
                "<line x1=\"{}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#444\"/>\
                 <line x1=\"{}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e4e4e4\"/>\
                 <text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{}</text>",
                self.left - 4.0,
                self.left,
                self.left + 1.0,
                self.width - self.right,
                self.left - 6.0,
                y + 4.0,
                short_count(t),
            );
        }
        let _ = write!(
            svg,
            "<text transform=\"translate(14 {:.1}) rotate(-90)\" font-size=\"12\" \
             text-anchor=\"middle\">{title}</text>",
            self.top + self.plot_height() / 2.0
        );
        svg
    }
}

/// 1, 10, 100, 1k, 10k, … for axis ticks.
fn short_count(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{}k", n / 1_000),
        1_000_000..1_000_000_000 => format!("{}M", n / 1_000_000),
        _ => format!("{}G", n / 1_000_000_000),
    }
}

/// Bars of clusters per size bucket, on a logarithmic axis.
fn size_chart(sizes: &[(u64, u64)]) -> String {
    let f = Frame::CHART;
    let max = sizes.iter().map(|s| s.1).max().unwrap_or(1).max(1);
    // Bars at most 80 pixels wide, centred.
    let bar = (f.plot_width() / sizes.len() as f64).min(80.0);
    let start = f.left + (f.plot_width() - bar * sizes.len() as f64) / 2.0;
    let mut svg = f.open("clusters per size");
    svg.push_str(&f.log_axis(max, "clusters"));
    for (i, (from, count)) in sizes.iter().enumerate() {
        let h = f.plot_height() * (*count as f64).ln_1p() / (max as f64).ln_1p();
        let x = start + i as f64 * bar;
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
            f.y(0.0) - h,
            (bar - 4.0).max(1.0),
            h,
            x + bar / 2.0,
            (f.y(0.0) - h - 4.0).max(12.0),
            x + bar / 2.0,
            f.y(0.0) + 14.0,
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{:.1}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">documents per \
         cluster</text></svg>",
        f.left + f.plot_width() / 2.0,
        f.height - 6.0
    );
    svg.push_str(
        "<figcaption>Clusters by their number of documents. The bar heights are on a \
         logarithmic scale, so a few large clusters stay visible beside many pairs; the number \
         above each bar is its count.</figcaption></figure>\n",
    );
    svg
}

/// The candidate pairs' similarity histogram over the S-curve, with the threshold.
fn similarity_chart(data: &ReportData) -> String {
    let f = Frame::CHART;
    let x_of = |s: f64| f.left + s * f.plot_width();
    let max = data
        .similarity_histogram
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .max(1);
    let mut svg = f.open("candidate pairs by similarity");
    svg.push_str(&f.log_axis(max, "candidate pairs"));
    let bins = data.similarity_histogram.len().max(1) as f64;
    for (i, &count) in data.similarity_histogram.iter().enumerate() {
        let h = f.plot_height() * (count as f64).ln_1p() / (max as f64).ln_1p();
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#9bb7e8\">\
             <title>{:.2}-{:.2}: {count} pairs</title></rect>",
            x_of(i as f64 / bins) + 1.0,
            f.y(0.0) - h,
            f.plot_width() / bins - 2.0,
            h,
            i as f64 / bins,
            (i + 1) as f64 / bins,
        );
    }
    if let Some(params) = data.params {
        let points: Vec<String> = (0..=100)
            .map(|i| {
                let s = i as f64 / 100.0;
                format!("{:.1},{:.1}", x_of(s), f.y(params.probability(s)))
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
        // The curve's axis, on the right: the chance a pair becomes a candidate.
        let right = f.width - f.right;
        let _ = write!(
            svg,
            "<line x1=\"{right}\" x2=\"{right}\" y1=\"{}\" y2=\"{}\" stroke=\"#c0392b\"/>",
            f.top,
            f.y(0.0)
        );
        for tick in 0..=4 {
            let p = tick as f64 / 4.0;
            let _ = write!(
                svg,
                "<line x1=\"{right}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#c0392b\"/>\
                 <text x=\"{}\" y=\"{:.1}\" font-size=\"11\" fill=\"#c0392b\">{p:.2}</text>",
                right + 4.0,
                right + 6.0,
                f.y(p) + 4.0,
                y = f.y(p),
            );
        }
        let _ = write!(
            svg,
            "<text transform=\"translate({} {:.1}) rotate(90)\" font-size=\"12\" \
             text-anchor=\"middle\" fill=\"#c0392b\">P(candidate)</text>",
            f.width - 8.0,
            f.top + f.plot_height() / 2.0
        );
    }
    let tx = x_of(data.threshold);
    let _ = write!(
        svg,
        "<line x1=\"{tx:.1}\" x2=\"{tx:.1}\" y1=\"{}\" y2=\"{}\" stroke=\"#222\" \
         stroke-dasharray=\"4 3\"/><text x=\"{:.1}\" y=\"{}\" font-size=\"12\" \
         text-anchor=\"end\">threshold {}</text>",
        f.top,
        f.y(0.0),
        tx - 4.0,
        f.top - 8.0,
        data.threshold
    );
    for tick in 0..=10 {
        let s = tick as f64 / 10.0;
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{s:.1}</text>",
            x_of(s),
            f.y(0.0) + 14.0
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{:.1}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">estimated \
         similarity</text></svg>",
        f.left + f.plot_width() / 2.0,
        f.height - 6.0
    );
    let curve = match data.params {
        Some(p) => format!(
            " The red curve (right axis) is the chance that LSH with {} bands × {} rows makes \
             a pair of that similarity a candidate.",
            p.num_bands, p.rows_per_band
        ),
        None => String::new(),
    };
    let _ = writeln!(
        svg,
        "<figcaption>Candidate pairs by the similarity their signatures estimate (bars, left \
         axis, logarithmic).{curve} The dashed line is the threshold.</figcaption></figure>"
    );
    svg
}

#[cfg(test)]
mod tests {
    use crate::html::{
        CalibrationBand, ReportCluster, ReportData, SamplePair, render, size_bucket, word_diff,
    };
    use crate::lsh::LshParams;

    #[test]
    fn size_buckets_double() {
        let buckets: Vec<u64> = [2, 3, 4, 5, 8, 9, 16, 17].map(size_bucket).to_vec();
        assert_eq!(buckets, [2, 3, 3, 5, 5, 9, 9, 17]);
    }

    #[test]
    fn diff_marks_only_what_differs_and_keeps_each_sides_whitespace() {
        let (left, right) = word_diff("a b\nc d", "  a x c\n\nd e ");
        fn marks<'a>(side: &crate::html::DiffSide<'a>) -> Vec<(&'a str, bool)> {
            side.words.iter().map(|w| (w.word, w.shared)).collect()
        }
        assert_eq!(
            marks(&left),
            [("a", true), ("b", false), ("c", true), ("d", true)]
        );
        assert_eq!(
            marks(&right),
            [
                ("a", true),
                ("x", false),
                ("c", true),
                ("d", true),
                ("e", false)
            ]
        );
        let spaces: Vec<&str> = right.words.iter().map(|w| w.space).collect();
        assert_eq!(
            (right.lead, spaces),
            ("  ", vec![" ", " ", "\n\n", " ", " "])
        );
        assert_eq!(left.words[1].space, "\n");
    }

    fn page() -> ReportData {
        ReportData {
            title: "t <b>".into(),
            summary: vec![("docs".into(), "3".into())],
            cluster_sizes: vec![(2, 5), (3, 1)],
            similarity_histogram: vec![1; 20],
            params: Some(LshParams::new(14, 9, 128).unwrap()),
            threshold: 0.8,
            clusters: vec![ReportCluster {
                size: 2,
                kept_id: "k".into(),
                kept_text: "<script>alert(1)</script> one\ntwo".into(),
                member_id: "m".into(),
                member_text: "one three".into(),
                similarity: f64::NAN,
                exact_similarity: Some(0.25),
                through_others: true,
            }],
            calibration: vec![
                CalibrationBand {
                    from: 0.5,
                    to: 0.6,
                    ..CalibrationBand::default()
                },
                CalibrationBand {
                    from: 0.7,
                    to: 0.8,
                    pairs: 12,
                    samples: vec![SamplePair {
                        a_id: "a1".into(),
                        a_text: "same words here".into(),
                        b_id: "b1".into(),
                        b_text: "same words there".into(),
                        estimate: 0.74,
                        exact: 0.5,
                    }],
                },
            ],
            calibration_note: None,
            boilerplate_stripped: false,
        }
    }

    #[test]
    fn page_is_self_contained_and_escaped() {
        let page = render(&page());
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(!page.contains("<script"));
        assert!(page.contains("&lt;script&gt;"));
        assert!(page.contains("<ins>three</ins>"));
        assert!(
            page.contains("<del>two</del>"),
            "the kept side marks its own words"
        );
        assert!(!page.contains("http://") && !page.contains("https://"));
        assert_eq!(page.matches("<svg").count(), 2);
    }

    #[test]
    fn calibration_shows_each_sample_with_its_exact_similarity_and_verdict() {
        let page = render(&page());
        let section =
            &page[page.find("id=\"calibration\"").unwrap()..page.find("id=\"clusters\"").unwrap()];
        assert!(section.contains("0.7 – 0.8</a></td><td class=\"n\">12</td>"));
        assert!(
            section.contains("<td>0.5 – 0.6</td><td class=\"n\">0</td>"),
            "not linked"
        );
        assert!(section.contains("exact similarity <b>0.500</b> (estimated 0.740)"));
        assert!(section.contains("not a duplicate</span> by it at threshold 0.8"));
        assert!(section.contains("<del>here</del>") && section.contains("<ins>there</ins>"));
    }

    #[test]
    fn a_cluster_joined_through_others_shows_its_exact_similarity() {
        let page = render(&page());
        assert!(page.contains(
            "exact similarity 0.250 to the kept document (it joined the cluster through"
        ));
        assert!(!page.contains("joined through other members"));
    }

    #[test]
    fn charts_have_axes_and_their_captions_outside_the_drawing() {
        let page = render(&page());
        assert_eq!(page.matches("<figcaption>").count(), 2);
        // Log axes: ticks 0, 1 (and 10 when a count reaches it), titled.
        assert!(page.contains(">clusters</text>") && page.contains(">candidate pairs</text>"));
        assert!(page.contains(">P(candidate)</text>"));
        for svg in page.split("<svg").skip(1) {
            let svg = &svg[..svg.find("</svg>").unwrap()];
            assert!(
                !svg.contains("log scale"),
                "long captions are figcaptions: {svg}"
            );
        }
    }
}
