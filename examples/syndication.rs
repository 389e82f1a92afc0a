//! Writes a syndication corpus (`neardup::synth::syndication`) as JSON Lines with a truth column:
//!
//! - `cargo run --example syndication -- [SITES] [STORIES_PER_SITE] > corpus.jsonl`: every site
//!   carries the wire story beside its own;
//! - `cargo run --example syndication -- spread [SITES] [CARRIERS] [PAGES_PER_SITE]` (default 12 9
//!   5): the story carried by more sites than a template has pages, its copies with a dateline or
//!   byline added or the last paragraph dropped;
//! - `cargo run --example syndication -- multilingual [SITES] [CARRIERS] [PAGES_PER_SITE]`: the
//!   same with a French wire story, Chinese and Russian navigation and an Arabic footer on every
//!   page.
//!
//! Fields: id, url, site, story (`wire` for the syndicated story), text.

use neardup::synth::syndication::{
    SpreadSpec, Story, multilingual_spread, syndication_corpus, syndication_spread,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).peekable();
    let case = args.next_if(|a| a == "spread" || a == "multilingual");
    let mut number = |default: usize| args.next().map_or(Ok(default), |a| a.parse());
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let page = std::fs::read_to_string(root.join("crawl-page/000_4c62a1d8abc1cfed.txt"))?;
    let pool: Vec<Story> = std::fs::read_to_string(root.join("reuters-sample/docs.jsonl"))?
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line)?;
            Ok(Story {
                title: v["title"].as_str().unwrap_or_default().to_string(),
                body: v["text"].as_str().unwrap_or_default().to_string(),
            })
        })
        .collect::<Result<_, serde_json::Error>>()?;
    let pages = if let Some(case) = case {
        let default = SpreadSpec::default();
        let spec = SpreadSpec {
            sites: number(default.sites)?,
            carriers: number(default.carriers)?,
            pages_per_site: number(default.pages_per_site)?,
        };
        match case.as_str() {
            "spread" => syndication_spread(&page, &pool, spec),
            _ => multilingual_spread(&page, &pool, spec),
        }
    } else {
        let (sites, per_site) = (number(4)?, number(5)?);
        syndication_corpus(&page, &pool, sites, per_site)
    }
    .ok_or("not enough stories in data/reuters-sample for that corpus")?;
    for p in pages {
        let line = serde_json::json!({
            "id": p.id, "url": p.url, "site": p.site, "story": p.story, "text": p.text,
        });
        println!("{line}");
    }
    Ok(())
}
