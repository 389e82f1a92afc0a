//! The command line's [`Sink`]: writes what the pipeline reports to the files the user named, and
//! drives the progress bar.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressStyle};
use neardup::error::{Origin, Rejection};
use neardup::report::{ClusterReport, DocId, KeptRecord, Progress, Removal, Sink};
use neardup::{Error, Format};

use neardup::output::Output;

/// How many rejections are printed to stderr before the rest go only to --rejected.
const REJECTIONS_SHOWN: u64 = 10;

/// Writes what the pipeline reports to the files the user named.
pub struct CliSink {
    pub format: Format,
    pub kept: Option<Output>,
    pub removed: Option<Output>,
    pub clusters: Option<Output>,
    pub rejected: Option<Output>,
    /// --stats-json, written when the run ends.
    pub stats_json: Option<Output>,
    /// --report's page, written when the run ends.
    pub report_page: Option<Output>,
    pub rejections: u64,
    pub quiet: bool,
    pub bar: Option<ProgressBar>,
    /// What `--report` needs, gathered as clusters arrive.
    pub report: Option<ReportCollector>,
}

/// Clusters shown in full in a report.
pub const REPORT_CLUSTERS: usize = 10;

/// Cluster sizes and the largest clusters, for `--report`.
#[derive(Debug, Default)]
pub struct ReportCollector {
    pub sizes: BTreeMap<u64, u64>,
    pub top: Vec<TopEntry>,
}

/// One of the largest clusters: its kept document and its first other member.
#[derive(Debug)]
pub struct TopEntry {
    pub size: u64,
    pub kept_id: String,
    pub kept_doc: DocId,
    pub member_id: String,
    pub member_doc: DocId,
    pub similarity: f64,
}

impl ReportCollector {
    fn add(&mut self, cluster: &ClusterReport<'_>) {
        *self
            .sizes
            .entry(neardup::html::size_bucket(cluster.size as u64))
            .or_default() += 1;
        if self.top.len() >= REPORT_CLUSTERS {
            return;
        }
        let Some(kept_doc) = cluster.kept_doc else {
            return;
        };
        if let Some(member) = cluster.members.iter().find(|m| m.doc != kept_doc) {
            self.top.push(TopEntry {
                size: cluster.size as u64,
                kept_id: cluster.kept.to_string(),
                kept_doc,
                member_id: member.id.to_string(),
                member_doc: member.doc,
                similarity: member.similarity,
            });
        }
    }
}

pub fn write_json<T: serde::Serialize>(out: &mut Output, value: &T) -> Result<(), Error> {
    serde_json::to_writer(&mut *out, value).map_err(|e| out.error(e.into()))?;
    out.write_all(b"\n").map_err(|e| out.error(e))
}

impl Sink for CliSink {
    fn rejected(&mut self, rejection: &Rejection) -> Result<(), Error> {
        self.rejections += 1;
        if !self.quiet && self.rejections <= REJECTIONS_SHOWN {
            let message = format!("rejected {rejection}");
            match &self.bar {
                Some(bar) => bar.println(message),
                None => eprintln!("{message}"),
            }
            if self.rejections == REJECTIONS_SHOWN {
                eprintln!("(further rejections are counted, not shown; --rejected FILE lists all)");
            }
        }
        if let Some(out) = &mut self.rejected {
            #[derive(serde::Serialize)]
            struct Line<'a> {
                file: &'a str,
                line: u64,
                reason: String,
            }
            let Origin { file, line } = &rejection.origin;
            write_json(
                out,
                &Line {
                    file,
                    line: *line,
                    reason: rejection.reason.to_string(),
                },
            )?;
        }
        Ok(())
    }

    fn progress(&mut self, progress: &Progress) {
        if let Some(bar) = &self.bar {
            match progress.total_bytes {
                Some(total) => {
                    bar.set_length(total);
                    bar.set_position(progress.bytes);
                }
                None => bar.set_position(progress.bytes),
            }
            let seconds = bar.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!(
                "{} docs {:.0}/s",
                progress.docs,
                progress.docs as f64 / seconds
            ));
        }
    }

    fn removed(&mut self, removal: &Removal<'_>) -> Result<(), Error> {
        match &mut self.removed {
            Some(out) => write_json(out, removal),
            None => Ok(()),
        }
    }

    fn cluster(&mut self, cluster: &ClusterReport<'_>) -> Result<(), Error> {
        if let Some(report) = &mut self.report {
            report.add(cluster);
        }
        match &mut self.clusters {
            Some(out) => write_json(out, cluster),
            None => Ok(()),
        }
    }

    fn flush(&mut self) -> Result<(), Error> {
        for out in [&mut self.kept, &mut self.removed].into_iter().flatten() {
            out.flush().map_err(|e| out.error(e))?;
        }
        Ok(())
    }

    fn wants_kept_records(&self) -> bool {
        self.kept.is_some()
    }

    fn kept(&mut self, record: &KeptRecord<'_>) -> Result<(), Error> {
        let Some(out) = &mut self.kept else {
            return Ok(());
        };
        if self.format == Format::Files {
            // A file has no line of its own to copy: write it as a JSON record.
            let text = String::from_utf8_lossy(record.bytes);
            let value = serde_json::json!({"id": record.origin.file, "text": text});
            return write_json(out, &value);
        }
        out.write_all(record.bytes).map_err(|e| out.error(e))?;
        out.write_all(b"\n").map_err(|e| out.error(e))
    }
}

pub fn progress_bar(quiet: bool, total: Option<u64>) -> Option<ProgressBar> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = match total {
        Some(total) => ProgressBar::new(total).with_style(
            ProgressStyle::with_template(
                "{bar:24} {percent:>3}% {binary_bytes_per_sec:>11} ETA {eta:>3} {msg}",
            )
            .expect("valid template"),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {bytes:>10} {binary_bytes_per_sec:>11} {msg}")
                .expect("valid template"),
        ),
    };
    Some(bar)
}
