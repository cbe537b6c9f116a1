//! Reads "no" and "remove me" from a reply's own words.
//!
//! A false decline loses a creator, and nearly every outreach mail quotes decline and
//! opt-out wording ("Not interested? Reply 'no thanks'", "reply 'remove me'"), so this is
//! deliberately cautious:
//! - it reads only the stripped new text, and nothing when the stripper is unsure where the
//!   new text ends (a header block or quote marker is still inside it);
//! - a positive answer anywhere in the new text ("yes", "count me in", "gerne", "はい", …)
//!   outweighs declining words: the message stays a reply, with the reason recorded;
//! - a global opt-out needs its phrase in the first lines of the new text; further down it
//!   counts only as a decline of the campaign.
//!
//! Every decision carries its reason, and every decline can be undone by an operator
//! (`collabctl inbox undecline`).

use std::sync::LazyLock;

use regex::{Regex, RegexSet};

use super::{Classification, Kind};

/// How many non-empty lines at the top of the new text may hold a global opt-out.
const OPT_OUT_LINES: usize = 4;

/// Phrases that ask for no more mail at all. A table: add a language by adding a line.
static OPT_OUT_PATTERNS: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new([
        r"(?i)\bremove\s+(?:me|us|my\s+(?:e-?mail|address))\b",
        r"(?i)\bunsubscribe\b",
        r"(?i)\bplease\s+(?:stop|don(?:'|’)?t)\s+(?:e-?mailing|contacting|writing)\b",
        r"(?i)\bstop\s+(?:e-?mailing|contacting)\s+me\b",
        r"(?i)\btake\s+me\s+off\b",
        // de, fr, es, it, pt, nl
        r"(?i)\b(?:abmelden|austragen|nehmen\s+sie\s+mich\s+aus|aus\s+(?:ihrem|eurem|deinem)\s+verteiler)",
        r"(?i)(?:désinscri|desinscri|désabonne|desabonne|retirez[- ]moi)",
        r"(?i)(?:darme\s+de\s+baja|elimíname|eliminadme|bórrenme|borradme)",
        r"(?i)(?:cancellami|rimuovimi|disiscriv)",
        r"(?i)(?:remova-me|me\s+remova|descadastr|cancelar\s+inscrição)",
        r"(?i)(?:uitschrijven|verwijder\s+(?:mij|me)|schrijf\s+me\s+uit)",
        // sv, no, da, pl, ru, ja, zh
        r"(?i)(?:avregistrera|ta\s+bort\s+mig|avsluta\s+prenumeration)",
        r"(?i)(?:meld\s+meg\s+av|meld\s+mig\s+af|fjern\s+(?:meg|mig))",
        r"(?i)(?:wypisz\s+mnie|usuń\s+mnie|usun\s+mnie|usun(?:ąć|ac)\s+(?:mój|moj|mnie))",
        r"(?i)(?:отпишите|удалите\s+меня|отписаться)",
        r"(?:配信停止|配信を停止|退会)",
        r"(?:退订|取消订阅)",
    ])
    .expect("valid opt-out patterns")
});

/// Phrases that say "no". A table: English first, then the other languages in the order
/// of the reply-header table.
static DECLINE_PATTERNS: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new([
        r"(?i)\bnot\s+(?:really\s+|that\s+)?interested\b",
        r"(?i)\bno,?\s+thanks?\b",
        r"(?i)\bno\s+thank\s+you\b",
        r"(?i)\bi(?:'|’)?ll\s+(?:have\s+to\s+)?pass\b",
        r"(?i)\bi\s+will\s+(?:have\s+to\s+)?pass\b",
        r"(?i)\b(?:going\s+to|gonna|have\s+to|must|will)\s+decline\b",
        r"(?i)\bnot\s+(?:a\s+)?(?:good\s+|great\s+|right\s+)?fit\b",
        r"(?i)\bnot\s+(?:taking|accepting)\s+(?:on\s+)?(?:any\s+)?(?:new\s+)?(?:brand\s+)?(?:deals|collaborations|collabs|partnerships|sponsorships)\b",
        r"(?i)\bkein\s+interesse\b",
        r"(?i)\bnein,?\s+danke\b",
        r"(?i)\bmuss\s+(?:leider\s+)?absagen\b",
        r"(?i)\bpas\s+intéressée?s?\b",
        r"(?i)\bnon,?\s+merci\b",
        r"(?i)\bpasser\s+mon\s+tour\b",
        r"(?i)\bno\s+(?:me\s+|le\s+|nos\s+|les\s+)?interesa\b",
        r"(?i)\bpreferi(?:mos|ría|ria)\s+no\s+participar\b",
        r"(?i)\bno\s+estoy\s+interesad[oa]\b",
        r"(?i)\bnon\s+(?:sono\s+)?interessat[oa]\b",
        r"(?i)\bnon\s+(?:mi|ci)\s+interessa\b",
        r"(?i)\b(?:ma|però|pero|quindi),?\s+passo\b",
        r"(?i)\bnão\s+(?:tenho\s+)?interess(?:e|ad[oa])\b",
        r"(?i)\bgeen\s+interesse\b",
        r"(?i)\bnee,?\s+bedankt\b",
        r"(?i)\binte\s+intresserad\b",
        r"(?i)\bnej\s+tack\b",
        r"(?i)\bjag\s+avstår\b",
        r"(?i)\bikke\s+interesse(?:rt|ret)\b",
        r"(?i)\bnei\s+takk\b",
        r"(?i)\bnej\s+tak\b",
        r"(?i)\bnie\s+jestem\s+zainteresowan[ya]\b",
        r"(?i)\bnie,?\s+dziękuj",
        r"(?i)(?:не\s+интересно|неинтересно|нет,?\s+спасибо|не\s+заинтересован)",
        r"(?:興味がありません|興味はありません|お断り|辞退)",
        r"(?:不感兴趣|没有兴趣|沒有興趣|不用了)",
    ])
    .expect("valid decline patterns")
});

/// A positive answer. Where a phrase also appears negated ("not interested"), the
/// negation is checked separately (see `NEGATION_BEFORE`).
static POSITIVE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?xi)
        \b(?:yes|yeah|yep|sure|absolutely|definitely|of\s+course|count\s+me\s+in|i(?:'|’)?m\s+in
           |i\s+am\s+in|sounds\s+(?:good|great|fun|amazing|perfect)|happy\s+to|would\s+love
           |i(?:'|’)?d\s+love|love\s+to|let(?:'|’)?s\s+do\s+(?:it|this)|interested|deal\b
           |send\s+(?:me\s+)?(?:the\s+)?(?:kit|brief|details|contract|product))
        | \b(?:ja|gerne?|bin\s+dabei|klingt\s+(?:gut|super|toll)|interessiert)\b
        | \b(?:oui|avec\s+plaisir|partante?|ça\s+m(?:'|’)intéresse|intéressée?)\b
        | (?:\bsí\b|\bme\s+interesa|encantad[oa]|cuenta\s+conmigo|\bclaro\b)
        | \b(?:sì|volentieri|ci\s+sto|mi\s+interessa|interessat[oa])\b
        | \b(?:sim|com\s+certeza|tenho\s+interesse|conta\s+comigo|interessad[oa])\b
        | \b(?:graag|doe\s+mee|interesse)\b
        | \b(?:gärna|låter\s+(?:bra|kul)|intresserad|gjerne|interessert|interesseret)\b
        | \b(?:tak|chętnie|zainteresowan[ya])\b
        | (?:\bда\b|с\s+удовольствием|интересно|заинтересован)
        | (?:はい|ぜひ|是非|喜んで|興味があります|よろしくお願いします)
        | (?:好的|可以|有兴趣|有興趣|愿意|願意|没问题|沒問題)
        ",
    )
    .expect("valid positive pattern")
});

/// Words that turn a positive phrase right after them into a negative one
/// ("not interested", "kein Interesse", "не интересно", "不感兴趣"…).
static NEGATION_BEFORE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:\bnot|\bno|\bnever|\bun|\bnicht|\bkein|\bnej|\bnei|\bpas|\bnon|\bnão|\bgeen|\binte|\bikke|\bnie|\bне|\bнет|不|没|沒)\s*(?:\w+\s+)?$",
    )
    .expect("valid negation pattern")
});

/// A decline, an opt-out, or a reply that holds declining words with the reason it stays a
/// reply; `None` when `text` (the stripped new text of a human message) says no such thing.
/// `unsure` is the stripper's reason for not trusting where the new text ends.
pub fn read(text: &str, unsure: Option<&str>) -> Option<Classification> {
    let opt_out = OPT_OUT_PATTERNS.matches(text).iter().next();
    let decline = DECLINE_PATTERNS.matches(text).iter().next();
    let pattern = match (opt_out, decline) {
        (Some(i), _) => OPT_OUT_PATTERNS.patterns()[i].as_str(),
        (None, Some(i)) => DECLINE_PATTERNS.patterns()[i].as_str(),
        (None, None) => return None,
    };
    if let Some(why) = unsure {
        return Some(Classification::new(
            Kind::Reply,
            format!(
                "declining words {pattern:?}, but the new text is uncertain ({why}): kept as a reply"
            ),
        ));
    }
    if let Some(yes) = positive_answer(text) {
        return Some(Classification::new(
            Kind::Reply,
            format!(
                "declining words {pattern:?} beside a positive answer {yes:?}: kept as a reply"
            ),
        ));
    }
    if let Some(i) = opt_out {
        let pattern = &OPT_OUT_PATTERNS.patterns()[i];
        if OPT_OUT_PATTERNS.is_match(&first_lines(text)) {
            return Some(Classification {
                kind: Kind::Decline,
                reason: format!("new text asks to opt out: {pattern:?}"),
                opt_out: true,
                bounce: None,
            });
        }
        return Some(Classification::new(
            Kind::Decline,
            format!("opt-out words {pattern:?} below the first lines: declines the campaign only"),
        ));
    }
    Some(Classification::new(
        Kind::Decline,
        format!("new text matches decline pattern {pattern:?}"),
    ))
}

/// The first positive phrase of `text` that no negation word directly precedes.
fn positive_answer(text: &str) -> Option<&str> {
    POSITIVE
        .find_iter(text)
        .find(|m| {
            let before = &text[..m.start()];
            let tail_start = before.char_indices().rev().nth(24).map_or(0, |(i, _)| i);
            !NEGATION_BEFORE.is_match(&before[tail_start..])
        })
        .map(|m| m.as_str())
}

/// The first `OPT_OUT_LINES` non-empty lines.
fn first_lines(text: &str) -> String {
    text.lines().filter(|l| !l.trim().is_empty()).take(OPT_OUT_LINES).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> (Kind, bool) {
        read(text, None).map_or((Kind::Reply, false), |c| (c.kind, c.opt_out))
    }

    #[test]
    fn plain_declines_and_opt_outs() {
        assert_eq!(kind("Not interested, sorry."), (Kind::Decline, false));
        assert_eq!(kind("Kein Interesse, danke."), (Kind::Decline, false));
        assert_eq!(kind("Nej tack, inte intresserad just nu."), (Kind::Decline, false));
        assert_eq!(kind("Please remove me from your list."), (Kind::Decline, true));
        assert_eq!(kind("unsubscribe"), (Kind::Decline, true));
        assert_eq!(kind("Wypisz mnie, proszę."), (Kind::Decline, true));
        assert_eq!(kind("興味がありません。"), (Kind::Decline, false));
    }

    #[test]
    fn a_yes_outweighs_declining_words() {
        assert_eq!(
            kind("Yes, I'm in! Send the kit. (ignore the remove me bit)"),
            (Kind::Reply, false)
        );
        assert_eq!(
            kind("Not interested in a reel, but happy to do a story."),
            (Kind::Reply, false)
        );
        assert_eq!(
            kind("Gerne! Kein Interesse an TikTok, aber Instagram passt."),
            (Kind::Reply, false)
        );
        let c = read("Count me in. Unsubscribe my old address please", None).unwrap();
        assert_eq!(c.kind, Kind::Reply);
        assert!(c.reason.contains("positive answer"), "{}", c.reason);
    }

    #[test]
    fn a_negated_positive_is_not_a_yes() {
        assert_eq!(kind("I'm not interested."), (Kind::Decline, false));
        assert_eq!(kind("Нет, спасибо, не интересно."), (Kind::Decline, false));
        assert_eq!(kind("不感兴趣，谢谢。"), (Kind::Decline, false));
    }

    #[test]
    fn an_unsure_stripper_never_declines() {
        let c = read("Sounds fine\nFrom: Brand\nSent: Monday\nremove me", Some("header block"))
            .unwrap();
        assert_eq!((c.kind, c.opt_out), (Kind::Reply, false));
        assert!(c.reason.contains("header block"));
    }

    #[test]
    fn an_opt_out_far_down_declines_the_campaign_only() {
        let text = "Hi team,\n\nthanks for thinking of me.\n\nI am fully booked.\n\nI don't do paid posts.\n\nAlso please remove me.";
        assert_eq!(kind(text), (Kind::Decline, false));
    }

    #[test]
    fn neutral_text_says_nothing() {
        assert_eq!(read("What is the budget for two videos?", None), None);
    }
}
