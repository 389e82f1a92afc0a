//! Telling a repeated block of prose (a story's paragraph, carried by many sites) from a repeated
//! template line (navigation, headline lists, dates, comment forms, footers), by the unit itself.
//!
//! Repetition alone cannot tell them apart: a wire story carried by nine sites repeats its
//! paragraphs on nine pages, more than a site's template repeats on a small site's pages. jusText
//! (Pomikálek 2011) classifies blocks by their length and their *stopword density* (the share of
//! their words that are a language's function words: running sentences are full of them, menus
//! and headline lists are not). [`Prose::class`] and [`is_prose_in`] keep that rule, with
//! jusText's thresholds:
//!
//! - the document's language is the one whose stopword list covers the most of its words (at least
//!   [`MIN_STOPWORDS`] of them and a tenth of all words); lists from the `stop-words` crate
//!   (stopwords-iso: 50-odd languages, Arabic, Chinese and Japanese among them). When the document
//!   has a language, a unit that is not prose in it is judged again in the unit's own (found the
//!   same way from its words), so a story in one language inside a template in another stays
//!   prose;
//! - a unit of at least [`LONG`] characters with a stopword density of at least [`HIGH_DENSITY`]
//!   is prose ("good" in jusText);
//! - one of at least [`SHORT`] characters with a density of at least [`LOW_DENSITY`] that ends a
//!   sentence is "near-good": prose when a unit right before or after it is prose or near-good
//!   (jusText's context rule, on the nearest units: a one-sentence paragraph inside a story is
//!   prose, a sentence of a comment form between its short lines is not; a headline, which ends
//!   without a full stop, is never near-good);
//! - a unit shorter than [`SHORT`] is a template line (jusText's "short");
//! - without a language (no list covers the text, or its script writes no spaces between words,
//!   as Thai), and for a unit mostly in a script without spaces (whose words UAX #29 cannot
//!   always find), a unit is also prose when it holds at least [`LONG`] characters and two
//!   sentences.
//!
//! Lengths count characters, a character of a script written without spaces (Han, kana, Thai,
//! Lao, Khmer, Myanmar) as three, about what a word costs in a spaced script. Words are Unicode
//! words (UAX #29), lowercased; right-to-left text needs nothing special.

use std::collections::HashMap;
use std::sync::OnceLock;

use unicode_segmentation::UnicodeSegmentation;

/// Characters from which a unit with a high stopword density is prose.
pub const LONG: usize = 200;
/// Characters from which a sentence with a low stopword density is prose.
pub const SHORT: usize = 70;
/// jusText's high stopword density.
pub const HIGH_DENSITY: f64 = 0.32;
/// jusText's low stopword density.
pub const LOW_DENSITY: f64 = 0.30;
/// Stopwords a document needs for its language to count.
pub const MIN_STOPWORDS: usize = 3;

/// Every stopword of every list, with the languages it belongs to.
struct Stopwords {
    /// Word to the indices of the languages whose lists hold it.
    words: HashMap<&'static str, Vec<u16>>,
    languages: usize,
}

fn stopwords() -> &'static Stopwords {
    static TABLE: OnceLock<Stopwords> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut words: HashMap<&'static str, Vec<u16>> = HashMap::new();
        let languages = stop_words::available_languages();
        for (index, code) in languages.iter().enumerate() {
            for word in stop_words::lookup(code).unwrap_or_default() {
                let entry = words.entry(*word).or_default();
                if entry.last() != Some(&(index as u16)) {
                    entry.push(index as u16);
                }
            }
        }
        Stopwords {
            words,
            languages: languages.len(),
        }
    })
}

/// The prose test for the units of one document; its language is found the first time a unit
/// needs it.
#[derive(Debug, Clone)]
pub struct Prose<'a> {
    text: &'a str,
    /// The index of the document's language, if one was found.
    language: std::cell::OnceCell<Option<u16>>,
}

impl<'a> Prose<'a> {
    /// The test for the units of `text`, in the language its words say.
    pub fn of_document(text: &'a str) -> Prose<'a> {
        Prose {
            text,
            language: std::cell::OnceCell::new(),
        }
    }

    fn language(&self) -> Option<u16> {
        *self.language.get_or_init(|| language_of(self.text))
    }

    /// The class of `unit` (a line or paragraph of the document) by itself.
    pub fn class(&self, unit: &str) -> Class {
        let (mut length, mut spaceless) = (0usize, 0usize);
        for c in unit.chars() {
            let w = weight(c);
            length += w;
            spaceless += usize::from(w > 1);
        }
        if length < SHORT {
            return Class::Short;
        }
        let sentences = sentence_ends(unit);
        let by_length = length >= LONG && sentences >= 2;
        let Some(language) = self.language() else {
            return if by_length { Class::Good } else { Class::Bad };
        };
        let class = match self.by_density(unit, language, length, sentences) {
            Class::Bad if by_length && spaceless * 3 >= length => Class::Good,
            class => class,
        };
        // A unit in another language than its page's (a French story inside an English
        // template) is judged in its own language, when its words name one.
        match class {
            Class::Bad => match language_of(unit) {
                Some(own) if own != language => self.by_density(unit, own, length, sentences),
                _ => Class::Bad,
            },
            class => class,
        }
    }

    /// jusText's classes on the stopwords of `language`.
    fn by_density(&self, unit: &str, language: u16, length: usize, sentences: usize) -> Class {
        let table = stopwords();
        let (mut words, mut stop) = (0usize, 0usize);
        let mut lower = String::new();
        for word in unit.unicode_words() {
            words += 1;
            stop += usize::from(
                table
                    .words
                    .get(lowercase(word, &mut lower))
                    .is_some_and(|languages| languages.contains(&language)),
            );
        }
        if words == 0 {
            return Class::Bad;
        }
        let density = stop as f64 / words as f64;
        let ends_a_sentence = unit
            .trim_end()
            .trim_end_matches(['"', '\'', '”', '’', '»', ')'])
            .ends_with(TERMINATORS);
        if length >= LONG && density >= HIGH_DENSITY {
            Class::Good
        } else if density >= LOW_DENSITY && sentences >= 1 && ends_a_sentence {
            Class::NearGood
        } else {
            Class::Bad
        }
    }

    /// Whether `unit` is prose taken alone: [`Class::Good`].
    pub fn is_prose(&self, unit: &str) -> bool {
        self.class(unit) == Class::Good
    }
}

/// A unit's class, jusText's: prose ([`Class::Good`]), a sentence that is prose beside prose
/// ([`Class::NearGood`]), a line of a template ([`Class::Bad`]), or too short to tell
/// ([`Class::Short`], taken as a template line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Short,
    Bad,
    NearGood,
    Good,
}

/// Whether the unit at `index` of a document is prose, given the class of each of its units
/// (`None` past the last): a good unit, or a near-good one right next to a good or near-good unit
/// (a one-sentence paragraph of a story; a sentence of a comment form between its short lines is
/// not). Neighbours are asked for only when the unit is near-good.
pub fn is_prose_in(mut class_at: impl FnMut(usize) -> Option<Class>, index: usize) -> bool {
    let class = class_at(index);
    let mut prose_like = |i: usize| matches!(class_at(i), Some(Class::Good | Class::NearGood));
    match class {
        Some(Class::Good) => true,
        Some(Class::NearGood) => (index > 0 && prose_like(index - 1)) || prose_like(index + 1),
        _ => false,
    }
}

/// The language whose stopword list covers the most of `text`'s words (at least
/// [`MIN_STOPWORDS`] and a tenth of them); ties go to the first listed, so the choice is the same
/// on every run.
fn language_of(text: &str) -> Option<u16> {
    let table = stopwords();
    let mut counts = vec![0usize; table.languages];
    let mut words = 0usize;
    let mut lower = String::new();
    for word in text.unicode_words() {
        words += 1;
        if let Some(languages) = table.words.get(lowercase(word, &mut lower)) {
            for &language in languages {
                counts[language as usize] += 1;
            }
        }
    }
    let best = counts
        .iter()
        .enumerate()
        .max_by_key(|&(index, count)| (*count, std::cmp::Reverse(index)));
    match best {
        Some((index, &count)) if count >= MIN_STOPWORDS && count * 10 >= words => {
            Some(index as u16)
        }
        _ => None,
    }
}

/// `word` lowercased: itself when it has no capital, else written into `buffer`.
fn lowercase<'a>(word: &'a str, buffer: &'a mut String) -> &'a str {
    if !word.chars().any(char::is_uppercase) {
        return word;
    }
    buffer.clear();
    buffer.extend(word.chars().flat_map(char::to_lowercase));
    buffer
}

/// What ends a sentence, in the scripts the stopword lists cover.
const TERMINATORS: [char; 8] = ['.', '!', '?', '。', '！', '？', '؟', '।'];

/// Sentence ends: a terminator followed by a space or the end (so "3.5" and "a.b" are none; the
/// full-width ones, which take no space after them, always count).
fn sentence_ends(text: &str) -> usize {
    let mut chars = text.chars().peekable();
    let mut ends = 0;
    while let Some(c) = chars.next() {
        let full_width = matches!(c, '。' | '！' | '？');
        if full_width
            || (TERMINATORS.contains(&c) && chars.peek().is_none_or(|n| n.is_whitespace()))
        {
            ends += 1;
        }
    }
    ends
}

/// A character's weight in a unit's length: three for a script written without spaces.
fn weight(c: char) -> usize {
    let spaceless = matches!(c as u32,
        0x0E00..=0x0EFF        // Thai, Lao
        | 0x1000..=0x109F      // Myanmar
        | 0x1780..=0x17FF      // Khmer
        | 0x3040..=0x30FF      // Hiragana, Katakana
        | 0x3400..=0x4DBF      // CJK extension A
        | 0x4E00..=0x9FFF      // CJK unified ideographs
        | 0xF900..=0xFAFF      // CJK compatibility ideographs
        | 0x20000..=0x2FFFF); // CJK extensions B and on
    if spaceless { 3 } else { 1 }
}

#[cfg(test)]
mod tests {
    use crate::boilerplate::prose::{Class, Prose, is_prose_in, sentence_ends};

    const STORY: &str = "Syria peace talks are expected to begin in the next few days, the \
        Russian foreign minister said on Monday, as diplomats from both sides were still arguing \
        over who should take part in them and where they should be held.";

    #[test]
    fn issue14_paragraphs_of_a_story_are_prose_and_template_lines_are_not() {
        let prose = Prose::of_document(STORY);
        assert_eq!(prose.class(STORY), Class::Good);
        let sentence =
            "He said that the talks would go on for as long as they were needed by both.";
        assert_eq!(prose.class(sentence), Class::NearGood);
        for line in [
            "Home | World | Business | Markets | Sports | Opinion | Daily Ledger TV",
            "Copyright Daily Ledger Media Group. All rights reserved.",
            "3 hours ago",
            "Leave a comment",
            "Syria peace talks expected to start in the next few days, says Russia's Lavrov",
        ] {
            assert!(!prose.is_prose(line), "{line}");
        }
        // A sentence is prose beside prose, not between a comment form's short lines.
        let form = "Comments are moderated by Daily Ledger and may take a while to appear.";
        assert_eq!(prose.class(form), Class::NearGood);
        let prose_at =
            |units: &[&str], index| is_prose_in(|i| units.get(i).map(|u| prose.class(u)), index);
        assert!(prose_at(&[STORY, sentence, STORY], 1));
        assert!(!prose_at(&["Comment", form, "Post comment"], 1));
        assert!(prose_at(&[sentence, sentence], 0));
        assert!(!prose_at(&[sentence], 0));
    }

    #[test]
    fn issue14_other_languages_and_scripts_are_told_by_their_own_stopwords() {
        let french = "Les pourparlers de paix sur la Syrie devraient commencer dans les \
            prochains jours, a déclaré lundi le ministre russe des Affaires étrangères, alors que \
            les deux camps se disputaient encore sur la liste des participants.";
        assert!(Prose::of_document(french).is_prose(french));
        // On a page whose words are mostly English (a French story inside an English
        // template), the French paragraph is judged in French; the template's lines stay lines.
        let page = format!("{STORY}\n{STORY}\n{STORY}\n{french}");
        let english_page = Prose::of_document(&page);
        assert!(english_page.is_prose(french));
        assert!(
            !english_page.is_prose("Home | World | Business | Markets | Sports | Opinion | TV")
        );
        let arabic = "من المتوقع أن تبدأ محادثات السلام بشأن سوريا في الأيام القليلة المقبلة، \
            وقال وزير الخارجية الروسي يوم الاثنين إن الجانبين ما زالا يختلفان حول من يجب أن يشارك \
            في هذه المحادثات وأين يجب أن تعقد، بينما قال دبلوماسيون إن الموعد لم يحدد بعد.";
        assert!(Prose::of_document(arabic).is_prose(arabic));
        let footer = "جميع الحقوق محفوظة";
        assert!(!Prose::of_document(arabic).is_prose(footer));
        let chinese = "俄罗斯外交部长周一表示，叙利亚和平谈判预计将在未来几天内开始。双方仍在争论谁应该参加以及谈判应该在哪里举行。\
            联合国特使说，他希望各方能够在本周末之前达成一致。";
        assert!(Prose::of_document(chinese).is_prose(chinese));
        assert!(!Prose::of_document(chinese).is_prose("首页 | 国际 | 财经 | 体育"));
        // Thai writes no spaces: no stopwords are found, and the length and sentences decide.
        let thai = "การเจรจาสันติภาพซีเรียคาดว่าจะเริ่มขึ้นในอีกไม่กี่วันข้างหน้า. \
            รัฐมนตรีต่างประเทศรัสเซียกล่าวเมื่อวันจันทร์. ทั้งสองฝ่ายยังคงโต้เถียงกันอยู่.";
        assert!(Prose::of_document(thai).is_prose(thai));
        assert!(!Prose::of_document(thai).is_prose("หน้าแรก | ข่าว | กีฬา"));
    }

    #[test]
    fn issue14_sentence_ends_need_a_space_after_them() {
        assert_eq!(sentence_ends("It rose 3.5 percent. Then it fell."), 2);
        assert_eq!(sentence_ends("example.com and a.b"), 0);
        assert_eq!(sentence_ends("一。二。"), 2);
    }
}
