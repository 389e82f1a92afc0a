//! Parsing: [`Parser`] turns a record's bytes into a [`Document`], visiting only the fields a run
//! reads (text, id, keep, group, URL) of a JSON object, and within them only the keys on their
//! paths into nested objects, borrowing strings without escapes; and [`Parser::replace_text`]
//! splices a new text into a JSON record, every other byte kept.
//!
//! The fields' paths are merged into one tree once per parser ([`PathTree`]): one visit of an
//! object compares each key with the keys the tree has at that level (at most one per field),
//! skips the rest unparsed ([`IgnoredAny`]) and descends into the objects on a path. No record is
//! ever built as a whole `serde_json::Value`.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use super::{FieldPath, Format, Record};
use crate::error::RejectReason;

/// Which fields of a JSON record to read, each a path into nested objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    pub text: FieldPath,
    pub id: FieldPath,
    /// A numeric field whose value decides which cluster member is kept (`--keep max:FIELD`).
    pub keep: Option<FieldPath>,
    /// A field naming the document's group (a site, or a URL whose host is used) for counting
    /// boilerplate per group.
    pub group: Option<FieldPath>,
    /// A field holding the record's URL (`url` unless told otherwise; a record without it, or
    /// whose value is not a string, has none). When no group field is given, the URL is the
    /// group, so boilerplate is counted per host.
    pub url: Option<FieldPath>,
}

impl Default for Fields {
    fn default() -> Self {
        Fields {
            text: FieldPath::key("text"),
            id: FieldPath::key("id"),
            keep: None,
            group: None,
            url: Some(FieldPath::key("url")),
        }
    }
}

/// One parsed document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document<'a> {
    pub id: Cow<'a, str>,
    pub text: Cow<'a, str>,
    /// The keep field's value; `-inf` when absent or not a number.
    pub keep_value: f64,
    /// The group field's value, when asked for and a string; without a group field, the URL.
    pub group: Option<Cow<'a, str>>,
    /// The URL field's value, when asked for and a string.
    pub url: Option<Cow<'a, str>>,
}

/// What a field is read for: its bit in a node's targets and its slot in [`Slots`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Text = 0,
    Id = 1,
    Group = 2,
    Keep = 3,
    Url = 4,
}

const TARGETS: usize = 5;

/// The paths of the fields a parser reads, merged: node 0 is the record's object; a node's
/// children are the keys read in the object under it.
#[derive(Debug, Clone)]
struct PathTree {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone)]
struct Node {
    key: String,
    /// The path to this node, as written (for naming it in rejections).
    path: String,
    /// Bits of the [`Target`]s whose path ends here.
    targets: u8,
    children: Vec<usize>,
}

impl PathTree {
    fn new(fields: &Fields) -> PathTree {
        let mut tree = PathTree {
            nodes: vec![Node {
                key: String::new(),
                path: String::new(),
                targets: 0,
                children: Vec::new(),
            }],
        };
        let paths = [
            (Target::Text, Some(&fields.text)),
            (Target::Id, Some(&fields.id)),
            (Target::Group, fields.group.as_ref()),
            (Target::Keep, fields.keep.as_ref()),
            (Target::Url, fields.url.as_ref()),
        ];
        for (target, path) in paths {
            let Some(path) = path else { continue };
            let mut at = 0;
            for (depth, key) in path.keys().iter().enumerate() {
                let existing = tree.nodes[at]
                    .children
                    .iter()
                    .copied()
                    .find(|&c| tree.nodes[c].key == *key);
                at = match existing {
                    Some(child) => child,
                    None => {
                        let child = tree.nodes.len();
                        let written = FieldPath::from_keys(path.keys()[..=depth].to_vec())
                            .map(|p| p.to_string())
                            .unwrap_or_default();
                        tree.nodes.push(Node {
                            key: key.clone(),
                            path: written,
                            targets: 0,
                            children: Vec::new(),
                        });
                        tree.nodes[at].children.push(child);
                        child
                    }
                };
            }
            tree.nodes[at].targets |= 1 << target as u8;
        }
        tree
    }

    /// The written path of the first field read below `node` (for naming the field a
    /// non-object on its path hides).
    fn first_field_below(&self, mut node: usize) -> &str {
        while let Some(&child) = self.nodes[node].children.first() {
            node = child;
            if self.nodes[node].targets != 0 {
                break;
            }
        }
        &self.nodes[node].path
    }
}

/// What went wrong with a path while visiting a record, beyond invalid JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PathProblem {
    /// A key on a path appears twice in its object (the written path to it).
    Duplicate(String),
    /// The value at `at` is neither an object nor null, so `field` cannot be read under it.
    NotAnObject { field: String, at: String },
}

impl PathProblem {
    fn reason(self) -> RejectReason {
        match self {
            PathProblem::Duplicate(field) => RejectReason::DuplicateField(field),
            PathProblem::NotAnObject { field, at } => RejectReason::NotAnObject { field, at },
        }
    }
}

/// Turns a record's bytes into a [`Document`], by the record's format.
#[derive(Debug, Clone)]
pub struct Parser {
    fields: Fields,
    tree: PathTree,
}

impl Parser {
    pub fn new(fields: Fields) -> Self {
        let tree = PathTree::new(&fields);
        Parser { fields, tree }
    }

    /// The fields this parser reads.
    pub fn fields(&self) -> &Fields {
        &self.fields
    }

    pub fn parse<'a>(&self, record: &'a Record) -> Result<Document<'a>, RejectReason> {
        if record.format == Format::Parquet {
            return self.parse_row(record);
        }
        let utf8 = || utf8(&record.bytes);
        match record.format {
            Format::Lines | Format::Files => Ok(Document {
                id: Cow::Owned(record.origin.to_string()),
                text: Cow::Borrowed(utf8()?),
                keep_value: f64::NEG_INFINITY,
                group: None,
                url: None,
            }),
            Format::Jsonl => self.parse_json(record, utf8()?),
            Format::Warc | Format::Wet => {
                // Id, URL and text from the record's headers and payload; the URL is the group
                // (no field of a WARC record names another).
                let doc = super::warc::document(&record.bytes)?;
                let url = doc.url.map(Cow::Borrowed);
                Ok(Document {
                    id: Cow::Borrowed(doc.id),
                    text: doc.text,
                    keep_value: f64::NEG_INFINITY,
                    group: url.clone(),
                    url,
                })
            }
            Format::Parquet => self.parse_row(record),
        }
    }

    /// A framed Parquet row ([`super::parquet_read::encode_row`]): its values were picked from their
    /// columns while framing.
    fn parse_row<'a>(&self, record: &'a Record) -> Result<Document<'a>, RejectReason> {
        let row = super::parquet_read::decode_row(&record.bytes)
            .ok_or_else(|| RejectReason::Unreadable("not a framed Parquet row".to_string()))?;
        let url = row.url.map(Cow::Borrowed);
        let group = match row.group {
            Some(group) => Some(Cow::Borrowed(group)),
            None if self.fields.group.is_none() => url.clone(),
            None => None,
        };
        Ok(Document {
            id: match row.id {
                Some(id) => Cow::Borrowed(id),
                None => Cow::Owned(record.origin.to_string()),
            },
            text: Cow::Borrowed(row.text),
            keep_value: row.keep.unwrap_or(f64::NEG_INFINITY),
            group,
            url,
        })
    }

    fn parse_json<'a>(
        &self,
        record: &'a Record,
        text: &'a str,
    ) -> Result<Document<'a>, RejectReason> {
        if text.trim().is_empty() {
            return Err(RejectReason::BlankLine);
        }
        let problem = Cell::new(None);
        let mut slots = Slots::default();
        let mut de = serde_json::Deserializer::from_str(text);
        let visited = de::Deserializer::deserialize_map(
            &mut de,
            Level {
                tree: &self.tree,
                node: 0,
                slots: &mut slots,
                problem: &problem,
            },
        )
        .and_then(|()| de.end());
        if let Some(problem) = problem.take() {
            return Err(problem.reason());
        }
        visited.map_err(|e| RejectReason::InvalidJson(e.to_string()))?;
        let [text_value, id, group, keep, url] = slots.0;
        let text_value = match text_value {
            Picked::Missing => {
                return Err(RejectReason::MissingField {
                    field: self.fields.text.to_string(),
                    present: top_level_keys(text),
                });
            }
            Picked::Text(t) => t,
            Picked::Other(_) => {
                return Err(RejectReason::NotAString(self.fields.text.to_string()));
            }
        };
        let id = match id {
            Picked::Text(t) => t,
            // A number, a boolean, an object or an array: its compact JSON text.
            Picked::Other(v) if !v.is_null() => Cow::Owned(v.to_string()),
            _ => Cow::Owned(record.origin.to_string()),
        };
        let url = match url {
            Picked::Text(t) => Some(t),
            _ => None,
        };
        let group = match group {
            Picked::Text(t) => Some(t),
            _ if self.fields.group.is_none() => url.clone(),
            _ => None,
        };
        let keep_value = match keep {
            Picked::Other(v) => v.as_f64(),
            _ => None,
        };
        Ok(Document {
            id,
            text: text_value,
            keep_value: keep_value.unwrap_or(f64::NEG_INFINITY),
            group,
            url,
        })
    }
}

/// `bytes` as UTF-8 text: checked with SIMD (simdutf8, about three times the speed of the
/// standard check on the text of a record), and on failure checked again by the standard library
/// for the offset of the first bad byte.
fn utf8(bytes: &[u8]) -> Result<&str, RejectReason> {
    simdutf8::basic::from_utf8(bytes).or_else(|_| {
        std::str::from_utf8(bytes).map_err(|e| RejectReason::InvalidUtf8 {
            offset: e.valid_up_to(),
        })
    })
}

/// The first keys of a JSON object, for saying which fields a record has (at most 12).
fn top_level_keys(text: &str) -> Vec<String> {
    const SHOWN: usize = 12;
    let Ok(map) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text) else {
        return Vec::new();
    };
    let mut keys: Vec<String> = map.keys().take(SHOWN).cloned().collect();
    if map.len() > SHOWN {
        keys.push(format!("… {} more", map.len() - SHOWN));
    }
    keys
}

impl Parser {
    /// The record with its text replaced by `new_text`: for JSON Lines, only the text field's
    /// value is rewritten (wherever it is nested), every other byte stays; otherwise the record
    /// is the text.
    pub fn replace_text(&self, record: &Record, new_text: &str) -> Result<Vec<u8>, RejectReason> {
        if record.format == Format::Parquet {
            let row = super::parquet_read::decode_row(&record.bytes)
                .ok_or_else(|| RejectReason::Unreadable("not a framed Parquet row".to_string()))?;
            return Ok(super::parquet_read::encode_row(
                row.id, row.group, row.url, row.keep, new_text,
            ));
        }
        if record.format != Format::Jsonl {
            return Ok(new_text.as_bytes().to_vec());
        }
        let text = std::str::from_utf8(&record.bytes).map_err(|e| RejectReason::InvalidUtf8 {
            offset: e.valid_up_to(),
        })?;
        let problem = Cell::new(None);
        let mut de = serde_json::Deserializer::from_str(text);
        let raw = de::Deserializer::deserialize_map(
            &mut de,
            FindRaw {
                path: &self.fields.text,
                depth: 0,
                problem: &problem,
            },
        );
        if let Some(problem) = problem.take() {
            return Err(problem.reason());
        }
        let raw = raw
            .map_err(|e| RejectReason::InvalidJson(e.to_string()))?
            .ok_or_else(|| RejectReason::MissingField {
                field: self.fields.text.to_string(),
                present: top_level_keys(text),
            })?;
        // The raw value borrows from `text`: its offset there is where to splice.
        let start = raw.as_ptr() as usize - text.as_ptr() as usize;
        let end = start + raw.len();
        let replacement = serde_json::to_string(new_text).expect("a string serializes");
        let mut out = Vec::with_capacity(text.len() - raw.len() + replacement.len());
        out.extend_from_slice(&text.as_bytes()[..start]);
        out.extend_from_slice(replacement.as_bytes());
        out.extend_from_slice(&text.as_bytes()[end..]);
        Ok(out)
    }
}

/// The written form of the first `depth + 1` keys of `path`.
fn written_prefix(path: &FieldPath, depth: usize) -> String {
    FieldPath::from_keys(path.keys()[..=depth].to_vec())
        .map(|p| p.to_string())
        .unwrap_or_default()
}

/// Finds the raw JSON of the value at `path` (from key `depth` on) in an object: a key on the
/// path given twice is ambiguous; a value on the way that is neither an object nor null hides
/// the field.
struct FindRaw<'f> {
    path: &'f FieldPath,
    depth: usize,
    problem: &'f Cell<Option<PathProblem>>,
}

impl<'de> DeserializeSeed<'de> for FindRaw<'_> {
    type Value = Option<&'de str>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl FindRaw<'_> {
    /// A value that is not an object where the path goes on.
    fn not_an_object<E: de::Error>(&self) -> E {
        self.problem.set(Some(PathProblem::NotAnObject {
            field: self.path.to_string(),
            at: written_prefix(self.path, self.depth.saturating_sub(1)),
        }));
        E::custom("not an object")
    }
}

impl<'de> Visitor<'de> for FindRaw<'_> {
    type Value = Option<&'de str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let key_here = &self.path.keys()[self.depth];
        let last = self.depth + 1 == self.path.keys().len();
        let mut found = None;
        let mut seen = false;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key != key_here.as_str() {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            if std::mem::replace(&mut seen, true) {
                self.problem.set(Some(PathProblem::Duplicate(written_prefix(
                    self.path, self.depth,
                ))));
                return Err(de::Error::custom("duplicate field"));
            }
            found = if last {
                let raw: &'de serde_json::value::RawValue = map.next_value()?;
                Some(raw.get())
            } else {
                map.next_value_seed(FindRaw {
                    path: self.path,
                    depth: self.depth + 1,
                    problem: self.problem,
                })?
            };
        }
        Ok(found)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(self.not_an_object())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(self.not_an_object())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(self.not_an_object())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(self.not_an_object())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Err(self.not_an_object())
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(self.not_an_object())
    }
}

/// A field's value as read.
#[derive(Debug, Clone)]
enum Picked<'a> {
    Missing,
    Text(Cow<'a, str>),
    Other(serde_json::Value),
}

/// The value read for each [`Target`].
struct Slots<'a>([Picked<'a>; TARGETS]);

impl Default for Slots<'_> {
    fn default() -> Self {
        Slots(std::array::from_fn(|_| Picked::Missing))
    }
}

impl<'a> Slots<'a> {
    /// Gives `value` to every target in `targets` (a bit set).
    fn fill(&mut self, targets: u8, value: Picked<'a>) {
        let mut value = Some(value);
        for slot in 0..TARGETS {
            if targets & (1 << slot) == 0 {
                continue;
            }
            let rest = targets >> (slot + 1);
            self.0[slot] = if rest == 0 {
                value.take().unwrap_or(Picked::Missing)
            } else {
                value.clone().unwrap_or(Picked::Missing)
            };
        }
    }
}

/// Visits one object of a record at `node` of the path tree: reads the fields ending at its
/// children, descends into the objects on longer paths, skips every other value unparsed. A key
/// of the tree given twice in one object is ambiguous; below the record's object, a value on a
/// path that is neither an object nor null hides the fields under it (null: they are missing).
struct Level<'t, 's, 'de> {
    tree: &'t PathTree,
    node: usize,
    slots: &'s mut Slots<'de>,
    problem: &'t Cell<Option<PathProblem>>,
}

impl<'de> DeserializeSeed<'de> for Level<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Level<'_, '_, '_> {
    fn not_an_object<E: de::Error>(&self) -> E {
        self.problem.set(Some(not_an_object(self.tree, self.node)));
        E::custom("not an object")
    }
}

fn not_an_object(tree: &PathTree, node: usize) -> PathProblem {
    PathProblem::NotAnObject {
        field: tree.first_field_below(node).to_string(),
        at: tree.nodes[node].path.clone(),
    }
}

impl<'de> Visitor<'de> for Level<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let tree = self.tree;
        let children = &tree.nodes[self.node].children;
        let mut seen = 0u32;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let Some(index) = children
                .iter()
                .position(|&c| tree.nodes[c].key == key.as_ref())
            else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let child = children[index];
            // A node has at most one child per field read, so fewer than 32.
            let bit = 1u32 << index;
            if seen & bit != 0 {
                self.problem
                    .set(Some(PathProblem::Duplicate(tree.nodes[child].path.clone())));
                return Err(de::Error::custom("duplicate field"));
            }
            seen |= bit;
            let node = &tree.nodes[child];
            if node.children.is_empty() {
                let value = map.next_value::<StrOrValue>()?.0;
                self.slots.fill(node.targets, value);
            } else if node.targets == 0 {
                map.next_value_seed(Level {
                    tree,
                    node: child,
                    slots: &mut *self.slots,
                    problem: self.problem,
                })?;
            } else {
                // One field's path ends where another's goes on (rare): the value's raw text is
                // read whole for the one and visited like any object for the others.
                let raw: &'de serde_json::value::RawValue = map.next_value()?;
                let value = serde_json::from_str::<StrOrValue<'de>>(raw.get())
                    .map_err(de::Error::custom)?
                    .0;
                let mut inner = serde_json::Deserializer::from_str(raw.get());
                Level {
                    tree,
                    node: child,
                    slots: &mut *self.slots,
                    problem: self.problem,
                }
                .deserialize(&mut inner)
                .map_err(de::Error::custom)?;
                self.slots.fill(node.targets, value);
            }
        }
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(self.not_an_object())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(self.not_an_object())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(self.not_an_object())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(self.not_an_object())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(self.not_an_object())
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.not_an_object())
    }
}

/// A string borrowed from the input when it has no escapes, or any other JSON value.
struct StrOrValue<'a>(Picked<'a>);

impl<'de> de::Deserialize<'de> for StrOrValue<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrOrValue<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(StrOrValue(Picked::Text(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(StrOrValue(Picked::Text(Cow::Owned(v.to_string()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(StrOrValue(Picked::Text(Cow::Owned(v))))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(StrOrValue(Picked::Other(v.into())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(StrOrValue(Picked::Other(v.into())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(StrOrValue(Picked::Other(v.into())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(StrOrValue(Picked::Other(v.into())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(StrOrValue(Picked::Other(serde_json::Value::Null)))
            }
            // Objects and arrays are kept whole (an id may be one: it is then written as its
            // compact JSON text).
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                let value =
                    de::Deserialize::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(StrOrValue(Picked::Other(value)))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let value =
                    de::Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(StrOrValue(Picked::Other(value)))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{Fields, Parser};
    use crate::error::{Origin, RejectReason};
    use crate::read::{FieldPath, Format, Record};

    #[test]
    fn replace_text_rewrites_only_the_text_value() {
        let parser = Parser::new(Fields::default());
        let record = Record {
            origin: Origin {
                file: "f".into(),
                line: 1,
                offset: None,
            },
            format: Format::Jsonl,
            bytes: br#"{"a": [1, {"text": 2}],  "text" : "old \"q\"\n", "z":"\u00e9"}"#.to_vec(),
            location: None,
            stored: None,
        };
        let out = parser.replace_text(&record, "new \"text\"\nline").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a": [1, {"text": 2}],  "text" : "new \"text\"\nline", "z":"\u00e9"}"#
        );
        let missing = Record {
            bytes: br#"{"body": "x"}"#.to_vec(),
            ..record.clone()
        };
        assert!(matches!(
            parser.replace_text(&missing, "y"),
            Err(RejectReason::MissingField { .. })
        ));
        let lines = Record {
            format: Format::Lines,
            ..record.clone()
        };
        assert_eq!(parser.replace_text(&lines, "plain").unwrap(), b"plain");
    }

    fn record(bytes: &[u8]) -> Record {
        Record {
            origin: Origin {
                file: "f.jsonl".into(),
                line: 7,
                offset: None,
            },
            format: Format::Jsonl,
            bytes: bytes.to_vec(),
            location: None,
            stored: None,
        }
    }

    fn parser() -> Parser {
        Parser::new(Fields::default())
    }

    fn path(written: &str) -> FieldPath {
        written.parse().unwrap()
    }

    fn nested(text: &str, id: &str) -> Parser {
        Parser::new(Fields {
            text: path(text),
            id: path(id),
            ..Fields::default()
        })
    }

    #[test]
    fn parses_text_and_id_and_skips_other_fields() {
        let r = record(br#"{"meta":{"a":[1,2]},"id":"x1","text":"hello\nworld","n":3}"#);
        let d = parser().parse(&r).unwrap();
        assert_eq!(d.id, "x1");
        assert_eq!(d.text, "hello\nworld");
    }

    #[test]
    fn numeric_id_and_missing_id() {
        let r = record(br#"{"id":42,"text":"a"}"#);
        assert_eq!(parser().parse(&r).unwrap().id, "42");
        let r = record(br#"{"text":"a"}"#);
        assert_eq!(parser().parse(&r).unwrap().id, "f.jsonl:7");
    }

    #[test]
    fn bad_records_are_rejected_with_a_reason() {
        let p = parser();
        assert_eq!(
            p.parse(&record(b"{\"text\":\"a\xff\"}")),
            Err(RejectReason::InvalidUtf8 { offset: 10 })
        );
        assert!(matches!(
            p.parse(&record(br#"{"text":"a""#)),
            Err(RejectReason::InvalidJson(_))
        ));
        assert!(matches!(
            p.parse(&record(br#"[1,2]"#)),
            Err(RejectReason::InvalidJson(_))
        ));
        assert_eq!(
            p.parse(&record(br#"{"body":"a"}"#)),
            Err(RejectReason::MissingField {
                field: "text".into(),
                present: vec!["body".into()]
            })
        );
        assert_eq!(
            p.parse(&record(br#"{"text":5}"#)),
            Err(RejectReason::NotAString("text".into()))
        );
        assert_eq!(p.parse(&record(b"   ")), Err(RejectReason::BlankLine));
        assert!(matches!(
            p.parse(&record(br#"{"text":"a"} trailing"#)),
            Err(RejectReason::InvalidJson(_))
        ));
    }

    #[test]
    fn keep_field_is_read_as_number() {
        let fields = Fields {
            keep: Some(path("score")),
            ..Fields::default()
        };
        let p = Parser::new(fields);
        let r = record(br#"{"text":"a","score":2.5}"#);
        assert_eq!(p.parse(&r).unwrap().keep_value, 2.5);
        let r = record(br#"{"text":"a","score":"high"}"#);
        assert_eq!(p.parse(&r).unwrap().keep_value, f64::NEG_INFINITY);
    }

    #[test]
    fn issue10_a_field_given_twice_is_ambiguous_for_parse_and_splice_alike() {
        let p = parser();
        let twice = record(br#"{"id":"x","text":"a","text":"b"}"#);
        assert_eq!(
            p.parse(&twice),
            Err(RejectReason::DuplicateField("text".into()))
        );
        assert_eq!(
            p.replace_text(&twice, "c"),
            Err(RejectReason::DuplicateField("text".into()))
        );
        let id_twice = record(br#"{"id":"x","id":"y","text":"a"}"#);
        assert_eq!(
            p.parse(&id_twice),
            Err(RejectReason::DuplicateField("id".into()))
        );
        // A key inside a nested object is another field.
        let nested = record(br#"{"meta":{"text":"n"},"text":"a"}"#);
        assert_eq!(p.parse(&nested).unwrap().text, "a");
    }

    #[test]
    fn issue10_object_and_array_ids_are_their_compact_json() {
        let r = record(br#"{"id": {"site": "a", "n": [1, 2]}, "text": "t"}"#);
        assert_eq!(parser().parse(&r).unwrap().id, r#"{"n":[1,2],"site":"a"}"#);
        let r = record(br#"{"id": [1, "two"], "text": "t"}"#);
        assert_eq!(parser().parse(&r).unwrap().id, r#"[1,"two"]"#);
        let r = record(br#"{"id": true, "text": "t"}"#);
        assert_eq!(parser().parse(&r).unwrap().id, "true");
    }

    #[test]
    fn issue12_nested_paths_pick_fields_inside_objects() {
        let p = nested("content.text", "meta.id");
        let r = record(
            br#"{"content":{"lang":"en","text":"deep","n":[1,{"text":"no"}]},"text":"top","meta":{"id":7,"url":"u"}}"#,
        );
        let d = p.parse(&r).unwrap();
        assert_eq!((d.text.as_ref(), d.id.as_ref()), ("deep", "7"));
        // Strings without escapes are borrowed from the record, nested or not.
        assert!(matches!(d.text, std::borrow::Cow::Borrowed(_)));
        // Three levels, a leading `$.`, and an escaped dot in a key.
        let p = nested(r"$.a.b\.c.d", "id");
        let r = record(br#"{"a":{"b.c":{"d":"x"},"b":{"c":{"d":"wrong"}}}}"#);
        assert_eq!(p.parse(&r).unwrap().text, "x");
        // A flat key with a dot is written escaped; unescaped it is a path.
        let flat = record(br#"{"meta.text":"flat","meta":{"text":"nested"}}"#);
        assert_eq!(
            nested(r"meta\.text", "id").parse(&flat).unwrap().text,
            "flat"
        );
        assert_eq!(
            nested("meta.text", "id").parse(&flat).unwrap().text,
            "nested"
        );
    }

    #[test]
    fn issue12_missing_nested_fields_name_the_whole_path() {
        let p = nested("content.text", "meta.id");
        for bytes in [
            &br#"{"content":{"body":"x"}}"#[..],
            br#"{"text":"x"}"#,
            br#"{"content":null}"#,
        ] {
            assert!(
                matches!(p.parse(&record(bytes)), Err(RejectReason::MissingField { ref field, .. }) if field == "content.text"),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
        // A missing or null nested id falls back to FILE:LINE, like a missing top-level one.
        for bytes in [
            &br#"{"content":{"text":"a"}}"#[..],
            br#"{"content":{"text":"a"},"meta":null}"#,
            br#"{"content":{"text":"a"},"meta":{}}"#,
        ] {
            assert_eq!(p.parse(&record(bytes)).unwrap().id, "f.jsonl:7");
        }
        assert_eq!(
            p.parse(&record(br#"{"content":{"text":5}}"#)),
            Err(RejectReason::NotAString("content.text".into()))
        );
    }

    #[test]
    fn issue12_a_path_through_a_non_object_is_rejected() {
        let p = nested("content.text", "meta.id");
        for (bytes, field, at) in [
            (
                &br#"{"content":"flat text"}"#[..],
                "content.text",
                "content",
            ),
            (br#"{"content":["a"]}"#, "content.text", "content"),
            (br#"{"content":{"text":"a"},"meta":3}"#, "meta.id", "meta"),
            (
                br#"{"content":{"text":"a"},"meta":true}"#,
                "meta.id",
                "meta",
            ),
        ] {
            assert_eq!(
                p.parse(&record(bytes)),
                Err(RejectReason::NotAnObject {
                    field: field.into(),
                    at: at.into()
                }),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
        assert_eq!(
            p.replace_text(&record(br#"{"content":"flat"}"#), "x"),
            Err(RejectReason::NotAnObject {
                field: "content.text".into(),
                at: "content".into()
            })
        );
    }

    #[test]
    fn issue12_keys_on_a_path_given_twice_are_ambiguous() {
        let p = nested("content.text", "id");
        for (bytes, field) in [
            (
                &br#"{"content":{"text":"a","text":"b"}}"#[..],
                "content.text",
            ),
            (
                br#"{"content":{"text":"a"},"content":{"text":"b"}}"#,
                "content",
            ),
        ] {
            let r = record(bytes);
            assert_eq!(p.parse(&r), Err(RejectReason::DuplicateField(field.into())));
            assert_eq!(
                p.replace_text(&r, "c"),
                Err(RejectReason::DuplicateField(field.into()))
            );
        }
        // Keys off the paths may repeat, at any level.
        let r = record(br#"{"content":{"text":"a","x":1,"x":2},"y":1,"y":2}"#);
        assert_eq!(p.parse(&r).unwrap().text, "a");
    }

    #[test]
    fn issue12_replace_text_splices_a_nested_text_keeping_every_other_byte() {
        let p = nested("content.text", "id");
        let r = record(
            br#"{ "text" : "top", "content" : { "text" :"old \u00e9", "z": [ "text" ] } , "w":1}"#,
        );
        let out = p.replace_text(&r, "new\n\"t\"").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{ "text" : "top", "content" : { "text" :"new\n\"t\"", "z": [ "text" ] } , "w":1}"#
        );
        assert!(matches!(
            p.replace_text(&record(br#"{"content":{}}"#), "x"),
            Err(RejectReason::MissingField { .. })
        ));
    }

    #[test]
    fn issue12_fields_sharing_a_path_read_it_once_each() {
        // The URL and the group are the same field; the keep field sits beside the text.
        let p = Parser::new(Fields {
            text: path("doc.text"),
            id: path("doc.id"),
            keep: Some(path("doc.score")),
            group: Some(path("meta.url")),
            url: Some(path("meta.url")),
        });
        let r = record(
            br#"{"doc":{"id":"d1","score":2.5,"text":"t"},"meta":{"url":"https://www.site.example/a"}}"#,
        );
        let d = p.parse(&r).unwrap();
        assert_eq!(
            (d.id.as_ref(), d.text.as_ref(), d.keep_value),
            ("d1", "t", 2.5)
        );
        assert_eq!(d.group.as_deref(), Some("https://www.site.example/a"));
        assert_eq!(d.url.as_deref(), Some("https://www.site.example/a"));
        // One field's path ends where another's goes on: the value is read whole.
        let p = nested("meta", "meta.id");
        let r = record(br#"{"meta":{"id":"m"}}"#);
        assert_eq!(p.parse(&r), Err(RejectReason::NotAString("meta".into())));
        let p = Parser::new(Fields {
            text: path("text"),
            id: path("meta"),
            url: Some(path("meta.url")),
            ..Fields::default()
        });
        let r = record(br#"{"text":"t","meta":{"url":"u"}}"#);
        let d = p.parse(&r).unwrap();
        assert_eq!(
            (d.id.as_ref(), d.url.as_deref()),
            (r#"{"url":"u"}"#, Some("u"))
        );
        // Inside a value read whole, a key on a path given twice is still ambiguous.
        let r = record(br#"{"text":"t","meta":{"url":"u","url":"v"}}"#);
        assert_eq!(
            p.parse(&r),
            Err(RejectReason::DuplicateField("meta.url".into()))
        );
        assert_eq!(
            p.parse(&record(br#"{"text":"t","meta":"s"}"#)),
            Err(RejectReason::NotAnObject {
                field: "meta.url".into(),
                at: "meta".into()
            })
        );
    }

    #[test]
    fn issue12_the_url_is_the_group_only_without_a_group_field() {
        let with_url = |group: Option<&str>| {
            Parser::new(Fields {
                url: Some(path("url")),
                group: group.map(path),
                ..Fields::default()
            })
        };
        let r = record(br#"{"text":"t","url":"https://a.example/x","site":"b"}"#);
        let d = with_url(None).parse(&r).unwrap();
        assert_eq!(d.group.as_deref(), Some("https://a.example/x"));
        assert_eq!(
            with_url(Some("site")).parse(&r).unwrap().group.as_deref(),
            Some("b")
        );
        // Issue 14: without --url-field the `url` field is the URL, and so the group.
        let d = parser().parse(&r).unwrap();
        assert_eq!(d.url.as_deref(), Some("https://a.example/x"));
        assert_eq!(d.group.as_deref(), Some("https://a.example/x"));
        // A record without one, or whose `url` is not a string, has none.
        for r in [
            record(br#"{"text":"t"}"#),
            record(br#"{"text":"t","url":7}"#),
        ] {
            let d = parser().parse(&r).unwrap();
            assert_eq!((d.url, d.group), (None, None));
        }
    }

    /// A JSON value of a flat record: strings (some with escapes), numbers, null, small objects.
    fn value() -> impl Strategy<Value = serde_json::Value> {
        prop_oneof![
            "[a-z\"\\\\é ]{0,6}".prop_map(serde_json::Value::from),
            any::<i32>().prop_map(serde_json::Value::from),
            Just(serde_json::Value::Null),
            ("[a-z]{1,2}", "[a-z]{0,3}").prop_map(|(k, v)| serde_json::json!({ k: v })),
        ]
    }

    proptest! {
        /// For any flat record (keys drawn from a few names, some repeated), a one-key path
        /// reads exactly what a field name read before paths: the same document or the same
        /// rejection, and the same splice. The reference is the record's key-value pairs.
        #[test]
        fn issue12_one_key_paths_read_flat_records_as_field_names_did(
            pairs in prop::collection::vec((prop::sample::select(vec!["text", "id", "t.x", "s", "k"]), value()), 0..6),
            text_key in prop::sample::select(vec!["text", "t.x", "s"]),
        ) {
            let body: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}:{}", serde_json::to_string(k).unwrap(), v))
                .collect();
            let bytes = format!("{{{}}}", body.join(","));
            let r = record(bytes.as_bytes());
            let p = Parser::new(Fields {
                text: FieldPath::key(text_key),
                id: FieldPath::key("id"),
                keep: Some(FieldPath::key("k")),
                ..Fields::default()
            });
            let count = |key: &str| pairs.iter().filter(|(k, _)| *k == key).count();
            let get = |key: &str| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| v);
            let got = p.parse(&r);
            let expected_duplicate = [text_key, "id", "k"].into_iter().find(|k| count(k) > 1);
            if expected_duplicate.is_some() {
                // Which repeated field is named depends on which repeat comes first.
                prop_assert!(matches!(got, Err(RejectReason::DuplicateField(_))), "{:?}", got);
                if count(text_key) > 1 {
                    prop_assert_eq!(p.replace_text(&r, "n"), Err(RejectReason::DuplicateField(FieldPath::key(text_key).to_string())));
                }
                return Ok(());
            }
            match get(text_key) {
                None => {
                    let missing = matches!(&got, Err(RejectReason::MissingField { field, .. }) if *field == FieldPath::key(text_key).to_string());
                    prop_assert!(missing, "{:?}", got);
                }
                Some(serde_json::Value::String(t)) => {
                    let d = got.unwrap();
                    prop_assert_eq!(d.text.as_ref(), t.as_str());
                    let id = match get("id") {
                        Some(serde_json::Value::String(s)) => s.clone(),
                        Some(serde_json::Value::Null) | None => "f.jsonl:7".to_string(),
                        Some(other) => other.to_string(),
                    };
                    prop_assert_eq!(d.id.as_ref(), id.as_str());
                    let keep = get("k").and_then(|v| v.as_f64()).unwrap_or(f64::NEG_INFINITY);
                    prop_assert_eq!(d.keep_value, keep);
                    let spliced: serde_json::Value = serde_json::from_slice(&p.replace_text(&r, "new").unwrap()).unwrap();
                    prop_assert_eq!(&spliced[text_key], &serde_json::Value::from("new"));
                }
                Some(_) => prop_assert_eq!(got, Err(RejectReason::NotAString(FieldPath::key(text_key).to_string()))),
            }
        }
    }
}
