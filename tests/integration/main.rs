//! The one integration-test binary. Modules follow the pipeline's outside edges:
//! - `cli`: the `neardup` binary end to end on fixtures (formats, compression, stdin, outputs).
//! - `bad_input`: every kind of bad record is rejected with file, line and reason; counts add up.
//! - `oracle`: on generated corpora, clusters match the exact Jaccard graph.
//! - `determinism`: byte-identical output whatever the thread count.
//! - `boilerplate`: issue 5 on real text: syndicated pages, boilerplate lines, containment.
//! - `distributed`: 1, 2 and 3 processes on loopback, merging parts, a killed peer.
//! - `index`: the persistent index: build, add, compact, --against, --update, damage, crashes.
//! - `stream`: streaming mode: decisions as documents arrive, pipes, indexes.
//! - `report`: HTML reports render in headless Chromium without console errors.
//! - `hardening`: issue 10: broken inputs, clashing outputs, interruptions, input hygiene.
//! - `memory`: issue 11: budgets that spill every table give byte-identical outputs.
//! - `modes`: issue 11: every mode (streaming, `--against`, `stats`, distributed) equals batch
//!   where their features overlap (property tests).
//! - `resume`: issue 11: `--work-dir` runs killed at many moments resume to the same bytes.
//! - `shards`: issue 12's input side: folders and globs of shards, formats detected by name,
//!   nested field paths.
//! - `warc`: issue 12's WARC and WET: files written and read back by warcio (needs
//!   `pip install warcio`), skipped records, damaged records.
//! - `mirror`: issue 12's `-o DIR/`: kept shards mirroring the inputs, in their formats.
//! - `annotate`: issue 12's `--annotate`: every record written with what was decided about it.
//! - `parquet_io`: issue 12's Parquet input and outputs, against pyarrow (which must be
//!   installed: `pip install pyarrow`).
//! - `regressions`: one test per issue, named after it.

mod annotate;
mod bad_input;
mod boilerplate;
mod cli;
mod determinism;
mod distributed;
mod hardening;
mod index;
mod memory;
mod mirror;
mod modes;
mod oracle;
mod parquet_io;
mod regressions;
mod report;
mod resume;
mod shards;
mod stream;
mod util;
mod warc;
