//! Writes the syndication corpus (`neardup::synth::syndication`) as JSON Lines with a truth column:
//! `cargo run --example syndication -- [SITES] [STORIES_PER_SITE] > corpus.jsonl`.
//! Fields: id, url, site, story (`wire` for the syndicated story), text.

use neardup::synth::syndication::{Story, syndication_corpus};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let sites: usize = args.next().map_or(Ok(4), |a| a.parse())?;
    let per_site: usize = args.next().map_or(Ok(5), |a| a.parse())?;
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
    let pages = syndication_corpus(&page, &pool, sites, per_site)
        .ok_or("not enough stories in data/reuters-sample for that many sites")?;
    for p in pages {
        let line = serde_json::json!({
            "id": p.id, "url": p.url, "site": p.site, "story": p.story, "text": p.text,
        });
        println!("{line}");
    }
    Ok(())
}
