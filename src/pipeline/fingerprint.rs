//! What a run computes from: the settings that shape the output, by name, and each input's name
//! and [`Content`]; how two fingerprints differ, as a one-line phrase; and its wire format, which
//! never fails to decode into something that can be compared (bytes that are not a fingerprint
//! decode to `None`). The processes of a distributed run trade fingerprints at start-up; a
//! resumable run keeps one in its work directory and resumes only from a run with the same.

use crate::pipeline::content::{Content, content, content_difference, io_reason};
use crate::read::Input;

/// The name of the setting that holds the number of processes; a peer that counts differently
/// can never complete the connections, so it is reported as soon as it is met.
pub(crate) const PROCESSES: &str = "processes";

/// The names whose flag is on, joined with commas, or `none`.
pub(crate) fn names_on(list: &[(bool, &str)]) -> String {
    let names: Vec<&str> = list.iter().filter(|o| o.0).map(|o| o.1).collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

impl crate::pipeline::Dedup {
    /// Every setting of this deduplicator that shapes a run's output, by name and as text, with
    /// the input format and record size limit. (Batch sizes, the memory budget and temporary
    /// directories do not shape it.)
    pub(crate) fn output_settings(
        &self,
        format: crate::read::FormatChoice,
        max_doc_bytes: usize,
    ) -> Vec<Setting> {
        let normalize = self.normalizer.options();
        let optional = |field: &Option<crate::read::FieldPath>| {
            field
                .as_ref()
                .map_or_else(|| "none".to_string(), |f| f.to_string())
        };
        vec![
            Setting::new("version", env!("CARGO_PKG_VERSION")),
            Setting::new("threshold", self.threshold),
            Setting::new("num_perm", self.num_perm()),
            Setting::new("seed", self.seed),
            Setting::new(
                "bands × rows",
                format!("{} × {}", self.params.num_bands, self.params.rows_per_band),
            ),
            // The width of the band keys (a build of 32-bit keys lacks it).
            Setting::new("band key bits", self.index_params().band_key_bits),
            Setting::new("shingle", self.shingler.kind()),
            Setting::new(
                "normalization",
                names_on(&[
                    (normalize.nfkc, "nfkc"),
                    (normalize.lowercase, "lowercase"),
                    (normalize.strip_punctuation, "strip_punctuation"),
                    (normalize.collapse_whitespace, "collapse_whitespace"),
                ]),
            ),
            Setting::new("verify", format!("{:?}", self.verify).to_lowercase()),
            Setting::new("measure", format!("{:?}", self.measure).to_lowercase()),
            Setting::new("keep", &self.keep),
            Setting::new("text field", &self.fields.text),
            Setting::new("id field", &self.fields.id),
            Setting::new("keep field", optional(&self.fields.keep)),
            Setting::new("group field", optional(&self.fields.group)),
            Setting::new("url field", optional(&self.fields.url)),
            Setting::new("strict", self.strict),
            Setting::new("format", format),
            Setting::new("max_doc_bytes", max_doc_bytes),
            Setting::new(
                "boilerplate",
                self.index_params()
                    .boilerplate
                    .unwrap_or_else(|| "none".to_string()),
            ),
            Setting::new("spans", self.spans),
        ]
    }
}

/// One named setting and its value as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Setting {
    pub name: String,
    pub value: String,
}

impl Setting {
    pub fn new(name: &str, value: impl ToString) -> Setting {
        Setting {
            name: name.to_string(),
            value: value.to_string(),
        }
    }
}

/// One input: its name as given and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct InputPrint {
    name: String,
    content: Content,
}

/// What a process would compute from: its settings and its inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    settings: Vec<Setting>,
    inputs: Vec<InputPrint>,
}

impl Fingerprint {
    /// The fingerprint of `settings` and of `inputs` as they are now (reads at most 2 MiB of
    /// each).
    pub fn new(settings: Vec<Setting>, inputs: &[Input]) -> Fingerprint {
        Fingerprint {
            settings,
            inputs: inputs
                .iter()
                .map(|input| InputPrint {
                    name: input.display_name(),
                    content: match input {
                        Input::Path(path) => {
                            content(path).unwrap_or_else(|e| Content::Unreadable(io_reason(&e)))
                        }
                        Input::Stdin => Content::Other("standard input".to_string()),
                    },
                })
                .collect(),
        }
    }

    pub(crate) fn setting(&self, name: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.value.as_str())
    }

    /// The first way in which `self` (a peer's, "there") differs from `here` (this process's),
    /// as a short phrase; `None` when they agree.
    pub fn difference(&self, here: &Fingerprint) -> Option<String> {
        for mine in &here.settings {
            match self.setting(&mine.name) {
                None => return Some(format!("{} is not set there", mine.name)),
                Some(theirs) if theirs != mine.value => {
                    return Some(format!(
                        "{} is {theirs} there, {} here",
                        mine.name, mine.value
                    ));
                }
                Some(_) => {}
            }
        }
        if let Some(extra) = self
            .settings
            .iter()
            .find(|s| here.setting(&s.name).is_none())
        {
            return Some(format!(
                "{} is {} there, not set here",
                extra.name, extra.value
            ));
        }
        if self.inputs.len() != here.inputs.len() {
            return Some(format!(
                "{} inputs there, {} here",
                self.inputs.len(),
                here.inputs.len()
            ));
        }
        for (i, (there, here)) in self.inputs.iter().zip(&here.inputs).enumerate() {
            if there.name != here.name {
                return Some(format!(
                    "input {} is {} there, {} here",
                    i + 1,
                    there.name,
                    here.name
                ));
            }
            if let Some(difference) = content_difference(&there.content, &here.content) {
                return Some(format!("input {} {difference}", here.name));
            }
        }
        None
    }

    /// The bytes sent to the peers.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_u64(&mut out, self.settings.len() as u64);
        for setting in &self.settings {
            put_str(&mut out, &setting.name);
            put_str(&mut out, &setting.value);
        }
        put_u64(&mut out, self.inputs.len() as u64);
        for input in &self.inputs {
            put_str(&mut out, &input.name);
            match &input.content {
                Content::File { size, head, tail } => {
                    out.push(0);
                    for v in [size, head, tail] {
                        put_u64(&mut out, *v);
                    }
                }
                Content::Dir {
                    files,
                    size,
                    listing,
                    head,
                    tail,
                } => {
                    out.push(1);
                    for v in [files, size, listing, head, tail] {
                        put_u64(&mut out, *v);
                    }
                }
                Content::Other(what) => {
                    out.push(2);
                    put_str(&mut out, what);
                }
                Content::Unreadable(why) => {
                    out.push(3);
                    put_str(&mut out, why);
                }
            }
        }
        out
    }

    /// Reads what [`Fingerprint::encode`] wrote; `None` for anything else (never panics).
    pub(crate) fn decode(bytes: &[u8]) -> Option<Fingerprint> {
        let mut r = Reader { bytes, at: 0 };
        let count = r.u64()?;
        let mut settings = Vec::new();
        for _ in 0..count {
            settings.push(Setting {
                name: r.string()?,
                value: r.string()?,
            });
        }
        let count = r.u64()?;
        let mut inputs = Vec::new();
        for _ in 0..count {
            let name = r.string()?;
            let content = match r.byte()? {
                0 => Content::File {
                    size: r.u64()?,
                    head: r.u64()?,
                    tail: r.u64()?,
                },
                1 => Content::Dir {
                    files: r.u64()?,
                    size: r.u64()?,
                    listing: r.u64()?,
                    head: r.u64()?,
                    tail: r.u64()?,
                },
                2 => Content::Other(r.string()?),
                3 => Content::Unreadable(r.string()?),
                _ => return None,
            };
            inputs.push(InputPrint { name, content });
        }
        (r.at == bytes.len()).then_some(Fingerprint { settings, inputs })
    }
}

pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u64(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Reads a peer's bytes; every read is checked against what is there.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: u64) -> Option<&[u8]> {
        let n = usize::try_from(n).ok()?;
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Some(taken)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    fn string(&mut self) -> Option<String> {
        let len = self.u64()?;
        self.take(len)
            .and_then(|b| String::from_utf8(b.to_vec()).ok())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::pipeline::content::Content;
    use crate::pipeline::fingerprint::{Fingerprint, InputPrint, Setting};
    use crate::read::Input;

    fn print(threshold: &str, inputs: &[(&str, Content)]) -> Fingerprint {
        Fingerprint {
            settings: vec![
                Setting::new("threshold", threshold),
                Setting::new("processes", 2),
            ],
            inputs: inputs
                .iter()
                .map(|(name, content)| InputPrint {
                    name: name.to_string(),
                    content: content.clone(),
                })
                .collect(),
        }
    }

    fn file(size: u64, head: u64, tail: u64) -> Content {
        Content::File { size, head, tail }
    }

    #[test]
    fn differences_are_named_there_then_here() {
        let here = print("0.8", &[("r.jsonl", file(3_402_001, 1, 2))]);
        assert_eq!(here.difference(&here), None);
        let cases = [
            (
                print("0.9", &[("r.jsonl", file(3_402_001, 1, 2))]),
                "threshold is 0.9 there, 0.8 here",
            ),
            (
                print("0.8", &[("r.jsonl", file(3_457_120, 1, 2))]),
                "input r.jsonl is 3,457,120 bytes there, 3,402,001 here",
            ),
            (
                print("0.8", &[("r.jsonl", file(3_402_001, 7, 2))]),
                "input r.jsonl has other content there (same size; its first MiB differs)",
            ),
            (
                print("0.8", &[("r.jsonl", file(3_402_001, 1, 7))]),
                "input r.jsonl has other content there (same size; its last MiB differs)",
            ),
            (
                print("0.8", &[("s.jsonl", file(3_402_001, 1, 2))]),
                "input 1 is s.jsonl there, r.jsonl here",
            ),
            (print("0.8", &[]), "0 inputs there, 1 here"),
            (
                print(
                    "0.8",
                    &[("r.jsonl", Content::Unreadable("not found".to_string()))],
                ),
                "input r.jsonl is unreadable (not found) there, 3,402,001 bytes here",
            ),
        ];
        for (there, want) in cases {
            assert_eq!(there.difference(&here).as_deref(), Some(want));
        }
        let mut fewer = here.clone();
        fewer.settings.pop();
        assert_eq!(
            fewer.difference(&here).as_deref(),
            Some("processes is not set there")
        );
        assert_eq!(
            here.difference(&fewer).as_deref(),
            Some("processes is 2 there, not set here")
        );
    }

    #[test]
    fn inputs_are_hashed_at_both_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let big = vec![b'x'; 3 << 20];
        let input = [Input::Path(path.clone())];
        let fingerprint = |bytes: &[u8]| {
            std::fs::write(&path, bytes).unwrap();
            Fingerprint::new(Vec::new(), &input)
        };
        let base = fingerprint(&big);
        let mut changed = big.clone();
        changed[10] = b'y';
        let first = fingerprint(&changed);
        changed[10] = b'x';
        changed[(3 << 20) - 10] = b'y';
        let last = fingerprint(&changed);
        changed[(3 << 20) - 10] = b'x';
        changed[(3 << 20) / 2] = b'y';
        let middle = fingerprint(&changed);
        assert!(first.difference(&base).unwrap().contains("first MiB"));
        assert!(last.difference(&base).unwrap().contains("last MiB"));
        // The middle is not read: size and ends are the check.
        assert_eq!(middle.difference(&base), None);
        let missing = Fingerprint::new(Vec::new(), &[Input::Path(dir.path().join("no"))]);
        assert_eq!(
            missing.inputs[0].content,
            Content::Unreadable("not found".to_string())
        );
    }

    #[test]
    fn directories_compare_names_sizes_and_ends() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        for d in [&a, &b] {
            std::fs::create_dir_all(d.join("sub")).unwrap();
            std::fs::write(d.join("one.txt"), "first document").unwrap();
            std::fs::write(d.join("sub/two.txt"), "second document").unwrap();
        }
        let of = |d: &std::path::Path| {
            let mut f = Fingerprint::new(Vec::new(), &[Input::Path(d.to_path_buf())]);
            f.inputs[0].name = "docs".to_string();
            f
        };
        assert_eq!(of(&b).difference(&of(&a)), None);
        std::fs::write(b.join("sub/two.txt"), "second documenT").unwrap();
        assert_eq!(
            of(&b).difference(&of(&a)).as_deref(),
            Some("input docs has other content there (same size; its first MiB differs)")
        );
        std::fs::rename(b.join("sub/two.txt"), b.join("sub/zwei.txt")).unwrap();
        assert_eq!(
            of(&b).difference(&of(&a)).as_deref(),
            Some("input docs holds other file names or sizes there")
        );
        std::fs::write(b.join("three.txt"), "third").unwrap();
        assert_eq!(
            of(&b).difference(&of(&a)).as_deref(),
            Some(
                "input docs is a directory of 3 files (34 bytes) there, a directory of 2 files (29 bytes) here"
            )
        );
    }

    fn arbitrary_print() -> impl Strategy<Value = Fingerprint> {
        let content = prop_oneof![
            (any::<u64>(), any::<u64>(), any::<u64>())
                .prop_map(|(size, head, tail)| Content::File { size, head, tail }),
            (
                any::<u64>(),
                any::<u64>(),
                any::<u64>(),
                any::<u64>(),
                any::<u64>()
            )
                .prop_map(|(files, size, listing, head, tail)| Content::Dir {
                    files,
                    size,
                    listing,
                    head,
                    tail
                }),
            ".*".prop_map(Content::Other),
            ".*".prop_map(Content::Unreadable),
        ];
        (
            proptest::collection::vec((".*", ".*"), 0..8),
            proptest::collection::vec((".*", content), 0..8),
        )
            .prop_map(|(settings, inputs)| Fingerprint {
                settings: settings
                    .into_iter()
                    .map(|(name, value)| Setting { name, value })
                    .collect(),
                inputs: inputs
                    .into_iter()
                    .map(|(name, content)| InputPrint { name, content })
                    .collect(),
            })
    }

    proptest! {
        #[test]
        fn a_fingerprint_survives_the_wire(print in arbitrary_print()) {
            prop_assert_eq!(Fingerprint::decode(&print.encode()), Some(print));
        }

        #[test]
        fn any_bytes_decode_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Fingerprint::decode(&bytes);
        }

        #[test]
        fn a_cut_or_extended_fingerprint_is_refused(print in arbitrary_print(), cut in 1usize..64) {
            let bytes = print.encode();
            let cut = cut.min(bytes.len());
            prop_assert_eq!(Fingerprint::decode(&bytes[..bytes.len() - cut]), None);
            let mut longer = bytes.clone();
            longer.push(0);
            prop_assert_eq!(Fingerprint::decode(&longer), None);
        }
    }
}
