//! Parquet framing (`InputSet::frames` of a `Format::Parquet` input) and the kept-row copier
//! (`parquet_write::RowCopier`) on arbitrary bytes.
//!
//! Input: one mode byte, then the file's bytes. The mode picks the fields read (the text column
//! `text` or the struct child `meta.url`; an id column or none; a URL and a keep column) and
//! `max_doc_bytes` (16 or 1 MiB).
//!
//! Checks, besides "never panics" (a panic inside the Parquet decoder is caught and becomes a
//! rejection or an input failure, so it must not get here either):
//! - every record parses (its bytes are the compact row layout) and is at most `max_doc_bytes`;
//! - rows come in order: every frame's row number is larger than the one before;
//! - every rejection of a Parquet row names its row group (`RejectReason::InRowGroup`);
//! - the copier, asked for every framed row, finds each again and hands on exactly as many rows,
//!   or refuses a row whose row group is damaged in a column framing did not read (by name).
#![no_main]

use libfuzzer_sys::fuzz_target;
use neardup::error::RejectReason;
use neardup::parquet_write::RowCopier;
use neardup::read::{Fields, Frame, Parser};
use neardup::{FieldPath, Format, Input, InputSet};

const MAX_FRAMES: usize = 1 << 16;

fn path(written: &str) -> FieldPath {
    written.parse().expect("a valid path")
}

fn fields(mode: u8) -> Fields {
    let mut fields = Fields::default();
    if mode & 1 != 0 {
        fields.text = path("meta.url");
    }
    if mode & 2 != 0 {
        fields.id = path("n");
    }
    if mode & 4 != 0 {
        fields.url = Some(path("meta.url"));
        fields.keep = Some(path("n"));
    }
    fields
}

/// libFuzzer's panic hook aborts on every panic, before `catch_unwind` could catch it. Panics
/// raised inside the arrow and parquet crates are what `parquet_read::guarded` catches (and
/// turns into rejections), so they are let through to unwind; any other panic, or one of theirs
/// that nothing catches, still ends the run as a crash.
fn let_decoder_panics_unwind() {
    let abort = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let in_decoder = info.location().is_some_and(|l| {
            let file = l.file();
            file.contains("/registry/src/")
                && (file.contains("/arrow-") || file.contains("/parquet-"))
        });
        if !in_decoder {
            abort(info);
        }
    }));
}

fuzz_target!(init: let_decoder_panics_unwind(), |data: &[u8]| {
    let (mode, bytes) = neardup_fuzz::split_mode(data);
    let max = if mode & 8 != 0 { 16 } else { 1 << 20 };
    let file = neardup_fuzz::scratch("input.parquet");
    std::fs::write(&file, bytes).expect("scratch file written");
    let fields = fields(mode);
    let parser = Parser::new(fields.clone());
    let mut set = InputSet::new(vec![Input::Path(file.clone())], Format::Parquet, max)
        .expect("valid set")
        .with_fields(fields);
    let mut last_row = 0;
    let mut rows = Vec::new();
    for frame in set.frames().take(MAX_FRAMES) {
        match frame {
            Frame::Record(record) => {
                assert!(record.origin.line > last_row, "rows out of order");
                last_row = record.origin.line;
                let doc = parser.parse(&record).expect("a framed row parses");
                assert!(doc.text.len() <= max, "a row over max_doc_bytes");
                rows.push(record.origin.line - 1);
            }
            Frame::Rejected(rejection) => {
                assert!(rejection.origin.line > last_row, "rows out of order");
                last_row = rejection.origin.line;
                assert!(
                    matches!(rejection.reason, RejectReason::InRowGroup { .. }),
                    "a rejection without its row group: {rejection:?}"
                );
            }
            Frame::Failed(_) => {
                assert!(
                    rows.is_empty() && last_row == 0,
                    "a file fails before any row"
                );
            }
        }
    }
    if rows.is_empty() {
        return;
    }
    let mut copier = RowCopier::open(&file).expect("a file that framed opens again");
    let mut copied = 0;
    for &row in &rows {
        let kept = copier.keep(row, &mut |batch| {
            copied += batch.num_rows();
            Ok(())
        });
        // Framing decodes only the columns it reads; the copier decodes every column, and a
        // damaged one it alone reads is refused by name, never copied short.
        if let Err(e) = kept {
            let message = std::error::Error::source(&e)
                .map(|s| s.to_string())
                .unwrap_or_default();
            assert!(
                message.contains("cannot be decoded in every column"),
                "a framed row is not found again: {e:?}"
            );
            return;
        }
    }
    copier
        .finish(&mut |batch| {
            copied += batch.num_rows();
            Ok(())
        })
        .expect("the last rows are handed on");
    assert_eq!(
        copied,
        rows.len(),
        "the copier hands on exactly the framed rows"
    );
});
