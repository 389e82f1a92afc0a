//! Issue 12, WARC and WET: files written by warcio (an independent implementation, through
//! `tests/warc_fixtures.py`) are read, cluster like the same texts in JSON Lines, and their kept
//! records come back out byte for byte, as warcio reads them; records that are not documents are
//! counted as skipped; damaged records are rejected at their byte offset and the run goes on.
//!
//! These tests need warcio (`pip install warcio`; `.ci/run` installs it into `target/pyenv`).
//! They fail, not skip, without it.

use std::collections::BTreeMap;
use std::path::Path;

use crate::util::{
    ok, python_fixture, read_json_lines, record, run_in, stats_adding_up, story, write,
};

/// Runs the fixture script; its stdout.
fn fixtures(dir: &Path, args: &[&str]) -> String {
    python_fixture(dir, "warc_fixtures.py", "warcio", args)
}

/// One record as warcio reads it.
#[derive(Debug, Clone)]
struct Indexed {
    offset: usize,
    length: usize,
    kind: String,
    id: String,
}

fn index(dir: &Path, file: &str) -> Vec<Indexed> {
    fixtures(dir, &["index", file])
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Indexed {
                offset: v["offset"].as_u64().unwrap() as usize,
                length: v["length"].as_u64().unwrap() as usize,
                kind: v["type"].as_str().unwrap().to_string(),
                id: v["id"].as_str().unwrap().to_string(),
            }
        })
        .collect()
}

/// Documents with exact and near duplicates: (name, text), texts of two paragraphs.
fn corpus() -> Vec<(String, String)> {
    let mut docs = Vec::new();
    for i in 0..12u64 {
        let text = format!("{}\n\n{}", story(i, 80), story(100 + i, 60));
        docs.push((format!("d{i}"), text.clone()));
        if i % 3 == 0 {
            docs.push((format!("d{i}-copy"), text.clone()));
        }
        if i % 4 == 0 {
            docs.push((format!("d{i}-near"), text.replacen(" ", " changed ", 1)));
        }
    }
    docs
}

/// Writes the corpus as `kind` (wet or warc, gzipped or not) with warcio; returns each
/// document's record id by name.
fn write_corpus(
    dir: &Path,
    docs: &[(String, String)],
    kind: &str,
    gzip: bool,
    out: &str,
) -> BTreeMap<String, String> {
    let lines: Vec<String> = docs.iter().map(|(name, text)| record(name, text)).collect();
    write(dir, "source.jsonl", (lines.join("\n") + "\n").as_bytes());
    let mut args = vec!["write", kind];
    if gzip {
        args.push("--gzip");
    }
    args.extend(["source.jsonl", out]);
    fixtures(dir, &args)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["name"].as_str().unwrap().to_string(),
                v["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

const VARIANTS: [(&str, bool, &str); 4] = [
    ("wet", false, "c.wet"),
    ("wet", true, "c.warc.wet.gz"),
    ("warc", false, "c.warc"),
    ("warc", true, "c.warc.gz"),
];

#[test]
fn issue12_wet_and_warc_by_warcio_cluster_like_the_same_texts_in_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let docs = corpus();
    for (kind, gzip, name) in VARIANTS {
        let ids = write_corpus(dir, &docs, kind, gzip, name);
        // The same texts in JSON Lines, named by their record ids.
        let lines: Vec<String> = docs.iter().map(|(n, t)| record(&ids[n], t)).collect();
        write(dir, "same.jsonl", (lines.join("\n") + "\n").as_bytes());
        ok(&run_in(
            dir,
            &[
                "dedup",
                "same.jsonl",
                "--clusters",
                "want.jsonl",
                "-o",
                "want-kept.jsonl",
                "-q",
            ],
            b"",
        ));
        let s = "s.json";
        ok(&run_in(
            dir,
            &[
                "dedup",
                name,
                "--clusters",
                "got.jsonl",
                "-o",
                "got-kept.jsonl",
                "--stats-json",
                s,
                "-q",
            ],
            b"",
        ));
        let want = std::fs::read_to_string(dir.join("want.jsonl")).unwrap();
        let got = std::fs::read_to_string(dir.join("got.jsonl")).unwrap();
        assert!(want.lines().count() >= 4, "{want}");
        assert_eq!(got, want, "{name}");
        // Kept documents as JSON Lines: id, URL, text.
        let want_kept: Vec<(String, String)> = read_json_lines(&dir.join("want-kept.jsonl"))
            .iter()
            .map(|v| {
                (
                    v["id"].as_str().unwrap().into(),
                    v["text"].as_str().unwrap().into(),
                )
            })
            .collect();
        let got_kept = read_json_lines(&dir.join("got-kept.jsonl"));
        let got_pairs: Vec<(String, String)> = got_kept
            .iter()
            .map(|v| {
                (
                    v["id"].as_str().unwrap().into(),
                    v["text"].as_str().unwrap().into(),
                )
            })
            .collect();
        assert_eq!(got_pairs, want_kept, "{name}");
        assert!(
            got_kept[0]["url"]
                .as_str()
                .unwrap()
                .starts_with("http://example.com/d")
        );
        // Every record is a document (kept, removed or rejected) or skipped.
        let stats = stats_adding_up(&dir.join(s));
        let records = index(dir, name).len() as u64;
        let skipped = stats["skipped_records"].as_u64().unwrap();
        assert_eq!(
            stats["docs_read"].as_u64().unwrap() + skipped,
            records,
            "{name}"
        );
        let by_reason = &stats["skipped_by_reason"];
        if kind == "wet" {
            assert_eq!(skipped, 1, "the warcinfo record");
        } else {
            let n = docs.len() as u64;
            assert_eq!(skipped, 2 + 2 * n, "{stats}");
            assert_eq!(by_reason["request"], n);
            assert_eq!(by_reason["metadata"], n);
            assert_eq!(by_reason["response (not HTML)"], 1);
        }
        assert_eq!(by_reason["warcinfo"], 1);
    }
}

#[test]
fn issue12_kept_warc_output_is_the_input_records_byte_for_byte_as_warcio_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let docs = corpus();
    for (kind, gzip, name) in VARIANTS {
        write_corpus(dir, &docs, kind, gzip, name);
        let input = std::fs::read(dir.join(name)).unwrap();
        let records = index(dir, name);
        ok(&run_in(dir, &["dedup", name, "-o", "k.jsonl", "-q"], b""));
        let kept: Vec<String> = read_json_lines(&dir.join("k.jsonl"))
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect();
        assert!(kept.len() < docs.len() && kept.len() > 5);
        // Into a plain and a gzipped WARC output, from either kind of input.
        for out in [format!("kept.{kind}"), format!("kept.{kind}.gz")] {
            ok(&run_in(dir, &["dedup", name, "-o", &out, "-q"], b""));
            let output = std::fs::read(dir.join(&out)).unwrap();
            let read_back = index(dir, &out);
            let ids: Vec<String> = read_back.iter().map(|r| r.id.clone()).collect();
            assert_eq!(ids, kept, "{name} → {out}");
            let want_type = if kind == "wet" {
                "conversion"
            } else {
                "response"
            };
            assert!(read_back.iter().all(|r| r.kind == want_type));
            let by_id: BTreeMap<&str, &Indexed> =
                records.iter().map(|r| (r.id.as_str(), r)).collect();
            // The bytes of each record (warcio's length stops before the CRLF CRLF of a plain
            // record), and for gzip into gzip the very members.
            let tail = |gz: bool| if gz { 0 } else { 4 };
            let slice = |bytes: &[u8], r: &Indexed, gz: bool| {
                bytes[r.offset..r.offset + r.length + tail(gz)].to_vec()
            };
            let out_gz = out.ends_with(".gz");
            for got in &read_back {
                let want = by_id[got.id.as_str()];
                let got_bytes = slice(&output, got, out_gz);
                if out_gz == gzip {
                    assert_eq!(
                        got_bytes,
                        slice(&input, want, gzip),
                        "{name} → {out}: {}",
                        got.id
                    );
                } else {
                    assert_eq!(
                        gunzip_if(got_bytes, out_gz),
                        gunzip_if(slice(&input, want, gzip), gzip)
                    );
                }
            }
            let total: usize = read_back.iter().map(|r| r.length + tail(out_gz)).sum();
            assert_eq!(total, output.len(), "nothing but the kept records");
        }
    }
}

fn gunzip_if(bytes: Vec<u8>, gz: bool) -> Vec<u8> {
    use std::io::Read;
    if !gz {
        return bytes;
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(&bytes[..])
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Runs a dedup of `name` with --rejected; the rejections and the stats.
fn rejections(dir: &Path, name: &str) -> (Vec<serde_json::Value>, serde_json::Value) {
    ok(&run_in(
        dir,
        &[
            "dedup",
            name,
            "-o",
            "k.jsonl",
            "--rejected",
            "rej.jsonl",
            "--stats-json",
            "s.json",
            "-q",
        ],
        b"",
    ));
    (
        read_json_lines(&dir.join("rej.jsonl")),
        stats_adding_up(&dir.join("s.json")),
    )
}

#[test]
fn issue12_damaged_warc_records_are_rejected_at_their_offset_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let docs = corpus();
    let n = docs.len() as u64;

    // A truncated gzip member in the middle: one rejection at its offset, the next member read.
    write_corpus(dir, &docs, "wet", true, "c.warc.wet.gz");
    let bytes = std::fs::read(dir.join("c.warc.wet.gz")).unwrap();
    let members = index(dir, "c.warc.wet.gz");
    let bad = &members[3];
    let mut damaged = bytes[..bad.offset + bad.length / 2].to_vec();
    damaged.extend_from_slice(&bytes[bad.offset + bad.length..]);
    write(dir, "cut.warc.wet.gz", &damaged);
    let (rejected, stats) = rejections(dir, "cut.warc.wet.gz");
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0]["offset"], bad.offset as u64);
    assert!(
        rejected[0]["reason"]
            .as_str()
            .unwrap()
            .contains("gzip member"),
        "{rejected:?}"
    );
    assert_eq!(stats["docs_read"], n, "the other documents are read");
    // Truncated at the end of the file: one rejection, nothing after.
    let last = members.last().unwrap();
    write(dir, "end.warc.wet.gz", &bytes[..last.offset + 40]);
    let (rejected, _) = rejections(dir, "end.warc.wet.gz");
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["offset"], last.offset as u64);

    // Plain WET: a header without Content-Length, a non-UTF-8 payload, a payload cut short.
    write_corpus(dir, &docs, "wet", false, "c.wet");
    let plain = std::fs::read(dir.join("c.wet")).unwrap();
    let records = index(dir, "c.wet");
    let (no_length, bad_utf8) = (&records[2], &records[5]);
    let mut edited = plain.clone();
    // Bad UTF-8 first (later in the file, so earlier offsets stay put), then the header.
    let payload_at = bad_utf8.offset + find(&plain[bad_utf8.offset..], b"\r\n\r\n") + 4 + 10;
    edited[payload_at] = 0xff;
    let header = &plain[no_length.offset..no_length.offset + 2000];
    let at = no_length.offset + find(header, b"Content-Length:");
    let end = at + find(&plain[at..], b"\r\n") + 2;
    edited.drain(at..end);
    write(dir, "bad.wet", &edited);
    let (rejected, stats) = rejections(dir, "bad.wet");
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert_eq!(rejected[0]["offset"], no_length.offset as u64);
    assert!(
        rejected[0]["reason"]
            .as_str()
            .unwrap()
            .contains("no Content-Length")
    );
    let shift = end - at;
    assert_eq!(rejected[1]["offset"], (bad_utf8.offset - shift) as u64);
    assert!(
        rejected[1]["reason"]
            .as_str()
            .unwrap()
            .contains("invalid UTF-8"),
        "{rejected:?}"
    );
    assert_eq!(stats["docs_read"], n, "every other record is read");
    assert_eq!(stats["rejected_by_reason"]["malformed"], 1);
    assert_eq!(stats["rejected_by_reason"]["invalid_utf8"], 1);
    // The input ends inside a payload.
    write(dir, "short.wet", &plain[..last_offset(&records) + 700]);
    let (rejected, _) = rejections(dir, "short.wet");
    assert_eq!(rejected.len(), 1);
    assert!(
        rejected[0]["reason"]
            .as_str()
            .unwrap()
            .contains("truncated record"),
        "{rejected:?}"
    );
}

fn last_offset(records: &[Indexed]) -> usize {
    records.last().unwrap().offset
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
}

#[test]
fn issue12_warc_output_needs_warc_inputs_and_other_modes_refuse_or_read_warc() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let docs = corpus();
    write_corpus(dir, &docs, "wet", true, "c.warc.wet.gz");
    let out = run_in(dir, &["dedup", "source.jsonl", "-o", "kept.warc.gz"], b"");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("a WARC output holds WARC records"),
        "{stderr}"
    );
    assert!(!dir.join("kept.warc.gz").exists());
    // Streaming reads WARC through the same framing.
    ok(&run_in(
        dir,
        &[
            "dedup",
            "c.warc.wet.gz",
            "-o",
            "batch.jsonl",
            "--verify",
            "signature",
            "-q",
        ],
        b"",
    ));
    ok(&run_in(
        dir,
        &[
            "dedup",
            "c.warc.wet.gz",
            "--mode",
            "stream",
            "-o",
            "stream.jsonl",
            "-q",
        ],
        b"",
    ));
    assert_eq!(
        std::fs::read(dir.join("stream.jsonl")).unwrap(),
        std::fs::read(dir.join("batch.jsonl")).unwrap()
    );
    // A WARC without a telling name is found by its magic bytes; stdin needs --format.
    std::fs::copy(dir.join("c.warc.wet.gz"), dir.join("crawl-part")).unwrap();
    ok(&run_in(
        dir,
        &["dedup", "crawl-part", "-o", "magic.jsonl", "-q"],
        b"",
    ));
    assert_eq!(
        std::fs::read(dir.join("magic.jsonl")).unwrap(),
        std::fs::read(dir.join("batch.jsonl")).unwrap()
    );
    let stdin = std::fs::read(dir.join("c.warc.wet.gz")).unwrap();
    ok(&run_in(
        dir,
        &["dedup", "-", "--format", "wet", "-o", "stdin.jsonl", "-q"],
        &stdin,
    ));
    assert_eq!(
        std::fs::read(dir.join("stdin.jsonl")).unwrap(),
        std::fs::read(dir.join("batch.jsonl")).unwrap()
    );
    // `lines` does not rewrite WARC records.
    let out = run_in(dir, &["lines", "c.warc.wet.gz", "-o", "l.jsonl"], b"");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("WARC"));
}

/// A WET conversion record with `text` as its payload.
fn conversion(id: &str, text: &str) -> Vec<u8> {
    format!(
        "WARC/1.0\r\nWARC-Type: conversion\r\nWARC-Record-ID: <urn:uuid:{id}>\r\nWARC-Target-URI: https://example.com/{id}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{text}\r\n\r\n",
        text.len()
    )
    .into_bytes()
}

#[test]
fn issue12_gzip_members_inflating_past_a_chunk_are_read_whole_at_the_end_of_a_file() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Members whose text is many times the 64 KiB the reader inflates at a time, highly
    // compressible (so the inflater runs out of room long before it runs out of input), the
    // largest one last in the file.
    let texts: Vec<String> = [3_000usize, 40_000, 120_000]
        .iter()
        .enumerate()
        .map(|(i, &words)| {
            (0..words)
                .map(|w| format!("w{}", (w * (i + 7)) % 97))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let mut file = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&conversion(&format!("0000000{i}"), text))
            .unwrap();
        file.extend(gz.finish().unwrap());
    }
    write(d, "big.warc.wet.gz", &file);
    ok(&run_in(
        d,
        &["dedup", "big.warc.wet.gz", "-o", "k.jsonl", "-q"],
        b"",
    ));
    let kept = read_json_lines(&d.join("k.jsonl"));
    let read: Vec<&str> = kept.iter().map(|r| r["text"].as_str().unwrap()).collect();
    assert_eq!(read, texts.iter().map(String::as_str).collect::<Vec<_>>());
}
