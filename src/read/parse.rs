//! Parsing: [`Parser`] turns a record's bytes into a [`Document`], visiting only the fields a run
//! reads (text, id, keep, group) of a JSON object, borrowing strings without escapes; and
//! [`Parser::replace_text`] splices a new text into a JSON record, every other byte kept.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use super::{Format, Record};
use crate::error::RejectReason;

/// Which fields of a JSON record to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    pub text: String,
    pub id: String,
    /// A numeric field whose value decides which cluster member is kept (`--keep max:FIELD`).
    pub keep: Option<String>,
    /// A field naming the document's group (a site, or a URL whose host is used) for counting
    /// boilerplate per group.
    pub group: Option<String>,
}

impl Default for Fields {
    fn default() -> Self {
        Fields {
            text: "text".to_string(),
            id: "id".to_string(),
            keep: None,
            group: None,
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
    /// The group field's value, when asked for and a string.
    pub group: Option<Cow<'a, str>>,
}

/// Turns a record's bytes into a [`Document`].
#[derive(Debug, Clone)]
pub struct Parser {
    format: Format,
    fields: Fields,
}

impl Parser {
    pub fn new(format: Format, fields: Fields) -> Self {
        Parser { format, fields }
    }

    pub fn parse<'a>(&self, record: &'a Record) -> Result<Document<'a>, RejectReason> {
        let text = std::str::from_utf8(&record.bytes).map_err(|e| RejectReason::InvalidUtf8 {
            offset: e.valid_up_to(),
        })?;
        match self.format {
            Format::Lines | Format::Files => Ok(Document {
                id: Cow::Owned(record.origin.to_string()),
                text: Cow::Borrowed(text),
                keep_value: f64::NEG_INFINITY,
                group: None,
            }),
            Format::Jsonl => {
                if text.trim().is_empty() {
                    return Err(RejectReason::BlankLine);
                }
                let duplicate = std::cell::Cell::new(None);
                let mut de = serde_json::Deserializer::from_str(text);
                let picked = PickFields {
                    fields: &self.fields,
                    duplicate: &duplicate,
                }
                .deserialize(&mut de)
                .and_then(|p| de.end().map(|_| p));
                if let Some(field) = duplicate.take() {
                    return Err(RejectReason::DuplicateField(field));
                }
                let picked = picked.map_err(|e| RejectReason::InvalidJson(e.to_string()))?;
                let text = match picked.text {
                    Picked::Missing => {
                        return Err(RejectReason::MissingField {
                            field: self.fields.text.clone(),
                            present: top_level_keys(text),
                        });
                    }
                    Picked::Text(t) => t,
                    Picked::Other(_) => {
                        return Err(RejectReason::NotAString(self.fields.text.clone()));
                    }
                };
                let id = match picked.id {
                    Picked::Text(t) => t,
                    // A number, a boolean, an object or an array: its compact JSON text.
                    Picked::Other(v) if !v.is_null() => Cow::Owned(v.to_string()),
                    _ => Cow::Owned(record.origin.to_string()),
                };
                let group = match picked.group {
                    Picked::Text(t) => Some(t),
                    _ => None,
                };
                Ok(Document {
                    id,
                    text,
                    keep_value: picked.keep.unwrap_or(f64::NEG_INFINITY),
                    group,
                })
            }
        }
    }
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
    /// value is rewritten, every other byte stays; otherwise the record is the text.
    pub fn replace_text(&self, record: &Record, new_text: &str) -> Result<Vec<u8>, RejectReason> {
        if self.format != Format::Jsonl {
            return Ok(new_text.as_bytes().to_vec());
        }
        let text = std::str::from_utf8(&record.bytes).map_err(|e| RejectReason::InvalidUtf8 {
            offset: e.valid_up_to(),
        })?;
        let duplicate = std::cell::Cell::new(None);
        let mut de = serde_json::Deserializer::from_str(text);
        let raw = de::Deserializer::deserialize_map(
            &mut de,
            FindRaw {
                field: &self.fields.text,
                duplicate: &duplicate,
            },
        );
        if let Some(field) = duplicate.take() {
            return Err(RejectReason::DuplicateField(field));
        }
        let raw = raw
            .map_err(|e| RejectReason::InvalidJson(e.to_string()))?
            .ok_or_else(|| RejectReason::MissingField {
                field: self.fields.text.clone(),
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

/// Finds the raw JSON of one field's value in an object (a field given twice is ambiguous).
struct FindRaw<'f> {
    field: &'f str,
    duplicate: &'f std::cell::Cell<Option<String>>,
}

impl<'de> Visitor<'de> for FindRaw<'_> {
    type Value = Option<&'de str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == self.field {
                if found.is_some() {
                    self.duplicate.set(Some(key.into_owned()));
                    return Err(de::Error::custom("duplicate field"));
                }
                let raw: &'de serde_json::value::RawValue = map.next_value()?;
                found = Some(raw.get());
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

enum Picked<'a> {
    Missing,
    Text(Cow<'a, str>),
    Other(serde_json::Value),
}

struct PickedFields<'a> {
    text: Picked<'a>,
    id: Picked<'a>,
    keep: Option<f64>,
    group: Picked<'a>,
}

/// Deserializes only the fields we need from a JSON object, skipping the rest without building it.
/// A field it reads that appears twice is ambiguous: it is named in `duplicate` and the object
/// is refused.
struct PickFields<'f> {
    fields: &'f Fields,
    duplicate: &'f std::cell::Cell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for PickFields<'_> {
    type Value = PickedFields<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PickFields<'_> {
    type Value = PickedFields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = PickedFields {
            text: Picked::Missing,
            id: Picked::Missing,
            keep: None,
            group: Picked::Missing,
        };
        let mut seen = [false; 4];
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let field = if key == self.fields.text.as_str() {
                0
            } else if key == self.fields.id.as_str() {
                1
            } else if self.fields.group.as_deref() == Some(key.as_ref()) {
                2
            } else if self.fields.keep.as_deref() == Some(key.as_ref()) {
                3
            } else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            if std::mem::replace(&mut seen[field], true) {
                self.duplicate.set(Some(key.into_owned()));
                return Err(de::Error::custom("duplicate field"));
            }
            match field {
                0 => out.text = map.next_value::<StrOrValue>()?.0,
                1 => out.id = map.next_value::<StrOrValue>()?.0,
                2 => out.group = map.next_value::<StrOrValue>()?.0,
                _ => {
                    let v: serde_json::Value = map.next_value()?;
                    out.keep = v.as_f64();
                }
            }
        }
        Ok(out)
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
    use super::{Fields, Parser};
    use crate::error::{Origin, RejectReason};
    use crate::read::{Format, Record};

    #[test]
    fn replace_text_rewrites_only_the_text_value() {
        let parser = Parser::new(Format::Jsonl, Fields::default());
        let record = Record {
            origin: Origin {
                file: "f".into(),
                line: 1,
            },
            bytes: br#"{"a": [1, {"text": 2}],  "text" : "old \"q\"\n", "z":"\u00e9"}"#.to_vec(),
            location: None,
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
        let lines = Parser::new(Format::Lines, Fields::default());
        assert_eq!(lines.replace_text(&record, "plain").unwrap(), b"plain");
    }

    fn record(bytes: &[u8]) -> Record {
        Record {
            origin: Origin {
                file: "f.jsonl".into(),
                line: 7,
            },
            bytes: bytes.to_vec(),
            location: None,
        }
    }

    fn parser() -> Parser {
        Parser::new(Format::Jsonl, Fields::default())
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
            keep: Some("score".into()),
            ..Fields::default()
        };
        let p = Parser::new(Format::Jsonl, fields);
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
}
