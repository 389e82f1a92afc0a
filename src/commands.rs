//! What each subcommand does, given its parsed arguments: [`run`] returns how the run ended or
//! why it failed, and [`exit_code`] and [`hint`] say what the process reports. `main` (and the
//! Python bindings, which compile this module too) call these; nothing here exits the process
//! or installs a signal handler.

use std::path::{Path, PathBuf};

use anyhow::Result;
use neardup::index::{Index, SegmentData};
use neardup::parquet_write::Annotations;
use neardup::pipeline::{ClusterConfig, DistributedOutputs, RunOptions, StatsOptions};
use neardup::report::DocId;
use neardup::{DedupBuilder, Error};

use crate::args::{Cli, Command, Common, IndexCommand, Mode, OutputPaths};
use crate::pages::{run_report, sample_docs, stats_report, write_report};
use crate::sink::{ReportCollector, write_json};
use neardup::output::{Output, PathUse, RunPath};

/// Bytes in binary units with one decimal: `1.5 GiB`.
fn human_bytes(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", units[unit])
}

/// What -v says about the run's settings. `batch`: the run applies a memory budget.
fn print_parameters(dedup: &neardup::Dedup, explicit_memory: Option<u64>, batch: bool) {
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
    // Batch runs apply a budget; streaming and distributed runs keep their tables in memory.
    if let (Some(budget), true) = (dedup.memory(), batch) {
        match explicit_memory {
            Some(_) => eprintln!("memory budget {} (--memory)", human_bytes(budget)),
            None => eprintln!(
                "memory budget {} (default: half the memory available, {})",
                human_bytes(budget),
                crate::args::default_memory()
                    .available
                    .map_or("not known".to_string(), human_bytes)
            ),
        }
    }
    eprintln!("  Jaccard     P(candidate)");
    for (s, prob) in p.s_curve() {
        let bar = "#".repeat((prob * 40.0).round() as usize);
        eprintln!("  {s:>10.2}  {prob:>12.4} {bar}");
    }
}

/// How a run that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Every input was read to its end.
    Complete,
    /// With --keep-going: some inputs could not be read to their end (outputs committed).
    Incomplete,
}

impl Status {
    fn of(inputs: &neardup::InputSet) -> Status {
        if inputs.report().incomplete_inputs.is_empty() {
            Status::Complete
        } else {
            Status::Incomplete
        }
    }
}

pub fn run(cli: Cli) -> Result<Status> {
    match cli.command {
        Command::Dedup {
            common,
            output,
            removed,
            clusters,
            against,
            update,
            annotate,
            spans,
            mode,
            report,
            distributed,
        } => {
            if spans && clusters.is_none() {
                anyhow::bail!(
                    "--spans gives each cluster member's spans in the clusters file: name one with --clusters FILE"
                );
            }
            if let Some(cluster) = distributed.cluster()? {
                if crate::mirror::is_mirror_name(&output) {
                    anyhow::bail!(
                        "-o {output} (kept shards mirroring the inputs) is not supported in a distributed run yet; name one output file"
                    );
                }
                if annotate {
                    anyhow::bail!(
                        "--annotate is not supported in a distributed run yet; run it in one process"
                    );
                }
                refuse_in_distributed(&against.dirs, update, report.as_ref(), spans, &common)?;
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
            // Settings a streaming run cannot honour were refused with --mode stream at parse
            // time (`Cli::validated`); with --mode auto they choose a batch run.
            let streaming = match mode {
                Mode::Batch => false,
                Mode::Stream => true,
                Mode::Auto => {
                    common.detect.stream_refusal(spans).is_none()
                        && !annotate
                        && output == "-"
                        && common.input.inputs.iter().all(|i| i == "-")
                }
            };
            detect(
                &common,
                OutputPaths {
                    kept: Some(&output),
                    removed: removed.as_ref(),
                    clusters: clusters.as_ref(),
                    report: report.as_ref(),
                    indexes: index_paths(&against.dirs, update, common.detect.work_dir.as_deref()),
                    clusters_by_o: false,
                    annotations: annotate.then_some(Annotations {
                        duplicate_in: !against.dirs.is_empty(),
                    }),
                },
                &against.dirs,
                Detect {
                    update,
                    streaming,
                    annotate,
                    spans,
                },
            )
        }
        Command::Clusters {
            common,
            output,
            against,
            report,
            spans,
            distributed,
        } => match distributed.cluster()? {
            Some(cluster) => {
                refuse_in_distributed(&against.dirs, false, report.as_ref(), spans, &common)?;
                run_distributed(
                    &common,
                    &cluster,
                    DistributedOutputs {
                        kept: None,
                        removed: None,
                        clusters: Some(output),
                        rejected: common.input.rejected.clone(),
                        checkpoint: distributed.checkpoint.clone(),
                    },
                )
            }
            None => detect(
                &common,
                OutputPaths {
                    clusters: Some(&output),
                    report: report.as_ref(),
                    indexes: index_paths(&against.dirs, false, common.detect.work_dir.as_deref()),
                    clusters_by_o: true,
                    ..OutputPaths::default()
                },
                &against.dirs,
                Detect {
                    spans,
                    ..Detect::default()
                },
            ),
        },
        Command::Merge { parts, output } => {
            let mut paths: Vec<RunPath> = parts
                .iter()
                .map(|part| RunPath {
                    role: format!("part {}", part.display()),
                    usage: PathUse::Input,
                    path: part.display().to_string(),
                })
                .collect();
            paths.push(RunPath {
                role: "-o".to_string(),
                usage: PathUse::Output,
                path: output.clone(),
            });
            neardup::output::check_distinct(&paths)?;
            let mut out = Output::create(&output)?;
            let lines = neardup::parts::merge(&parts, &mut out)?;
            out.finish()?;
            eprintln!("merged {} parts: {lines} lines", parts.len());
            Ok(Status::Complete)
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
            // Counting units keeps their hashes within the default budget (spilled beyond it).
            let builder = DedupBuilder::new().memory(crate::args::default_memory().bytes);
            let dedup = boilerplate.configure(input.configure(builder))?.build()?;
            if crate::args::is_parquet_name(&output) {
                anyhow::bail!(
                    "lines writes records with their text rewritten, as JSON Lines or text, not Parquet ({output})"
                );
            }
            let (mut inputs, mut sink) = input.open(&OutputPaths {
                kept: Some(&output),
                ..OutputPaths::default()
            })?;
            if inputs.has_parquet() {
                anyhow::bail!(
                    "lines does not rewrite the text of Parquet rows yet; strip boilerplate in dedup (--strip-boilerplate), which copies the rows as read"
                );
            }
            let summary = dedup.strip_records(&mut inputs, &mut sink)?;
            input.finish_with(sink, &summary, &summary.to_text())?;
            Ok(Status::of(&inputs))
        }
    }
}

/// `--work-dir` makes `dedup` and `clusters` resumable; elsewhere it is refused, never dropped.
fn refuse_work_dir(common: &Common, command: &str) -> Result<()> {
    if common.detect.work_dir.is_some() {
        anyhow::bail!(
            "--work-dir makes dedup and clusters runs resumable; {command} does not take it"
        );
    }
    Ok(())
}

/// Options a distributed run does not support yet are refused, never silently dropped.
fn refuse_in_distributed(
    against: &[PathBuf],
    update: bool,
    report: Option<&String>,
    spans: bool,
    common: &Common,
) -> Result<()> {
    let unsupported = [
        ("--against", !against.is_empty()),
        ("--update", update),
        ("--report", report.is_some()),
        ("--spans", spans),
        ("--keep-going", common.input.keep_going),
        // Each worker holds its share in memory; no budget or spilling yet (issue 16).
        ("--memory", common.detect.memory.is_some()),
        ("--temp-dir", common.detect.temp_dir.is_some()),
        ("--work-dir", common.detect.work_dir.is_some()),
    ];
    let given: Vec<&str> = unsupported
        .iter()
        .filter(|(_, given)| *given)
        .map(|(name, _)| *name)
        .collect();
    if !given.is_empty() {
        anyhow::bail!(
            "a distributed run does not support {} yet; run it as one process",
            given.join(", ")
        );
    }
    Ok(())
}

/// `dedup` or `clusters` as one process of a distributed run.
fn run_distributed(
    common: &Common,
    cluster: &ClusterConfig,
    outputs: DistributedOutputs,
) -> Result<Status> {
    let input = &common.input;
    // Workers sign and verify in parallel on the rayon pool.
    input.start_threads()?;
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
    let format = input.format_choice();
    let given: Vec<neardup::Input> = input
        .inputs
        .iter()
        .map(|s| neardup::Input::parse(s))
        .collect();
    if given.contains(&neardup::Input::Stdin) {
        anyhow::bail!("a distributed run reads files, not stdin");
    }
    // Every process reads its pieces of each input by position: a pipe cannot be shared out.
    for path in &input.inputs {
        if std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
            anyhow::bail!("a distributed run reads files, not pipes or devices: {path}");
        }
    }
    // Every input exists and opens before the processes connect (exit 2 otherwise). Every
    // process expands directories and patterns the same way (sorted), and the processes check
    // that they agree on the files.
    let mut set = neardup::InputSet::new(given, format, input.max_doc_bytes)?;
    // Workers share the inputs out by byte ranges, which a Parquet file has no use for.
    if set.has_parquet() {
        anyhow::bail!(
            "a distributed run (--workers, --processes) does not read Parquet inputs yet; run it as one process"
        );
    }
    if let Some(path) = [&outputs.kept, &outputs.removed, &outputs.clusters]
        .into_iter()
        .flatten()
        .find(|p| crate::args::is_parquet_name(p))
    {
        anyhow::bail!(
            "a distributed run (--workers, --processes) writes JSON Lines, not Parquet ({path}); run it as one process"
        );
    }
    set.check()?;
    let inputs = set.inputs().to_vec();
    if input.verbose && !input.quiet {
        print_parameters(&dedup, None, false);
        eprintln!(
            "process {} of {}, {} workers each",
            cluster.process,
            cluster.processes(),
            cluster.workers
        );
    }
    // Timely is fail-stop: when a peer dies, its communication threads panic. Tell the run (its
    // workers then stop), and say so in one line (the process then exits non-zero) instead of a
    // backtrace per thread.
    let reported = std::sync::atomic::AtomicBool::new(false);
    std::panic::set_hook(Box::new(move |info| {
        neardup::pipeline::note_thread_panic(std::thread::current().name());
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
    Ok(Status::Complete)
}

/// The index directories of a run: every --against, the first one also written with --update.
/// The directories a run reads or writes whole (indexes, and the work directory), which no
/// output may be inside.
fn index_paths<'a>(
    dirs: &'a [PathBuf],
    update: bool,
    work_dir: Option<&'a Path>,
) -> Vec<(&'static str, &'a Path)> {
    dirs.iter()
        .enumerate()
        .map(|(i, dir)| {
            let role = if update && i == 0 {
                "--update's index"
            } else {
                "--against"
            };
            (role, dir.as_path())
        })
        .chain(work_dir.map(|dir| ("--work-dir", dir)))
        .collect()
}

/// How `dedup` or `clusters` runs.
#[derive(Debug, Default, Clone, Copy)]
struct Detect {
    /// --update: append the kept documents to the first index.
    update: bool,
    /// --mode stream (or auto choosing it).
    streaming: bool,
    /// --annotate: every record written, with what was decided.
    annotate: bool,
    /// --spans: each cluster member's compared spans.
    spans: bool,
}

/// `dedup` and `clusters`.
fn detect(
    common: &Common,
    outputs: OutputPaths<'_>,
    against: &[PathBuf],
    how: Detect,
) -> Result<Status> {
    let Detect {
        update,
        streaming,
        annotate,
        spans,
    } = how;
    let input = &common.input;
    input.start_threads()?;
    let builder = match streaming {
        true => common.detect.stream_builder()?,
        false => common.detect.builder()?,
    };
    let dedup = input.configure(builder.spans(spans)).build()?;
    let (mut inputs, mut sink) = input.open(&outputs)?;
    // With --update, a directory without an index yet gets one holding the kept documents,
    // built aside and renamed into place when the run is done (a failed run leaves none).
    let new_index = update && !against[0].join("MANIFEST").exists();
    if new_index {
        Index::can_build(&against[0])?;
    }
    let indexes = against
        .iter()
        .skip(usize::from(new_index))
        .map(|dir| {
            let index = Index::open(dir)?;
            dedup.check_index(&index)?;
            Ok(index)
        })
        .collect::<Result<Vec<Index>, Error>>()?;
    if streaming {
        inputs = inputs.single_pass();
    }
    if input.verbose && !input.quiet {
        print_parameters(&dedup, common.detect.memory, !streaming);
        for index in &indexes {
            eprintln!(
                "against {}: {} documents in {} segments",
                index.dir().display(),
                index.num_docs(),
                index.segments().len()
            );
        }
    }
    if outputs.report.is_some() {
        sink.report = Some(ReportCollector::default());
    }
    if let Some(why) = sink
        .kept
        .as_ref()
        .filter(|_| annotate)
        .and_then(|kept| kept.annotation_refusal())
    {
        anyhow::bail!("{why}");
    }
    let work_dir = match &common.detect.work_dir {
        Some(dir) if !streaming => {
            let work = neardup::WorkDir::open(dir, &dedup, &inputs)?;
            if !input.quiet {
                if let Some(reason) = work.restart_reason() {
                    eprintln!("starting over in {}: {reason}", dir.display());
                } else if let Some(docs) = work.resumes_after() {
                    eprintln!("resuming from {}: {docs} records were done", dir.display());
                }
            }
            Some(work)
        }
        _ => None,
    };
    let options = RunOptions {
        against: &indexes,
        collect_kept: update,
        work_dir: work_dir.as_ref(),
        annotate,
    };
    let output = if streaming {
        dedup.run_streaming(&mut inputs, options, &mut sink)?
    } else {
        dedup.run_with(&mut inputs, options, &mut sink)?
    };
    // The report reads the shown documents' texts back (a streaming run cannot: ids only).
    if let Some(collected) = sink.report.take() {
        let wanted: Vec<DocId> = collected
            .top
            .iter()
            .flat_map(|t| [t.kept_doc, t.member_doc])
            .chain(sample_docs(&output.summary.candidate_samples))
            .collect();
        let texts = if streaming {
            Default::default()
        } else {
            dedup.texts(&mut inputs, &wanted, output.boilerplate.as_deref())?
        };
        let data = run_report(&dedup, &output.summary, collected, &texts, streaming);
        if let Some(page) = &mut sink.report_page {
            write_report(page, &data)?;
        }
    }
    if input.verbose && !input.quiet && !streaming {
        eprint!(
            "{}",
            output.summary.stage_seconds.to_text(output.summary.seconds)
        );
    }
    // Outputs are committed before the index learns of the kept documents: a run stopped in
    // between leaves them out of the index, never in it without having been written.
    input.finish(sink, &output.summary)?;
    if let Some(mut kept) = output.kept {
        if new_index {
            let added = kept.len();
            let built = Index::build(&against[0], dedup.index_params(), &mut kept)?;
            report_index(&built, added, input.quiet);
        } else {
            let mut indexes = indexes;
            append(&mut indexes[0], kept, input.quiet)?;
        }
    }
    // Only now is everything the run makes in place: what it kept to resume can go.
    if let Some(work) = work_dir {
        work.clear()?;
    }
    Ok(Status::of(&inputs))
}

fn append(index: &mut Index, mut segment: SegmentData, quiet: bool) -> Result<()> {
    let added = segment.len();
    index.append(&mut segment)?;
    report_index(index, added, quiet);
    Ok(())
}

fn report_index(index: &Index, added: usize, quiet: bool) {
    if !quiet {
        eprintln!(
            "index {}: added {} documents; now {} documents in {} segments ({} bytes)",
            index.dir().display(),
            added,
            index.num_docs(),
            index.segments().len(),
            index.bytes()
        );
    }
}

fn run_index(command: IndexCommand) -> Result<Status> {
    match command {
        IndexCommand::Build { common, index } => {
            refuse_work_dir(&common, "index build")?;
            let input = &common.input;
            input.start_threads()?;
            let dedup = input.configure(common.detect.builder()?).build()?;
            Index::can_build(&index)?;
            if input.verbose && !input.quiet {
                print_parameters(&dedup, common.detect.memory, true);
            }
            let (mut inputs, mut sink) = input.open(&OutputPaths {
                indexes: vec![("--index", &index)],
                ..OutputPaths::default()
            })?;
            let (summary, mut segment) = dedup.index_segment(&mut inputs, &mut sink)?;
            // Built aside and renamed into place: a failed or killed build leaves no index.
            let added = segment.len();
            let built = Index::build(&index, dedup.index_params(), &mut segment)?;
            input.finish(sink, &summary)?;
            report_index(&built, added, input.quiet);
            Ok(Status::of(&inputs))
        }
        IndexCommand::Add { input, index } => {
            input.start_threads()?;
            let mut opened = Index::open(&index)?;
            // No --memory here: the default budget bounds the new segment, as for `lines`.
            let builder = DedupBuilder::new()
                .index_params(opened.params())
                .memory(crate::args::default_memory().bytes);
            let dedup = input.configure(builder).build()?;
            let (mut inputs, mut sink) = input.open(&OutputPaths {
                indexes: vec![("--index", &index)],
                ..OutputPaths::default()
            })?;
            let (summary, mut segment) = dedup.index_segment(&mut inputs, &mut sink)?;
            let added = segment.len();
            opened.append(&mut segment)?;
            input.finish(sink, &summary)?;
            report_index(&opened, added, input.quiet);
            Ok(Status::of(&inputs))
        }
        IndexCommand::Info { index, json } => {
            let index = Index::open(&index)?;
            if json {
                println!("{}", index_info_json(&index));
            } else {
                print!("{}", index_info(&index));
            }
            Ok(Status::Complete)
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
            Ok(Status::Complete)
        }
    }
}

fn run_stats(
    common: &Common,
    thresholds: Vec<f64>,
    top: usize,
    json: bool,
    report: Option<&String>,
) -> Result<Status> {
    let (stats, status) = stats_figures(common, thresholds, top, report)?;
    if json {
        let mut out = Output::create("-")?;
        write_json(&mut out, &stats)?;
        out.finish()?;
    }
    Ok(status)
}

/// What `stats` computes: the figures, after writing its outputs (`--report`, `--stats-json`,
/// `--rejected`) and, unless quiet, the table on stderr.
pub fn stats_figures(
    common: &Common,
    thresholds: Vec<f64>,
    top: usize,
    report: Option<&String>,
) -> Result<(neardup::pipeline::CorpusStats, Status)> {
    let input = &common.input;
    refuse_work_dir(common, "stats")?;
    input.start_threads()?;
    let lowest = thresholds
        .iter()
        .copied()
        .chain([common.detect.threshold])
        .fold(f64::INFINITY, f64::min);
    let mut builder = input.configure(common.detect.builder()?);
    if let Some(field) = &common.detect.boilerplate.group_field {
        builder = builder.group_field(field.clone());
    }
    if common.detect.bands.is_none() {
        let params = neardup::lsh::LshParams::from_threshold(lowest, common.detect.num_perm)?;
        builder = builder.bands(params.num_bands, params.rows_per_band);
    }
    let dedup = builder.build()?;
    if input.verbose && !input.quiet {
        print_parameters(&dedup, common.detect.memory, true);
    }
    let options = StatsOptions {
        thresholds,
        top,
        boilerplate: common.detect.boilerplate.options()?,
    };
    let (mut inputs, mut sink) = input.open(&OutputPaths {
        report,
        ..OutputPaths::default()
    })?;
    let stats = dedup.stats(&mut inputs, &options, &mut sink)?;
    if let Some(page) = &mut sink.report_page {
        let wanted: Vec<DocId> = stats
            .top_clusters
            .iter()
            .flat_map(|c| c.docs.iter().take(2).copied())
            .chain(sample_docs(&stats.candidate_samples))
            .collect();
        let texts = dedup.texts(&mut inputs, &wanted, None)?;
        write_report(page, &stats_report(&dedup, &stats, &texts))?;
    }
    input.finish_with(sink, &stats, &stats.to_text())?;
    Ok((stats, Status::of(&inputs)))
}

/// What `index info --json` prints: the manifest and the counts.
pub fn index_info_json(index: &Index) -> serde_json::Value {
    serde_json::json!({
        "manifest": index.manifest(),
        "documents": index.num_docs(),
        "bytes": index.bytes(),
    })
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

pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<Error>()
            .is_some_and(Error::is_broken_pipe)
            || cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The exit code of a failed run: 2 when an input could not be read to its end or gave no
/// acceptable record (nothing was committed), 1 for anything else.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    let input_failure = error.chain().any(|cause| {
        cause
            .downcast_ref::<Error>()
            .is_some_and(Error::is_input_failure)
    });
    if input_failure { 2 } else { 1 }
}

/// A hint naming the command or option that likely fixes the error.
pub fn hint(error: &anyhow::Error) -> Option<String> {
    use neardup::error::RejectKind;
    use neardup::index::IndexError;
    let index_error = error
        .chain()
        .find_map(|cause| match cause.downcast_ref::<Error>() {
            Some(Error::Index(e)) => Some(e),
            _ => cause.downcast_ref::<IndexError>(),
        });
    match index_error {
        Some(IndexError::Exists { .. }) => {
            return Some("`neardup index add` appends to an existing index".into());
        }
        Some(IndexError::Missing { .. }) => {
            return Some("`neardup index build` creates an index".into());
        }
        Some(IndexError::OldFormat { .. }) => {
            return Some(
                "an index is not converted in place: build a new one from the same documents with `neardup index build` (into a new directory, or after removing the old one)".into(),
            );
        }
        Some(IndexError::NewerFormat { .. }) => {
            return Some("read this index with the newer neardup that wrote it".into());
        }
        Some(IndexError::Mismatch {
            num_bands,
            rows_per_band,
            ..
        }) => {
            return Some(format!(
                "run with the index's settings (`neardup index info` shows them; --bands {num_bands} --rows {rows_per_band} uses its bands × rows), or build a new index"
            ));
        }
        _ => {}
    }
    let all = error
        .chain()
        .find_map(|cause| match cause.downcast_ref::<Error>() {
            Some(Error::AllRejected(all)) => Some(all),
            _ => None,
        })?;
    let text = match all.reason {
        RejectKind::MissingField | RejectKind::NotAString | RejectKind::NotAnObject => {
            "--text-field names the field that holds the text (default \"text\"; a path into nested objects such as content.text, a dot inside a key written \\.)"
        }
        RejectKind::InvalidJson | RejectKind::BlankLine => {
            "the input is read as JSON Lines; --format lines reads plain text, one document per line"
        }
        RejectKind::TooLarge => "--max-doc-bytes raises the size limit of a record",
        _ => return None,
    };
    Some(text.to_string())
}
