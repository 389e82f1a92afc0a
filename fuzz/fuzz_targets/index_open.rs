//! Index manifest and segment open (`Index::open`), lookups, compaction and a run against an index,
//! with one or more of a real index's files replaced by the fuzz input.
//!
//! A real index of two segments is built once with the library (`Dedup::index_segment`,
//! `Index::create`, `Index::append`). Input: one mode byte, then the payload. The low two bits of
//! the mode pick what the payload replaces:
//! - 0: `MANIFEST`;
//! - 1: the first segment file;
//! - 2: both segment files, the manifest's shape taken from the payload's header;
//! - 3: both the manifest (the payload up to its first newline) and the first segment (the rest).
//!
//! Bit 2 ("repair") makes a damaged file look intact, so that fuzzing reaches past the checksums:
//! the payload is then a manifest's JSON line (its checksum line is added), or a segment without
//! its trailer (the parameter fingerprint is set to the manifest's, the checksum trailer added, and
//! the manifest's entry made to agree with the header and length). Bit 3 also compacts the opened
//! index; bit 4 also runs a small deduplication against it.
//!
//! Checks: every call returns a value or an error, never panics, hangs or runs out of memory;
//! compaction keeps the number of documents.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use neardup::index::{Index, IndexDoc, Manifest};
use neardup::lsh::BandKey;
use neardup::report::Sink;
use neardup::{Dedup, Format, Input, InputSet};
use xxhash_rust::xxh3::xxh3_64;

const SEGMENT_FILES: [&str; 2] = ["seg-000001.nds", "seg-000002.nds"];
const END_MAGIC: &[u8; 8] = b"NDUPEND1";
struct Base {
    dedup: Dedup,
    manifest: Manifest,
    manifest_bytes: Vec<u8>,
    segments: [Vec<u8>; 2],
    /// A small JSON Lines corpus that has exact and near copies in the index.
    run_input: PathBuf,
}

struct Quiet;
impl Sink for Quiet {}

fn base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = neardup_fuzz::scratch("base-index");
        let index = neardup_fuzz::build_index(&dir, neardup_fuzz::scratch_dir());
        let run_input = neardup_fuzz::scratch("run.jsonl");
        let texts = neardup_fuzz::INDEX_TEXTS;
        neardup_fuzz::write_jsonl(
            &run_input,
            &[
                texts[0].to_string(),
                format!("{} today", texts[3]),
                texts[5].to_string(),
            ],
        );
        let read = |name: &str| std::fs::read(dir.join(name)).expect("index file");
        Base {
            manifest: index.manifest().clone(),
            manifest_bytes: read("MANIFEST"),
            segments: [read(SEGMENT_FILES[0]), read(SEGMENT_FILES[1])],
            dedup: neardup_fuzz::index_dedup(),
            run_input,
        }
    })
}

fn manifest_text(body: &[u8]) -> Vec<u8> {
    let mut out = body.to_vec();
    out.extend_from_slice(format!("\nxxh3:{:016x}\n", xxh3_64(body)).as_bytes());
    out
}

fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn le_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// A segment file from `payload` (a segment without its trailer) that passes the checks of the
/// bytes themselves, with `fingerprint` in its header.
fn repaired_segment(payload: &[u8], fingerprint: u64) -> Vec<u8> {
    let mut out = payload.to_vec();
    if out.len() >= 32 {
        out[24..32].copy_from_slice(&fingerprint.to_le_bytes());
    }
    let checksum = xxh3_64(&out);
    out.extend_from_slice(&checksum.to_le_bytes());
    out.extend_from_slice(END_MAGIC);
    out
}

/// Makes the manifest's entry `entry` agree with the segment file `file`.
fn agree(manifest: &mut Manifest, entry: usize, file: &[u8]) {
    if let Some(e) = manifest.segments.get_mut(entry) {
        e.docs = le_u64(file, 32).unwrap_or(0);
        e.bytes = file.len() as u64;
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).expect("scratch file written");
}

fn exercise(index: &Index) {
    let _ = (index.num_docs(), index.bytes(), index.segments().len());
    let _ = index.check_params(&base().dedup.index_params());
    let mut signature = Vec::new();
    let look = |doc: IndexDoc, signature: &mut Vec<u8>| {
        let _ = index.id(doc);
        let _ = index.signature_into(doc, signature);
    };
    for (s, segment) in index.segments().iter().enumerate() {
        let _ = (
            segment.len(),
            segment.shape(),
            segment.fingerprint(),
            segment.file_len(),
        );
        for ordinal in 0..segment.len().min(8) as u32 {
            look(
                IndexDoc {
                    segment: s as u32,
                    ordinal,
                },
                &mut signature,
            );
        }
    }
    let hashes = [0u128, 1, u128::MAX, u128::MAX / 3];
    for hash in hashes {
        if let Some(doc) = index.find_text(hash) {
            look(doc, &mut signature);
        }
    }
    let mut found = Vec::new();
    for band in 0..index.params().num_bands.min(8) {
        for key in [0, 1, u64::from(u32::MAX), 1 << 63, u64::MAX] {
            found.clear();
            index.find_band(band, BandKey(key), 16, &mut found);
            for &doc in &found {
                look(doc, &mut signature);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let base = base();
    let (mode, payload) = neardup_fuzz::split_mode(data);
    let repair = mode & 4 != 0;
    let dir = neardup_fuzz::scratch("index");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    neardup_fuzz::clear_dir(&dir);
    let mut manifest = base.manifest.clone();
    let mut manifest_bytes = base.manifest_bytes.clone();
    let mut segments = base.segments.clone();
    let fingerprint = manifest.params.fingerprint();
    match mode & 3 {
        0 => {
            manifest_bytes = if repair {
                manifest_text(payload)
            } else {
                payload.to_vec()
            };
        }
        1 => {
            if repair {
                segments[0] = repaired_segment(payload, fingerprint);
                agree(&mut manifest, 0, &segments[0]);
                manifest_bytes =
                    manifest_text(serde_json::to_string(&manifest).unwrap().as_bytes());
            } else {
                segments[0] = payload.to_vec();
            }
        }
        2 => {
            let header = |at| le_u32(payload, at).unwrap_or(0) as usize;
            manifest.params.num_perm = header(12);
            manifest.params.num_bands = header(16);
            manifest.params.rows_per_band = header(20);
            let fingerprint = manifest.params.fingerprint();
            let segment = if repair {
                repaired_segment(payload, fingerprint)
            } else {
                payload.to_vec()
            };
            segments = [segment.clone(), segment];
            agree(&mut manifest, 0, &segments[0]);
            agree(&mut manifest, 1, &segments[1]);
            manifest_bytes = manifest_text(serde_json::to_string(&manifest).unwrap().as_bytes());
        }
        _ => {
            let cut = payload
                .iter()
                .position(|&b| b == b'\n')
                .unwrap_or(payload.len());
            let (body, segment) = (&payload[..cut], payload.get(cut + 1..).unwrap_or(&[]));
            manifest_bytes = manifest_text(body);
            segments[0] = if repair {
                repaired_segment(segment, fingerprint)
            } else {
                segment.to_vec()
            };
        }
    }
    write(&dir, "MANIFEST", &manifest_bytes);
    for (name, bytes) in SEGMENT_FILES.iter().zip(&segments) {
        write(&dir, name, bytes);
    }

    let Ok(mut index) = Index::open(&dir) else {
        return;
    };
    exercise(&index);
    if mode & 16 != 0 {
        let mut set = InputSet::new(
            vec![Input::Path(base.run_input.clone())],
            Format::Jsonl,
            1 << 20,
        )
        .unwrap();
        let options = neardup::pipeline::RunOptions {
            against: std::slice::from_ref(&index),
            collect_kept: true,
            ..Default::default()
        };
        let _ = base.dedup.run_with(&mut set, options, &mut Quiet);
    }
    if mode & 8 != 0 {
        let before = index.num_docs();
        if index.compact().is_ok() {
            assert_eq!(
                index.num_docs(),
                before,
                "compaction changed the document count"
            );
            let reopened = Index::open(&dir).expect("a compacted index opens");
            assert_eq!(reopened.num_docs(), before);
            exercise(&reopened);
        }
    }
});
