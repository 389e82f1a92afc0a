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
//! - a compressed stream that does not decode is reported (a `Frame::Failed`, ending the pass), never
//!   taken silently as a shorter input. (For zstd, "does not decode" is what its streaming
//!   decoder reports; with NEARDUP_FUZZ_STRICT_ZSTD=1, also a frame holding less than its header
//!   declares, which framing does not catch today.)
#![no_main]

use std::io::Read;
use std::sync::OnceLock;

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
        if strict_zstd() && zstd_corrupt(bytes) {
            return Decoded::Broken;
        }
        zstd::stream::read::Decoder::new(bytes).and_then(|d| read_chunked(d, &mut out))
    } else {
        return Decoded::Plain;
    };
    match result {
        Ok(_) if out.len() as u64 > DECODED_CAP => Decoded::TooLarge,
        Ok(_) => Decoded::Whole(out),
        Err(_) => Decoded::Broken,
    }
}

/// Reads `reader` to its end (or past `DECODED_CAP`) in 64 KiB reads, as framing's buffer does:
/// zstd's streaming decoder checks a frame's declared content size only when the output buffer
/// can hold it.
fn read_chunked(mut reader: impl Read, out: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buffer)?;
        out.extend_from_slice(&buffer[..n]);
        if n == 0 || out.len() as u64 > DECODED_CAP {
            return Ok(out.len());
        }
    }
}

/// Whether the one-shot decoder, which checks every frame's declared content size, calls the
/// stream corrupt (and not merely larger than `DECODED_CAP`).
fn zstd_corrupt(bytes: &[u8]) -> bool {
    match zstd::bulk::decompress(bytes, DECODED_CAP as usize) {
        Ok(_) => false,
        Err(e) => !e.to_string().contains("Destination buffer is too small"),
    }
}

/// Whether a zstd frame that holds less than its header declares must be rejected (it is not,
/// today: see docs/FUZZING.md). Set NEARDUP_FUZZ_STRICT_ZSTD=1 to check it.
fn strict_zstd() -> bool {
    static STRICT: OnceLock<bool> = OnceLock::new();
    *STRICT.get_or_init(|| std::env::var_os("NEARDUP_FUZZ_STRICT_ZSTD").is_some_and(|v| v == "1"))
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
            // A stream that breaks off ends the pass (checked against the decoder below).
            Frame::Failed(_) => {}
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
                frames.iter().any(|f| matches!(f, Frame::Failed(_))),
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
            Frame::Failed(f) => panic!("a stream that decodes whole failed: {f:?}"),
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
