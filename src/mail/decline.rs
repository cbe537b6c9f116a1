//! Reads "no" and "remove me" from a reply's own words. A false decline loses a creator, so
//! this only reads text the quote stripper is sure of.

use std::sync::LazyLock;

use regex::RegexSet;

use super::{Classification, Kind};

/// Phrases that ask for no more mail at all: a decline that is also a global opt-out.
static OPT_OUT_PATTERNS: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new([
        r"(?i)\bremove\s+(?:me|us|my\s+(?:e-?mail|address))\b",
        r"(?i)\bunsubscribe\b",
        r"(?i)\bplease\s+(?:stop|don(?:'|’)?t)\s+(?:e-?mailing|contacting|writing)\b",
        r"(?i)\bstop\s+(?:e-?mailing|contacting)\s+me\b",
        r"(?i)\b(?:désinscri|desinscri|abmelden|austragen|darme\s+de\s+baja)",
    ])
    .expect("valid opt-out patterns")
});

/// Phrases that say "no" in the new text of a reply. A table: English first, then German,
/// French, Spanish, Italian, Portuguese, Dutch.
static DECLINE_PATTERNS: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new([
        r"(?i)\bnot\s+(?:really\s+)?interested\b",
        r"(?i)\bno,?\s+thanks?\b",
        r"(?i)\bno\s+thank\s+you\b",
        r"(?i)\bi(?:'|’)?ll\s+(?:have\s+to\s+)?pass\b",
        r"(?i)\bi\s+will\s+(?:have\s+to\s+)?pass\b",
        r"(?i)\b(?:going\s+to|gonna|have\s+to|must|will)\s+decline\b",
        r"(?i)\bnot\s+(?:a\s+)?(?:good\s+|great\s+|right\s+)?fit\b",
        r"(?i)\bnot\s+(?:taking|accepting)\s+(?:on\s+)?(?:any\s+)?(?:new\s+)?(?:brand\s+)?(?:deals|collaborations|collabs|partnerships|sponsorships)\b",
        r"(?i)\bkein\s+interesse\b",
        r"(?i)\bnein,?\s+danke\b",
        r"(?i)\bpas\s+intéressée?s?\b",
        r"(?i)\bnon,?\s+merci\b",
        r"(?i)\bno\s+(?:me\s+)?interesa\b",
        r"(?i)\bno\s+estoy\s+interesad[oa]\b",
        r"(?i)\bnon\s+(?:sono\s+)?interessat[oa]\b",
        r"(?i)\bnão\s+(?:tenho\s+)?interess(?:e|ad[oa])\b",
        r"(?i)\bgeen\s+interesse\b",
    ])
    .expect("valid decline patterns")
});

/// A decline or opt-out read from `text`, the stripped new text of a human message;
/// `None` when it says neither, or when the stripper is `unsure` where the new text ends.
pub fn read(text: &str, unsure: Option<&str>) -> Option<Classification> {
    if unsure.is_some() {
        return None;
    }
    if let Some(i) = OPT_OUT_PATTERNS.matches(text).iter().next() {
        return Some(Classification {
            kind: Kind::Decline,
            reason: format!("new text asks to opt out: {:?}", OPT_OUT_PATTERNS.patterns()[i]),
            opt_out: true,
            bounce: None,
        });
    }
    let i = DECLINE_PATTERNS.matches(text).iter().next()?;
    Some(Classification::new(
        Kind::Decline,
        format!("new text matches decline pattern {:?}", DECLINE_PATTERNS.patterns()[i]),
    ))
}
