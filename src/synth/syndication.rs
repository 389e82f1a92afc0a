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
    let base = names[(n - 1) % names.len()];
    // Past the five names, a number tells the sites apart.
    let name = match (n - 1) / names.len() {
        0 => base.to_string(),
        round => format!("{base} {}", round + 1),
    };
    let name = name.as_str();
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
        let stories = std::iter::once(("wire".to_string(), wire.clone())).chain(
            own.iter()
                .enumerate()
                .map(|(i, s)| (format!("s{site}-{i}"), s.clone())),
        );
        push_site(&mut pages, Some(crawl_page), &template, site, stories);
    }
    Some(pages)
}

/// Adds the pages of `site`, each a story inside `template`, numbered in order; site 0's wire page
/// is `crawl_page` itself, when given.
fn push_site(
    pages: &mut Vec<Page>,
    crawl_page: Option<&str>,
    template: &str,
    site: usize,
    stories: impl IntoIterator<Item = (String, Story)>,
) {
    for (number, (story, s)) in stories.into_iter().enumerate() {
        let text = match crawl_page {
            Some(page) if site == 0 && story == "wire" => page.to_string(),
            _ => template
                .replace("{title}", &s.title)
                .replace("{body}", &s.body),
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

/// The shape of a [`syndication_spread`] corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpreadSpec {
    pub sites: usize,
    /// Sites that carry the wire story (the first ones), more than a site has pages.
    pub carriers: usize,
    /// Pages of every site (a carrier's wire page among them).
    pub pages_per_site: usize,
}

/// 12 sites, 9 of them carrying the story, 5 pages a site: the shipped example's case.
impl Default for SpreadSpec {
    fn default() -> Self {
        SpreadSpec {
            sites: 12,
            carriers: 9,
            pages_per_site: 5,
        }
    }
}

/// A corpus where a story is carried by more sites than a template has pages, so that no count
/// of repetitions tells the story from the templates: `spec.sites` sites (site 0 the crawled
/// page's), each with `spec.pages_per_site` pages; the first `spec.carriers` carry the wire story,
/// with the small differences of real syndication: a dateline added (carriers 1, 4, 7, ...), a
/// byline (2, 5, 8, ...), the last paragraph dropped (3, 7, 11, ...). Other stories are `pool`'s,
/// one site each; headline lists reuse the pool's titles.
pub fn syndication_spread(crawl_page: &str, pool: &[Story], spec: SpreadSpec) -> Option<Vec<Page>> {
    let (wire, _) = split_crawl_page(crawl_page)?;
    syndication_spread_of(&wire, crawl_page, pool, spec)
}

/// [`syndication_spread`] with `wire` as the syndicated story (site 0 keeps the crawled page's
/// template around it): a story in another language or script.
pub fn syndication_spread_of(
    wire: &Story,
    crawl_page: &str,
    pool: &[Story],
    spec: SpreadSpec,
) -> Option<Vec<Page>> {
    let (crawled_story, page_template) = split_crawl_page(crawl_page)?;
    // Site 0's wire page is the crawled page itself when the wire story is its story.
    let seed = (crawled_story == *wire).then_some(crawl_page);
    let own_pages = |site: usize| spec.pages_per_site - usize::from(site < spec.carriers);
    let needed: usize = (0..spec.sites).map(own_pages).sum();
    if pool.len() < needed || spec.carriers > spec.sites || spec.pages_per_site == 0 {
        return None;
    }
    let mut pages = Vec::new();
    let mut next_story = 0;
    for site in 0..spec.sites {
        let template = if site == 0 {
            page_template.clone()
        } else {
            let headlines: Vec<&str> = (0..4)
                .map(|k| pool[(needed + 4 * site + k) % pool.len()].title.as_str())
                .collect();
            site_template(site, &headlines)
        };
        let mut stories: Vec<(String, Story)> = Vec::new();
        if site < spec.carriers {
            stories.push(("wire".to_string(), carried(wire, site)));
        }
        for i in 0..own_pages(site) {
            stories.push((format!("s{site}-{i}"), pool[next_story].clone()));
            next_story += 1;
        }
        push_site(&mut pages, seed, &template, site, stories);
    }
    Some(pages)
}

/// A French wire story, for pages that mix languages.
pub const FRENCH_WIRE: &str = "Les négociations de paix sur la Syrie devraient commencer dans les prochains jours, a déclaré mercredi le ministre russe des Affaires étrangères, qui a ajouté que Moscou était prêt à rapprocher les positions des États-Unis et de la Syrie sur l'aide humanitaire.

Le ministre, qui a rencontré son homologue américain à Zurich mercredi, a estimé que les discussions prévues pour la fin du mois pourraient être retardées jusqu'en février en raison de désaccords sur la composition de la délégation de l'opposition.

« Nous sommes sûrs que dans les prochains jours, en janvier, ces pourparlers commenceront », a-t-il dit aux journalistes, avant de souligner que les Nations unies dirigeaient le processus et qu'elles enverraient bientôt les invitations aux participants.

Selon l'Observatoire syrien des droits de l'homme, les combats se sont poursuivis dans le nord du pays pendant toute la journée, et plusieurs villages ont été repris par les forces gouvernementales après des semaines de siège.

Les organisations humanitaires ont appelé toutes les parties à permettre l'accès des convois aux villes assiégées, où des dizaines de milliers de civils manquent de nourriture, de médicaments et de combustible pour l'hiver.

Source : AFP";

/// [`syndication_spread`] on pages that mix languages and scripts: the wire story is French
/// ([`FRENCH_WIRE`]), every page gets its site's navigation in Chinese and Russian above the
/// (English) template and a footer in Arabic below it.
pub fn multilingual_spread(
    crawl_page: &str,
    pool: &[Story],
    spec: SpreadSpec,
) -> Option<Vec<Page>> {
    let wire = Story {
        title: "Syrie : les pourparlers de paix devraient commencer dans les prochains jours"
            .to_string(),
        body: FRENCH_WIRE.to_string(),
    };
    let mut pages = syndication_spread_of(&wire, crawl_page, pool, spec)?;
    for page in &mut pages {
        let site = page.site;
        page.text = format!(
            "首页 | 国际 | 财经 | 体育 {site}\nГлавная | Мир | Экономика {site}\n{}\nجميع الحقوق محفوظة {site} ©\n",
            page.text
        );
    }
    Some(pages)
}

/// The wire story as carrier `site` prints it.
fn carried(wire: &Story, site: usize) -> Story {
    let mut body = wire.body.clone();
    if site % 4 == 3
        && let Some(last) = body.trim_end().rfind("\n\n")
    {
        // The last paragraph dropped (the source line stays).
        let tail = body[last..].to_string();
        let kept_end = body[..last].rfind("\n\n").unwrap_or(last);
        body = format!("{}{}", &body[..kept_end], tail);
    }
    match site % 3 {
        1 => body = format!("PARIS (AFP) - {body}"),
        2 => body = format!("By a staff writer, with AFP\n\n{body}"),
        _ => {}
    }
    Story {
        title: wire.title.clone(),
        body,
    }
}

#[cfg(test)]
mod tests {
    use crate::synth::syndication::{
        SpreadSpec, Story, split_crawl_page, syndication_corpus, syndication_spread,
    };

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

    #[test]
    fn issue14_a_spread_story_has_more_carriers_than_a_template_has_pages() {
        let pool: Vec<Story> = (0..60)
            .map(|i| Story {
                title: format!("title {i}"),
                body: format!("body {i}"),
            })
            .collect();
        let pages = syndication_spread(PAGE, &pool, SpreadSpec::default()).unwrap();
        assert_eq!(pages.len(), 60);
        let wire: Vec<_> = pages.iter().filter(|p| p.story == "wire").collect();
        assert_eq!(wire.len(), 9);
        assert!(wire[1].text.contains("PARIS (AFP) - Syria peace talks"));
        assert!(wire[2].text.contains("By a staff writer, with AFP"));
        let last = "according to the Observatory.";
        assert!(wire[0].text.contains(last) && !wire[3].text.contains(last));
        assert!(wire[3].text.contains("Source :AFP"));
        assert!(syndication_spread(PAGE, &pool[..40], SpreadSpec::default()).is_none());
    }
}
