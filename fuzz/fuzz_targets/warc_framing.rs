//! WARC framing (`Format::Warc` through `InputSet::frames`) and WARC parsing (`Parser::parse`).
//!
//! Input: one mode byte, then the file's bytes, written to a scratch file and framed (gzip and
//! zstd are taken by their magic bytes, so members and streams get fuzzed too). The mode picks
//! `max_doc_bytes` (64, 4 KiB or 1 MiB) and whether the bytes are wrapped in one gzip member per
//! `WARC/` line first.
//!
//! Checks, besides "never panics" (in framing, gzip member decoding, HTTP heads, HTML rendering):
//! - framing ends, and yields no `Frame::Failed` for a readable file (damage is a rejection),
//!   except for a zstd file: zstd is read as one stream, and a stream that breaks off fails its
//!   input as it does in every format;
//! - every record starts with `WARC/`, ends with CRLF CRLF and is at most `max_doc_bytes` long;
//! - every record and rejection carries a byte offset within the file, in non-decreasing order;
//! - a record of an uncompressed file carries its location, and reading it back gives the record;
//! - parsing a record gives a document or a rejection, the same each time.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use neardup::read::{Fields, Frame, Parser};
use neardup::{Format, Input, InputSet};

const MAX_DOC_BYTES: [usize; 3] = [64, 4096, 1 << 20];

fn members(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut starts: Vec<usize> = bytes
        .windows(5)
        .enumerate()
        .filter(|(_, w)| *w == b"WARC/")
        .map(|(i, _)| i)
        .collect();
    if starts.first() != Some(&0) {
        starts.insert(0, 0);
    }
    starts.push(bytes.len());
    for pair in starts.windows(2) {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&bytes[pair[0]..pair[1]]).unwrap();
        out.extend(gz.finish().unwrap());
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let max = MAX_DOC_BYTES[(mode & 3) as usize % MAX_DOC_BYTES.len()];
    let bytes = if mode & 4 != 0 { members(rest) } else { rest.to_vec() };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.warc");
    std::fs::write(&path, &bytes).unwrap();
    let mut set = InputSet::new(vec![Input::Path(path)], Format::Warc, max).unwrap();
    let parser = Parser::new(Fields::default());
    let zstd = bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
    let plain = !bytes.starts_with(&[0x1f, 0x8b]) && !zstd;
    let reader = set.record_reader();
    let mut last = 0u64;
    for frame in set.frames() {
        let origin = match &frame {
            Frame::Record(r) => &r.origin,
            Frame::Rejected(r) => &r.origin,
            Frame::Failed(_) if zstd => break,
            Frame::Failed(f) => panic!("a readable file failed: {f:?}"),
        };
        let offset = origin.offset.expect("WARC origins have an offset");
        assert!(offset >= last && offset <= bytes.len() as u64, "{offset} after {last}");
        last = offset;
        if let Frame::Record(record) = &frame {
            assert!(record.bytes.starts_with(b"WARC/"));
            assert!(record.bytes.ends_with(b"\r\n\r\n"));
            assert!(record.bytes.len() <= max);
            if plain {
                let location = record.location.expect("plain records are located");
                assert_eq!(location.offset, offset);
                assert_eq!(reader.read(location).unwrap(), record.bytes);
            }
            let once = parser.parse(record).map(|d| (d.id.into_owned(), d.text.into_owned()));
            let again = parser.parse(record).map(|d| (d.id.into_owned(), d.text.into_owned()));
            assert_eq!(once, again);
        }
    }
});
