//! Issue 5 on real text: the crawled AFP page, the story syndicated inside other sites'
//! boilerplate, other stories inside the same site's boilerplate; the textreuse reprint pairs.

use std::collections::BTreeSet;
use std::path::Path;

use neardup::synth::syndication::{Page, Story, syndication_corpus};

use crate::util::*;

fn pool() -> Vec<Story> {
    std::fs::read_to_string(sample("reuters-sample").join("docs.jsonl"))
        .unwrap()
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            Story {
                title: v["title"].as_str().unwrap().to_string(),
                body: v["text"].as_str().unwrap().to_string(),
            }
        })
        .collect()
}

fn crawl_page() -> String {
    std::fs::read_to_string(sample("crawl-page").join("000_4c62a1d8abc1cfed.txt")).unwrap()
}

/// 4 sites × (the wire story + 5 of their own), optionally with the bare wire copy first.
fn write_corpus(dir: &Path, with_wire: bool) -> Vec<Page> {
    let page = crawl_page();
    let pages = syndication_corpus(&page, &pool(), 4, 5).unwrap();
    let mut lines = String::new();
    if with_wire {
        let (wire, _) = neardup::synth::syndication::split_crawl_page(&page).unwrap();
        lines += &serde_json::json!({"id": "afp-wire", "url": "https://afp.example/1", "text": wire.body})
            .to_string();
        lines.push('\n');
    }
    for p in &pages {
        lines += &serde_json::json!({"id": p.id, "url": p.url, "text": p.text}).to_string();
        lines.push('\n');
    }
    write(dir, "pages.jsonl", lines.as_bytes());
    pages
}

/// The clusters of `clusters ARGS`, as sets of ids.
fn clusters(dir: &Path, input: &str, args: &[&str]) -> BTreeSet<BTreeSet<String>> {
    let mut all = vec!["clusters", input, "-o", "c.jsonl", "-q"];
    all.extend_from_slice(args);
    ok(&run_in(dir, &all, b""));
    read_json_lines(&dir.join("c.jsonl"))
        .iter()
        .map(|c| {
            c["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

fn wire_pages(pages: &[Page]) -> BTreeSet<String> {
    pages
        .iter()
        .filter(|p| p.story == "wire")
        .map(|p| p.id.clone())
        .collect()
}

fn same_site_pairs(found: &BTreeSet<BTreeSet<String>>, pages: &[Page]) -> usize {
    let site = |id: &str| pages.iter().find(|p| p.id == id).map(|p| p.site);
    found
        .iter()
        .map(|c| {
            let ids: Vec<&String> = c.iter().collect();
            let mut n = 0;
            for (i, a) in ids.iter().enumerate() {
                for b in &ids[i + 1..] {
                    n += usize::from(site(a).is_some() && site(a) == site(b));
                }
            }
            n
        })
        .sum()
}

#[test]
fn issue_5_syndicated_copies_cluster_only_once_boilerplate_is_stripped() {
    let dir = tempfile::tempdir().unwrap();
    let pages = write_corpus(dir.path(), false);
    let wire = wire_pages(&pages);
    assert_eq!(wire.len(), 4);

    // Without stripping: the real page's boilerplate hides its copy of the story, and pages of
    // that site cluster through their shared boilerplate.
    let plain = clusters(dir.path(), "pages.jsonl", &["--threshold", "0.5"]);
    assert!(!plain.contains(&wire), "{plain:?}");
    assert!(same_site_pairs(&plain, &pages) > 0, "{plain:?}");

    // Counting lines over the whole corpus: boilerplate repeats on 6 pages of a site, the story
    // on 4 sites, so --min-docs 5 takes the one and leaves the other.
    let stripped = clusters(
        dir.path(),
        "pages.jsonl",
        &[
            "--threshold",
            "0.5",
            "--strip-boilerplate",
            "--min-docs",
            "5",
        ],
    );
    assert_eq!(stripped, BTreeSet::from([wire.clone()]));
    // Counting per site: no fan-out to guess. Also at the default threshold.
    for threshold in ["0.5", "0.8"] {
        let per_site = clusters(
            dir.path(),
            "pages.jsonl",
            &[
                "--threshold",
                threshold,
                "--strip-boilerplate",
                "--group-field",
                "url",
            ],
        );
        assert_eq!(per_site, BTreeSet::from([wire.clone()]), "at {threshold}");
    }
}

#[test]
fn issue_5_containment_finds_the_story_inside_each_page() {
    let dir = tempfile::tempdir().unwrap();
    let pages = write_corpus(dir.path(), true);
    let mut expected = wire_pages(&pages);
    expected.insert("afp-wire".into());
    let jaccard = clusters(dir.path(), "pages.jsonl", &[]);
    assert!(
        !jaccard.iter().any(|c| c.contains("afp-wire")),
        "{jaccard:?}"
    );
    let contained = clusters(dir.path(), "pages.jsonl", &["--measure", "containment"]);
    assert_eq!(contained, BTreeSet::from([expected]));
    let c = read_json_lines(&dir.path().join("c.jsonl"));
    assert_eq!(c[0]["kept"], "afp-wire");
    for m in c[0]["members"].as_array().unwrap().iter().skip(1) {
        assert_eq!(m["role"], "container", "{m}");
        assert!(m["similarity"].as_f64().unwrap() > 0.95, "{m}");
    }
}

#[test]
fn issue_5_textreuse_reprint_pairs_are_found_by_containment() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample("textreuse-ats").join("docs.jsonl.gz");
    let input = input.to_str().unwrap();
    let pairs = BTreeSet::from([
        BTreeSet::from([
            "ats/calltounconv00baxt".to_string(),
            "ats/lifeofrevrichard00baxt".to_string(),
        ]),
        BTreeSet::from([
            "ats/practicalthought00nev".to_string(),
            "ats/thoughtsonpopery00nevi".to_string(),
        ]),
        BTreeSet::from([
            "ats/remember00palm".to_string(),
            "ats/remembermeorholy00palm".to_string(),
        ]),
    ]);
    // Word-5-gram Jaccard 0.28, 0.46 and 0.70: none reaches 0.8.
    assert!(clusters(dir.path(), input, &[]).is_empty());
    for verify in ["borderline", "exact"] {
        let found = clusters(
            dir.path(),
            input,
            &["--measure", "containment", "--verify", verify],
        );
        assert_eq!(found, pairs, "--verify {verify}");
    }
    // Exact containment as computed independently: 0.879, 0.925, 0.829.
    let c = read_json_lines(&dir.path().join("c.jsonl"));
    let mut values: Vec<f64> = c
        .iter()
        .map(|c| c["members"][1]["similarity"].as_f64().unwrap())
        .collect();
    values.sort_by(f64::total_cmp);
    let expected = [0.829, 0.879, 0.925];
    for (v, e) in values.iter().zip(expected) {
        assert!((v - e).abs() < 0.001, "{values:?}");
    }
}

#[test]
fn issue_5_lines_removes_boilerplate_and_rewrites_only_the_text_field() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path(), false);
    ok(&run_in(
        dir.path(),
        &[
            "lines",
            "pages.jsonl",
            "-o",
            "stripped.jsonl",
            "--group-field",
            "url",
            "--stats-json",
            "s.json",
            "-q",
        ],
        b"",
    ));
    let before = read_json_lines(&dir.path().join("pages.jsonl"));
    let after = read_json_lines(&dir.path().join("stripped.jsonl"));
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b["id"], a["id"]);
        assert_eq!(b["url"], a["url"]);
        let (bt, at) = (b["text"].as_str().unwrap(), a["text"].as_str().unwrap());
        assert!(at.len() < bt.len() / 2 + 2000, "{}", a["id"]);
        // The repeated lines are gone (a line gluing the site name to a title stays).
        assert!(
            !at.lines()
                .any(|l| l.trim() == "Themuslimchronicle, themuslimchronicle"),
            "{}",
            a["id"]
        );
        assert!(!at.contains("Leave a comment"));
    }
    let wire = after.iter().find(|r| r["id"] == "site2-page0").unwrap();
    assert!(wire["text"].as_str().unwrap().contains("Lavrov"));
    let s = stats(&dir.path().join("s.json"));
    assert_eq!(s["docs_read"], 24);
    assert_eq!(s["docs_written"], 24);
    assert!(s["units_removed"].as_u64().unwrap() > 24 * 15, "{s}");
    assert!(s["bytes_removed"].as_u64().unwrap() > 0);
    // Every byte outside the text field is kept: the records differ only inside "text".
    let raw_before = read_lines(&dir.path().join("pages.jsonl"));
    let raw_after = read_lines(&dir.path().join("stripped.jsonl"));
    for (b, a) in raw_before.iter().zip(&raw_after) {
        let head = |s: &str| s[..s.find("\"text\"").unwrap()].to_string();
        assert_eq!(head(b), head(a));
    }
}

/// Issue 14: a story carried by 9 of 12 sites, each site's template on 5 pages, the copies with a
/// dateline or byline added or the last paragraph dropped. No count of repetitions tells the
/// story from the templates; `--strip-boilerplate` alone finds every copy, with URLs (counted per
/// host) and without (told by the lines themselves), and no cluster mixes stories or one site's
/// pages.
#[test]
fn issue14_strip_boilerplate_alone_finds_a_story_carried_by_more_sites_than_a_template_has_pages() {
    use neardup::synth::syndication::{SpreadSpec, syndication_spread};
    let dir = tempfile::tempdir().unwrap();
    let spec = SpreadSpec::default();
    let pages = syndication_spread(&crawl_page(), &pool(), spec).unwrap();
    let wire = wire_pages(&pages);
    assert_eq!(wire.len(), 9);
    for with_url in [true, false] {
        write_pages(dir.path(), &pages, with_url);
        assert_every_copy_found_and_nothing_mixed(dir.path(), &pages, with_url);
        // Without stripping the templates hide the copies.
        let plain = clusters(dir.path(), "pages.jsonl", &[]);
        assert!(!plain.contains(&wire), "{plain:?}");
    }
}

/// `pages` as `DIR/pages.jsonl`, with or without their URLs.
fn write_pages(dir: &Path, pages: &[Page], with_url: bool) {
    let mut lines = String::new();
    for p in pages {
        let record = match with_url {
            true => serde_json::json!({"id": p.id, "url": p.url, "text": p.text}),
            false => serde_json::json!({"id": p.id, "text": p.text}),
        };
        lines += &(record.to_string() + "\n");
    }
    write(dir, "pages.jsonl", lines.as_bytes());
}

/// `clusters --strip-boilerplate` on `DIR/pages.jsonl` puts every copy of the wire story in one
/// cluster, no cluster mixes stories, and no cluster joins pages of one site.
fn assert_every_copy_found_and_nothing_mixed(dir: &Path, pages: &[Page], with_url: bool) {
    let found = clusters(dir, "pages.jsonl", &["--strip-boilerplate"]);
    let story = |id: &String| pages.iter().find(|p| &p.id == id).unwrap().story.clone();
    let mixed = found
        .iter()
        .filter(|c| c.iter().map(story).collect::<BTreeSet<_>>().len() > 1)
        .count();
    assert_eq!(mixed, 0, "with url: {with_url}: {found:?}");
    assert!(
        found.contains(&wire_pages(pages)),
        "with url: {with_url}: {found:?}"
    );
    assert_eq!(same_site_pairs(&found, pages), 0, "with url: {with_url}");
}

/// Issue 14: `clusters --spans` gives, for each member, where in its original text the content it
/// was compared on is: each copy of the story lies inside its spans, most of its site's template
/// outside them; offsets count characters.
#[test]
fn issue14_clusters_spans_point_at_the_story_inside_each_sites_template() {
    use neardup::synth::syndication::{SpreadSpec, split_crawl_page, syndication_spread};
    let dir = tempfile::tempdir().unwrap();
    let spec = SpreadSpec::default();
    let pages = syndication_spread(&crawl_page(), &pool(), spec).unwrap();
    let (story, _) = split_crawl_page(&crawl_page()).unwrap();
    let mut lines = String::new();
    for p in &pages {
        lines +=
            &(serde_json::json!({"id": p.id, "url": p.url, "text": p.text}).to_string() + "\n");
    }
    write(dir.path(), "pages.jsonl", lines.as_bytes());
    let args = [
        "clusters",
        "pages.jsonl",
        "-o",
        "c.jsonl",
        "-q",
        "--strip-boilerplate",
        "--spans",
    ];
    ok(&run_in(dir.path(), &args, b""));
    let found = read_json_lines(&dir.path().join("c.jsonl"));
    let wire = found
        .iter()
        .find(|c| c["size"] == 9)
        .expect("the story's cluster");
    let seed = crawl_page();
    let members = wire["members"].as_array().unwrap();
    assert!(
        members
            .iter()
            .any(|m| pages.iter().any(|p| p.id == m["id"] && p.text == seed)),
        "the crawled page itself is one of the copies"
    );
    for member in members {
        let page = pages.iter().find(|p| p.id == member["id"]).unwrap();
        let chars: Vec<char> = page.text.chars().collect();
        let spans: Vec<(usize, usize)> = member["spans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s[0].as_u64().unwrap() as usize,
                    s[1].as_u64().unwrap() as usize,
                )
            })
            .collect();
        assert!(spans.windows(2).all(|w| w[0].1 < w[1].0), "{spans:?}");
        let shown: Vec<String> = spans
            .iter()
            .map(|&(start, end)| chars[start..end].iter().collect())
            .collect();
        let inside = |line: &str| shown.iter().any(|s| s.contains(line));
        // Every paragraph of the story this copy carries is inside a span.
        let story_lines: Vec<&str> = story
            .body
            .lines()
            .filter(|l| l.len() > 40 && page.text.contains(*l))
            .collect();
        assert!(story_lines.len() >= 5, "{}", page.id);
        for line in &story_lines {
            assert!(
                inside(line),
                "{}: story line outside the spans: {line}",
                page.id
            );
        }
        // The template: lines on every page of the site, not the story's. Most are outside.
        let site_pages: Vec<&neardup::synth::syndication::Page> =
            pages.iter().filter(|p| p.site == page.site).collect();
        let template: Vec<&str> = page
            .text
            .lines()
            .filter(|l| l.trim().len() > 3 && !story.body.contains(l.trim()))
            .filter(|l| site_pages.iter().all(|p| p.text.lines().any(|m| m == *l)))
            .collect();
        let outside = template.iter().filter(|l| !inside(l.trim())).count();
        assert!(
            template.len() >= 10 && outside * 10 >= template.len() * 8,
            "{}: {outside} of {} template lines outside the spans",
            page.id,
            template.len()
        );
    }
}

/// Issue 14: pages that mix languages and scripts — an English template with an Arabic footer
/// and Chinese and Russian navigation around a French wire story carried by 9 of 12 sites —
/// give every copy of the story in one cluster and mix nothing, with and without URLs.
#[test]
fn issue14_a_french_story_on_multilingual_pages_is_found_on_every_site_that_carries_it() {
    use neardup::synth::syndication::{SpreadSpec, multilingual_spread};
    let dir = tempfile::tempdir().unwrap();
    let spec = SpreadSpec::default();
    let pages = multilingual_spread(&crawl_page(), &pool(), spec).unwrap();
    assert_eq!(wire_pages(&pages).len(), 9);
    assert!(
        pages
            .iter()
            .filter(|p| p.story == "wire")
            .all(|p| p.text.contains("Les négociations")),
        "site 0 carries the French story too"
    );
    for with_url in [true, false] {
        write_pages(dir.path(), &pages, with_url);
        assert_every_copy_found_and_nothing_mixed(dir.path(), &pages, with_url);
    }
}
