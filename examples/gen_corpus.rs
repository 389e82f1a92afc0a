//! Writes a synthetic corpus with known near-duplicate families (see `neardup::synth`).
//!
//! `cargo run --release --example gen_corpus -- DOCS OUT.jsonl TRUTH.tsv [SEED] [DUP_FRACTION]`
//!
//! The truth file is tab-separated with a header: `id`, `cluster` (the family's original id),
//! `transform` (original, exact, editN, reorder, truncateN, boilerplate).

use std::fs::File;
use std::io::{BufWriter, Write};

use neardup::synth::{Corpus, CorpusSpec};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: gen_corpus DOCS OUT.jsonl TRUTH.tsv [SEED] [DUP_FRACTION]");
        std::process::exit(2);
    }
    let parse_err =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_string());
    let spec = CorpusSpec {
        docs: args[0]
            .parse()
            .map_err(|_| parse_err("DOCS must be a number"))?,
        seed: args
            .get(3)
            .map_or(Ok(1), |s| s.parse())
            .map_err(|_| parse_err("bad SEED"))?,
        dup_fraction: args
            .get(4)
            .map_or(Ok(0.3), |s| s.parse())
            .map_err(|_| parse_err("bad DUP_FRACTION"))?,
        ..CorpusSpec::default()
    };
    let mut docs = BufWriter::with_capacity(1 << 20, File::create(&args[1])?);
    let mut truth = BufWriter::new(File::create(&args[2])?);
    writeln!(truth, "id\tcluster\ttransform")?;
    for doc in Corpus::new(spec) {
        serde_json::to_writer(
            &mut docs,
            &serde_json::json!({"id": doc.id, "text": doc.text}),
        )?;
        docs.write_all(b"\n")?;
        writeln!(truth, "{}\t{}\t{}", doc.id, doc.family, doc.transform)?;
    }
    docs.flush()?;
    truth.flush()
}
