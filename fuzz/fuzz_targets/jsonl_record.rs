//! The JSON Lines record parser and field picker: `Parser::parse` and `Parser::replace_text` on
//! arbitrary record bytes, under several field configurations.
//!
//! Input: one mode byte, then the record's bytes. The mode picks the `Fields` (default; keep,
//! group and URL fields; names that collide; nested paths, a key with a dot, a path that ends
//! where another goes on) and the replacement text.
//!
//! Checks, besides "never panics":
//! - plain-text formats take the bytes as the text whenever they are UTF-8;
//! - when a JSON record parses and each key on its text path appears once, `replace_text`
//!   succeeds and its output parses again to the new text with the same id, keep value, group
//!   and URL.
#![no_main]

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use neardup::Format;
use neardup::error::Origin;
use neardup::read::{FieldPath, Fields, Parser, Record};
use serde::de::{self, IgnoredAny, MapAccess, Visitor};

fn path(keys: &[&str]) -> FieldPath {
    FieldPath::from_keys(keys.iter().map(|k| k.to_string()).collect()).expect("no key is empty")
}

fn fields(mode: u8) -> Fields {
    let base = Fields::default();
    match mode % 6 {
        0 => base,
        1 => Fields {
            keep: Some(path(&["score"])),
            group: Some(path(&["url"])),
            url: Some(path(&["url"])),
            ..base
        },
        2 => Fields {
            text: path(&["body"]),
            id: path(&["url"]),
            keep: Some(path(&["n"])),
            group: Some(path(&["site"])),
            url: Some(path(&["meta", "url"])),
        },
        // Names that collide: the text field is also the id, keep, group and URL field.
        3 => Fields {
            text: path(&["text"]),
            id: path(&["text"]),
            keep: Some(path(&["text"])),
            group: Some(path(&["text"])),
            url: Some(path(&["text"])),
        },
        // Nested paths sharing a prefix, a key with a dot, non-ASCII names.
        4 => Fields {
            text: path(&["doc", "text"]),
            id: path(&["é"]),
            keep: Some(path(&["doc", "n"])),
            group: Some(path(&["a.b"])),
            url: Some(path(&["doc", "meta", "url"])),
        },
        // A path that ends where the text's goes on: the value is read whole and visited.
        _ => Fields {
            text: path(&["doc", "text"]),
            url: Some(path(&["doc"])),
            ..base
        },
    }
}

const NEW_TEXTS: [&str; 6] = [
    "",
    "plain new text",
    "quote \" backslash \\ newline \n tab \t",
    "\u{e9}t\u{e9} \u{1F600} \u{2028}",
    "\u{0}\u{1f}\u{7f}",
    "}\"text\":\"x\",{",
];

/// How many times a key on `keys` appears in its object of `text`, following the first of each:
/// 1 when each appears once (`None`: not an object on the way).
fn count_path(text: &str, keys: &[String]) -> Option<usize> {
    struct Count<'f>(&'f [String]);
    impl<'de> Visitor<'de> for Count<'_> {
        type Value = Option<usize>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let (mut n, mut inner) = (0, Some(1));
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                if key != self.0[0].as_str() {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                n += 1;
                let raw: &serde_json::value::RawValue = map.next_value()?;
                if n == 1 && self.0.len() > 1 {
                    inner = count_path(raw.get(), &self.0[1..]);
                }
            }
            Ok(if n == 1 { inner } else { Some(n) })
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    de::Deserializer::deserialize_map(&mut de, Count(keys))
        .ok()
        .flatten()
}

/// Whether records with a duplicate text key are held to the replace_text law as well.
fn duplicates_checked() -> bool {
    static CHECKED: OnceLock<bool> = OnceLock::new();
    *CHECKED
        .get_or_init(|| std::env::var_os("NEARDUP_FUZZ_DUPLICATE_KEYS").is_some_and(|v| v == "1"))
}

fuzz_target!(|data: &[u8]| {
    let (mode, bytes) = neardup_fuzz::split_mode(data);
    let fields = fields(mode);
    let new_text = NEW_TEXTS[(mode as usize / 5) % NEW_TEXTS.len()];
    let record = Record {
        origin: Origin {
            file: "fuzz.jsonl".into(),
            line: 1,
            offset: None,
        },
        bytes: bytes.to_vec(),
        format: Format::Jsonl,
        location: None,
        stored: None,
    };
    let parser = Parser::new(fields.clone());

    // Plain text: the record is the text.
    let lines = Record {
        format: Format::Lines,
        ..record.clone()
    };
    match (parser.parse(&lines), std::str::from_utf8(bytes)) {
        (Ok(doc), Ok(text)) => assert_eq!(doc.text, text),
        (Err(_), Err(_)) => {}
        (got, utf8) => panic!("lines parse {got:?} but UTF-8 check {utf8:?}"),
    }
    assert_eq!(
        parser.replace_text(&lines, new_text).unwrap(),
        new_text.as_bytes()
    );

    let parsed = parser.parse(&record);
    let replaced = parser.replace_text(&record, new_text);
    let Ok(doc) = parsed else { return };
    let text = std::str::from_utf8(bytes).expect("a parsed record is UTF-8");
    if count_path(text, fields.text.keys()) != Some(1) && !duplicates_checked() {
        // A duplicate text key (issue 10, item 5): parse reads the last, replace_text rewrites
        // the first. Set NEARDUP_FUZZ_DUPLICATE_KEYS=1 to check these records too.
        return;
    }
    let out = replaced.unwrap_or_else(|e| panic!("parsed but replace_text failed: {e:?}"));
    let again = Record {
        bytes: out,
        ..record.clone()
    };
    let doc2 = parser
        .parse(&again)
        .unwrap_or_else(|e| panic!("replace_text output does not parse: {e:?}"));
    assert_eq!(doc2.text, new_text, "replaced text");
    // A field whose path is the text's (names that collide) reads the new text; a number never
    // sits there, so the keep value stays the lowest.
    let on_text = |field: Option<&FieldPath>| field == Some(&fields.text);
    let now = |field: Option<&FieldPath>, before: Option<&str>| -> Option<String> {
        if on_text(field) {
            Some(new_text.to_string())
        } else {
            before.map(str::to_string)
        }
    };
    assert_eq!(
        Some(doc2.id.to_string()),
        now(Some(&fields.id), Some(&doc.id)),
        "id after replace_text"
    );
    assert_eq!(
        doc2.keep_value.to_bits(),
        doc.keep_value.to_bits(),
        "keep value after replace_text"
    );
    let url = now(fields.url.as_ref(), doc.url.as_deref());
    let group = match &fields.group {
        Some(field) => now(Some(field), doc.group.as_deref()),
        None => url.clone(),
    };
    assert_eq!(
        doc2.group.as_deref(),
        group.as_deref(),
        "group after replace_text"
    );
    assert_eq!(
        doc2.url.as_deref(),
        url.as_deref(),
        "URL after replace_text"
    );
});
