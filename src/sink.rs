//! The command line's [`Sink`]: writes what the pipeline reports to the files the user named, and
//! drives the progress bar.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressStyle};
use neardup::error::{Origin, Rejection};
use neardup::output::Output;
use neardup::parquet_write::ReportTable;
use neardup::report::{AnnotatedRecord, ClusterReport, DocId, KeptRecord, Progress, Removal, Sink};
use neardup::{Error, Input, InputSet};

use crate::kept::{Kept, ParquetInputs};

/// Where removals or clusters go: JSON Lines, or a Parquet table (one each per run).
#[allow(clippy::large_enum_variant)]
pub enum TableOut {
    Json(Output),
    Parquet(ReportTable),
}

impl TableOut {
    fn push<T: serde::Serialize>(&mut self, value: &T) -> Result<(), Error> {
        match self {
            TableOut::Json(out) => write_json(out, value),
            TableOut::Parquet(table) => table.push(value),
        }
    }

    fn flush(&mut self) -> Result<(), Error> {
        match self {
            TableOut::Json(out) => out.flush().map_err(|e| out.error(e)),
            TableOut::Parquet(_) => Ok(()),
        }
    }

    pub fn finish(self) -> Result<(), Error> {
        match self {
            TableOut::Json(out) => out.finish(),
            TableOut::Parquet(table) => table.finish(),
        }
    }
}

/// How many rejections are printed to stderr before the rest go only to --rejected.
const REJECTIONS_SHOWN: u64 = 10;

/// Writes what the pipeline reports to the files the user named.
pub struct CliSink {
    pub kept: Option<Kept>,
    /// The Parquet inputs, whose kept rows are copied from the files whole.
    pub parquet: ParquetInputs,
    pub removed: Option<TableOut>,
    pub clusters: Option<TableOut>,
    pub rejected: Option<Output>,
    /// --stats-json, written when the run ends.
    pub stats_json: Option<Output>,
    /// --report's page, written when the run ends.
    pub report_page: Option<Output>,
    pub rejections: u64,
    pub quiet: bool,
    pub bar: Option<ProgressBar>,
    /// Where each input ends in the byte count, for showing the shard being read.
    pub shards: Option<Shards>,
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
                /// A WARC record's byte offset (its gzip member's).
                #[serde(skip_serializing_if = "Option::is_none")]
                offset: Option<u64>,
                reason: String,
            }
            let Origin { file, line, offset } = &rejection.origin;
            write_json(
                out,
                &Line {
                    file,
                    line: *line,
                    offset: *offset,
                    reason: rejection.reason.to_string(),
                },
            )?;
        }
        Ok(())
    }

    fn progress(&mut self, progress: &Progress) {
        if let Some(bar) = &self.bar {
            let shard = self
                .shards
                .as_ref()
                .map(|shards| shards.describe(progress.bytes))
                .unwrap_or_default();
            match progress.total_bytes {
                Some(total) => {
                    bar.set_length(total);
                    bar.set_position(progress.bytes);
                }
                None => bar.set_position(progress.bytes),
            }
            let seconds = bar.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!(
                "{} docs {:.0}/s{shard}",
                progress.docs,
                progress.docs as f64 / seconds
            ));
        }
    }

    fn removed(&mut self, removal: &Removal<'_>) -> Result<(), Error> {
        match &mut self.removed {
            Some(out) => out.push(removal),
            None => Ok(()),
        }
    }

    fn cluster(&mut self, cluster: &ClusterReport<'_>) -> Result<(), Error> {
        if let Some(report) = &mut self.report {
            report.add(cluster);
        }
        match &mut self.clusters {
            Some(out) => out.push(cluster),
            None => Ok(()),
        }
    }

    fn flush(&mut self) -> Result<(), Error> {
        if let Some(kept) = &mut self.kept {
            kept.flush()?;
        }
        if let Some(out) = &mut self.removed {
            out.flush()?;
        }
        Ok(())
    }

    fn wants_kept_records(&self) -> bool {
        self.kept.is_some()
    }

    fn kept(&mut self, record: &KeptRecord<'_>) -> Result<(), Error> {
        match &mut self.kept {
            Some(kept) => kept.kept(record, &mut self.parquet),
            None => Ok(()),
        }
    }

    fn annotated(&mut self, record: &AnnotatedRecord<'_>) -> Result<(), Error> {
        match &mut self.kept {
            Some(kept) => kept.annotated(record, &mut self.parquet),
            None => Ok(()),
        }
    }
}

/// The inputs of a run of several, with where each ends in the bytes read as stored: the
/// progress bar's "shard k/N: name" is where the byte count stands (the reader runs a batch or
/// two ahead of the documents counted).
#[derive(Debug, Clone)]
pub struct Shards {
    ends: Vec<u64>,
    names: Vec<String>,
}

impl Shards {
    /// `None` for one input, or when a size is unknown (a stream).
    pub fn of(inputs: &InputSet) -> Option<Shards> {
        if inputs.inputs().len() < 2 {
            return None;
        }
        let sizes = inputs.sizes()?;
        let ends = sizes
            .iter()
            .scan(0u64, |end, size| {
                *end += size;
                Some(*end)
            })
            .collect();
        let names = inputs
            .inputs()
            .iter()
            .map(|input| match input {
                Input::Path(p) => p.file_name().map_or_else(
                    || p.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                ),
                Input::Stdin => "<stdin>".to_string(),
            })
            .collect();
        Some(Shards { ends, names })
    }

    /// ` · shard k/N name` for the input being read after `bytes`, with the shards done.
    fn describe(&self, bytes: u64) -> String {
        // The first input not wholly read (an empty input ends where it starts).
        let done = self
            .ends
            .partition_point(|&end| end <= bytes)
            .min(self.ends.len());
        match self.names.get(done) {
            Some(name) => format!(" · shard {}/{} {name}", done + 1, self.names.len()),
            None => format!(" · {} shards read", self.names.len()),
        }
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

#[cfg(test)]
mod tests {
    use super::Shards;

    #[test]
    fn issue12_the_shard_shown_is_where_the_byte_count_stands() {
        let shards = Shards {
            ends: vec![10, 10, 25],
            names: vec!["a".into(), "empty".into(), "c".into()],
        };
        assert_eq!(shards.describe(0), " · shard 1/3 a");
        assert_eq!(shards.describe(9), " · shard 1/3 a");
        // An empty shard is passed at once.
        assert_eq!(shards.describe(10), " · shard 3/3 c");
        assert_eq!(shards.describe(25), " · 3 shards read");
    }
}
