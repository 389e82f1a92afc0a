//! The bindings' use of the command line's code: settings parsed by its parser, `stats` and
//! `dedup` run by its commands.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::Parser;

use crate::Failure;
use crate::args::{Cli, Command, IndexCommand, InputArgs};
use crate::commands;

/// A `dedup` configuration parsed from the command line's flags.
pub struct Parsed {
    pub dedup: neardup::Dedup,
    pub against: Vec<PathBuf>,
    pub threads: Option<usize>,
    pub temp_dir: PathBuf,
    pub max_doc_bytes: usize,
}

/// Parses `neardup ARGS` with the command line's parser and checks; a bad setting is the
/// command line's message (without its usage lines).
fn parse(args: impl IntoIterator<Item = String>) -> Result<Cli, Failure> {
    let argv = std::iter::once("neardup".to_string()).chain(args);
    Cli::try_parse_from(argv)
        .and_then(Cli::validated)
        .map_err(|e| Failure::Setting(clap_message(&e)))
}

/// A clap error's message: its first paragraph, without `error: ` and the usage that follows.
fn clap_message(error: &clap::Error) -> String {
    let text = error.render().to_string();
    let first = text.split("\n\n").next().unwrap_or(&text).trim();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

/// The settings of `neardup dedup INPUT -o OUT FLAGS` (a batch run: `mode` is refused).
pub fn parse_dedup(flags: &[String]) -> Result<Parsed, Failure> {
    let args = ["dedup", "-", "-o", "-"].map(String::from);
    let cli = parse(args.into_iter().chain(flags.iter().cloned()))?;
    let Command::Dedup {
        common,
        against,
        spans,
        ..
    } = cli.command
    else {
        unreachable!("parsed as dedup");
    };
    let builder = common
        .detect
        .builder()
        .map_err(|e| Failure::Setting(e.to_string()))?
        .spans(spans);
    let dedup = common
        .input
        .configure(builder)
        .build()
        .map_err(|e| Failure::Setting(e.to_string()))?;
    Ok(Parsed {
        dedup,
        against: against.dirs,
        threads: common.input.threads,
        temp_dir: common
            .detect
            .temp_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir),
        max_doc_bytes: common.input.max_doc_bytes,
    })
}

/// `neardup stats INPUT -q FLAGS`'s figures as JSON.
pub fn stats(input: &Path, flags: &[String]) -> Result<String, Failure> {
    let args = [
        "stats".to_string(),
        input.display().to_string(),
        "-q".into(),
    ];
    let cli = parse(args.into_iter().chain(flags.iter().cloned()))?;
    let Command::Stats {
        common,
        thresholds,
        top,
        report,
        ..
    } = cli.command
    else {
        unreachable!("parsed as stats");
    };
    let mut common = common;
    // The bindings run the command inside a pool of their own.
    common.input.threads = None;
    let (stats, _) = commands::stats_figures(&common, thresholds, top, report.as_ref())
        .map_err(|e| Failure::of_error(&e))?;
    serde_json::to_string(&stats).map_err(|e| Failure::Run(e.to_string()))
}

/// The input options of a command that reads inputs.
fn input_args(cli: &mut Cli) -> Option<&mut InputArgs> {
    match &mut cli.command {
        Command::Dedup { common, .. } | Command::Clusters { common, .. } => Some(&mut common.input),
        Command::Stats { common, .. } => Some(&mut common.input),
        Command::Lines { input, .. } => Some(input),
        Command::Index { command } => match command {
            IndexCommand::Build { common, .. } => Some(&mut common.input),
            IndexCommand::Add { input, .. } => Some(input),
            _ => None,
        },
        Command::Merge { .. } => None,
    }
}

/// Runs `neardup ARGS -q --stats-json TEMP` and returns what it wrote to `--stats-json`;
/// `cancel` stops it at its next batch.
pub fn run_with_summary(args: Vec<String>, cancel: Arc<AtomicBool>) -> Result<String, Failure> {
    let summary = tempfile::Builder::new()
        .prefix("neardup-summary-")
        .suffix(".json")
        .tempfile()
        .map_err(|e| Failure::Run(format!("cannot make a temporary file: {e}")))?;
    let summary_path = summary.path().display().to_string();
    let mut cli =
        parse(
            args.into_iter()
                .chain(["-q".to_string(), "--stats-json".into(), summary_path]),
        )?;
    // The bindings run the command inside a pool of their own, and cancel it themselves.
    let threads = input_args(&mut cli).and_then(|input| {
        input.cancel = Some(cancel);
        input.threads.take()
    });
    crate::in_pool(threads, || {
        commands::run(cli).map_err(|e| Failure::of_error(&e))
    })?;
    std::fs::read_to_string(summary.path())
        .map_err(|e| Failure::Run(format!("cannot read the run's summary: {e}")))
}

/// `neardup index info --json DIR`'s value, as JSON.
pub fn index_info(dir: &Path) -> Result<String, Failure> {
    let index = neardup::index::Index::open(dir)
        .map_err(|e| Failure::Run(format!("{:#}", anyhow::Error::from(e))))?;
    Ok(commands::index_info_json(&index).to_string())
}
