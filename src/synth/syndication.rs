//! A syndication corpus built from real text: one wire story published by several sites, each
//! inside its own boilerplate, next to other stories inside the same boilerplate.
//!
//! Site 0 is the real crawled page (`data/crawl-page/`): its story region is cut out and the rest,
//! with the page's title replaced, is that site's template. Sites 1 and up get templates of their
//! own (site name, navigation, a list of other headlines, a comment form, a footer). Every site
//! publishes the wire story and `stories_per_site` stories of its own (real Reuters stories).
//! What a detector should find: the wire story's pages form one cluster; pages of one site do not.

/// A story: its title and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Story {
    pub title: String,
    pub body: String,
}

/// One page of the corpus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub id: String,
    /// `https://SITE/PATH`.
    pub url: String,
    pub site: usize,
    /// `wire` for the syndicated story, else the story's own name.
    pub story: String,
    pub text: String,
}

/// The wire story and site 0's template, cut from the crawled page (the story's own kicker and
/// photo caption are dropped from the template; site 0's wire page is the crawled page itself).
pub fn split_crawl_page(page: &str) -> Option<(Story, String)> {
    let start = page.find("Syria peace talks are expected to begin")?;
    let end_marker = "Source :AFP";
    let end = page.find(end_marker)? + end_marker.len();
    let title = page.lines().next()?.trim().to_string();
    let body = page[start..end].to_string();
    let mut template = format!("{}{{body}}{}", &page[..start], &page[end..]);
    // The kicker and photo caption above the story belong to the story, not the site.
    template = template
        .lines()
        .filter(|line| !line.contains("Lavrov"))
        .collect::<Vec<_>>()
        .join("\n");
    for variant in [
        title.clone(),
        "Syria peace talks expected to start 'in next few days'".to_string(),
    ] {
        template = template.replace(&variant, "{title}");
    }
    Some((Story { title, body }, template))
}

/// A template for site `n` (n ≥ 1), with `{title}` and `{body}` slots; `headlines` fill its list
/// of other stories.
fn site_template(n: usize, headlines: &[&str]) -> String {
    let names = [
        "Daily Ledger",
        "Northern Courier",
        "Metro Wire",
        "Harbor Times",
        "Plains Post",
    ];
    let name = names[(n - 1) % names.len()];
    let host = name.to_lowercase().replace(' ', "");
    let mut t = format!(
        "{name} | {host}.example\nHome | World | Business | Markets | Sports | Opinion | {name} TV\n\
         Subscribe to {name} for unlimited access\n\n{{title}}\n\nBy {name} staff with agencies\n\n\
         {{body}}\n\nShare this story on Facebook | Twitter | Email\n\nMore from {name}\n"
    );
    for (i, headline) in headlines.iter().enumerate() {
        t.push_str(&format!("{} hours ago\n{}\n", i + 1, headline));
    }
    t.push_str(&format!(
        "\nLeave a comment\nYour name\nEmail address (never published)\nComment\n\
         Comments are moderated by {name} and may take a while to appear.\nPost comment\n\n\
         About {name} | Contact us | Privacy policy | Terms of service | Advertise with us\n\
         Copyright {name} Media Group. All rights reserved. Reproduction without permission is prohibited.\n"
    ));
    t
}

/// The corpus: `sites` sites (the first is the crawled page's), each with the wire story and
/// `stories_per_site` of `pool`'s stories; other stories of `pool` fill the headline lists.
pub fn syndication_corpus(
    crawl_page: &str,
    pool: &[Story],
    sites: usize,
    stories_per_site: usize,
) -> Option<Vec<Page>> {
    let (wire, page_template) = split_crawl_page(crawl_page)?;
    let needed = sites * stories_per_site;
    if pool.len() < needed + 8 * sites {
        return None;
    }
    let mut pages = Vec::new();
    for site in 0..sites {
        let template = if site == 0 {
            page_template.clone()
        } else {
            let headlines: Vec<&str> = pool[needed + 8 * site..needed + 8 * site + 8]
                .iter()
                .map(|s| s.title.as_str())
                .collect();
            site_template(site, &headlines)
        };
        let own = &pool[site * stories_per_site..(site + 1) * stories_per_site];
        let stories = std::iter::once(("wire".to_string(), &wire)).chain(
            own.iter()
                .enumerate()
                .map(|(i, s)| (format!("s{site}-{i}"), s)),
        );
        for (number, (story, s)) in stories.enumerate() {
            let text = if site == 0 && number == 0 {
                crawl_page.to_string()
            } else {
                template
                    .replace("{title}", &s.title)
                    .replace("{body}", &s.body)
            };
            pages.push(Page {
                id: format!("site{site}-page{number}"),
                url: format!("https://site{site}.example/news/{number}"),
                site,
                story,
                text,
            });
        }
    }
    Some(pages)
}

#[cfg(test)]
mod tests {
    use crate::synth::syndication::{Story, split_crawl_page, syndication_corpus};

    const PAGE: &str = include_str!("../../data/crawl-page/000_4c62a1d8abc1cfed.txt");

    #[test]
    fn crawl_page_splits_into_story_and_template() {
        let (wire, template) = split_crawl_page(PAGE).unwrap();
        assert!(wire.body.starts_with("Syria peace talks are expected"));
        assert!(wire.body.ends_with("Source :AFP"));
        assert!(template.contains("{body}") && template.contains("{title}"));
        assert!(template.contains("Themuslimchronicle"));
        assert!(!template.contains("Lavrov"));
        // Putting the story back gives the page, up to the title variants.
        let rebuilt = template
            .replace("{title}", &wire.title)
            .replace("{body}", &wire.body);
        assert!(rebuilt.contains(&wire.body));
        assert_eq!(rebuilt.lines().count() + 2, PAGE.lines().count());
    }

    #[test]
    fn every_site_publishes_the_wire_story() {
        let pool: Vec<Story> = (0..60)
            .map(|i| Story {
                title: format!("title {i}"),
                body: format!("body {i}"),
            })
            .collect();
        let pages = syndication_corpus(PAGE, &pool, 4, 3).unwrap();
        assert_eq!(pages.len(), 16);
        assert_eq!(pages.iter().filter(|p| p.story == "wire").count(), 4);
        assert!(
            pages
                .iter()
                .all(|p| p.story == "wire" || p.text.contains("body "))
        );
        assert_eq!(
            pages.iter().filter(|p| p.text.contains("body 0\n")).count(),
            1
        );
        assert!(syndication_corpus(PAGE, &pool[..10], 4, 3).is_none());
    }
}
