//! What each member of a cluster is: its `kind`, its similarity to the kept document, its role.
//!
//! `kind` says what a document is, whichever member its cluster keeps: `exact` when its normalized
//! text is the kept document's or an earlier document's (of this run or of an index), `near`
//! otherwise. The similarity says how close it is to the kept document: 1 for the same text, the
//! exact measure when the run checked that pair, the signature estimate otherwise.

use crate::report::{DuplicateKind, Role};
use crate::verify::Measure;

/// What a front-end knows of a member's text, relative to its cluster's kept document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Relation {
    /// Its normalized text is the kept document's (the kept document itself included).
    pub same_text_as_kept: bool,
    /// An earlier document has its normalized text: one of this run, or an indexed one.
    pub copy_of_earlier: bool,
}

impl Relation {
    /// What the member is, as a duplicate.
    pub fn kind(self) -> DuplicateKind {
        if self.same_text_as_kept || self.copy_of_earlier {
            DuplicateKind::Exact
        } else {
            DuplicateKind::Near
        }
    }

    /// Its similarity to the kept document: 1 for the same text; otherwise `exact` (the exact
    /// measure of its text and the kept one's) when the run has it (not NaN); otherwise
    /// `estimate`.
    pub fn similarity(self, exact: Option<f64>, estimate: impl FnOnce() -> f64) -> f64 {
        match self.try_similarity(exact, || Ok::<f64, std::convert::Infallible>(estimate())) {
            Ok(similarity) => similarity,
            Err(never) => match never {},
        }
    }

    /// [`Relation::similarity`] with an estimate that can fail.
    pub fn try_similarity<E>(
        self,
        exact: Option<f64>,
        estimate: impl FnOnce() -> Result<f64, E>,
    ) -> Result<f64, E> {
        if self.same_text_as_kept {
            return Ok(1.0);
        }
        match exact {
            Some(j) if !j.is_nan() => Ok(j),
            _ => estimate(),
        }
    }
}

/// Under containment, which side a member is of its cluster's kept document, from `sizes` (its
/// distinct shingles, the kept one's): the copy when it is no larger. `None` under Jaccard and
/// for a member with the kept document's text.
pub(crate) fn role<E>(
    measure: Measure,
    relation: Relation,
    sizes: impl FnOnce() -> Result<(u32, u32), E>,
) -> Result<Option<Role>, E> {
    if measure != Measure::Containment || relation.same_text_as_kept {
        return Ok(None);
    }
    let (size, kept_size) = sizes()?;
    Ok(Some(if size <= kept_size {
        Role::Copy
    } else {
        Role::Container
    }))
}

#[cfg(test)]
mod tests {
    use crate::pipeline::core::members::{Relation, role};
    use crate::report::{DuplicateKind, Role};
    use crate::verify::Measure;

    #[test]
    fn issue11_a_copy_of_an_earlier_text_is_exact_whatever_its_cluster_keeps() {
        let of = |same_text_as_kept, copy_of_earlier| Relation {
            same_text_as_kept,
            copy_of_earlier,
        };
        assert_eq!(of(true, false).kind(), DuplicateKind::Exact);
        assert_eq!(of(false, true).kind(), DuplicateKind::Exact);
        assert_eq!(of(true, true).kind(), DuplicateKind::Exact);
        assert_eq!(of(false, false).kind(), DuplicateKind::Near);
        let never = || -> f64 { panic!("not estimated") };
        assert_eq!(of(true, false).similarity(Some(0.5), never), 1.0);
        assert_eq!(of(false, true).similarity(Some(0.5), never), 0.5);
        assert_eq!(of(false, false).similarity(Some(f64::NAN), || 0.7), 0.7);
        assert_eq!(of(false, false).similarity(None, || 0.6), 0.6);
        assert_eq!(of(false, false).try_similarity(None, || Err("x")), Err("x"));
    }

    #[test]
    fn roles_under_containment_only() {
        let other = Relation {
            same_text_as_kept: false,
            copy_of_earlier: false,
        };
        let same = Relation {
            same_text_as_kept: true,
            ..other
        };
        let never = || -> Result<(u32, u32), ()> { panic!("no sizes under Jaccard") };
        assert_eq!(role(Measure::Jaccard, other, never), Ok(None));
        assert_eq!(
            role(Measure::Containment, same, || Ok::<_, ()>((1, 2))),
            Ok(None)
        );
        assert_eq!(
            role(Measure::Containment, other, || Ok::<_, ()>((2, 2))),
            Ok(Some(Role::Copy))
        );
        assert_eq!(
            role(Measure::Containment, other, || Ok::<_, ()>((3, 2))),
            Ok(Some(Role::Container))
        );
        assert_eq!(
            role(Measure::Containment, other, || Err("unread")),
            Err("unread")
        );
    }
}
