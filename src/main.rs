//! The `neardup` command line: parses arguments, builds a [`neardup::Dedup`], and writes what its
//! sink receives to files. All deduplication logic lives in the library.

mod output;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use neardup::error::{Origin, Rejection};
use neardup::normalize::NormalizeOptions;
use neardup::report::{ClusterReport, KeptRecord, Progress, Removal, Sink, Summary};
use neardup::{ConfigError, DedupBuilder, Error, Format, Input, InputSet};

use output::Output;

#[derive(Parser)]
#[command(
    name = "neardup",
    version,
    about = "Fast exact and near-duplicate detection for text corpora"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the corpus without its duplicates: kept records byte-identical, in input order.
    Dedup {
        #[command(flatten)]
        common: Common,
        /// Kept records go here ('-' for stdout; .gz/.zst compress).
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        output: String,
        /// One JSON line per removed document: {"id","duplicate_of","similarity","kind"}.
        #[arg(long, value_name = "FILE")]
        removed: Option<String>,
        /// Also write the clusters (as the `clusters` command does).
        #[arg(long, value_name = "FILE")]
        clusters: Option<String>,
    },
    /// List the clusters of duplicates, largest first, one JSON line each.
    Clusters {
        #[command(flatten)]
        common: Common,
        /// Clusters go here ('-' for stdout; .gz/.zst compress).
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: String,
    },
}

#[derive(Args)]
struct Common {
    /// Input files ('-' for stdin), read in order.
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<String>,
    /// Input layout: jsonl, lines (one document per line) or files (a directory, one document per file).
    #[arg(long, default_value = "jsonl")]
    format: String,
    /// JSON field holding the text.
    #[arg(long, default_value = "text")]
    text_field: String,
    /// JSON field holding the id (a record without one is named FILE:LINE).
    #[arg(long, default_value = "id")]
    id_field: String,
    /// Shingles: word:N (N-word grams) or char:K (K-character grams).
    #[arg(long, default_value = "word:5")]
    shingle: String,
    /// Jaccard similarity at or above which documents are duplicates.
    #[arg(long, default_value_t = 0.8)]
    threshold: f64,
    /// MinHash permutations per signature.
    #[arg(long, default_value_t = 128)]
    num_perm: usize,
    /// LSH bands (with --rows; default: chosen from the threshold).
    #[arg(long)]
    bands: Option<usize>,
    /// LSH rows per band (with --bands).
    #[arg(long)]
    rows: Option<usize>,
    /// Seed of the hash functions; the same seed gives the same output.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How candidate pairs are checked: signature (estimate only), borderline (exact Jaccard for
    /// pairs whose estimate is near the threshold; reads the inputs once more) or exact (exact
    /// Jaccard for every candidate pair).
    #[arg(long, default_value = "borderline")]
    verify: String,
    /// Which member of a cluster stays: first, longest, or max:FIELD.
    #[arg(long, default_value = "first")]
    keep: String,
    /// Skip Unicode NFKC normalization.
    #[arg(long)]
    no_nfkc: bool,
    /// Keep case.
    #[arg(long)]
    no_lowercase: bool,
    /// Keep punctuation and symbols.
    #[arg(long)]
    keep_punctuation: bool,
    /// Keep whitespace runs as they are.
    #[arg(long)]
    keep_whitespace: bool,
    /// Records larger than this many bytes are rejected without being held in memory.
    #[arg(long, default_value_t = 64 << 20)]
    max_doc_bytes: usize,
    /// Rejected records go here, one JSON line each: {"file","line","reason"}.
    #[arg(long, value_name = "FILE")]
    rejected: Option<String>,
    /// Write the summary as JSON here.
    #[arg(long, value_name = "FILE")]
    stats_json: Option<String>,
    /// Stop with exit code 1 at the first bad record.
    #[arg(long)]
    strict: bool,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Print the LSH parameters and their S-curve.
    #[arg(short, long)]
    verbose: bool,
    /// Print nothing but errors.
    #[arg(short, long)]
    quiet: bool,
}

impl Common {
    fn builder(&self) -> Result<DedupBuilder, ConfigError> {
        let mut builder = DedupBuilder::new()
            .threshold(self.threshold)
            .num_perm(self.num_perm)
            .seed(self.seed)
            .shingle(self.shingle.parse()?)
            .verify(self.verify.parse()?)
            .keep(self.keep.parse()?)
            .fields(&self.text_field, &self.id_field)
            .strict(self.strict)
            .normalize(NormalizeOptions {
                nfkc: !self.no_nfkc,
                lowercase: !self.no_lowercase,
                strip_punctuation: !self.keep_punctuation,
                collapse_whitespace: !self.keep_whitespace,
            });
        match (self.bands, self.rows) {
            (Some(bands), Some(rows)) => builder = builder.bands(bands, rows),
            (None, None) => {}
            _ => return Err(ConfigError::HalfBands),
        }
        Ok(builder)
    }

    fn input_set(&self) -> Result<InputSet, ConfigError> {
        let format: Format = self.format.parse()?;
        let inputs = self.inputs.iter().map(|s| Input::parse(s)).collect();
        InputSet::new(inputs, format, self.max_doc_bytes)
    }
}

/// How many rejections are printed to stderr before the rest go only to --rejected.
const REJECTIONS_SHOWN: u64 = 10;

/// Writes what the pipeline reports to the files the user named.
struct CliSink {
    format: Format,
    kept: Option<Output>,
    removed: Option<Output>,
    clusters: Option<Output>,
    rejected: Option<Output>,
    rejections: u64,
    quiet: bool,
    bar: Option<ProgressBar>,
}

fn write_json<T: serde::Serialize>(out: &mut Output, value: &T) -> Result<(), Error> {
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
        match &mut self.clusters {
            Some(out) => write_json(out, cluster),
            None => Ok(()),
        }
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

fn progress_bar(quiet: bool, total: Option<u64>) -> Option<ProgressBar> {
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

fn print_parameters(dedup: &neardup::Dedup) {
    let p = dedup.params();
    eprintln!(
        "LSH: {} bands × {} rows of {} permutations (threshold {}, S-curve knee at {:.3})",
        p.num_bands,
        p.rows_per_band,
        dedup.num_perm(),
        dedup.threshold(),
        p.knee()
    );
    eprintln!("  similarity  P(candidate)");
    for (s, prob) in p.s_curve() {
        let bar = "#".repeat((prob * 40.0).round() as usize);
        eprintln!("  {s:>10.2}  {prob:>12.4} {bar}");
    }
}

fn run(cli: Cli) -> Result<Summary> {
    let (common, kept_path, removed_path, clusters_path) = match &cli.command {
        Command::Dedup {
            common,
            output,
            removed,
            clusters,
        } => (common, Some(output), removed.as_ref(), clusters.as_ref()),
        Command::Clusters { common, output } => (common, None, None, Some(output)),
    };
    if let Some(threads) = common.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .context("cannot start the thread pool")?;
    }
    let dedup = common.builder()?.build()?;
    let mut inputs = common.input_set()?;
    if common.verbose && !common.quiet {
        print_parameters(&dedup);
    }
    let open = |path: Option<&String>| path.map(|p| Output::create(p)).transpose();
    let mut sink = CliSink {
        format: inputs.format(),
        kept: open(kept_path)?,
        removed: open(removed_path)?,
        clusters: open(clusters_path)?,
        rejected: open(common.rejected.as_ref())?,
        rejections: 0,
        quiet: common.quiet,
        bar: progress_bar(common.quiet, inputs.total_bytes()),
    };
    let summary = dedup.run(&mut inputs, &mut sink)?;
    if let Some(bar) = &sink.bar {
        bar.finish_and_clear();
    }
    for out in [sink.kept, sink.removed, sink.clusters, sink.rejected]
        .into_iter()
        .flatten()
    {
        out.finish()?;
    }
    if let Some(path) = &common.stats_json {
        let mut out = Output::create(path)?;
        write_json(&mut out, &summary)?;
        out.finish()?;
    }
    if !common.quiet {
        eprint!("{}", summary.to_text());
    }
    Ok(summary)
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<Error>()
            .is_some_and(Error::is_broken_pipe)
            || cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("neardup: {error:#}");
            ExitCode::FAILURE
        }
    }
}
