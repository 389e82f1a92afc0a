//! Command-line arguments: what each subcommand takes, checked as they are parsed, and turning
//! settings into a [`DedupBuilder`].
//!
//! Every value is validated here, at parse time, so that a bad setting stops the run before any
//! work with a message naming the option and what it accepts (exit code 1, see `main`). Options
//! with a fixed set of values are [`ValueEnum`]s mapped to the library's types; the others reuse
//! the library's `FromStr` ([`KeepPolicy`], [`ShingleKind`]) or a parser below.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, Result};
use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use neardup::boilerplate::{BoilerplateOptions, Unit};
use neardup::cluster::KeepPolicy;
use neardup::minhash::MAX_NUM_PERM;
use neardup::normalize::NormalizeOptions;
use neardup::output::{Output, PathUse, RunPath};
use neardup::pipeline::{ClusterConfig, MIN_MEMORY};
use neardup::report::Summary;
use neardup::shingle::ShingleKind;
use neardup::verify::Measure;
use neardup::{
    ConfigError, DedupBuilder, Error, FieldPath, Format, FormatChoice, Input, InputSet, VerifyMode,
};

use crate::kept::{Kept, KeptAsJson, KeptOut, KeptWriter, ParquetInputs, WarcOutput};
use crate::mirror::{MirrorPlan, is_mirror_name};
use crate::sink::{CliSink, Shards, TableOut, progress_bar, write_json};
use neardup::parquet_write::{Annotations, ParquetRows, ReportKind, ReportTable, TableShape};

/// The end of `neardup --help`: examples, and what the exit code means.
const TOP_HELP: &str = "\
Examples:
  # Remove exact and near duplicates, listing each removal:
  neardup dedup corpus.jsonl.gz -o kept.jsonl.gz --removed removed.jsonl
  # How redundant a corpus is, before deciding anything:
  neardup stats corpus.jsonl.gz
  # Each command's options and examples: neardup help dedup (or neardup dedup --help)

Exit codes:
  0  the run completed and every input was read to its end
  1  a setting is invalid, --strict stopped at a bad record, or another error
     (e.g. an output cannot be written)
  2  an input could not be opened or read to its end (no output is committed),
     or every record was rejected
  3  a run with --keep-going finished, but some inputs were incomplete
     (outputs committed)
  128+N  stopped by signal N (130 Ctrl-C, 143 SIGTERM); uncommitted outputs removed";

const DEDUP_EXAMPLES: &str = "\
Examples:
  # Remove exact and near duplicates (Jaccard >= 0.8), listing each removal and its reason:
  neardup dedup corpus.jsonl.gz -o kept.jsonl.gz --removed removed.jsonl
  # Plain text, one document per line; a stricter threshold, every candidate pair checked exactly:
  neardup dedup --format lines docs.txt -o kept.txt --threshold 0.9 --verify exact
  # A filter from stdin to stdout, each document decided as it arrives:
  zcat crawl.jsonl.gz | neardup dedup - -o - --mode stream > kept.jsonl
  # Remove what an earlier release holds, then add this run's kept documents to its index:
  neardup dedup new.jsonl -o kept.jsonl --against release-index --update";

const CLUSTERS_EXAMPLES: &str = "\
Examples:
  # The clusters at Jaccard >= 0.7, largest first, with an HTML page of the run:
  neardup clusters corpus.jsonl -o clusters.jsonl --threshold 0.7 --report clusters.html
  # Pages that contain a syndicated story (the smaller text 80% inside the larger):
  neardup clusters pages.jsonl -o clusters.jsonl --measure containment
  # Parquet in (a struct column's child as the URL), the clusters as a Parquet table:
  neardup clusters train-00000.parquet -o clusters.parquet --url-field metadata.url
  # Process 0 of 4 on four machines (the same command on each, with its own --process):
  neardup clusters shards/part-0.jsonl shards/part-1.jsonl -o clusters.jsonl --processes 4 --process 0 --hostfile hosts.txt";

const MERGE_EXAMPLES: &str = "\
Examples:
  # After a distributed run, where all the parts are:
  neardup merge kept.jsonl.part-0000-of-0002 kept.jsonl.part-0001-of-0002 -o kept.jsonl
  # Parts in any order, as the shell lists them; the merged output compressed:
  neardup merge clusters.jsonl.part-* -o clusters.jsonl.zst";

const STATS_EXAMPLES: &str = "\
Examples:
  # Exact and near-duplicate rates at 0.5, 0.7, 0.8 and 0.9, boilerplate, top clusters:
  neardup stats corpus.jsonl.gz
  # Chosen thresholds and the 20 largest clusters, as JSON for a script:
  neardup stats corpus.jsonl --thresholds 0.6,0.8,0.95 --top 20 --json -q > stats.json
  # An HTML page of the figures:
  neardup stats corpus.jsonl --report stats.html";

const LINES_EXAMPLES: &str = "\
Examples:
  # Remove lines found in 3 or more documents (menus, footers, cookie notices):
  neardup lines pages.jsonl -o stripped.jsonl
  # Paragraphs repeated in 5 or more pages of one site, sites told apart by the url field:
  neardup lines pages.jsonl -o stripped.jsonl --unit paragraph --min-docs 5 --group-field url";

const INDEX_EXAMPLES: &str = "\
Examples:
  # Index a release, add the next one, then deduplicate new data against both:
  neardup index build release-1.jsonl --index release-index
  neardup index add release-2.jsonl --index release-index
  neardup dedup new.jsonl -o kept.jsonl --against release-index";

const INDEX_BUILD_EXAMPLES: &str = "\
Examples:
  # An index of a corpus's distinct documents, with this run's detection settings:
  neardup index build corpus.jsonl.gz --index corpus-index
  # The settings are the index's from then on (runs against it must use the same):
  neardup index build corpus.jsonl --index corpus-index --threshold 0.9 --shingle word:3";

const INDEX_ADD_EXAMPLES: &str = "\
Examples:
  # Add a new batch as a segment (the index's own settings apply):
  neardup index add batch-2.jsonl --index corpus-index
  # Plain text, one document per line:
  neardup index add --format lines batch-3.txt --index corpus-index";

const INDEX_INFO_EXAMPLES: &str = "\
Examples:
  neardup index info --index corpus-index
  neardup index info --index corpus-index --json";

const INDEX_COMPACT_EXAMPLES: &str = "\
Examples:
  # Merge many small segments (one per `index add` or `dedup --update`) into one:
  neardup index compact --index corpus-index
  neardup index info --index corpus-index";

#[derive(Parser)]
#[command(
    name = "neardup",
    version,
    about = "Fast exact and near-duplicate detection for text corpora",
    after_help = TOP_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Checks the settings against each other where one option decides what another may be, so
    /// that the refusal comes at parse time like any other bad value.
    pub fn validated(self) -> Result<Cli, clap::Error> {
        if let Command::Dedup {
            mode: Mode::Stream,
            annotate: true,
            ..
        } = &self.command
        {
            return Err(conflict(
                "dedup",
                "--mode stream writes each record as it is decided, before its cluster is known: \
                 it cannot --annotate; use --mode batch",
            ));
        }
        if let Command::Dedup {
            common,
            mode: Mode::Stream,
            distributed,
            spans,
            ..
        } = &self.command
        {
            if let Some(reason) = common.detect.stream_refusal(*spans) {
                return Err(conflict(
                    "dedup",
                    format!(
                        "--mode stream cannot honour {reason}; change them or use --mode batch"
                    ),
                ));
            }
            if distributed.given() {
                return Err(conflict(
                    "dedup",
                    "--mode stream cannot be distributed: a distributed run reads its inputs as a \
                     batch; drop --mode stream or the distributed options",
                ));
            }
        }
        Ok(self)
    }
}

/// A usage error of two settings of `subcommand` that do not go together, shown as clap shows
/// its own (with the subcommand's usage line).
fn conflict(subcommand: &str, message: impl std::fmt::Display) -> clap::Error {
    let mut command = Cli::command();
    command.build();
    match command.find_subcommand_mut(subcommand) {
        Some(sub) => sub.error(ErrorKind::ArgumentConflict, message),
        None => command.error(ErrorKind::ArgumentConflict, message),
    }
}

/// How `dedup` decides (`--mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Stream when reading only stdin and writing kept records to stdout, with settings a
    /// streaming run can honour; batch otherwise.
    Auto,
    /// Read everything, then decide (clusters, keep policies, exact verification).
    Batch,
    /// Decide each document as it arrives, on the signature estimate: first seen wins, kept
    /// records are written at once.
    Stream,
}

/// Input layout (`--format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// One JSON object per line.
    #[value(alias = "json")]
    Jsonl,
    /// One document per line of plain text.
    #[value(alias = "text")]
    Lines,
    /// A directory of text files (walked recursively, in sorted order), one document per file.
    Files,
    /// WARC records (plain or one gzip member per record): HTML responses are documents (their
    /// visible text), other records are skipped and counted.
    Warc,
    /// WET: WARC conversion records, each a document (id WARC-Record-ID, URL WARC-Target-URI).
    Wet,
    /// Parquet, one document per row; --text-field and the other fields name columns (a struct
    /// column's child as 'column.child').
    Parquet,
}

impl From<FormatArg> for Format {
    fn from(format: FormatArg) -> Format {
        match format {
            FormatArg::Jsonl => Format::Jsonl,
            FormatArg::Lines => Format::Lines,
            FormatArg::Files => Format::Files,
            FormatArg::Warc => Format::Warc,
            FormatArg::Wet => Format::Wet,
            FormatArg::Parquet => Format::Parquet,
        }
    }
}

/// How candidate pairs are checked (`--verify`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum VerifyArg {
    /// The signature estimate alone (all that a streaming run uses).
    #[value(alias = "sig")]
    Signature,
    /// Exact Jaccard for pairs whose estimate is near the threshold; reads the inputs once more.
    Borderline,
    /// Exact Jaccard for every candidate pair.
    Exact,
}

impl From<VerifyArg> for VerifyMode {
    fn from(verify: VerifyArg) -> VerifyMode {
        match verify {
            VerifyArg::Signature => VerifyMode::Signature,
            VerifyArg::Borderline => VerifyMode::Borderline,
            VerifyArg::Exact => VerifyMode::Exact,
        }
    }
}

/// What similarity means (`--measure`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MeasureArg {
    /// |A ∩ B| / |A ∪ B|: the two documents are mostly the same text.
    Jaccard,
    /// |A ∩ B| / min(|A|, |B|): the smaller document is mostly inside the larger (syndicated
    /// stories in pages, excerpts, reprints). Removals name each document's role: copy or
    /// container.
    Containment,
}

impl From<MeasureArg> for Measure {
    fn from(measure: MeasureArg) -> Measure {
        match measure {
            MeasureArg::Jaccard => Measure::Jaccard,
            MeasureArg::Containment => Measure::Containment,
        }
    }
}

/// What boilerplate is counted in (`--unit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum UnitArg {
    /// One line.
    Line,
    /// Lines between blank lines.
    Paragraph,
}

impl From<UnitArg> for Unit {
    fn from(unit: UnitArg) -> Unit {
        match unit {
            UnitArg::Line => Unit::Line,
            UnitArg::Paragraph => Unit::Paragraph,
        }
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Write the corpus without its duplicates: kept records byte-identical, in input order.
    #[command(after_help = DEDUP_EXAMPLES)]
    Dedup {
        #[command(flatten)]
        common: Common,
        /// Kept records go here ('-' for stdout; .gz/.zst compress). A name ending in .parquet
        /// writes the kept rows of Parquet inputs (one schema), every column, zstd; from
        /// Parquet into JSON Lines, each kept row is one object with every column. A name ending
        /// in / (or an existing directory) writes shards mirroring the inputs: DIR/<each input's
        /// name below its directory or pattern>, in its own format, committed together.
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        output: String,
        /// One JSON line per removed document: {"id","duplicate_of","similarity","kind"}
        /// (a Parquet table of those columns when the name ends in .parquet).
        #[arg(long, value_name = "FILE")]
        removed: Option<String>,
        /// Also write the clusters (as the `clusters` command does; Parquet when the name ends
        /// in .parquet).
        #[arg(long, value_name = "FILE")]
        clusters: Option<String>,
        /// Give each member in --clusters its "spans" (see `clusters --spans`).
        #[arg(long)]
        spans: bool,
        #[command(flatten)]
        against: Against,
        /// Append the kept documents to the first --against index (created if DIR holds none).
        #[arg(long, requires = "dirs")]
        update: bool,
        /// Write every record to OUT, removed ones too, with fields added instead of dropping
        /// duplicates: "duplicate_of" (the kept id), "similarity", "kind" (exact or near) and
        /// "cluster" (its number in --clusters), each null where it does not apply (Parquet
        /// rows get them as columns).
        #[arg(long)]
        annotate: bool,
        /// Write a self-contained HTML page of the run (summary, cluster sizes, similarity of the
        /// candidate pairs over the S-curve, the largest clusters with a diff of a member).
        #[arg(long, value_name = "FILE.html")]
        report: Option<String>,
        #[command(flatten)]
        distributed: DistributedArgs,
        /// How documents are decided. A streaming run cannot honour --verify borderline|exact,
        /// --keep longest|max:FIELD, --strip-boilerplate or --measure containment: with --mode
        /// stream they are refused, and --mode auto runs a batch.
        #[arg(long, value_enum, default_value_t = Mode::Auto)]
        mode: Mode,
    },
    /// List the clusters of duplicates, largest first, one JSON line each.
    #[command(after_help = CLUSTERS_EXAMPLES)]
    Clusters {
        #[command(flatten)]
        common: Common,
        /// Clusters go here ('-' for stdout; .gz/.zst compress; a Parquet table when the name
        /// ends in .parquet).
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: String,
        #[command(flatten)]
        against: Against,
        /// Write a self-contained HTML page of the run (see `dedup --report`).
        #[arg(long, value_name = "FILE.html")]
        report: Option<String>,
        /// Give each member its "spans": [[start, end], …], the character offsets (Unicode
        /// scalar values, as Python indexes a str) in its original text of the content it was
        /// compared on: what --strip-boilerplate kept (the story without the site around it),
        /// or the whole text trimmed.
        #[arg(long)]
        spans: bool,
        #[command(flatten)]
        distributed: DistributedArgs,
    },
    /// Merge the part files of a distributed run's output, in input order.
    #[command(after_help = MERGE_EXAMPLES)]
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
    #[command(after_help = STATS_EXAMPLES)]
    Stats {
        #[command(flatten)]
        common: Box<Common>,
        /// Thresholds to report near-duplicate rates at, each in (0, 1] (LSH is tuned to the
        /// lowest).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "0.5,0.7,0.8,0.9",
            value_parser = parse_threshold
        )]
        thresholds: Vec<f64>,
        /// Largest clusters listed (0 lists none).
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
    #[command(after_help = LINES_EXAMPLES)]
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
    #[command(after_help = INDEX_EXAMPLES)]
    Index {
        #[command(subcommand)]
        command: IndexCommand,
    },
}

/// The help heading of the options of a distributed run.
const DISTRIBUTED: &str = "Distributed run (several processes or machines)";

/// Running as one of several processes on timely dataflow.
#[derive(Args)]
pub struct DistributedArgs {
    /// Worker threads per process of a distributed run (timely's -w).
    #[arg(long, help_heading = DISTRIBUTED, value_parser = parse_threads)]
    pub workers: Option<usize>,
    /// Processes in the run (timely's -n); needs --hostfile when more than one.
    #[arg(long, help_heading = DISTRIBUTED, value_parser = parse_positive)]
    pub processes: Option<usize>,
    /// This process's index, from 0 (timely's -p).
    #[arg(long, help_heading = DISTRIBUTED)]
    pub process: Option<usize>,
    /// One host:port per line, one line per process, in process order (timely's -h).
    #[arg(long, help_heading = DISTRIBUTED, value_name = "FILE")]
    pub hostfile: Option<PathBuf>,
    /// Each worker saves its signed records here; a rerun (after a lost process) with the same
    /// inputs and settings loads them instead of signing again.
    #[arg(long, help_heading = DISTRIBUTED, value_name = "DIR")]
    pub checkpoint: Option<PathBuf>,
}

impl DistributedArgs {
    /// True when any distributed flag was given.
    pub fn given(&self) -> bool {
        self.workers.is_some()
            || self.processes.is_some()
            || self.process.is_some()
            || self.hostfile.is_some()
            || self.checkpoint.is_some()
    }

    /// The cluster, when any distributed flag was given.
    pub fn cluster(&self) -> Result<Option<ClusterConfig>> {
        if !self.given() {
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
    #[command(after_help = INDEX_BUILD_EXAMPLES)]
    Build {
        #[command(flatten)]
        common: Box<Common>,
        /// The index directory (created; must not hold an index yet).
        #[arg(long, value_name = "DIR")]
        index: PathBuf,
    },
    /// Append INPUT's distinct documents as a new segment, with the index's own parameters.
    #[command(after_help = INDEX_ADD_EXAMPLES)]
    Add {
        #[command(flatten)]
        input: InputArgs,
        #[arg(long, value_name = "DIR")]
        index: PathBuf,
    },
    /// Print the index's parameters, segments and counts (checking every checksum).
    #[command(after_help = INDEX_INFO_EXAMPLES)]
    Info {
        #[arg(long, value_name = "DIR")]
        index: PathBuf,
        /// Print the manifest and counts as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Merge all segments into one.
    #[command(after_help = INDEX_COMPACT_EXAMPLES)]
    Compact {
        #[arg(long, value_name = "DIR")]
        index: PathBuf,
    },
}

/// How boilerplate is recognized.
#[derive(Args)]
pub struct BoilerplateArgs {
    /// A line (or paragraph) in at least this many documents is boilerplate (at least 2).
    #[arg(long, default_value_t = 3, value_parser = parse_min_docs)]
    pub min_docs: u32,
    /// What is counted.
    #[arg(long, value_enum, default_value_t = UnitArg::Line)]
    pub unit: UnitArg,
    /// Count per group: the JSON field naming each document's site (a URL counts by its host),
    /// so that only what repeats within one site is boilerplate. A path into nested objects,
    /// like --text-field. Without it, --url-field's URL is the group when given.
    #[arg(long, value_name = "FIELD")]
    pub group_field: Option<FieldPath>,
}

impl BoilerplateArgs {
    pub fn options(&self) -> Result<BoilerplateOptions, ConfigError> {
        if self.min_docs < 2 {
            return Err(ConfigError::MinDocs(self.min_docs));
        }
        Ok(BoilerplateOptions {
            min_docs: self.min_docs,
            unit: self.unit.into(),
        })
    }

    pub fn configure(&self, builder: DedupBuilder) -> Result<DedupBuilder, ConfigError> {
        let mut builder = builder.strip_boilerplate(self.options()?);
        if let Some(field) = &self.group_field {
            builder = builder.group_field(field.clone());
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
    /// `--annotate`: the columns a Parquet output (or the rows of a Parquet input) gets.
    pub annotations: Option<Annotations>,
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
    /// Input files ('-' for stdin), read in order. A directory stands for the files below it
    /// and a glob pattern ('data/train-*.jsonl', 'crawl/**/*.jsonl.zst'; quote it) for the files
    /// it matches, each in sorted path order, hidden files left out (with --format files a
    /// directory is one input of documents, one per file).
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,
    /// Input layout [default: each input's by its name: .jsonl, .json, .ndjson are jsonl, .txt
    /// is lines, .warc is warc, .wet wet (also with .gz or .zst after it), .parquet is parquet;
    /// a file whose name says nothing is parquet when it begins with PAR1, warc when it starts
    /// with a WARC/1. line, else jsonl].
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// JSON field holding the text: a path into nested objects ('content.text'); a dot inside
    /// a key is written '\.' ('a\.b' is the key "a.b"), a backslash '\\'; a leading '$.' is
    /// ignored.
    #[arg(long, default_value = "text")]
    pub text_field: FieldPath,
    /// JSON field holding the id (a record without one is named FILE:LINE; a Parquet row
    /// FILE:ROW, its row in the file counted from 1); a path like --text-field.
    #[arg(long, default_value = "id")]
    pub id_field: FieldPath,
    /// JSON field (or Parquet column) holding each record's URL, a path like --text-field
    /// [default: url, where records have one; WARC records have WARC-Target-URI]. Without
    /// --group-field, boilerplate is counted per host of this URL.
    #[arg(long)]
    pub url_field: Option<FieldPath>,
    /// Records larger than this many bytes are rejected without being held in memory (at most
    /// 4 GiB).
    #[arg(long, default_value_t = 64 << 20, value_parser = parse_max_doc_bytes)]
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
    /// Worker threads (default: one per core; at most 8 per core, or 64 when that is more).
    #[arg(long, value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// Print the LSH parameters and their S-curve.
    #[arg(short, long)]
    pub verbose: bool,
    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
    /// Not an option: set by a host running the command in-process (the Python bindings) to stop
    /// the run from another thread ([`InputSet::cancel_on`]).
    #[arg(skip)]
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// How documents are compared.
#[derive(Args)]
pub struct DetectArgs {
    /// Shingles: word:N (N-word grams) or char:K (K-character grams), N, K >= 1.
    #[arg(long, default_value = "word:5", value_name = "word:N|char:K", value_parser = ShingleKind::from_str)]
    pub shingle: ShingleKind,
    /// Similarity at or above which documents are duplicates, in (0, 1].
    #[arg(long, default_value_t = 0.8, value_parser = parse_threshold)]
    pub threshold: f64,
    /// MinHash permutations per signature (1 to 8192).
    #[arg(long, default_value_t = 128, value_parser = parse_num_perm)]
    pub num_perm: usize,
    /// LSH bands (with --rows; default: chosen from the threshold).
    #[arg(long, value_parser = parse_positive, requires = "rows")]
    pub bands: Option<usize>,
    /// LSH rows per band (with --bands).
    #[arg(long, value_parser = parse_positive, requires = "bands")]
    pub rows: Option<usize>,
    /// Seed of the hash functions; the same seed gives the same output.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How candidate pairs are checked (default: borderline, and signature in a streaming run,
    /// which refuses the others: the texts of kept documents are gone). Pairs with an indexed
    /// document are decided on the signature estimate.
    #[arg(long, value_enum)]
    pub verify: Option<VerifyArg>,
    /// Which member of a cluster stays: first, longest (text), or max:FIELD (the largest value of
    /// a numeric JSON field; a path like --text-field). A cluster holding an indexed document keeps that one.
    #[arg(long, default_value = "first", value_name = "first|longest|max:FIELD", value_parser = KeepPolicy::from_str)]
    pub keep: KeepPolicy,
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
    /// Memory budget, e.g. 512M or 4G (at least 1M) [default: half the memory available when
    /// the run starts, shown by -v]: what a batch run keeps per document (band records, states,
    /// ids, signatures, the exact-duplicate map) beyond its share of the budget is spilled to
    /// files under --temp-dir and merged back, with the same output.
    #[arg(long, value_name = "SIZE", value_parser = parse_memory)]
    pub memory: Option<u64>,
    /// Where spilled runs go (default: the system's temporary directory).
    #[arg(long, value_name = "DIR")]
    pub temp_dir: Option<PathBuf>,
    /// Make the run resumable (dedup and clusters): keep what the first pass finished in DIR
    /// (empty, or one an earlier run used) and save checkpoints as it goes. The same command
    /// started again after a crash or kill goes on from the last checkpoint with the same
    /// output; a changed input or setting starts over and says why. Cleared when the run ends.
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// What similarity means.
    #[arg(long, value_enum, default_value_t = MeasureArg::Jaccard)]
    pub measure: MeasureArg,
    /// With --measure containment: the largest size ratio of a pair LSH is tuned to find, a
    /// finite number >= 1 (higher finds more, with more candidates to check).
    #[arg(long, default_value_t = neardup::pipeline::DEFAULT_MAX_SIZE_RATIO, value_parser = parse_size_ratio)]
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

/// The budget a run without `--memory` gets, and what it was derived from.
#[derive(Debug, Clone, Copy)]
pub struct DefaultMemory {
    pub bytes: u64,
    /// `MemAvailable` when the run started, if the system says.
    pub available: Option<u64>,
}

/// Half the memory available when the run starts (`MemAvailable` in `/proc/meminfo`), at least
/// 256 MiB; 1 GiB where the system does not say.
pub fn default_memory() -> DefaultMemory {
    let available = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        });
    let bytes = available.map_or(1 << 30, |bytes| (bytes / 2).max(256 << 20));
    DefaultMemory { bytes, available }
}

/// `--memory`: a size (see [`parse_size`]) of at least 1 MiB.
fn parse_memory(text: &str) -> Result<u64, ConfigError> {
    let bytes = parse_size(text)?;
    if bytes < MIN_MEMORY {
        return Err(ConfigError::MemoryTooSmall(bytes));
    }
    Ok(bytes)
}

/// A count of at least `min`.
fn parse_at_least<T: FromStr + PartialOrd + std::fmt::Display>(
    text: &str,
    min: T,
) -> Result<T, String> {
    match text.parse::<T>() {
        Ok(value) if value >= min => Ok(value),
        Ok(value) => Err(format!("must be at least {min}, got {value}")),
        Err(_) => Err(format!("{text:?} is not a whole number of at least {min}")),
    }
}

/// A count of at least 1.
fn parse_positive(text: &str) -> Result<usize, String> {
    parse_at_least(text, 1)
}

/// `--max-doc-bytes`: from 1 byte to 4 GiB (a record's length is kept in 32 bits).
fn parse_max_doc_bytes(text: &str) -> Result<usize, String> {
    let bytes: usize = parse_at_least(text, 1)?;
    if u32::try_from(bytes).is_err() {
        return Err(format!(
            "{bytes} is more than the largest record size, 4294967295 bytes"
        ));
    }
    Ok(bytes)
}

/// `--min-docs`: a unit in a single document is not repeated.
fn parse_min_docs(text: &str) -> Result<u32, String> {
    let min_docs = parse_at_least(text, 0)?;
    if min_docs < 2 {
        return Err(ConfigError::MinDocs(min_docs).to_string());
    }
    Ok(min_docs)
}

/// `--num-perm`: what a MinHash signature can hold.
fn parse_num_perm(text: &str) -> Result<usize, String> {
    let num_perm = parse_at_least(text, 0)?;
    if num_perm == 0 || num_perm > MAX_NUM_PERM {
        return Err(ConfigError::NumPerm(num_perm).to_string());
    }
    Ok(num_perm)
}

/// The most worker threads a run may start, and the cores it is derived from: 8 per core, and
/// at least 64. More threads than that only add scheduling and memory.
pub fn max_threads() -> (usize, usize) {
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    (cores.saturating_mul(8).max(64), cores)
}

/// `--threads`, `--workers`: from 1 up to [`max_threads`].
fn parse_threads(text: &str) -> Result<usize, String> {
    let threads = parse_at_least(text, 1)?;
    let (cap, cores) = max_threads();
    if threads > cap {
        return Err(format!(
            "{threads} threads is more than the cap of {cap} (8 per core on this machine's \
             {cores} cores, and at least 64)"
        ));
    }
    Ok(threads)
}

/// A similarity threshold: a finite number in (0, 1].
fn parse_threshold(text: &str) -> Result<f64, String> {
    let threshold: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number; a threshold lies in (0, 1]"))?;
    // NaN fails both comparisons.
    if threshold > 0.0 && threshold <= 1.0 {
        Ok(threshold)
    } else {
        Err(ConfigError::Threshold(threshold).to_string())
    }
}

/// `--max-size-ratio`: a finite number of at least 1.
fn parse_size_ratio(text: &str) -> Result<f64, String> {
    let ratio: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number; the ratio is a number >= 1"))?;
    if ratio >= 1.0 && ratio.is_finite() {
        Ok(ratio)
    } else {
        Err(format!("must be a finite number >= 1, got {ratio}"))
    }
}

/// A JSON field name: not empty.
impl DetectArgs {
    /// Why a streaming run cannot honour these settings (with `--spans` when `spans`), if it
    /// cannot: the library's refusal (`Dedup::check_streaming`), or a budget option (a streaming
    /// run keeps its tables in memory: no budget, nothing spilled, nothing to resume).
    pub fn stream_refusal(&self, spans: bool) -> Option<String> {
        let checked = self
            .stream_builder()
            .and_then(|builder| builder.spans(spans).build())
            .and_then(|dedup| dedup.check_streaming());
        if let Err(error) = checked {
            return Some(format!("these settings: {error}"));
        }
        let budget = [
            (self.memory.is_some(), "--memory"),
            (self.temp_dir.is_some(), "--temp-dir"),
            (self.work_dir.is_some(), "--work-dir"),
        ];
        let (_, flag) = budget.into_iter().find(|(given, _)| *given)?;
        Some(format!(
            "{flag}: a streaming run keeps its tables in memory (no budget, no spilling, no resuming)"
        ))
    }

    /// The deduplicator of a streaming run: [`DetectArgs::builder`], verifying on the signature
    /// estimate unless `--verify` says otherwise.
    pub fn stream_builder(&self) -> Result<DedupBuilder, ConfigError> {
        let verify = self.verify.map_or(VerifyMode::Signature, VerifyMode::from);
        Ok(self.builder()?.verify(verify))
    }

    pub fn builder(&self) -> Result<DedupBuilder, ConfigError> {
        let mut builder = DedupBuilder::new()
            .threshold(self.threshold)
            .num_perm(self.num_perm)
            .seed(self.seed)
            .shingle(self.shingle)
            .verify(self.verify.map_or(VerifyMode::Borderline, VerifyMode::from))
            .keep(self.keep.clone())
            .normalize(NormalizeOptions {
                nfkc: !self.no_nfkc,
                lowercase: !self.no_lowercase,
                strip_punctuation: !self.keep_punctuation,
                collapse_whitespace: !self.keep_whitespace,
            });
        // Parsing takes both or neither.
        if let (Some(bands), Some(rows)) = (self.bands, self.rows) {
            builder = builder.bands(bands, rows);
        }
        builder = builder.memory(self.memory.unwrap_or_else(|| default_memory().bytes));
        if let Some(dir) = &self.temp_dir {
            builder = builder.temp_dir(dir);
        }
        if self.strip_boilerplate {
            builder = self.boilerplate.configure(builder)?;
        }
        builder = builder
            .measure(self.measure.into())
            .max_size_ratio(self.max_size_ratio);
        Ok(builder)
    }
}

impl InputArgs {
    /// Adds the input-side settings (fields, strictness) to `builder`.
    pub fn configure(&self, builder: DedupBuilder) -> DedupBuilder {
        let builder = builder
            .fields(self.text_field.clone(), self.id_field.clone())
            .strict(self.strict);
        match &self.url_field {
            Some(field) => builder.url_field(field.clone()),
            None => builder,
        }
    }

    /// How each input's format is chosen: --format for all, or each by its name.
    pub fn format_choice(&self) -> FormatChoice {
        match self.format {
            Some(format) => FormatChoice::All(format.into()),
            None => FormatChoice::Detect,
        }
    }

    /// The inputs, directories of shards and patterns expanded, not yet checked. Files of a
    /// directory input (--format files) that are outputs of this run are not read; neither are
    /// files in its index directories, as documents or as shards.
    fn input_set(&self, outputs: &OutputPaths<'_>) -> Result<InputSet, Error> {
        let inputs = self.inputs.iter().map(|s| Input::parse(s)).collect();
        let indexes = outputs.indexes.iter().map(|(_, dir)| dir.to_path_buf());
        let exclude = outputs
            .files(self)
            .filter(|p| p.path != "-")
            .map(|p| PathBuf::from(&p.path))
            .chain(indexes.clone());
        // A directory of kept shards inside an input directory (from an earlier run) is not
        // read as input. One that is an input directory, or holds one, is left to the clash
        // checks: its shards would replace the inputs.
        let mirror = outputs
            .kept
            .filter(|name| is_mirror_name(name))
            .map(|name| neardup::output::resolved(Path::new(name)))
            .filter(|dir| {
                self.inputs.iter().any(|input| {
                    neardup::read::shard_root(Path::new(input)).is_some_and(|root| {
                        let root = neardup::output::resolved(&root);
                        dir.starts_with(&root) && *dir != root
                    })
                })
            });
        let set = InputSet::new(inputs, self.format_choice(), self.max_doc_bytes)?
            .keep_going(self.keep_going)
            .exclude(exclude)
            .skip_shards_in(indexes.chain(mirror));
        Ok(match &self.cancel {
            Some(flag) => set.cancel_on(flag.clone()),
            None => set,
        })
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
    pub fn open(&self, outputs: &OutputPaths<'_>) -> anyhow::Result<(InputSet, CliSink)> {
        let mut inputs = self.input_set(outputs)?;
        // The files read, as the clash checks see them: shards one by one.
        let mut paths: Vec<RunPath> = inputs
            .inputs()
            .iter()
            .map(|input| RunPath {
                role: format!("input {input}"),
                usage: PathUse::Input,
                path: match input {
                    Input::Path(p) => p.display().to_string(),
                    Input::Stdin => "-".to_string(),
                },
            })
            .collect();
        let mirror = match outputs.kept {
            Some(name) if is_mirror_name(name) => {
                Some(MirrorPlan::new(name, &inputs, outputs.annotations)?)
            }
            _ => None,
        };
        match &mirror {
            // Each shard is an output of its own (the directory is none).
            Some(plan) => {
                paths.extend(outputs.files(self).filter(|p| p.role != "-o"));
                paths.extend(plan.paths());
            }
            None => paths.extend(outputs.files(self)),
        }
        paths.extend(outputs.indexes.iter().map(|(role, dir)| RunPath {
            role: role.to_string(),
            usage: PathUse::Index,
            path: dir.display().to_string(),
        }));
        neardup::output::check_distinct(&paths)?;
        inputs.check()?;
        let warc = match (outputs.kept, &mirror) {
            (Some(name), None) => WarcOutput::of(name, &inputs)?,
            _ => None,
        };
        // Kept records of gzipped WARC inputs copy their gzip members into a .warc.gz output.
        let members = warc.is_some_and(|w| w.gzip)
            || mirror.as_ref().is_some_and(|m| m.copies_gzip_members());
        inputs.keep_gzip_members(members);
        let sink = self.sink(&inputs, outputs, warc, mirror)?;
        Ok((inputs, sink))
    }

    /// A sink writing the given outputs, plus --rejected and --stats-json, with a progress bar
    /// on a terminal.
    fn sink(
        &self,
        inputs: &InputSet,
        outputs: &OutputPaths<'_>,
        warc: Option<WarcOutput>,
        mirror: Option<MirrorPlan>,
    ) -> anyhow::Result<CliSink> {
        let open = |path: Option<&String>| path.map(|p| Output::create(p)).transpose();
        let parquet = parquet_inputs(inputs, outputs.kept.is_some(), outputs.annotations)?;
        let out = match (outputs.kept, warc, mirror) {
            (_, _, Some(plan)) => {
                return self.sink_with(
                    inputs,
                    outputs,
                    Some(Kept::Mirrored(plan.open()?)),
                    parquet,
                );
            }
            // A WARC output compresses record by record itself.
            (Some(path), Some(_), None) => {
                Some(KeptOut::Records(Output::create_uncompressed(path)?))
            }
            (Some(path), None, None) if is_parquet_name(path) => {
                let mut shape = kept_parquet_shape(inputs)?;
                if let Some(annotations) = outputs.annotations {
                    shape = shape.annotated(annotations, path)?;
                }
                let out = Output::create(path)?;
                Some(KeptOut::Parquet(ParquetRows::create(out, path, &shape)?))
            }
            (path, _, None) => open(path)?.map(KeptOut::Records),
        };
        let kept = out.map(|out| {
            Kept::One(KeptWriter {
                out,
                warc,
                as_json: KeptAsJson::of(inputs),
            })
        });
        self.sink_with(inputs, outputs, kept, parquet)
    }

    /// A sink with `kept` as its kept output, and the other outputs opened here.
    fn sink_with(
        &self,
        inputs: &InputSet,
        outputs: &OutputPaths<'_>,
        kept: Option<Kept>,
        parquet: ParquetInputs,
    ) -> anyhow::Result<CliSink> {
        let open = |path: Option<&String>| path.map(|p| Output::create(p)).transpose();
        let table = |path: Option<&String>, kind| -> Result<Option<TableOut>, Error> {
            let Some(path) = path else { return Ok(None) };
            let out = Output::create(path)?;
            Ok(Some(match is_parquet_name(path) {
                true => TableOut::Parquet(ReportTable::create(out, path, kind)?),
                false => TableOut::Json(out),
            }))
        };
        Ok(CliSink {
            kept,
            parquet,
            removed: table(outputs.removed, ReportKind::Removed)?,
            clusters: table(outputs.clusters, ReportKind::Clusters)?,
            rejected: open(self.rejected.as_ref())?,
            stats_json: open(self.stats_json.as_ref())?,
            report_page: open(outputs.report)?,
            rejections: 0,
            quiet: self.quiet,
            bar: progress_bar(self.quiet, inputs.total_bytes()),
            shards: Shards::of(inputs),
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
        let mut sink = sink;
        if let Some(bar) = &sink.bar {
            bar.finish_and_clear();
        }
        let mut stats_json = sink.stats_json;
        if let Some(out) = &mut stats_json {
            write_json(out, summary)?;
        }
        if let Some(kept) = sink.kept {
            kept.finish(&mut sink.parquet)?;
        }
        for table in [sink.removed, sink.clusters].into_iter().flatten() {
            table.finish()?;
        }
        for out in [sink.rejected, stats_json, sink.report_page]
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

/// Whether an output's name says Parquet (`.parquet`, any case).
pub fn is_parquet_name(path: &str) -> bool {
    path.to_ascii_lowercase().ends_with(".parquet")
}

/// The Parquet inputs whose kept rows a kept output copies, by the name their records carry.
/// Rows of a stream cannot be read again from a file, so a kept output of them is refused.
/// With `annotations`, rows get those columns, which no Parquet input may have already.
fn parquet_inputs(
    inputs: &InputSet,
    copies_rows: bool,
    annotations: Option<Annotations>,
) -> anyhow::Result<ParquetInputs> {
    let mut parquet = ParquetInputs {
        annotations,
        ..ParquetInputs::default()
    };
    if !copies_rows {
        return Ok(parquet);
    }
    for (index, input) in inputs.inputs().iter().enumerate() {
        if inputs.format_of(index) != Format::Parquet {
            continue;
        }
        match input {
            Input::Path(p) if std::fs::metadata(p).is_ok_and(|m| m.is_file()) => {
                if let (Some(annotations), Ok(shape)) = (annotations, TableShape::of(p)) {
                    shape.annotated(annotations, &input.display_name())?;
                }
                parquet.paths.insert(input.display_name(), p.clone());
            }
            _ => anyhow::bail!(
                "{input} is Parquet read from a stream, whose rows -o cannot copy; write it to a file first"
            ),
        }
    }
    Ok(parquet)
}

/// The schema of a Parquet kept output: the Parquet inputs' one. Refuses inputs that are not
/// Parquet, and Parquet inputs whose schemas differ (a Parquet file holds rows of one schema).
/// An input whose footer cannot be read is left to the run, which fails on it.
fn kept_parquet_shape(inputs: &InputSet) -> anyhow::Result<TableShape> {
    let mut shape: Option<(String, TableShape)> = None;
    for (index, input) in inputs.inputs().iter().enumerate() {
        if inputs.format_of(index) != Format::Parquet {
            anyhow::bail!(
                "-o with a .parquet name writes the kept rows of Parquet inputs, and {input} is {}; write JSON Lines (-o kept.jsonl)",
                inputs.format_of(index)
            );
        }
        let Input::Path(path) = input else { continue };
        let Ok(this) = TableShape::of(path) else {
            continue;
        };
        match &shape {
            None => shape = Some((input.display_name(), this)),
            Some((first, seen)) => {
                if !neardup::read::parquet_read::same_fields(&seen.schema, &this.schema) {
                    anyhow::bail!(
                        "the Parquet inputs {first} and {input} have different schemas, and one Parquet output holds rows of one schema; write JSON Lines (-o kept.jsonl), or one run per schema"
                    );
                }
            }
        }
    }
    Ok(shape.map_or_else(
        || TableShape {
            schema: std::sync::Arc::new(arrow_schema::Schema::empty()),
            key_value: None,
        },
        |(_, shape)| shape,
    ))
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};
    use proptest::prelude::*;

    use super::{
        Cli, Command, MAX_NUM_PERM, Mode, VerifyArg, max_threads, parse_num_perm, parse_size,
        parse_threads, parse_threshold,
    };

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

    /// Every command with its words after `neardup` (`["index", "build"]`), the top level first.
    fn commands() -> Vec<(Vec<String>, clap::Command)> {
        fn walk(
            path: Vec<String>,
            command: &clap::Command,
            out: &mut Vec<(Vec<String>, clap::Command)>,
        ) {
            out.push((path.clone(), command.clone()));
            for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
                let mut sub_path = path.clone();
                sub_path.push(sub.get_name().to_string());
                walk(sub_path, sub, out);
            }
        }
        let mut out = Vec::new();
        walk(Vec::new(), &Cli::command(), &mut out);
        out
    }

    /// The command lines of a help text's examples: each line (or the part of a pipeline) that
    /// starts with `neardup `, up to a `>` redirection, split into words.
    fn examples(help: &str) -> Vec<Vec<String>> {
        help.lines()
            .map(str::trim)
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let command = line
                    .split('|')
                    .map(str::trim)
                    .find(|part| part.starts_with("neardup "))?;
                let command = command.split('>').next().unwrap();
                assert!(
                    !command.contains(['\'', '"', '$', '`']),
                    "keep examples free of shell quoting: {line}"
                );
                Some(command.split_whitespace().map(str::to_string).collect())
            })
            .collect()
    }

    #[test]
    fn issue10_every_command_ends_its_help_with_examples_that_parse() {
        for (path, command) in commands() {
            let name = format!("neardup {}", path.join(" "));
            let help = command
                .get_after_help()
                .unwrap_or_else(|| panic!("{name}: no examples"))
                .to_string();
            assert!(help.starts_with("Examples:\n"), "{name}: {help}");
            let lines = examples(&help);
            assert!(
                (2..=4).contains(&lines.len()),
                "{name}: {} examples",
                lines.len()
            );
            assert!(
                lines.iter().any(|words| words[1..].starts_with(&path)),
                "{name}: no example runs it"
            );
            for words in lines {
                let parsed = Cli::try_parse_from(&words).and_then(Cli::validated);
                assert!(
                    parsed.is_ok(),
                    "{name}: {words:?}: {}",
                    parsed.err().unwrap()
                );
            }
        }
    }

    #[test]
    fn issue10_top_level_help_gives_the_exit_codes() {
        let help = Cli::command().get_after_help().unwrap().to_string();
        let codes = help
            .split("Exit codes:\n")
            .nth(1)
            .expect("an exit-code section");
        for code in ["0", "1", "2", "3"] {
            assert!(
                codes
                    .lines()
                    .any(|l| l.trim_start().starts_with(&format!("{code}  "))),
                "exit code {code} missing: {codes}"
            );
        }
    }

    /// The `dedup` command a line of words parses to, or the error's text.
    fn dedup(args: &[&str]) -> Result<(Mode, Option<VerifyArg>, Option<String>), String> {
        let words = [&["neardup", "dedup", "-", "-o", "-"], args].concat();
        match Cli::try_parse_from(words).and_then(Cli::validated) {
            Ok(Cli {
                command: Command::Dedup { mode, common, .. },
            }) => Ok((
                mode,
                common.detect.verify,
                common.detect.stream_refusal(false),
            )),
            Ok(_) => unreachable!("parsed as another command"),
            Err(error) => Err(error.to_string()),
        }
    }

    /// Issue 11: the command line asks the library what a streaming run cannot honour (one rule,
    /// `Dedup::check_streaming`), and refuses only that, plus the budget options.
    #[test]
    fn issue11_stream_refuses_what_the_library_refuses() {
        for verify in [&["--verify", "signature"][..], &[]] {
            let (mode, _, refusal) = dedup(&[&["--mode", "stream"], verify].concat()).unwrap();
            assert_eq!((mode, refusal), (Mode::Stream, None), "{verify:?}");
        }
        for (args, says) in [
            (&["--verify", "exact"][..], "signature estimate"),
            (&["--verify", "borderline"], "signature estimate"),
            (&["--keep", "longest"], "keep policy"),
            (&["--keep", "max:score"], "keep policy"),
            (&["--strip-boilerplate"], "boilerplate"),
            (&["--measure", "containment"], "containment"),
            (&["--memory", "1G"], "--memory"),
            (&["--temp-dir", "t"], "--temp-dir"),
            (&["--work-dir", "w"], "--work-dir"),
        ] {
            // --mode auto sees the setting and runs a batch.
            let refusal = dedup(args).unwrap().2.expect("refused");
            assert!(refusal.contains(says), "{args:?}: {refusal}");
            let error = dedup(&[&["--mode", "stream"], args].concat()).unwrap_err();
            assert!(
                error.contains("--mode stream cannot honour") && error.contains(says),
                "{error}"
            );
        }
        let error = dedup(&["--mode", "stream", "--workers", "2"]).unwrap_err();
        assert!(error.contains("cannot be distributed"), "{error}");
    }

    #[test]
    fn issue10_threads_are_capped_by_the_cores() {
        let (cap, cores) = max_threads();
        assert!(cap >= 64 && cap >= 8 * cores);
        assert_eq!(parse_threads(&cap.to_string()), Ok(cap));
        assert_eq!(parse_threads("1"), Ok(1));
        let error = parse_threads(&(cap + 1).to_string()).unwrap_err();
        assert!(error.contains(&format!("cap of {cap}")), "{error}");
        assert!(error.contains(&format!("{cores} cores")), "{error}");
        assert!(parse_threads("0").is_err());
        assert!(parse_threads("99999999999999999999999").is_err());
    }

    proptest! {
        #[test]
        fn issue10_a_threshold_parses_exactly_when_finite_and_in_the_unit_interval(x in prop::num::f64::ANY) {
            let parsed = parse_threshold(&x.to_string());
            prop_assert_eq!(parsed.is_ok(), x > 0.0 && x <= 1.0, "{} gave {:?}", x, parsed);
            if let Ok(value) = parsed {
                prop_assert_eq!(value, x);
            }
        }

        #[test]
        fn issue10_num_perm_parses_exactly_in_its_range(n in 0usize..20_000) {
            prop_assert_eq!(parse_num_perm(&n.to_string()).is_ok(), (1..=MAX_NUM_PERM).contains(&n));
        }
    }
}
