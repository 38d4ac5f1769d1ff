//! A customer's mood without a model: a lexicon score for the `sentiment_negative` trigger.
//!
//! Each word of the message found in [`LEXICON`] (hand-written weights from -4, furious, to
//! +4, delighted) adds its weight; a negator shortly before it ("not good", "isn't
//! helpful", "don't like") flips and halves it; an intensifier ("very", "so", "extremely")
//! multiplies it by 1.5, a downtoner ("a bit", "slightly") halves it; a word in capitals
//! counts 1.5 times, and "!!" adds a quarter to the total. The sum is damped for long
//! messages (one angry word in a long question weighs less) and squashed into -1..1.
//!
//! Support vocabulary ("error", "failed", "broken", "can't log in") carries no weight: the
//! trigger is for customers who are upset, not for problems being described. Only a clearly
//! negative message ([`NEGATIVE_THRESHOLD`]: two negative cues, or one intensified) hands
//! over. It runs on the chat hot path: no allocation, a binary search per word.

use std::cmp::Ordering;

/// At or below this score a message hands the conversation over.
pub(crate) const NEGATIVE_THRESHOLD: f32 = -0.75;

/// Words and their weights: lower case, without apostrophes, sorted (a test checks it).
const LEXICON: [(&str, i8); 280] = [
    ("abysmal", -4),
    ("afraid", -1),
    ("aggravated", -3),
    ("aggravating", -3),
    ("amazing", 4),
    ("angrily", -3),
    ("angry", -3),
    ("annoyance", -2),
    ("annoyed", -2),
    ("annoying", -2),
    ("appalling", -4),
    ("appreciate", 2),
    ("appreciated", 2),
    ("atrocious", -4),
    ("awesome", 4),
    ("awful", -3),
    ("bad", -3),
    ("beautiful", 3),
    ("best", 3),
    ("betrayed", -3),
    ("better", 2),
    ("blame", -2),
    ("bored", -1),
    ("boring", -2),
    ("bothered", -1),
    ("bravo", 3),
    ("brilliant", 4),
    ("buggy", -2),
    ("bullshit", -4),
    ("careless", -2),
    ("chaos", -2),
    ("cheat", -3),
    ("cheated", -4),
    ("cheers", 1),
    ("clear", 1),
    ("clueless", -3),
    ("complain", -2),
    ("complaining", -2),
    ("complaint", -2),
    ("confused", -1),
    ("confusing", -2),
    ("congrats", 2),
    ("cool", 1),
    ("crap", -3),
    ("crappy", -3),
    ("crooks", -4),
    ("dammit", -3),
    ("damn", -2),
    ("delighted", 4),
    ("despise", -4),
    ("devastated", -3),
    ("difficult", -1),
    ("disappointed", -3),
    ("disappointing", -3),
    ("disappointment", -3),
    ("disaster", -3),
    ("disastrous", -3),
    ("disgraceful", -4),
    ("disgusted", -4),
    ("disgusting", -4),
    ("disrespectful", -3),
    ("dissatisfied", -3),
    ("dreadful", -3),
    ("dumb", -3),
    ("easy", 1),
    ("ecstatic", 4),
    ("embarrassing", -2),
    ("enjoy", 2),
    ("enjoyed", 2),
    ("enraged", -4),
    ("exasperated", -3),
    ("exasperating", -3),
    ("excellent", 4),
    ("excited", 3),
    ("exciting", 3),
    ("fabulous", 4),
    ("fair", 1),
    ("fantastic", 4),
    ("fast", 1),
    ("fault", -1),
    ("fiasco", -3),
    ("fine", 1),
    ("fixed", 1),
    ("flawless", 3),
    ("fraud", -4),
    ("fraudulent", -4),
    ("friendly", 2),
    ("frustrated", -3),
    ("frustrating", -3),
    ("frustration", -3),
    ("fuck", -4),
    ("fucked", -4),
    ("fucking", -4),
    ("fuming", -4),
    ("furious", -4),
    ("garbage", -3),
    ("glad", 2),
    ("good", 3),
    ("grateful", 3),
    ("great", 3),
    ("gutted", -3),
    ("haha", 1),
    ("happy", 3),
    ("hassle", -2),
    ("hate", -4),
    ("hated", -4),
    ("hates", -4),
    ("hating", -4),
    ("headache", -2),
    ("heartbroken", -3),
    ("hell", -2),
    ("helped", 1),
    ("helpful", 2),
    ("hopeless", -3),
    ("horrendous", -4),
    ("horrible", -4),
    ("horrid", -4),
    ("horrified", -3),
    ("hostile", -3),
    ("idiot", -4),
    ("idiotic", -4),
    ("idiots", -4),
    ("ignore", -1),
    ("ignored", -2),
    ("ignoring", -2),
    ("impressed", 3),
    ("impressive", 3),
    ("inaccurate", -1),
    ("inadequate", -2),
    ("incompetence", -4),
    ("incompetent", -4),
    ("incorrect", -1),
    ("inexcusable", -4),
    ("inferior", -2),
    ("infuriated", -4),
    ("infuriating", -4),
    ("insult", -3),
    ("insulted", -3),
    ("insulting", -3),
    ("intolerable", -3),
    ("irritated", -3),
    ("irritating", -3),
    ("joy", 3),
    ("junk", -3),
    ("kudos", 3),
    ("lawsuit", -2),
    ("liar", -4),
    ("liars", -4),
    ("lied", -3),
    ("lies", -3),
    ("like", 2),
    ("liked", 2),
    ("likes", 2),
    ("livid", -4),
    ("loathe", -4),
    ("lol", 1),
    ("lousy", -3),
    ("love", 3),
    ("loved", 3),
    ("lovely", 3),
    ("loves", 3),
    ("lying", -3),
    ("mad", -2),
    ("marvelous", 4),
    ("meaningless", -2),
    ("mediocre", -2),
    ("meh", -1),
    ("mess", -2),
    ("messed", -2),
    ("miserable", -3),
    ("moron", -4),
    ("morons", -4),
    ("neglected", -2),
    ("negligent", -3),
    ("nice", 2),
    ("nightmare", -3),
    ("nonsense", -3),
    ("outrage", -4),
    ("outraged", -4),
    ("outrageous", -4),
    ("outstanding", 4),
    ("pain", -2),
    ("painful", -2),
    ("pathetic", -4),
    ("perfect", 3),
    ("phenomenal", 4),
    ("pissed", -4),
    ("pleasant", 2),
    ("pleased", 3),
    ("pleasure", 3),
    ("pointless", -3),
    ("polite", 2),
    ("poor", -2),
    ("poorly", -2),
    ("quick", 1),
    ("rage", -4),
    ("raging", -3),
    ("recommend", 2),
    ("regret", -2),
    ("reliable", 2),
    ("relief", 2),
    ("relieved", 2),
    ("resolved", 2),
    ("ridiculous", -3),
    ("ripoff", -4),
    ("ripped", -3),
    ("robbed", -4),
    ("rubbish", -3),
    ("rude", -3),
    ("ruin", -2),
    ("ruined", -3),
    ("sad", -2),
    ("satisfied", 2),
    ("scam", -4),
    ("scammed", -4),
    ("scammers", -4),
    ("scared", -2),
    ("seamless", 2),
    ("seething", -4),
    ("shameful", -3),
    ("shit", -4),
    ("shitty", -4),
    ("shocked", -2),
    ("shocking", -3),
    ("shoddy", -3),
    ("sick", -2),
    ("sickening", -3),
    ("sloppy", -2),
    ("slow", -1),
    ("smooth", 1),
    ("solved", 2),
    ("stellar", 4),
    ("stress", -2),
    ("stressed", -2),
    ("stupid", -3),
    ("subpar", -2),
    ("suck", -3),
    ("sucked", -3),
    ("sucks", -3),
    ("sue", -2),
    ("superb", 4),
    ("terrible", -3),
    ("terrific", 4),
    ("thank", 2),
    ("thankful", 3),
    ("thanks", 2),
    ("thieves", -4),
    ("thrilled", 4),
    ("thx", 2),
    ("tired", -2),
    ("trash", -3),
    ("ugly", -2),
    ("unacceptable", -3),
    ("unbearable", -3),
    ("unfair", -2),
    ("unhappy", -2),
    ("unhelpful", -3),
    ("unprofessional", -3),
    ("unreliable", -2),
    ("unsatisfactory", -2),
    ("unsatisfied", -2),
    ("unusable", -3),
    ("upset", -2),
    ("upsetting", -2),
    ("useful", 2),
    ("useless", -3),
    ("vile", -4),
    ("waste", -3),
    ("wasted", -3),
    ("wasting", -3),
    ("wonderful", 4),
    ("worried", -1),
    ("worry", -1),
    ("worse", -3),
    ("worst", -4),
    ("worthless", -3),
    ("wrecked", -2),
    ("wrong", -2),
    ("wtf", -4),
    ("yay", 2),
];

/// Words that flip the sentiment of what follows (compared without apostrophes; sorted, as
/// are the other lists).
const NEGATORS: [&str; 27] = [
    "aint", "arent", "barely", "cannot", "cant", "couldnt", "didnt", "doesnt", "dont", "hadnt",
    "hardly", "hasnt", "havent", "isnt", "neither", "never", "no", "nobody", "nor", "not",
    "nothing", "shouldnt", "wasnt", "werent", "without", "wont", "wouldnt",
];

/// Words that strengthen the next sentiment word.
const INTENSIFIERS: [&str; 16] = [
    "absolutely",
    "completely",
    "extremely",
    "highly",
    "incredibly",
    "insanely",
    "really",
    "ridiculously",
    "seriously",
    "so",
    "super",
    "terribly",
    "too",
    "totally",
    "truly",
    "very",
];

/// Words that soften the next sentiment word.
const DOWNTONERS: [&str; 6] = ["bit", "kinda", "little", "slightly", "somewhat", "sorta"];

/// How many tokens after a negator (intensifiers not counted) it reaches.
const NEGATION_REACH: u8 = 2;
/// How many tokens after an intensifier or downtoner it reaches.
const MODIFIER_REACH: u8 = 2;
/// Messages up to this many words are not damped.
const UNDAMPED_WORDS: f32 = 8.0;

/// The message's sentiment, from -1 (furious) to 1 (delighted); 0 without sentiment words.
pub(crate) fn score(message: &str) -> f32 {
    let mut raw = 0.0f32;
    let mut words = 0usize;
    let mut negation = 0u8;
    let mut modifier = (1.0f32, 0u8);
    let mut previous: Option<&str> = None;
    // The last sentiment word's contribution.
    let mut last = 0.0f32;
    for (token, clause_start) in Tokens::new(message) {
        words += 1;
        if clause_start {
            negation = 0;
            modifier.1 = 0;
        }
        let negated = negation > 0;
        if is_in(&NEGATORS, token) {
            negation = NEGATION_REACH + 1;
        } else if is_in(&INTENSIFIERS, token) {
            modifier = (1.5, MODIFIER_REACH + 1);
            // "not very good": the intensifier does not use up the negation's reach.
            negation = negation.saturating_add(u8::from(negated));
        } else if is_in(&DOWNTONERS, token) {
            modifier = (0.5, MODIFIER_REACH + 1);
        } else if let Some(weight) = weight(token) {
            let mut w = f32::from(weight);
            if modifier.1 > 0 {
                w *= modifier.0;
            }
            if is_shouted(token) {
                w *= 1.5;
            }
            if negated {
                w *= -0.5;
            }
            raw += w;
            last = w;
            negation = 0;
            modifier.1 = 0;
        } else if previous.is_some_and(|p| same_word("worst", p)) && same_word("case", token) {
            // "worst case" describes, it does not complain.
            raw -= last;
        }
        negation = negation.saturating_sub(1);
        modifier.1 = modifier.1.saturating_sub(1);
        previous = Some(token);
    }
    if raw == 0.0 {
        return 0.0;
    }
    if message.contains("!!") {
        raw *= 1.25;
    }
    let damped = raw / (words as f32 / UNDAMPED_WORDS).max(1.0).sqrt();
    damped / (damped * damped + 15.0).sqrt()
}

/// Whether the message is clearly negative; its score when it is.
pub(crate) fn clearly_negative(message: &str) -> Option<f32> {
    let s = score(message);
    (s <= NEGATIVE_THRESHOLD).then_some(s)
}

fn weight(token: &str) -> Option<i8> {
    LEXICON.binary_search_by(|(w, _)| compare(w, token)).ok().map(|i| LEXICON[i].1)
}

/// Whether `token` is in a sorted word list.
fn is_in(sorted: &[&str], token: &str) -> bool {
    sorted.binary_search_by(|w| compare(w, token)).is_ok()
}

fn same_word(word: &str, token: &str) -> bool {
    compare(word, token) == Ordering::Equal
}

/// Compares a lexicon word with a message token: case and apostrophes ignored.
fn compare(word: &str, token: &str) -> Ordering {
    let t = token.chars().filter(|c| !is_apostrophe(*c)).map(|c| c.to_ascii_lowercase());
    word.chars().cmp(t)
}

/// A word in capitals ("USELESS"), not a one- or two-letter one ("I", "OK").
fn is_shouted(token: &str) -> bool {
    token.len() >= 3
        && token.chars().all(|c| !c.is_lowercase())
        && token.chars().any(char::is_uppercase)
}

fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '\u{2019}'
}

/// The words of a message as slices of it, each with whether a clause starts at it (after
/// `.`, `,`, `;`, `!`, `?` or `but`).
struct Tokens<'a> {
    rest: &'a str,
    clause_start: bool,
}

impl<'a> Tokens<'a> {
    fn new(message: &'a str) -> Self {
        Self { rest: message, clause_start: true }
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = (&'a str, bool);

    fn next(&mut self) -> Option<Self::Item> {
        let is_word = |c: char| c.is_alphanumeric() || is_apostrophe(c);
        let all = self.rest;
        let start = all.find(|c: char| {
            if matches!(c, '.' | ',' | ';' | '!' | '?' | ':') {
                self.clause_start = true;
            }
            c.is_alphanumeric()
        })?;
        let rest = &all[start..];
        let end = rest.find(|c: char| !is_word(c)).unwrap_or(rest.len());
        let token = rest[..end].trim_end_matches(is_apostrophe);
        self.rest = &rest[end..];
        let clause_start = std::mem::replace(&mut self.clause_start, false);
        if same_word("but", token) {
            self.clause_start = true;
        }
        Some((token, clause_start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lexicon_is_sorted_lower_case_and_without_duplicates() {
        for pair in LEXICON.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} before {}", pair[0].0, pair[1].0);
        }
        for (w, weight) in LEXICON {
            assert!(w.chars().all(|c| c.is_ascii_lowercase()), "{w}");
            assert!((-4..=4).contains(&weight) && weight != 0, "{w}");
            assert!(!is_in(&NEGATORS, w) && !is_in(&INTENSIFIERS, w), "{w} is a modifier");
        }
    }

    #[test]
    fn only_clearly_negative_messages_hand_over() {
        let negative = [
            "This is useless, I'm furious, worst service ever",
            "I HATE this",
            "I'm so furious right now",
            "This is absolutely terrible and a complete waste of my time!!",
            "Your support is pathetic and incompetent",
            "What the hell, this is a scam",
            "I am really disappointed, this is unacceptable",
            "This bot is USELESS",
            "worst experience, totally ridiculous",
        ];
        let not_negative = [
            "I can't log in",
            "not bad",
            "the error says failed",
            "My order hasn't arrived, where is it?",
            "The app crashed and I lost my data, can you help?",
            "In the worst case, can I get a refund?",
            "Why is it so slow today?",
            "This is terrible",
            "I hate to ask, but where is my invoice? I looked everywhere in the account settings and the emails",
            "Hello??",
            "I want a REFUND.",
            "Can I talk to a human, please?",
            "I don't hate it, it's just not what I expected",
            "",
            "!!!",
        ];
        let positive = [
            "Thanks, that was really helpful!",
            "Great, it works now. You are amazing",
            "not bad at all, I like it",
            "Perfect, thank you so much",
        ];
        for m in negative {
            assert!(clearly_negative(m).is_some(), "negative: {m:?} scored {}", score(m));
        }
        for m in not_negative.iter().chain(&positive) {
            assert!(clearly_negative(m).is_none(), "not negative: {m:?} scored {}", score(m));
        }
        for m in positive {
            assert!(score(m) > 0.3, "positive: {m:?} scored {}", score(m));
        }
        assert_eq!(score("I can't log in"), 0.0);
        assert_eq!(score("the error says failed"), 0.0);
    }

    #[test]
    fn negators_flip_and_soften_intensifiers_strengthen_and_capitals_shout() {
        assert!(score("not good") < 0.0 && score("not good") > score("bad"));
        assert!(score("isn't helpful") < 0.0);
        assert!(score("I don't like it") < 0.0);
        assert!(score("not bad") > 0.0);
        assert!(score("not very good") < 0.0, "the intensifier keeps the negation");
        assert!(score("very bad") < score("bad"));
        assert!(score("extremely angry") < score("angry"));
        assert!(score("a bit slow") > score("slow"));
        assert!(score("BAD") < score("bad"));
        assert!(score("awful!!") < score("awful"));
        assert!(score("not here. Bad") < 0.0, "a negation ends with its clause");
        assert!(score("It isn’t good") < 0.0, "curly apostrophes");
    }

    #[test]
    fn long_messages_are_damped() {
        let short = score("I hate this, awful");
        let long = score(
            "I hate this, awful: I ordered the blue one on Monday and the parcel came on Friday with the red one inside the box",
        );
        assert!(short < long && long < 0.0, "{short} {long}");
    }
}
