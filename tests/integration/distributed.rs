//! Issue 6: the same job as 1, 2 and 3 processes on 127.0.0.1 (timely dataflow), byte-identical
//! to the single-process run; parts merged by `neardup merge`; a killed process makes the others
//! fail rather than hang. Issue 10: processes started with different settings or inputs all stop
//! at start-up with one line naming the difference; `-q` runs print nothing. Every process runs
//! under `timeout`.

use std::net::TcpListener;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use neardup::synth::{Corpus, CorpusSpec};

use crate::util::*;

/// Seconds a process may take before `timeout` stops it (a hang, not a slow run).
const LIMIT: &str = "300";

fn corpus(dir: &Path, docs: usize, words: usize) {
    let text: String = Corpus::new(CorpusSpec {
        docs,
        seed: 6,
        dup_fraction: 0.4,
        mean_words: words,
    })
    .map(|d| record(&d.id, &d.text) + "\n")
    .collect();
    write(dir, "in.jsonl", text.as_bytes());
}

/// A hostfile of `n` free ports on 127.0.0.1.
fn hostfile(dir: &Path, n: usize) -> String {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let hosts: String = listeners
        .iter()
        .map(|l| format!("{}\n", l.local_addr().unwrap()))
        .collect();
    drop(listeners);
    write(dir, "hosts", hosts.as_bytes());
    dir.join("hosts").display().to_string()
}

/// Starts process `process` of `processes` in `cwd`.
fn spawn(cwd: &Path, args: &[&str], hosts: &str, processes: usize, process: usize) -> Child {
    let (processes, process) = (processes.to_string(), process.to_string());
    Command::new("timeout")
        .arg(LIMIT)
        .arg(BIN)
        .args(args)
        .args(["--processes", &processes, "--process", &process])
        .args(["--hostfile", hosts, "-q"])
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

const OUTPUTS: [&str; 3] = ["kept.jsonl", "removed.jsonl", "clusters.jsonl"];

/// `dedup` with every output, default settings (borderline verification) plus `extra`.
fn dedup_args(input: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "dedup",
        input,
        "-o",
        "kept.jsonl",
        "--removed",
        "removed.jsonl",
        "--clusters",
        "clusters.jsonl",
    ]
    .map(str::to_string)
    .to_vec();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[test]
fn issue_6_one_two_and_three_processes_match_the_single_process_run() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path(), 3000, 60);
    // A second input, compressed: it cannot be split and goes whole to one worker; its copies
    // of the first input's documents make clusters across inputs.
    let plain = std::fs::read(dir.path().join("in.jsonl")).unwrap();
    let half = &plain[..plain.len() / 2];
    let cut = half.iter().rposition(|&b| b == b'\n').unwrap() + 1;
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(dir.path().join("more.jsonl.gz")).unwrap(),
        flate2::Compression::fast(),
    );
    std::io::Write::write_all(&mut gz, &half[..cut]).unwrap();
    gz.finish().unwrap();
    let input = dir.path().join("in.jsonl").display().to_string();
    let more = dir.path().join("more.jsonl.gz").display().to_string();
    let single = dir.path().join("single");
    std::fs::create_dir(&single).unwrap();
    // Default settings: borderline pairs are decided on exact Jaccard, across processes too.
    let args = dedup_args(&input, &[&more]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&run_in(
        &single,
        &[&args[..], &["-q", "--stats-json", "s.json"]].concat(),
        b"",
    ));
    assert!(
        stats(&single.join("s.json"))["exact_checks"]
            .as_u64()
            .unwrap()
            > 0
    );
    let expected: Vec<Vec<u8>> = OUTPUTS
        .iter()
        .map(|f| std::fs::read(single.join(f)).unwrap())
        .collect();
    assert!(expected[1].len() > 1000, "the corpus has duplicates");

    for (processes, workers) in [(1, 1), (1, 2), (2, 1), (3, 1), (2, 2)] {
        let run = dir.path().join(format!("run-{processes}-{workers}"));
        std::fs::create_dir(&run).unwrap();
        let hosts = hostfile(&run, processes);
        let workers = workers.to_string();
        let with_workers = [
            &args[..],
            &["--workers", &workers, "--stats-json", "s.json"],
        ]
        .concat();
        let children: Vec<Child> = (0..processes)
            .map(|p| spawn(&run, &with_workers, &hosts, processes, p))
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{processes} processes × {workers} workers: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for (file, want) in OUTPUTS.iter().zip(&expected) {
            let got = std::fs::read(run.join(file)).unwrap();
            assert!(
                &got == want,
                "{file} differs with {processes} processes × {workers} workers"
            );
        }
        // The same summary (process 0 writes it), timings and bytes read aside.
        let summary = |path: &Path| {
            let mut s = stats_adding_up(path);
            for k in ["seconds", "docs_per_second", "stage_seconds", "bytes_read"] {
                s.as_object_mut().unwrap().remove(k);
            }
            s
        };
        assert_eq!(
            summary(&run.join("s.json")),
            summary(&single.join("s.json"))
        );
        // Parts were merged and removed.
        let left: Vec<_> = std::fs::read_dir(&run)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains(".part-"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

/// Each process in its own directory, as on machines without a shared one: process 0 cannot
/// merge, and `neardup merge` over all parts gives the single-process output.
#[test]
fn issue_6_parts_from_separate_machines_merge_to_the_single_process_output() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path(), 1500, 60);
    let input = dir.path().join("in.jsonl").display().to_string();
    let args = dedup_args(&input, &["--verify", "signature"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&run_in(dir.path(), &[&args[..], &["-q"]].concat(), b""));
    let hosts = hostfile(dir.path(), 2);
    let machines: Vec<_> = (0..2)
        .map(|m| {
            let path = dir.path().join(format!("machine{m}"));
            std::fs::create_dir(&path).unwrap();
            path
        })
        .collect();
    let children: Vec<Child> = (0..2)
        .map(|p| spawn(&machines[p], &args, &hosts, 2, p))
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Clusters are written by process 0 alone; kept records and removals stay in parts.
    assert_eq!(
        std::fs::read(machines[0].join("clusters.jsonl")).unwrap(),
        std::fs::read(dir.path().join("clusters.jsonl")).unwrap()
    );
    for file in ["kept.jsonl", "removed.jsonl"] {
        assert!(!machines[0].join(file).exists());
        let parts: Vec<String> = (0..2)
            .map(|p| {
                machines[p]
                    .join(format!("{file}.part-{p:04}-of-0002"))
                    .display()
                    .to_string()
            })
            .collect();
        let merged = format!("merged-{file}");
        ok(&run_in(
            dir.path(),
            &["merge", &parts[1], &parts[0], "-o", &merged],
            b"",
        ));
        assert_eq!(
            std::fs::read(dir.path().join(&merged)).unwrap(),
            std::fs::read(dir.path().join(file)).unwrap(),
            "{file}"
        );
    }
    // A part from a worker that died is refused, not merged short.
    let part = machines[1].join("kept.jsonl.part-0001-of-0002");
    let bytes = std::fs::read(&part).unwrap();
    std::fs::write(&part, &bytes[..bytes.len() / 2]).unwrap();
    let out = run_in(
        dir.path(),
        &["merge", part.to_str().unwrap(), "-o", "broken.jsonl"],
        b"",
    );
    assert!(!out.status.success());
    assert!(!dir.path().join("broken.jsonl").exists());
}

/// CPU time a process has used, in clock ticks (from `/proc/PID/stat`).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    field(11) + field(12)
}

#[test]
fn issue_6_a_killed_process_makes_the_others_fail_instead_of_hanging() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path(), 80_000, 150);
    let hosts = hostfile(dir.path(), 2);
    let args = [
        "clusters",
        "in.jsonl",
        "-o",
        "c.jsonl",
        "--verify",
        "signature",
    ];
    let survivor = spawn(dir.path(), &args, &hosts, 2, 0);
    // Started without `timeout`, so that the kill reaches neardup itself.
    let mut victim = Command::new(BIN)
        .args(args)
        .args([
            "--processes",
            "2",
            "--process",
            "1",
            "--hostfile",
            &hosts,
            "-q",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once it is working (connected, reading and signing), not while it connects: a peer
    // that never connects leaves timely waiting, the case `timeout` is for.
    while cpu_ticks(victim.id()) < 30 {
        assert!(
            victim.try_wait().unwrap().is_none(),
            "process 1 ended early"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    victim.kill().unwrap();
    let killed = victim.wait().unwrap();
    assert_eq!(
        killed.signal(),
        Some(9),
        "process 1 finished before it could be killed; make the corpus larger"
    );
    let out = survivor.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "process 0 succeeded without its peer"
    );
    assert_ne!(out.status.code(), Some(124), "process 0 hung until timeout");
    assert!(stderr.contains("distributed run stopped"), "{stderr}");
    assert!(!dir.path().join("c.jsonl").exists());
}

/// Each worker checkpoints its signed records; a rerun loads what is there and signs the rest
/// (a lost process's share), with the same outputs.
#[test]
fn issue_6_rerun_skips_the_signing_that_checkpoints_hold() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path(), 1200, 60);
    let input = dir.path().join("in.jsonl").display().to_string();
    let run = |tag: &str| -> serde_json::Value {
        let hosts = hostfile(dir.path(), 2);
        let stats = format!("stats-{tag}.json");
        let base = dedup_args(&input, &[]);
        let mut args: Vec<&str> = base.iter().map(String::as_str).collect();
        args.extend(["--checkpoint", "ckpt"]);
        let with_stats = [&args[..], &["--stats-json", &stats]].concat();
        let children = vec![
            spawn(dir.path(), &with_stats, &hosts, 2, 0),
            spawn(dir.path(), &args, &hosts, 2, 1),
        ];
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        stats_adding_up(&dir.path().join(stats))
    };
    let outputs = || -> Vec<Vec<u8>> {
        OUTPUTS
            .iter()
            .map(|f| std::fs::read(dir.path().join(f)).unwrap())
            .collect()
    };
    let first = run("first");
    assert_eq!(first["checkpointed_docs"], 0);
    let expected = outputs();
    let all = run("all");
    assert_eq!(all["checkpointed_docs"], all["docs_read"]);
    assert_eq!(outputs(), expected);
    // Process 1 was lost before it checkpointed: only its share is signed again.
    std::fs::remove_file(dir.path().join("ckpt/sign-0001-of-0002.ckpt")).unwrap();
    let half = run("half");
    let loaded = half["checkpointed_docs"].as_u64().unwrap();
    assert!(
        loaded > 0 && loaded < half["docs_read"].as_u64().unwrap(),
        "{half}"
    );
    assert_eq!(outputs(), expected);
    // A changed input invalidates every checkpoint.
    let text = std::fs::read(dir.path().join("in.jsonl")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(dir.path().join("in.jsonl"), &text).unwrap();
    let changed = run("changed");
    assert_eq!(changed["checkpointed_docs"], 0);
    assert_eq!(outputs(), expected);
}

/// The keep policy is applied across processes as one process applies it, and so is exact
/// verification (every candidate, and every member's similarity to the kept one, exact).
#[test]
fn issue_6_keep_longest_and_exact_verification_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path(), 1500, 60);
    let input = dir.path().join("in.jsonl").display().to_string();
    let first = dir.path().join("first");
    let single = dir.path().join("single");
    let run = dir.path().join("run");
    for d in [&first, &single, &run] {
        std::fs::create_dir(d).unwrap();
    }
    let plain = dedup_args(&input, &[]);
    let plain: Vec<&str> = plain.iter().map(String::as_str).collect();
    ok(&run_in(&first, &[&plain[..], &["-q"]].concat(), b""));
    let args = dedup_args(&input, &["--keep", "longest", "--verify", "exact"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&run_in(&single, &[&args[..], &["-q"]].concat(), b""));
    let read = |d: &Path, f: &str| std::fs::read(d.join(f)).unwrap();
    assert_ne!(
        read(&first, "removed.jsonl"),
        read(&single, "removed.jsonl"),
        "the corpus has clusters whose longest member is not the first"
    );
    let hosts = hostfile(&run, 2);
    let children: Vec<Child> = (0..2).map(|p| spawn(&run, &args, &hosts, 2, p)).collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for f in OUTPUTS {
        assert!(read(&single, f) == read(&run, f), "{f} differs");
    }
}

/// The names in `dir` and its subdirectories, to check that a refused run wrote nothing.
fn listing(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            names.push(path.strip_prefix(dir).unwrap().display().to_string());
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    names.sort();
    names
}

/// Runs process 0 in `cwd0` with `args0` and process 1 in `cwd1` with `args1` (a hostfile of
/// `hosts` free ports, of which each uses the first `processes`), expects both to stop at
/// start-up (exit 1, not a panic or a timeout, one line on stderr, nothing on stdout, no file
/// written), and returns their lines.
fn both_refuse(
    (cwd0, args0): (&Path, &[&str]),
    (cwd1, args1): (&Path, &[&str]),
    hosts: usize,
    processes: [usize; 2],
) -> [String; 2] {
    let hostdir = tempfile::tempdir().unwrap();
    let hostfile = hostfile(hostdir.path(), hosts);
    let before = [listing(cwd0), listing(cwd1)];
    let children = [
        spawn(cwd0, args0, &hostfile, processes[0], 0),
        spawn(cwd1, args1, &hostfile, processes[1], 1),
    ];
    let lines = children.map(|child| {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            out.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        stderr.trim_end().to_string()
    });
    assert_eq!(
        [listing(cwd0), listing(cwd1)],
        before,
        "a refused run wrote"
    );
    lines
}

/// Different settings: both processes exit 1 with the difference (they used to panic with exit
/// 101, a bincode EOF blamed on a dead peer).
#[test]
fn issue10_processes_with_different_settings_both_exit_1_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path(), 1500, 60);
    let base = dedup_args(
        "in.jsonl",
        &["--stats-json", "s.json", "--rejected", "rejected.jsonl"],
    );
    let base: Vec<&str> = base.iter().map(String::as_str).collect();
    let with = |extra: &[&'static str]| [&base[..], extra].concat();
    let d = dir.path();
    let lines = both_refuse(
        (d, &with(&["--threshold", "0.8"])),
        (d, &with(&["--threshold", "0.9"])),
        2,
        [2, 2],
    );
    assert_eq!(
        lines,
        [
            "neardup: process 1 differs: threshold is 0.9 there, 0.8 here",
            "neardup: process 0 differs: threshold is 0.8 there, 0.9 here",
        ]
    );
    // Workers per process, and an output only one of them writes.
    let lines = both_refuse((d, &with(&["--workers", "2"])), (d, &base), 2, [2, 2]);
    assert_eq!(
        lines,
        [
            "neardup: process 1 differs: workers is 1 there, 2 here",
            "neardup: process 0 differs: workers is 2 there, 1 here",
        ]
    );
    let lines = both_refuse((d, &base), (d, &with(&["--verify", "exact"])), 2, [2, 2]);
    assert_eq!(
        lines[0],
        "neardup: process 1 differs: verify is exact there, borderline here"
    );
    // A process that counts the processes differently never completes the connections: both
    // say so instead of waiting.
    let lines = both_refuse((d, &base), (d, &base), 3, [2, 3]);
    assert_eq!(
        lines,
        [
            "neardup: process 1 differs: processes is 3 there, 2 here",
            "neardup: process 0 differs: processes is 2 there, 3 here",
        ]
    );
}

/// Different inputs under the same name (as on two machines), and different names: both
/// processes exit 1 naming the input (with different content they used to exit 0 with part of
/// the records).
#[test]
fn issue10_processes_with_different_inputs_both_exit_1_naming_the_input() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path(), 1500, 60);
    let text = std::fs::read(dir.path().join("in.jsonl")).unwrap();
    let machines: Vec<_> = (0..2)
        .map(|m| {
            let path = dir.path().join(format!("machine{m}"));
            std::fs::create_dir(&path).unwrap();
            path
        })
        .collect();
    let args = dedup_args("in.jsonl", &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    // Machine 1 lacks the last record.
    let last = text[..text.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    write(&machines[0], "in.jsonl", &text);
    write(&machines[1], "in.jsonl", &text[..last]);
    let lines = both_refuse((&machines[0], &args), (&machines[1], &args), 2, [2, 2]);
    let (full, short) = (grouped(text.len()), grouped(last));
    assert_eq!(
        lines,
        [
            format!(
                "neardup: process 1 differs: input in.jsonl is {short} bytes there, {full} here"
            ),
            format!(
                "neardup: process 0 differs: input in.jsonl is {full} bytes there, {short} here"
            ),
        ]
    );

    // The same size, one letter changed.
    let mut changed = text.clone();
    let at = changed.len() / 2;
    changed[at] = if changed[at] == b'a' { b'b' } else { b'a' };
    write(&machines[1], "in.jsonl", &changed);
    let lines = both_refuse((&machines[0], &args), (&machines[1], &args), 2, [2, 2]);
    for line in &lines {
        assert!(
            line.ends_with(
                "differs: input in.jsonl has other content there (same size; its first MiB differs)"
            ),
            "{line}"
        );
    }

    // The same bytes under another name.
    write(&machines[1], "other.jsonl", &text);
    let other = dedup_args("other.jsonl", &[]);
    let other: Vec<&str> = other.iter().map(String::as_str).collect();
    let lines = both_refuse((&machines[0], &args), (&machines[1], &other), 2, [2, 2]);
    assert_eq!(
        lines,
        [
            "neardup: process 1 differs: input 1 is other.jsonl there, in.jsonl here",
            "neardup: process 0 differs: input 1 is in.jsonl there, other.jsonl here",
        ]
    );
}

/// `1234567` as `1,234,567`, as the messages write sizes.
fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A successful `-q` run prints nothing at all, even while a process waits for its peer (timely
/// used to print "awaiting connections" and "error connecting ... retrying" on stdout).
#[test]
fn issue10_quiet_two_process_run_prints_nothing() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path(), 1500, 60);
    let hosts = hostfile(dir.path(), 2);
    let args = dedup_args("in.jsonl", &[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Process 1 starts first and has to wait for process 0.
    let waiting = spawn(dir.path(), &args, &hosts, 2, 1);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let first = spawn(dir.path(), &args, &hosts, 2, 0);
    for child in [first, waiting] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    }
    assert!(!read_lines(&dir.path().join("kept.jsonl")).is_empty());
}
