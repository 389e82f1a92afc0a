//! The decision core: the rules that say which documents are duplicates, owned once and called
//! by every front-end.
//!
//! The front-ends differ in how they hold and move their data: a batch run (`decide.rs`, with
//! `against.rs` for `--against`) reads everything and keeps per-document facts in spillable
//! columns; a streaming run (`stream.rs`) decides each document as it arrives against online
//! tables of kept documents; `stats` (`stats.rs`) decides at several thresholds from one read; a
//! distributed run (`distributed/`) exchanges small records between workers. None of them
//! re-implements a rule; each asks this module:
//!
//! - [`anchors`]: which members of a band bucket pair (one anchor rule);
//! - [`judge`]: the call on a candidate pair: clearly a duplicate, clearly not, or check exactly;
//!   what a front-end that cannot check exactly decides; what a streaming run can honour;
//! - [`clusters`]: sets of texts, cluster assembly and order, the document a cluster keeps;
//! - [`members`]: each member's `kind`, its similarity to the kept document, its role;
//! - [`counts`]: the candidate-similarity histogram, the pairs sampled for the report's calibration
//!   view, and the summary counts.
//!
//! One rule lives elsewhere: the first copy of a normalized text wins. A batch run applies it in
//! its exact-duplicate table (`exact.rs`), a streaming run in its online map, a distributed run by
//! routing text hashes; all of them call a later copy an exact duplicate of its text's first copy.
//!
//! The invariant the core exists for: every mode equals batch where their features overlap
//! (`tests/integration/modes.rs`).

pub(crate) mod anchors;
pub(crate) mod clusters;
pub(crate) mod counts;
pub(crate) mod judge;
pub(crate) mod members;

use crate::cluster::KeepPolicy;
use crate::error::ConfigError;
use crate::pipeline::Dedup;
use crate::verify::Measure;

impl Dedup {
    /// Refuses settings a streaming run cannot honour. It decides each document once, as it
    /// arrives, against the documents kept so far, whose texts are gone: the first copy it sees is
    /// kept (`first`), there is no counting pass (no boilerplate stripping), no shingle counts
    /// (Jaccard only) and no exact check of a pair: verification must be `signature` (the
    /// decision core's judge says so). The command line asks this before it streams.
    pub fn check_streaming(&self) -> Result<(), ConfigError> {
        if self.keep != KeepPolicy::First {
            return Err(ConfigError::StreamKeep);
        }
        if self.strip.is_some() {
            return Err(ConfigError::StreamStrip);
        }
        if self.spans {
            return Err(ConfigError::StreamSpans);
        }
        if self.measure != Measure::Jaccard {
            return Err(ConfigError::ContainmentIndex);
        }
        self.judge().check_streaming()
    }
}
