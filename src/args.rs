//! Command-line arguments: what each subcommand takes, and turning settings into a
//! [`DedupBuilder`].

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use neardup::boilerplate::BoilerplateOptions;
use neardup::normalize::NormalizeOptions;
use neardup::output::{Output, PathUse, RunPath};
use neardup::pipeline::ClusterConfig;
use neardup::report::Summary;
use neardup::{ConfigError, DedupBuilder, Error, Format, Input, InputSet};

use crate::sink::{CliSink, progress_bar, write_json};

#[derive(Parser)]
#[command(
    name = "neardup",
    version,
    about = "Fast exact and near-duplicate detection for text corpora"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
pub struct DistributedArgs {
    /// Worker threads per process of a distributed run (timely's -w).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Processes in the run (timely's -n); needs --hostfile when more than one.
    #[arg(long)]
    pub processes: Option<usize>,
    /// This process's index, from 0 (timely's -p).
    #[arg(long)]
    pub process: Option<usize>,
    /// One host:port per line, one line per process, in process order (timely's -h).
    #[arg(long, value_name = "FILE")]
    pub hostfile: Option<PathBuf>,
    /// Each worker saves its signed records here; a rerun (after a lost process) with the same
    /// inputs and settings loads them instead of signing again.
    #[arg(long, value_name = "DIR")]
    pub checkpoint: Option<PathBuf>,
}

impl DistributedArgs {
    /// The cluster, when any distributed flag was given.
    pub fn cluster(&self) -> Result<Option<ClusterConfig>> {
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
pub struct Against {
    /// An index of documents kept before (repeatable): a document that duplicates one of them is
    /// removed, with `duplicate_of` naming the indexed id. Its parameters must match this run's.
    #[arg(long = "against", value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
}

#[derive(Subcommand)]
pub enum IndexCommand {
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
pub struct BoilerplateArgs {
    /// A line (or paragraph) in at least this many documents is boilerplate.
    #[arg(long, default_value_t = 3)]
    pub min_docs: u32,
    /// What is counted: line, or paragraph (lines between blank lines).
    #[arg(long, default_value = "line")]
    pub unit: String,
    /// Count per group: the JSON field naming each document's site (a URL counts by its host),
    /// so that only what repeats within one site is boilerplate.
    #[arg(long, value_name = "FIELD")]
    pub group_field: Option<String>,
}

impl BoilerplateArgs {
    pub fn options(&self) -> Result<BoilerplateOptions, ConfigError> {
        Ok(BoilerplateOptions {
            min_docs: self.min_docs,
            unit: self.unit.parse()?,
        })
    }

    pub fn configure(&self, builder: DedupBuilder) -> Result<DedupBuilder, ConfigError> {
        let mut builder = builder.strip_boilerplate(self.options()?);
        if let Some(field) = &self.group_field {
            builder = builder.group_field(field);
        }
        Ok(builder)
    }
}

/// The files a run writes besides --rejected and --stats-json (which every run may write), and
/// the index directories it reads or writes.
#[derive(Default)]
pub struct OutputPaths<'a> {
    pub kept: Option<&'a String>,
    pub removed: Option<&'a String>,
    pub clusters: Option<&'a String>,
    pub report: Option<&'a String>,
    /// Index directories, with the option naming each.
    pub indexes: Vec<(&'static str, &'a Path)>,
    /// The clusters are the command's main output (`clusters -o`), not `--clusters`.
    pub clusters_by_o: bool,
}

impl<'a> OutputPaths<'a> {
    /// Every output file, with the option naming it.
    fn files(&self, input: &'a InputArgs) -> impl Iterator<Item = RunPath> + 'a {
        [
            ("-o", self.kept),
            ("--removed", self.removed),
            (
                if self.clusters_by_o {
                    "-o"
                } else {
                    "--clusters"
                },
                self.clusters,
            ),
            ("--report", self.report),
            ("--rejected", input.rejected.as_ref()),
            ("--stats-json", input.stats_json.as_ref()),
        ]
        .into_iter()
        .filter_map(|(role, path)| {
            Some(RunPath {
                role: role.to_string(),
                usage: PathUse::Output,
                path: path?.clone(),
            })
        })
    }
}

/// Every option of a detecting run: where documents come from and how they are compared.
#[derive(Args)]
pub struct Common {
    #[command(flatten)]
    pub input: InputArgs,
    #[command(flatten)]
    pub detect: DetectArgs,
}

/// Where documents come from, and the run's reporting.
#[derive(Args)]
pub struct InputArgs {
    /// Input files ('-' for stdin), read in order.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,
    /// Input layout: jsonl, lines (one document per line) or files (a directory, one document per file).
    #[arg(long, default_value = "jsonl")]
    pub format: String,
    /// JSON field holding the text.
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// JSON field holding the id (a record without one is named FILE:LINE).
    #[arg(long, default_value = "id")]
    pub id_field: String,
    /// Records larger than this many bytes are rejected without being held in memory.
    #[arg(long, default_value_t = 64 << 20)]
    pub max_doc_bytes: usize,
    /// Rejected records go here, one JSON line each: {"file","line","reason"}.
    #[arg(long, value_name = "FILE")]
    pub rejected: Option<String>,
    /// Write the summary as JSON here.
    #[arg(long, value_name = "FILE")]
    pub stats_json: Option<String>,
    /// Stop with exit code 1 at the first bad record.
    #[arg(long)]
    pub strict: bool,
    /// Keep going past an input that cannot be opened or read to its end (missing, unreadable,
    /// truncated or corrupt): it is reported as incomplete in the summary and the run exits with
    /// code 3.
    #[arg(long)]
    pub keep_going: bool,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print the LSH parameters and their S-curve.
    #[arg(short, long)]
    pub verbose: bool,
    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
}

/// How documents are compared.
#[derive(Args)]
pub struct DetectArgs {
    /// Shingles: word:N (N-word grams) or char:K (K-character grams).
    #[arg(long, default_value = "word:5")]
    pub shingle: String,
    /// Jaccard similarity at or above which documents are duplicates.
    #[arg(long, default_value_t = 0.8)]
    pub threshold: f64,
    /// MinHash permutations per signature.
    #[arg(long, default_value_t = 128)]
    pub num_perm: usize,
    /// LSH bands (with --rows; default: chosen from the threshold).
    #[arg(long)]
    pub bands: Option<usize>,
    /// LSH rows per band (with --bands).
    #[arg(long)]
    pub rows: Option<usize>,
    /// Seed of the hash functions; the same seed gives the same output.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How candidate pairs are checked: signature (estimate only), borderline (exact Jaccard for
    /// pairs whose estimate is near the threshold; reads the inputs once more) or exact (exact
    /// Jaccard for every candidate pair). Pairs with an indexed document use the estimate.
    #[arg(long, default_value = "borderline")]
    pub verify: String,
    /// Which member of a cluster stays: first, longest, or max:FIELD. A cluster holding an
    /// indexed document keeps that one.
    #[arg(long, default_value = "first")]
    pub keep: String,
    /// Skip Unicode NFKC normalization.
    #[arg(long)]
    pub no_nfkc: bool,
    /// Keep case.
    #[arg(long)]
    pub no_lowercase: bool,
    /// Keep punctuation and symbols.
    #[arg(long)]
    pub keep_punctuation: bool,
    /// Keep whitespace runs as they are.
    #[arg(long)]
    pub keep_whitespace: bool,
    /// Memory budget, e.g. 512M or 4G: band tables beyond a quarter of it are spilled to sorted
    /// runs on disk and merged back; exact checks load at most a quarter of it per round.
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// Where spilled runs go (default: the system's temporary directory).
    #[arg(long, value_name = "DIR")]
    pub temp_dir: Option<PathBuf>,
    /// What similarity means: jaccard, or containment (the smaller document mostly inside the
    /// larger: syndicated stories in pages, excerpts, reprints). Removals then name each
    /// document's role: copy or container.
    #[arg(long, default_value = "jaccard")]
    pub measure: String,
    /// With --measure containment: the largest size ratio of a pair LSH is tuned to find (higher
    /// finds more, with more candidates to check).
    #[arg(long, default_value_t = neardup::pipeline::DEFAULT_MAX_SIZE_RATIO)]
    pub max_size_ratio: f64,
    /// Remove boilerplate lines (see the `lines` command and --min-docs) from each text before
    /// it is compared; written records stay as they were.
    #[arg(long)]
    pub strip_boilerplate: bool,
    #[command(flatten)]
    pub boilerplate: BoilerplateArgs,
}

/// Parses a size such as `1048576`, `512K`, `256M`, `4G` or `1T` (powers of 1024; a trailing `B`
/// or `iB` is allowed).
pub fn parse_size(text: &str) -> Result<u64, ConfigError> {
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
    pub fn builder(&self) -> Result<DedupBuilder, ConfigError> {
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
    pub fn configure(&self, builder: DedupBuilder) -> DedupBuilder {
        builder
            .fields(&self.text_field, &self.id_field)
            .strict(self.strict)
    }

    /// The inputs, checked: each exists and can be opened (or, with --keep-going, is recorded
    /// as incomplete). Files of a directory input that are outputs of this run are not read.
    pub fn input_set(&self, outputs: &OutputPaths<'_>) -> Result<InputSet, Error> {
        let format: Format = self.format.parse()?;
        let inputs = self.inputs.iter().map(|s| Input::parse(s)).collect();
        let exclude = outputs
            .files(self)
            .filter(|p| p.path != "-")
            .map(|p| PathBuf::from(&p.path));
        let mut set = InputSet::new(inputs, format, self.max_doc_bytes)?
            .keep_going(self.keep_going)
            .exclude(exclude);
        set.check()?;
        Ok(set)
    }

    pub fn start_threads(&self) -> Result<()> {
        if let Some(threads) = self.threads {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build_global()
                .context("cannot start the thread pool")?;
        }
        Ok(())
    }

    /// Before any work: refuses outputs that name an input, another output or a place inside an
    /// index; checks the inputs; opens every output (so a missing directory or an unwritable
    /// place fails now, not after the run). Returns the inputs and the sink writing the outputs.
    pub fn open(&self, outputs: &OutputPaths<'_>) -> Result<(InputSet, CliSink), Error> {
        let mut paths: Vec<RunPath> = self
            .inputs
            .iter()
            .map(|input| RunPath {
                role: format!("input {input}"),
                usage: PathUse::Input,
                path: input.clone(),
            })
            .collect();
        paths.extend(outputs.files(self));
        paths.extend(outputs.indexes.iter().map(|(role, dir)| RunPath {
            role: role.to_string(),
            usage: PathUse::Index,
            path: dir.display().to_string(),
        }));
        neardup::output::check_distinct(&paths)?;
        let inputs = self.input_set(outputs)?;
        let sink = self.sink(&inputs, outputs)?;
        Ok((inputs, sink))
    }

    /// A sink writing the given outputs, plus --rejected and --stats-json, with a progress bar
    /// on a terminal.
    fn sink(&self, inputs: &InputSet, outputs: &OutputPaths<'_>) -> Result<CliSink, Error> {
        let open = |path: Option<&String>| path.map(|p| Output::create(p)).transpose();
        Ok(CliSink {
            format: inputs.format(),
            kept: open(outputs.kept)?,
            removed: open(outputs.removed)?,
            clusters: open(outputs.clusters)?,
            rejected: open(self.rejected.as_ref())?,
            stats_json: open(self.stats_json.as_ref())?,
            report_page: open(outputs.report)?,
            rejections: 0,
            quiet: self.quiet,
            bar: progress_bar(self.quiet, inputs.total_bytes()),
            report: None,
        })
    }

    /// Commits every output of `sink`, then writes --stats-json and prints the summary.
    pub fn finish(&self, sink: CliSink, summary: &Summary) -> Result<()> {
        self.finish_with(sink, summary, &summary.to_text())
    }

    /// Commits every output of `sink`, then writes `summary` to --stats-json and prints `text`.
    pub fn finish_with(
        &self,
        sink: CliSink,
        summary: &impl serde::Serialize,
        text: &str,
    ) -> Result<()> {
        if let Some(bar) = &sink.bar {
            bar.finish_and_clear();
        }
        let mut stats_json = sink.stats_json;
        if let Some(out) = &mut stats_json {
            write_json(out, summary)?;
        }
        for out in [
            sink.kept,
            sink.removed,
            sink.clusters,
            sink.rejected,
            stats_json,
            sink.report_page,
        ]
        .into_iter()
        .flatten()
        {
            out.finish()?;
        }
        if !self.quiet {
            eprint!("{text}");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes_parse_with_binary_suffixes() {
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
