//! `neardup lines`: write the corpus with its boilerplate units removed from each text.

use rayon::prelude::*;

use super::Dedup;
use crate::boilerplate::{Boilerplate, group_seed};
use crate::error::{Error, RejectKind, Rejection};
use crate::pipeline::{BTreeMap, Instant};
use crate::read::{Frame, InputReport, InputSet, Parser};
use crate::report::{DocId, KeptRecord, Progress, ReadTotals, Sink, tallied};

/// What `lines` did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LinesSummary {
    pub docs_read: u64,
    pub docs_written: u64,
    pub rejected: u64,
    /// Documents whose text was all boilerplate (written with an empty text).
    pub docs_emptied: u64,
    /// Units (lines or paragraphs) seen, and removed as boilerplate.
    pub units: u64,
    pub units_removed: u64,
    /// Bytes of text read, and removed.
    pub text_bytes: u64,
    pub bytes_removed: u64,
    /// Distinct units repeated in at least `min_docs` documents.
    pub boilerplate_units: u64,
    pub min_docs: u32,
    /// Rejected records by reason.
    pub rejected_by_reason: std::collections::BTreeMap<crate::error::RejectKind, u64>,
    #[serde(flatten)]
    pub inputs: crate::read::InputReport,
    pub seconds: f64,
}

impl ReadTotals for LinesSummary {
    fn docs_read(&self) -> u64 {
        self.docs_read
    }
    fn record(&mut self, inputs: &InputReport, by_reason: BTreeMap<RejectKind, u64>) {
        self.inputs = inputs.clone();
        self.rejected_by_reason = by_reason;
    }
}

impl LinesSummary {
    pub fn to_text(&self) -> String {
        let percent = |part: u64, whole: u64| 100.0 * part as f64 / whole.max(1) as f64;
        format!(
            "documents read     {:>12}\n\
             written            {:>12}  ({} emptied)\n\
             rejected           {:>12}\n\
             units removed      {:>12}  of {} ({:.2}%)\n\
             bytes removed      {:>12}  of {} ({:.2}%)\n\
             boilerplate units  {:>12}  (distinct, in ≥ {} documents)\n\
             time               {:>11.2}s\n\
             {}",
            self.docs_read,
            self.docs_written,
            self.docs_emptied,
            self.rejected,
            self.units_removed,
            self.units,
            percent(self.units_removed, self.units),
            self.bytes_removed,
            self.text_bytes,
            percent(self.bytes_removed, self.text_bytes),
            self.boilerplate_units,
            self.min_docs,
            self.seconds,
            self.inputs.to_text(),
        )
    }
}

/// One record after stripping.
enum Rewritten {
    Rejected(Rejection),
    Record {
        bytes: Vec<u8>,
        units: u64,
        units_removed: u64,
        text_bytes: u64,
        bytes_removed: u64,
        emptied: bool,
    },
}

impl Dedup {
    /// Counts boilerplate over `inputs` (with the run's boilerplate options, or the defaults),
    /// then hands every record to `sink.kept` with the boilerplate removed from its text, in input
    /// order. For JSON Lines only the text field's value is rewritten.
    pub fn strip_records(
        &self,
        inputs: &mut InputSet,
        sink: &mut dyn Sink,
    ) -> Result<LinesSummary, Error> {
        if let Some(warc) = (0..inputs.inputs().len()).find(|&i| inputs.format_of(i).is_warc()) {
            let name = inputs.inputs()[warc].display_name();
            return Err(crate::error::ConfigError::LinesWarc(name).into());
        }
        tallied(inputs, sink, |inputs, sink| self.strip_all(inputs, sink))
    }

    fn strip_all(&self, inputs: &mut InputSet, sink: &mut dyn Sink) -> Result<LinesSummary, Error> {
        let started = Instant::now();
        let options = self.strip.unwrap_or_default();
        let counter = self.count_units(inputs, options)?;
        let mut summary = LinesSummary {
            boilerplate_units: counter.repeated(options.min_docs) as u64,
            min_docs: options.min_docs,
            ..LinesSummary::default()
        };
        let model = Boilerplate::new(counter, options, self.normalizer.clone());
        let parser = Parser::new(self.fields.clone());
        let total_bytes = inputs.total_bytes();
        let mut position = 0u64;
        self.for_each_batch(inputs, |batch, bytes_read| {
            let rewritten: Vec<Rewritten> = batch
                .par_iter()
                .map(|frame| {
                    let record = match frame.record() {
                        Ok(record) => record,
                        Err(rejection) => return Rewritten::Rejected(rejection),
                    };
                    let rejected = |reason| {
                        Rewritten::Rejected(Rejection {
                            origin: record.origin.clone(),
                            reason,
                        })
                    };
                    let doc = match parser.parse(record) {
                        Ok(doc) => doc,
                        Err(reason) => return rejected(reason),
                    };
                    let units = crate::boilerplate::unit_ranges(&doc.text, options.unit).len();
                    let stripped = model.strip(&doc.text, group_seed(doc.group.as_deref()));
                    match parser.replace_text(record, &stripped.text) {
                        Ok(bytes) => Rewritten::Record {
                            bytes,
                            units: units as u64,
                            units_removed: stripped.units_removed,
                            text_bytes: doc.text.len() as u64,
                            bytes_removed: stripped.bytes_removed,
                            emptied: stripped.text.trim().is_empty() && !doc.text.trim().is_empty(),
                        },
                        Err(reason) => rejected(reason),
                    }
                })
                .collect();
            for (frame, item) in batch.iter().zip(rewritten) {
                summary.docs_read += 1;
                match item {
                    Rewritten::Rejected(rejection) => {
                        if self.strict {
                            return Err(Error::Rejected(rejection));
                        }
                        summary.rejected += 1;
                        sink.rejected(&rejection)?;
                    }
                    Rewritten::Record {
                        bytes,
                        units,
                        units_removed,
                        text_bytes,
                        bytes_removed,
                        emptied,
                    } => {
                        let Frame::Record(record) = frame else {
                            unreachable!("rewritten records come from records")
                        };
                        summary.docs_written += 1;
                        summary.units += units;
                        summary.units_removed += units_removed;
                        summary.text_bytes += text_bytes;
                        summary.bytes_removed += bytes_removed;
                        summary.docs_emptied += u64::from(emptied);
                        sink.kept(&KeptRecord {
                            doc: DocId(position),
                            origin: &record.origin,
                            bytes: &bytes,
                            format: record.format,
                            stored: None,
                        })?;
                    }
                }
                position += 1;
            }
            sink.progress(&Progress {
                docs: position,
                bytes: bytes_read,
                total_bytes,
            });
            Ok(())
        })?;
        summary.seconds = started.elapsed().as_secs_f64();
        Ok(summary)
    }
}
