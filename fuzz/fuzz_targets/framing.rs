//! Framing (`InputSet::frames`): plain, gzip and zstd inputs cut into records.
//!
//! Input: one mode byte, then the file's bytes. The mode picks the format (jsonl or lines) and
//! `max_doc_bytes` (1, 7, 64 or 1 MiB). The bytes are written to a scratch file and framed.
//!
//! Checks, besides "never panics":
//! - no record is longer than `max_doc_bytes`; a longer line is a `TooLarge` rejection;
//! - the frames are exactly the lines of the content (`\n`-separated, a final `\n` ending the last
//!   line), in order, each record or rejected as too large, with line numbers 1, 2, ...: for an
//!   uncompressed input its bytes; for gzip or zstd, the stream as decoded here independently
//!   (when that decoding succeeds). So records joined with newlines give the input back;
//! - records of an uncompressed file carry their location, and reading it back gives the record;
//! - a compressed stream that does not decode is reported (an `Unreadable` rejection), never
//!   taken silently as a shorter input.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use neardup::error::RejectReason;
use neardup::read::Frame;
use neardup::{Format, Input, InputSet};

const MAX_DOC_BYTES: [usize; 4] = [1, 7, 64, 1 << 20];
/// Decoded content larger than this (a zstd bomb) is only framed, up to `MAX_FRAMES` frames.
const DECODED_CAP: u64 = 1 << 20;
const MAX_FRAMES: usize = 1 << 16;

enum Decoded {
    Plain,
    Whole(Vec<u8>),
    Broken,
    TooLarge,
}

fn decode(bytes: &[u8]) -> Decoded {
    let mut out = Vec::new();
    let result = if bytes.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(bytes)
            .take(DECODED_CAP + 1)
            .read_to_end(&mut out)
    } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        match zstd::stream::read::Decoder::new(bytes) {
            Ok(d) => d.take(DECODED_CAP + 1).read_to_end(&mut out),
            Err(e) => Err(e),
        }
    } else {
        return Decoded::Plain;
    };
    match result {
        Ok(_) if out.len() as u64 > DECODED_CAP => Decoded::TooLarge,
        Ok(_) => Decoded::Whole(out),
        Err(_) => Decoded::Broken,
    }
}

/// The lines of `content` as framing should see them.
fn lines(content: &[u8]) -> Vec<&[u8]> {
    if content.is_empty() {
        return Vec::new();
    }
    let body = content.strip_suffix(b"\n").unwrap_or(content);
    body.split(|&b| b == b'\n').collect()
}

fuzz_target!(|data: &[u8]| {
    let (mode, bytes) = neardup_fuzz::split_mode(data);
    let format = if mode & 1 == 0 {
        Format::Jsonl
    } else {
        Format::Lines
    };
    let max = MAX_DOC_BYTES[(mode as usize >> 1) % MAX_DOC_BYTES.len()];
    let path = neardup_fuzz::scratch("input");
    std::fs::write(&path, bytes).expect("scratch file written");

    let mut set = InputSet::new(vec![Input::Path(path.clone())], format, max).expect("valid set");
    let frames: Vec<Frame> = set.frames().take(MAX_FRAMES).collect();
    for frame in &frames {
        match frame {
            Frame::Record(r) => assert!(r.bytes.len() <= max, "record over max_doc_bytes"),
            Frame::Rejected(r) => assert!(
                matches!(
                    r.reason,
                    RejectReason::TooLarge { .. } | RejectReason::Unreadable(_)
                ),
                "unexpected framing rejection {r:?}"
            ),
        }
    }

    if frames.len() == MAX_FRAMES {
        return;
    }
    let decoded = decode(bytes);
    let content: &[u8] = match &decoded {
        Decoded::Plain => bytes,
        Decoded::Whole(content) => content,
        Decoded::Broken => {
            assert!(
                frames.iter().any(|f| matches!(
                    f,
                    Frame::Rejected(r) if matches!(r.reason, RejectReason::Unreadable(_))
                )),
                "a broken compressed stream was framed without a rejection"
            );
            return;
        }
        Decoded::TooLarge => return,
    };
    let expected = lines(content);
    assert_eq!(frames.len(), expected.len(), "one frame per line");
    let reader = set.record_reader();
    let mut records = 0;
    for (n, (frame, line)) in frames.iter().zip(&expected).enumerate() {
        match frame {
            Frame::Record(r) => {
                records += 1;
                assert_eq!(r.origin.line, n as u64 + 1, "line number");
                // A leading byte-order mark may be skipped (issue 10, item 5).
                let bom_skipped =
                    n == 0 && line.starts_with(b"\xef\xbb\xbf") && r.bytes == line[3..];
                assert!(
                    r.bytes == *line || bom_skipped,
                    "record {n} differs from its line"
                );
                match (&decoded, r.location) {
                    (Decoded::Plain, Some(location)) => {
                        let at = location.offset as usize;
                        assert_eq!(location.len as usize, r.bytes.len());
                        assert_eq!(&bytes[at..at + r.bytes.len()], r.bytes, "location");
                        assert_eq!(reader.read(location).expect("read back"), r.bytes);
                    }
                    (Decoded::Plain, None) => panic!("record of a plain file has no location"),
                    (_, location) => assert_eq!(location, None, "compressed record located"),
                }
            }
            Frame::Rejected(r) => {
                assert!(
                    matches!(r.reason, RejectReason::TooLarge { .. }) && line.len() > max,
                    "line {n} rejected: {r:?}"
                );
            }
        }
    }
    if records == expected.len() && matches!(decoded, Decoded::Plain) {
        // The law: records joined with newlines reproduce the input.
        let mut joined = Vec::with_capacity(bytes.len());
        for frame in &frames {
            if let Frame::Record(r) = frame {
                joined.extend_from_slice(&r.bytes);
                joined.push(b'\n');
            }
        }
        if !bytes.ends_with(b"\n") {
            joined.pop();
        }
        let bom = bytes.len() >= 3
            && joined.len() + 3 == bytes.len()
            && bytes.starts_with(b"\xef\xbb\xbf");
        assert!(
            joined == bytes || bom,
            "records joined differ from the input"
        );
    }
});
