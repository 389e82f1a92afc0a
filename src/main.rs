//! The `neardup` command line: parses arguments, builds a [`neardup::Dedup`], and writes what its
//! sink receives to files. All deduplication logic lives in the library.

mod sink;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use neardup::boilerplate::BoilerplateOptions;
use neardup::html::{ReportCluster, ReportData};
use neardup::index::{Index, SegmentData};
use neardup::normalize::NormalizeOptions;
use neardup::pipeline::{ClusterConfig, DistributedOutputs, RunOptions, StatsOptions};
use neardup::report::{DocId, Summary};
use neardup::{ConfigError, DedupBuilder, Error, Format, Input, InputSet};

use neardup::output::Output;
use sink::{CliSink, ReportCollector, progress_bar, write_json};

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
        #[command(flatten)]
        against: Against,
        /// Append the kept documents to the first --against index (created if DIR holds none).
        #[arg(long, requires = "dirs")]
        update: bool,
        /// Write a self-contained HTML page of the run (summary, cluster sizes, similarity of the
        /// candidate pairs over the S-curve, the largest clusters with a diff of a member).
        #[arg(long, value_name = "FILE.html")]
        report: Option<String>,
        #[command(flatten)]
        distributed: DistributedArgs,
        /// batch: read everything, then decide (clusters, keep policies, exact verification).
        /// stream: decide each document as it arrives, first seen wins, kept records written at
        /// once. auto: stream when reading only stdin and writing kept records to stdout.
        #[arg(long, default_value = "auto")]
        mode: String,
    },
    /// List the clusters of duplicates, largest first, one JSON line each.
    Clusters {
        #[command(flatten)]
        common: Common,
        /// Clusters go here ('-' for stdout; .gz/.zst compress).
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: String,
        #[command(flatten)]
        against: Against,
        /// Write a self-contained HTML page of the run (see `dedup --report`).
        #[arg(long, value_name = "FILE.html")]
        report: Option<String>,
        #[command(flatten)]
        distributed: DistributedArgs,
    },
    /// Merge the part files of a distributed run's output, in input order.
    Merge {
        /// The parts (OUT.part-NNNN-of-NNNN), in any order.
        #[arg(required = true, value_name = "PART")]
        parts: Vec<PathBuf>,
        /// The merged output ('-' for stdout; .gz/.zst compress).
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        output: String,
    },
    /// How redundant a corpus is, from one read: exact and near-duplicate rates at several
    /// thresholds, boilerplate lines, repetition inside documents, cluster sizes, top clusters.
    Stats {
        #[command(flatten)]
        common: Box<Common>,
        /// Thresholds to report near-duplicate rates at (LSH is tuned to the lowest).
        #[arg(long, value_delimiter = ',', default_value = "0.5,0.7,0.8,0.9")]
        thresholds: Vec<f64>,
        /// Largest clusters listed.
        #[arg(long, default_value_t = 10)]
        top: usize,
        /// Print the figures as JSON on stdout (the table still goes to stderr unless -q).
        #[arg(long)]
        json: bool,
        /// Write a self-contained HTML page of the figures and the largest clusters.
        #[arg(long, value_name = "FILE.html")]
        report: Option<String>,
    },
    /// Remove boilerplate lines (or paragraphs) repeated across documents from each text; JSON
    /// records keep every field but the text's value as it was.
    Lines {
        #[command(flatten)]
        input: InputArgs,
        /// The stripped corpus goes here ('-' for stdout; .gz/.zst compress).
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        output: String,
        #[command(flatten)]
        boilerplate: BoilerplateArgs,
    },
    /// Build, extend, inspect or compact a persistent index of documents already seen.
    Index {
        #[command(subcommand)]
        command: IndexCommand,
    },
}

/// Running as one of several processes on timely dataflow.
#[derive(Args)]
struct DistributedArgs {
    /// Worker threads per process of a distributed run (timely's -w).
    #[arg(long)]
    workers: Option<usize>,
    /// Processes in the run (timely's -n); needs --hostfile when more than one.
    #[arg(long)]
    processes: Option<usize>,
    /// This process's index, from 0 (timely's -p).
    #[arg(long)]
    process: Option<usize>,
    /// One host:port per line, one line per process, in process order (timely's -h).
    #[arg(long, value_name = "FILE")]
    hostfile: Option<PathBuf>,
    /// Each worker saves its signed records here; a rerun (after a lost process) with the same
    /// inputs and settings loads them instead of signing again.
    #[arg(long, value_name = "DIR")]
    checkpoint: Option<PathBuf>,
}

impl DistributedArgs {
    /// The cluster, when any distributed flag was given.
    fn cluster(&self) -> Result<Option<ClusterConfig>> {
        if self.workers.is_none()
            && self.processes.is_none()
            && self.process.is_none()
            && self.hostfile.is_none()
            && self.checkpoint.is_none()
        {
            return Ok(None);
        }
        let processes = self.processes.unwrap_or(1);
        let addresses = match &self.hostfile {
            Some(path) => {
                let mut hosts = ClusterConfig::read_hostfile(path)?;
                if hosts.len() < processes {
                    anyhow::bail!(
                        "hostfile {} lists {} hosts for {} processes",
                        path.display(),
                        hosts.len(),
                        processes
                    );
                }
                hosts.truncate(processes);
                hosts
            }
            None if processes == 1 => vec!["localhost:0".to_string()],
            None => anyhow::bail!("--processes {processes} needs --hostfile"),
        };
        Ok(Some(ClusterConfig::new(
            self.workers.unwrap_or(1),
            self.process.unwrap_or(0),
            addresses,
        )?))
    }
}

#[derive(Args)]
struct Against {
    /// An index of documents kept before (repeatable): a document that duplicates one of them is
    /// removed, with `duplicate_of` naming the indexed id. Its parameters must match this run's.
    #[arg(long = "against", value_name = "DIR")]
    dirs: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum IndexCommand {
    /// Create an index in DIR holding every distinct document of INPUT (first copy's id).
    Build {
        #[command(flatten)]
        common: Box<Common>,
        /// The index directory (created; must not hold an index yet).
        #[arg(long, value_name = "DIR")]
        index: PathBuf,
    },
    /// Append INPUT's distinct documents as a new segment, with the index's own parameters.
    Add {
        #[command(flatten)]
        input: InputArgs,
        #[arg(long, value_name = "DIR")]
        index: PathBuf,
    },
    /// Print the index's parameters, segments and counts (checking every checksum).
    Info {
        #[arg(long, value_name = "DIR")]
        index: PathBuf,
        /// Print the manifest and counts as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Merge all segments into one.
    Compact {
        #[arg(long, value_name = "DIR")]
        index: PathBuf,
    },
}

/// How boilerplate is recognized.
#[derive(Args)]
struct BoilerplateArgs {
    /// A line (or paragraph) in at least this many documents is boilerplate.
    #[arg(long, default_value_t = 3)]
    min_docs: u32,
    /// What is counted: line, or paragraph (lines between blank lines).
    #[arg(long, default_value = "line")]
    unit: String,
    /// Count per group: the JSON field naming each document's site (a URL counts by its host),
    /// so that only what repeats within one site is boilerplate.
    #[arg(long, value_name = "FIELD")]
    group_field: Option<String>,
}

impl BoilerplateArgs {
    fn options(&self) -> Result<BoilerplateOptions, ConfigError> {
        Ok(BoilerplateOptions {
            min_docs: self.min_docs,
            unit: self.unit.parse()?,
        })
    }

    fn configure(&self, builder: DedupBuilder) -> Result<DedupBuilder, ConfigError> {
        let mut builder = builder.strip_boilerplate(self.options()?);
        if let Some(field) = &self.group_field {
            builder = builder.group_field(field);
        }
        Ok(builder)
    }
}

/// Every option of a detecting run: where documents come from and how they are compared.
#[derive(Args)]
struct Common {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    detect: DetectArgs,
}

/// Where documents come from, and the run's reporting.
#[derive(Args)]
struct InputArgs {
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

/// How documents are compared.
#[derive(Args)]
struct DetectArgs {
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
    /// Jaccard for every candidate pair). Pairs with an indexed document use the estimate.
    #[arg(long, default_value = "borderline")]
    verify: String,
    /// Which member of a cluster stays: first, longest, or max:FIELD. A cluster holding an
    /// indexed document keeps that one.
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
    /// Memory budget, e.g. 512M or 4G: band tables beyond a quarter of it are spilled to sorted
    /// runs on disk and merged back; exact checks load at most a quarter of it per round.
    #[arg(long, value_name = "SIZE")]
    memory: Option<String>,
    /// Where spilled runs go (default: the system's temporary directory).
    #[arg(long, value_name = "DIR")]
    temp_dir: Option<PathBuf>,
    /// What similarity means: jaccard, or containment (the smaller document mostly inside the
    /// larger: syndicated stories in pages, excerpts, reprints). Removals then name each
    /// document's role: copy or container.
    #[arg(long, default_value = "jaccard")]
    measure: String,
    /// With --measure containment: the largest size ratio of a pair LSH is tuned to find (higher
    /// finds more, with more candidates to check).
    #[arg(long, default_value_t = neardup::pipeline::DEFAULT_MAX_SIZE_RATIO)]
    max_size_ratio: f64,
    /// Remove boilerplate lines (see the `lines` command and --min-docs) from each text before
    /// it is compared; written records stay as they were.
    #[arg(long)]
    strip_boilerplate: bool,
    #[command(flatten)]
    boilerplate: BoilerplateArgs,
}

/// Parses a size such as `1048576`, `512K`, `256M`, `4G` or `1T` (powers of 1024; a trailing `B`
/// or `iB` is allowed).
fn parse_size(text: &str) -> Result<u64, ConfigError> {
    let bad = || ConfigError::MemorySize(text.to_string());
    let trimmed = text.trim();
    let trimmed = trimmed
        .strip_suffix("iB")
        .or_else(|| trimmed.strip_suffix('B'))
        .unwrap_or(trimmed);
    let (digits, shift) = match trimmed.chars().last().ok_or_else(bad)? {
        'k' | 'K' => (&trimmed[..trimmed.len() - 1], 10),
        'm' | 'M' => (&trimmed[..trimmed.len() - 1], 20),
        'g' | 'G' => (&trimmed[..trimmed.len() - 1], 30),
        't' | 'T' => (&trimmed[..trimmed.len() - 1], 40),
        _ => (trimmed, 0),
    };
    let number: u64 = digits.trim().parse().map_err(|_| bad())?;
    number.checked_mul(1 << shift).ok_or_else(bad)
}

impl DetectArgs {
    fn builder(&self) -> Result<DedupBuilder, ConfigError> {
        let mut builder = DedupBuilder::new()
            .threshold(self.threshold)
            .num_perm(self.num_perm)
            .seed(self.seed)
            .shingle(self.shingle.parse()?)
            .verify(self.verify.parse()?)
            .keep(self.keep.parse()?)
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
        if let Some(size) = &self.memory {
            builder = builder.memory(parse_size(size)?);
        }
        if let Some(dir) = &self.temp_dir {
            builder = builder.temp_dir(dir);
        }
        if self.strip_boilerplate {
            builder = self.boilerplate.configure(builder)?;
        }
        builder = builder
            .measure(self.measure.parse()?)
            .max_size_ratio(self.max_size_ratio);
        Ok(builder)
    }
}

impl InputArgs {
    /// Adds the input-side settings (fields, strictness) to `builder`.
    fn configure(&self, builder: DedupBuilder) -> DedupBuilder {
        builder
            .fields(&self.text_field, &self.id_field)
            .strict(self.strict)
    }

    fn input_set(&self) -> Result<InputSet, ConfigError> {
        let format: Format = self.format.parse()?;
        let inputs = self.inputs.iter().map(|s| Input::parse(s)).collect();
        InputSet::new(inputs, format, self.max_doc_bytes)
    }

    fn start_threads(&self) -> Result<()> {
        if let Some(threads) = self.threads {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build_global()
                .context("cannot start the thread pool")?;
        }
        Ok(())
    }

    /// A sink writing the given outputs, plus --rejected, with a progress bar on a terminal.
    fn sink(
        &self,
        inputs: &InputSet,
        kept: Option<&String>,
        removed: Option<&String>,
        clusters: Option<&String>,
    ) -> Result<CliSink, Error> {
        let open = |path: Option<&String>| path.map(|p| Output::create(p)).transpose();
        Ok(CliSink {
            format: inputs.format(),
            kept: open(kept)?,
            removed: open(removed)?,
            clusters: open(clusters)?,
            rejected: open(self.rejected.as_ref())?,
            rejections: 0,
            quiet: self.quiet,
            bar: progress_bar(self.quiet, inputs.total_bytes()),
            report: None,
        })
    }

    /// Commits every output of `sink`, then writes --stats-json and prints the summary.
    fn finish(&self, sink: CliSink, summary: &Summary) -> Result<()> {
        self.finish_with(sink, summary, &summary.to_text())
    }

    /// Commits every output of `sink`, then writes `summary` to --stats-json and prints `text`.
    fn finish_with(
        &self,
        sink: CliSink,
        summary: &impl serde::Serialize,
        text: &str,
    ) -> Result<()> {
        if let Some(bar) = &sink.bar {
            bar.finish_and_clear();
        }
        for out in [sink.kept, sink.removed, sink.clusters, sink.rejected]
            .into_iter()
            .flatten()
        {
            out.finish()?;
        }
        if let Some(path) = &self.stats_json {
            let mut out = Output::create(path)?;
            write_json(&mut out, summary)?;
            out.finish()?;
        }
        if !self.quiet {
            eprint!("{text}");
        }
        Ok(())
    }
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
    if dedup.measure() == neardup::verify::Measure::Containment {
        eprintln!(
            "containment ≥ {}: LSH tuned for Jaccard ≥ {:.3}, the lowest such a pair has at the largest size ratio",
            dedup.threshold(),
            dedup.lsh_jaccard()
        );
    }
    eprintln!("  Jaccard     P(candidate)");
    for (s, prob) in p.s_curve() {
        let bar = "#".repeat((prob * 40.0).round() as usize);
        eprintln!("  {s:>10.2}  {prob:>12.4} {bar}");
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Dedup {
            common,
            output,
            removed,
            clusters,
            against,
            update,
            mode,
            report,
            distributed,
        } => {
            if let Some(cluster) = distributed.cluster()? {
                return run_distributed(
                    &common,
                    &cluster,
                    DistributedOutputs {
                        kept: Some(output),
                        removed,
                        clusters,
                        rejected: common.input.rejected.clone(),
                        checkpoint: distributed.checkpoint.clone(),
                    },
                );
            }
            let streaming = match mode.as_str() {
                "batch" => false,
                "stream" => true,
                "auto" => output == "-" && common.input.inputs.iter().all(|i| i == "-"),
                _ => return Err(ConfigError::Mode(mode).into()),
            };
            detect(
                &common,
                Outputs {
                    kept: Some(&output),
                    removed: removed.as_ref(),
                    clusters: clusters.as_ref(),
                    report: report.as_ref(),
                },
                &against.dirs,
                update,
                streaming,
            )
        }
        Command::Clusters {
            common,
            output,
            against,
            report,
            distributed,
        } => match distributed.cluster()? {
            Some(cluster) => run_distributed(
                &common,
                &cluster,
                DistributedOutputs {
                    kept: None,
                    removed: None,
                    clusters: Some(output),
                    rejected: common.input.rejected.clone(),
                    checkpoint: distributed.checkpoint.clone(),
                },
            ),
            None => detect(
                &common,
                Outputs {
                    kept: None,
                    removed: None,
                    clusters: Some(&output),
                    report: report.as_ref(),
                },
                &against.dirs,
                false,
                false,
            ),
        },
        Command::Merge { parts, output } => {
            let mut out = Output::create(&output)?;
            let lines = neardup::parts::merge(&parts, &mut out)?;
            out.finish()?;
            eprintln!("merged {} parts: {lines} lines", parts.len());
            Ok(())
        }
        Command::Index { command } => run_index(command),
        Command::Stats {
            common,
            thresholds,
            top,
            json,
            report,
        } => run_stats(&common, thresholds, top, json, report.as_ref()),
        Command::Lines {
            input,
            output,
            boilerplate,
        } => {
            input.start_threads()?;
            let dedup = boilerplate
                .configure(input.configure(DedupBuilder::new()))?
                .build()?;
            let mut inputs = input.input_set()?;
            let mut sink = input.sink(&inputs, Some(&output), None, None)?;
            let summary = dedup.strip_records(&mut inputs, &mut sink)?;
            input.finish_with(sink, &summary, &summary.to_text())
        }
    }
}

/// `dedup` or `clusters` as one process of a distributed run.
fn run_distributed(
    common: &Common,
    cluster: &ClusterConfig,
    outputs: DistributedOutputs,
) -> Result<()> {
    let input = &common.input;
    for path in [
        &outputs.kept,
        &outputs.removed,
        &outputs.clusters,
        &outputs.rejected,
    ]
    .into_iter()
    .flatten()
    {
        if path == "-" {
            anyhow::bail!("a distributed run writes files (parts, then merged), not stdout");
        }
    }
    let dedup = input.configure(common.detect.builder()?).build()?;
    let format: neardup::Format = input.format.parse()?;
    let inputs: Vec<neardup::Input> = input
        .inputs
        .iter()
        .map(|s| neardup::Input::parse(s))
        .collect();
    if inputs.contains(&neardup::Input::Stdin) {
        anyhow::bail!("a distributed run reads files, not stdin");
    }
    if input.verbose && !input.quiet {
        print_parameters(&dedup);
        eprintln!(
            "process {} of {}, {} workers each",
            cluster.process,
            cluster.processes(),
            cluster.workers
        );
    }
    // Timely is fail-stop: when a peer dies, its communication threads panic. Say so in one line
    // (the process then exits non-zero) instead of a backtrace per thread.
    let reported = std::sync::atomic::AtomicBool::new(false);
    std::panic::set_hook(Box::new(move |info| {
        if !reported.swap(true, std::sync::atomic::Ordering::SeqCst) {
            let message = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("a worker failed");
            eprintln!(
                "neardup: distributed run stopped: {message} (a peer process failed or went away)"
            );
        }
    }));
    let result = dedup.run_distributed(&inputs, format, input.max_doc_bytes, cluster, &outputs)?;
    if let Some(result) = result {
        if let Some(path) = &input.stats_json {
            let mut out = Output::create(path)?;
            write_json(&mut out, &result.summary)?;
            out.finish()?;
        }
        if !input.quiet {
            eprint!("{}", result.summary.to_text());
            for path in &result.unmerged {
                eprintln!(
                    "{path}: parts are on other machines; run `neardup merge {path}.part-* -o {path}` where all of them are"
                );
            }
        }
    }
    Ok(())
}

/// The files a detecting run writes.
struct Outputs<'a> {
    kept: Option<&'a String>,
    removed: Option<&'a String>,
    clusters: Option<&'a String>,
    report: Option<&'a String>,
}

/// `dedup` and `clusters`.
fn detect(
    common: &Common,
    outputs: Outputs<'_>,
    against: &[PathBuf],
    update: bool,
    streaming: bool,
) -> Result<()> {
    let input = &common.input;
    input.start_threads()?;
    let dedup = input.configure(common.detect.builder()?).build()?;
    // With --update, a directory without an index yet gets a new, empty one.
    if update && !against[0].join("MANIFEST").exists() {
        Index::create(&against[0], dedup.index_params())?;
    }
    let indexes = against
        .iter()
        .map(|dir| {
            let index = Index::open(dir)?;
            dedup.check_index(&index)?;
            Ok(index)
        })
        .collect::<Result<Vec<Index>, Error>>()?;
    let mut inputs = input.input_set()?;
    if streaming {
        inputs = inputs.single_pass();
    }
    if input.verbose && !input.quiet {
        print_parameters(&dedup);
        for index in &indexes {
            eprintln!(
                "against {}: {} documents in {} segments",
                index.dir().display(),
                index.num_docs(),
                index.segments().len()
            );
        }
    }
    let mut sink = input.sink(&inputs, outputs.kept, outputs.removed, outputs.clusters)?;
    if outputs.report.is_some() {
        sink.report = Some(ReportCollector::default());
    }
    let options = RunOptions {
        against: &indexes,
        collect_kept: update,
    };
    let output = if streaming {
        dedup.run_streaming(&mut inputs, options, &mut sink)?
    } else {
        dedup.run_with(&mut inputs, options, &mut sink)?
    };
    // The report reads the shown documents' texts back (a streaming run cannot: ids only).
    if let (Some(path), Some(collected)) = (outputs.report, sink.report.take()) {
        let wanted: Vec<DocId> = collected
            .top
            .iter()
            .flat_map(|t| [t.kept_doc, t.member_doc])
            .collect();
        let texts = if streaming {
            Default::default()
        } else {
            dedup.texts(&mut inputs, &wanted)?
        };
        let data = run_report(&dedup, &output.summary, collected, &texts);
        write_report(path, &data)?;
    }
    // Outputs are committed before the index learns of the kept documents: a run stopped in
    // between leaves them out of the index, never in it without having been written.
    input.finish(sink, &output.summary)?;
    if let Some(kept) = output.kept {
        let mut indexes = indexes;
        append(&mut indexes[0], &kept, input.quiet)?;
    }
    Ok(())
}

/// The report page of a `dedup` or `clusters` run.
fn run_report(
    dedup: &neardup::Dedup,
    summary: &Summary,
    collected: ReportCollector,
    texts: &std::collections::HashMap<u64, String>,
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

fn write_report(path: &str, data: &ReportData) -> Result<()> {
    let mut out = Output::create(path)?;
    out.write_all(neardup::html::render(data).as_bytes())
        .map_err(|e| out.error(e))?;
    out.finish()?;
    Ok(())
}

fn append(index: &mut Index, segment: &SegmentData, quiet: bool) -> Result<()> {
    index.append(segment)?;
    if !quiet {
        eprintln!(
            "index {}: added {} documents; now {} documents in {} segments ({} bytes)",
            index.dir().display(),
            segment.len(),
            index.num_docs(),
            index.segments().len(),
            index.bytes()
        );
    }
    Ok(())
}

fn run_index(command: IndexCommand) -> Result<()> {
    match command {
        IndexCommand::Build { common, index } => {
            let input = &common.input;
            input.start_threads()?;
            let dedup = input.configure(common.detect.builder()?).build()?;
            let mut created = Index::create(&index, dedup.index_params())?;
            if input.verbose && !input.quiet {
                print_parameters(&dedup);
            }
            index_inputs(&dedup, input, &mut created)
        }
        IndexCommand::Add { input, index } => {
            input.start_threads()?;
            let mut opened = Index::open(&index)?;
            let builder = DedupBuilder::new().index_params(opened.params());
            let dedup = input.configure(builder).build()?;
            index_inputs(&dedup, &input, &mut opened)
        }
        IndexCommand::Info { index, json } => {
            let index = Index::open(&index)?;
            if json {
                let value = serde_json::json!({
                    "manifest": index.manifest(),
                    "documents": index.num_docs(),
                    "bytes": index.bytes(),
                });
                println!("{value}");
            } else {
                print!("{}", index_info(&index));
            }
            Ok(())
        }
        IndexCommand::Compact { index } => {
            let mut index = Index::open(&index)?;
            let before = index.segments().len();
            index.compact()?;
            eprintln!(
                "index {}: {} segments merged into {}; {} documents, {} bytes",
                index.dir().display(),
                before,
                index.segments().len(),
                index.num_docs(),
                index.bytes()
            );
            Ok(())
        }
    }
}

fn run_stats(
    common: &Common,
    thresholds: Vec<f64>,
    top: usize,
    json: bool,
    report: Option<&String>,
) -> Result<()> {
    let input = &common.input;
    input.start_threads()?;
    let lowest = thresholds
        .iter()
        .copied()
        .chain([common.detect.threshold])
        .fold(f64::INFINITY, f64::min);
    let mut builder = input.configure(common.detect.builder()?);
    if let Some(field) = &common.detect.boilerplate.group_field {
        builder = builder.group_field(field);
    }
    if common.detect.bands.is_none() {
        let params = neardup::lsh::LshParams::from_threshold(lowest, common.detect.num_perm)?;
        builder = builder.bands(params.num_bands, params.rows_per_band);
    }
    let dedup = builder.build()?;
    if input.verbose && !input.quiet {
        print_parameters(&dedup);
    }
    let options = StatsOptions {
        thresholds,
        top,
        boilerplate: common.detect.boilerplate.options()?,
    };
    let mut inputs = input.input_set()?;
    let mut sink = input.sink(&inputs, None, None, None)?;
    let stats = dedup.stats(&mut inputs, &options, &mut sink)?;
    if let Some(path) = report {
        let wanted: Vec<DocId> = stats
            .top_clusters
            .iter()
            .flat_map(|c| c.docs.iter().take(2).copied())
            .collect();
        let texts = dedup.texts(&mut inputs, &wanted)?;
        write_report(path, &stats_report(&dedup, &stats, &texts))?;
    }
    if json {
        let mut out = Output::create("-")?;
        write_json(&mut out, &stats)?;
        out.finish()?;
    }
    input.finish_with(sink, &stats, &stats.to_text())
}

/// The report page of `stats`.
fn stats_report(
    dedup: &neardup::Dedup,
    stats: &neardup::pipeline::CorpusStats,
    texts: &std::collections::HashMap<u64, String>,
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

/// Reads `input`'s distinct documents and appends them to `index` as one segment.
fn index_inputs(dedup: &neardup::Dedup, input: &InputArgs, index: &mut Index) -> Result<()> {
    let mut inputs = input.input_set()?;
    let mut sink = input.sink(&inputs, None, None, None)?;
    let (summary, segment) = dedup.index_segment(&mut inputs, &mut sink)?;
    input.finish(sink, &summary)?;
    append(index, &segment, input.quiet)
}

fn index_info(index: &Index) -> String {
    let m = index.manifest();
    let p = &m.params;
    let mut out = format!(
        "index        {}\n\
         format       {} version {}\n\
         documents    {}\n\
         bytes        {} ({:.1} per document)\n\
         segments     {}\n\
         num_perm     {} ({}-bit values), seed {}\n\
         bands        {} × {} rows ({}-bit keys), chosen for threshold {}\n\
         shingles     {:?}\n\
         normalize    {:?}\n",
        index.dir().display(),
        m.format,
        m.format_version,
        index.num_docs(),
        index.bytes(),
        index.bytes() as f64 / index.num_docs().max(1) as f64,
        m.segments.len(),
        p.num_perm,
        p.signature_bits,
        p.seed,
        p.num_bands,
        p.rows_per_band,
        p.band_key_bits,
        p.threshold,
        p.shingle,
        p.normalize,
    );
    for s in &m.segments {
        out.push_str(&format!(
            "  {}  {} documents  {} bytes  xxh3 {}\n",
            s.file, s.docs, s.bytes, s.checksum
        ));
    }
    out
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
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("neardup: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        use super::parse_size;
        assert_eq!(parse_size("1048576").unwrap(), 1 << 20);
        assert_eq!(parse_size("256M").unwrap(), 256 << 20);
        assert_eq!(parse_size("4G").unwrap(), 4 << 30);
        assert_eq!(parse_size("4GiB").unwrap(), 4 << 30);
        assert_eq!(parse_size("512kB").unwrap(), 512 << 10);
        for bad in ["", "G", "4X", "-1M", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
