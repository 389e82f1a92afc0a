//! [`FieldPath`]: where a field sits in a record, parsed once from its written form.
//!
//! A path is keys separated by `.`: `metadata.url` is the key `url` of the object under the key
//! `metadata`. A key holding a dot or a backslash escapes it: `a\.b` is the one key `a.b`, `a\\b`
//! the key `a\b`. A leading `$.` (the JSONPath habit of Dolma configurations) is accepted and
//! ignored. Array indices are not supported: a key is always an object key.

use std::fmt;

/// Why a written path is not a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldPathError {
    /// The path, or one of its keys, is empty (`""`, `a..b`, `a.`, `.a`).
    #[error("field path {path:?}: key {position} is empty (a key cannot be empty)")]
    EmptySegment {
        path: String,
        /// The 1-based position of the empty key.
        position: usize,
    },
    /// The path ends in a backslash that escapes nothing.
    #[error(
        "field path {path:?} ends in a backslash that escapes nothing (write \\\\ for a backslash)"
    )]
    DanglingEscape { path: String },
    /// A backslash escapes something other than `.` or `\`.
    #[error(
        "field path {path:?} escapes {escaped:?}: only \\. (a dot in a key) and \\\\ (a backslash) are escapes"
    )]
    UnknownEscape { path: String, escaped: char },
}

/// The keys leading to a field, outermost first; never empty, no key empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldPath {
    keys: Vec<String>,
}

impl FieldPath {
    /// The path of one top-level key, taken as it is (no escapes, dots included).
    ///
    /// # Panics
    /// Never on input; `key` must not be empty, which is a programming error (a caller's
    /// constant) and is checked only in debug builds.
    pub fn key(key: &str) -> FieldPath {
        debug_assert!(!key.is_empty(), "a field key is never empty");
        FieldPath {
            keys: vec![key.to_string()],
        }
    }

    /// The path of these keys, outermost first; `None` if there are none or one is empty.
    pub fn from_keys(keys: Vec<String>) -> Option<FieldPath> {
        (!keys.is_empty() && keys.iter().all(|k| !k.is_empty())).then_some(FieldPath { keys })
    }

    /// The keys, outermost first.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// The keys joined with plain dots (no escapes): what a flattened column of the same field
    /// would be named (`meta.url`), for suggesting the escaped form when a record has such a key.
    pub fn dotted(&self) -> String {
        self.keys.join(".")
    }
}

impl std::str::FromStr for FieldPath {
    type Err = FieldPathError;

    fn from_str(written: &str) -> Result<FieldPath, FieldPathError> {
        let body = written.strip_prefix("$.").unwrap_or(written);
        let mut keys = Vec::new();
        let mut key = String::new();
        let mut chars = body.chars();
        let empty = |position: usize| FieldPathError::EmptySegment {
            path: written.to_string(),
            position,
        };
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(escaped @ ('.' | '\\')) => key.push(escaped),
                    Some(escaped) => {
                        return Err(FieldPathError::UnknownEscape {
                            path: written.to_string(),
                            escaped,
                        });
                    }
                    None => {
                        return Err(FieldPathError::DanglingEscape {
                            path: written.to_string(),
                        });
                    }
                },
                '.' => {
                    if key.is_empty() {
                        return Err(empty(keys.len() + 1));
                    }
                    keys.push(std::mem::take(&mut key));
                }
                c => key.push(c),
            }
        }
        if key.is_empty() {
            return Err(empty(keys.len() + 1));
        }
        keys.push(key);
        Ok(FieldPath { keys })
    }
}

/// The written form, which parses back to the same path: keys escaped and joined with `.`,
/// with `$.` in front when the written form would otherwise begin with `$.`.
impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut written = String::new();
        for (i, key) in self.keys.iter().enumerate() {
            if i > 0 {
                written.push('.');
            }
            for c in key.chars() {
                if c == '.' || c == '\\' {
                    written.push('\\');
                }
                written.push(c);
            }
        }
        if written.starts_with("$.") {
            f.write_str("$.")?;
        }
        f.write_str(&written)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{FieldPath, FieldPathError};

    fn keys(path: &str) -> Result<Vec<String>, FieldPathError> {
        path.parse::<FieldPath>().map(|p| p.keys().to_vec())
    }

    #[test]
    fn dots_separate_keys_and_escapes_keep_them() {
        assert_eq!(keys("text").unwrap(), ["text"]);
        assert_eq!(keys("metadata.url").unwrap(), ["metadata", "url"]);
        assert_eq!(keys(r"a\.b").unwrap(), ["a.b"]);
        assert_eq!(keys(r"meta\.data.text").unwrap(), ["meta.data", "text"]);
        assert_eq!(keys(r"a\\b.c").unwrap(), [r"a\b", "c"]);
        assert_eq!(keys(r"a\\.b").unwrap(), [r"a\", "b"]);
        assert_eq!(keys("$.metadata.url").unwrap(), ["metadata", "url"]);
        assert_eq!(keys("$.$.a").unwrap(), ["$", "a"], "only one $. is dropped");
        assert_eq!(keys("$").unwrap(), ["$"]);
        assert_eq!(keys("é.ü").unwrap(), ["é", "ü"]);
    }

    #[test]
    fn empty_keys_and_bad_escapes_are_typed_errors() {
        for (path, position) in [("", 1), ("a..b", 2), ("a.", 2), (".a", 1), ("$.", 1)] {
            assert_eq!(
                keys(path),
                Err(FieldPathError::EmptySegment {
                    path: path.to_string(),
                    position
                }),
                "{path}"
            );
        }
        assert_eq!(
            keys(r"a\"),
            Err(FieldPathError::DanglingEscape {
                path: r"a\".to_string()
            })
        );
        assert_eq!(
            keys(r"a\n"),
            Err(FieldPathError::UnknownEscape {
                path: r"a\n".to_string(),
                escaped: 'n'
            })
        );
    }

    #[test]
    fn written_form_escapes_what_needs_it() {
        let path = FieldPath::from_keys(vec!["a.b".into(), r"c\".into()]).unwrap();
        assert_eq!(path.to_string(), r"a\.b.c\\");
        assert_eq!(path.dotted(), r"a.b.c\");
        let dollar = FieldPath::from_keys(vec!["$".into(), "x".into()]).unwrap();
        assert_eq!(dollar.to_string(), "$.$.x");
        assert_eq!(FieldPath::from_keys(vec![]), None);
        assert_eq!(FieldPath::from_keys(vec!["a".into(), String::new()]), None);
    }

    proptest! {
        /// Any path prints in a form that parses back to it.
        #[test]
        fn paths_parse_what_they_print(
            keys in prop::collection::vec("[a.\\\\$é]{1,4}", 1..4),
        ) {
            let path = FieldPath::from_keys(keys).unwrap();
            prop_assert_eq!(path.to_string().parse::<FieldPath>(), Ok(path));
        }
    }
}
