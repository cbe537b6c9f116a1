//! Keeps the new text of a reply: quoted history and signatures go.
//!
//! A line classifier: every line gets a [`Tag`] (text, quote, empty, delimiter, client
//! signature, reply header, header-block line), a second pass joins tags into shapes (a
//! reply header wrapped over two or three lines, a header block of two or more header
//! lines), and the cut is decided on those shapes:
//!
//! - a delimiter (`-- `, an underscore rule, "Original Message"), a client signature or a
//!   header block ends the new text;
//! - a reply header directly followed by quoted lines is dropped with them, and the text
//!   after them is kept (bottom and inline posting); one followed by unquoted text ends the
//!   new text (history pasted without quote marks);
//! - quoted lines are dropped wherever they are.
//!
//! When nothing of the sender's own is left, the whole text is kept and marked unsure.

use std::sync::LazyLock;

use regex::{Regex, RegexSet};

/// Lines examined; a reply's own text is far shorter, and classification stays cheap.
const MAX_LINES: usize = 3000;
/// Lines longer than this are text (and never a header, delimiter or signature).
const MAX_SHAPE_LEN: usize = 400;

/// Attribution lines ("On … wrote:"), in one piece: lines wrapped by the client are joined
/// with one space before matching. Each must name a date or an address, see `reply_header`.
static REPLY_HEADER: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new([
        // en: On Mon, 16 Nov 2026 at 10:00, Brand <p@b> wrote:
        r"(?i)^on\s.+\s(?:wrote|writes|said)\s*[:：]$",
        // de: Am 16.11.2026 um 10:00 schrieb Brand <p@b>:  / Google Inbox: Brand <p@b> schrieb am …:
        r"(?i)^am\s.+\sschrieb\s.*[:：]$",
        r"(?i)^.+\sschrieb\s+am\s.+[:：]$",
        r"(?i)^.+\sschrieb\s*[:：]$",
        // fr: Le lun. 16 nov. 2026 à 10:00, Brand <p@b> a écrit :
        r"(?i)^.+\sa\s+écrit\s*[:：]$",
        // es, it, pt, nl
        r"(?i)^.+\sescribió\s*[:：]$",
        r"(?i)^.+\sha\s+scritto\s*[:：]$",
        r"(?i)^.+\sescreveu\s*[:：]$",
        r"(?i)^.+\sschreef(?-u:\b).*[:：]$",
        // sv, no, da: Den mån 16 nov. 2026 kl. 10:00 skrev Brand <p@b>:
        r"(?i)^.+\sskrev(?-u:\b).*[:：]$",
        // pl: W dniu 16.11.2026 o 10:00, Brand <p@b> pisze: / … napisał(a):
        r"(?i)^.+\s(?:pisze|napisał|napisała|napisał\(a\))\s*[:：]$",
        // ru: … пользователь Brand <p@b> написал: / Brand написал(а): / Thunderbird: Brand пишет:
        r"(?i)^.+\s(?:написал(?:а|\(а\))?|пишет)\s*[:：]$",
        // de, nl (Yahoo, Apple Mail): … hat Brand Folgendes geschrieben: / … het volgende geschreven:
        r"(?i)^.+\s(?:geschrieben|geschreven)\s*[:：]$",
        // pl (Apple Mail): Wiadomość napisana przez Brand <p@b> w dniu 16.11.2026, o godz. 10:00:
        r"(?i)^wiadomość\s+napisana\s+przez\s.+[:：]$",
        // ja (Apple Mail): 2026/11/16 10:00、Brand <p@b>のメール:
        r"^.+のメール\s*[:：]$",
        // ja: … さんは書きました:
        r"^.+書きました\s*[:：]$",
        // zh: 在 2026年11月16日 10:00，Brand <p@b> 写道：
        r"^.+(?:写道|寫道)\s*[:：]$",
        // date first, then a name and address: 2016-03-03 17:21 GMT+01:00 Some One <a@b>:
        // 2013/7/20 Someone <a@b>, 2026年11月16日(月) 10:00 Brand <a@b>:,
        // 16.11.2026, 10:00, "Brand" <a@b>:
        r"^\s*\d{1,4}(?:[-/.]\d{1,2}[-/.]\d{1,4}|年\d{1,2}月\d{1,2}日)\S*\s.*<?[^\s<>@]+@[^\s<>@]+>?\s*[:：]?$",
        // weekday first (Gmail ru, pl, ja without "On"): пн, 16 нояб. 2026 г. в 10:00, Brand <a@b>:
        r"(?i)^\s*\p{L}{2,4}\.?,\s+\d{1,2}\.?\s+\p{L}{3,10}\.?\s+\d{4}.*<[^\s<>@]+@[^\s<>@]+>\s*[:：]$",
        // any other line with a date that ends in a bracketed address and a colon (Mail.ru:
        // "Понедельник, 16 ноября 2026, 10:00 +03:00 от Brand <p@b>:")
        r"^.*\d.*<[^\s<>@]+@[^\s<>@]+>\s*[:：]$",
    ])
    .expect("valid reply header patterns")
});

/// A reply header looks like this even when the patterns above miss it: a line ending in a
/// colon that names an address and is followed by quoted lines, or that names a reply verb.
static REPLY_HEADER_LOOSE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:[^\s<>@]+@[^\s<>@]+.*|(?-u:\b)(?:wrote|schrieb|écrit|escribió|scritto|escreveu|schreef|skrev|pisze|napisał|написал|пишет|geschrieben|geschreven)|写道|書きました|のメール)\s*[:：]$",
    )
    .expect("valid regex")
});

/// One line of an Outlook-style header block ("From: …", "**Sent:** …"), in the languages
/// collabd sees. Group 1 is the field name.
static HEADER_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?xi)^[\s*_]{0,4}(
            from|sent|to|cc|bcc|subject|date|reply-to
          | von|gesendet|an|betreff|datum|kopie
          | de|envoyé|à|a|objet|cc|date\sd'envoi
          | da|inviato|oggetto|data
          | enviado|enviada|enviado\sel|para|asunto|fecha|assunto
          | van|verzonden|aan|onderwerp
          | från|skickat|till|ämne|kopia
          | fra|sendt|til|emne|dato
          | od|wysłane|wysłano|do|temat|dw
          | от|отправлено|кому|тема|дата|копия
          | 差出人|送信日時|宛先|件名|日付
          | 发件人|发送时间|收件人|主题|抄送|日期|寄件者|寄件日期|傳送時間|收件者|主旨
        )[\s*_]{0,4}[:：]",
    )
    .expect("valid regex")
});

/// Lines that end the new text: signature delimiter, rules and "Original Message" lines.
static DELIMITER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?xi)^[\s*_>]*(?:
            --\s*
          | _{8,}
          | -{2,}\s*[\p{L}\s'’]*?\s*(?:original\smessage|ursprüngliche\snachricht|message\sd['’]origine|mensaje\soriginal|messaggio\soriginale|mensagem\soriginal|oorspronkelijk\sbericht|originalmeddelande|opprinnelig\smelding|oprindelig\smeddelelse|original\smeddelelse|oryginalna\swiadomość|ursprungligt\smeddelande|ursprüngliche\smail|mail\soriginal|wiadomość\soryginalna|исходное\sсообщение|元のメッセージ|原始邮件|原始郵件|forwarded\smessage|weitergeleitete\snachricht|message\stransféré|mensaje\sreenviado|messaggio\sinoltrato|mensagem\sencaminhada|doorgestuurd\sbericht|пересылаемое\sсообщение|转发邮件)\s*-{2,}
          | -{4,}\s*[^-\s].*?-{4,}
          | (?:begin\sforwarded\smessage|anfang\sder\sweitergeleiteten\snachricht|début\sdu\smessage\sréexpédié)\s*:
        )[\s*_]*$",
    )
    .expect("valid regex")
});

/// Opening lines of a mail pasted into the reply without quote marks: delivery reports the
/// sender copied in.
static EMBEDDED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?xi)^(?:
            delivery\sto\sthe\sfollowing\srecipients?\sfailed
          | this\sis\sthe\smail\ssystem\sat\shost
          | delivery\sstatus\snotification
          | undelivered\smail\sreturned\sto\ssender
          | mail\sdelivery\s(?:failed|subsystem)
          | i'm\ssorry\sto\shave\sto\sinform\syou
          | your\smessage\s(?:wasn't|was\snot|could\snot\sbe)\sdelivered
          | (?:address\snot\sfound|message\snot\sdelivered)$
          | não\sfoi\spossível\sentregar\sa\smensagem
          | nachricht\snicht\szugestellt
          | mensaje\sno\sentregado
          | message\snon\sremis
          | messaggio\snon\sconsegnato
          | final-recipient:
        )",
    )
    .expect("valid regex")
});

/// A link's footnote number as html2text writes it: "[Outlook for iOS][2]".
static LINK_REF: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\]\[\d+\]").expect("valid regex"));

/// Mobile and mail-client signatures, one line each (markup such as `*` is stripped first).
static SIGNATURE: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new([
        r"(?i)^sent\sfrom\s.+$",
        // "Sent with love," is a sign-off; "Sent with Proton Mail secure email." is not.
        r"(?i)^sent\s(?:with|via|using)\s(?:the\s)?(?:proton|blackberry|spark|airmail|superhuman|newton|gmail|outlook|yahoo|aol|gmx|web\.de|mail|.+\sapp(?-u:\b)|.+(?-u:\b)mail(?-u:\b)).*$",
        r"(?i)^get\s+outlook\s+for\s+(?:ios|android)$",
        r"(?i)^(?:obtenir|télécharger)\s+outlook\s+pour\s+(?:ios|android)$",
        r"(?i)^envoyé\s(?:de|depuis|à\spartir\sde)\s.+$",
        r"(?i)^von\s+meinem\s.+\sgesendet$",
        r"(?i)^gesendet\s(?:von|mit|aus|über)\s.+$",
        r"(?i)^(?:outlook\s+für\s+(?:ios|android)\s+(?:herunterladen|beziehen)|holen\s+sie\s+sich\s+outlook\s+für\s+(?:ios|android))$",
        r"(?i)^enviad[oa]\s(?:desde|do|da|de|a\spartir\sdo)\s.+$",
        r"(?i)^(?:obtener|descargar|obter|baixe|baixar)\s+(?:o\s+)?outlook\s+(?:para|pro)\s+(?:ios|android)$",
        r"(?i)^inviato\s(?:da|dal|con)\s.+$",
        r"(?i)^scarica\s+outlook\s+per\s+(?:ios|android)$",
        r"(?i)^(?:verstuurd|verzonden)\s(?:vanaf|met|via)\s.+$",
        r"(?i)^(?:download|haal)\s+outlook\s+voor\s+(?:ios|android)$",
        r"(?i)^skickat\s(?:från|med)\s.+$",
        r"(?i)^hämta\s+outlook\s+för\s+(?:ios|android)$",
        r"(?i)^sendt\s(?:fra|med)\s.+$",
        r"(?i)^(?:hent|få)\s+outlook\s+(?:for|til)\s+(?:ios|android)$",
        r"(?i)^wysłan[eo]\s(?:z|ze|przy)\s.+$",
        r"(?i)^pobierz\s+(?:aplikację\s+)?outlook\s+dla\s+(?:ios|android)$",
        r"(?i)^отправлено\s(?:с|со|из|через)\s.+$",
        r"(?i)^(?:получить|скачайте|скачать)\s+outlook\s+для\s+(?:ios|android)$",
        r"^.+から送信$",
        r"^(?:发自|發自|来自|來自)我的.+$",
        r"^从我的.+发送$",
    ])
    .expect("valid signature patterns")
});

/// What a line is, before shapes are put together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Empty,
    Text,
    /// Starts with `>` or `|`.
    Quote,
    /// `-- `, an underscore rule, "-----Original Message-----" and its translations.
    Delimiter,
    /// A mobile or mail-client signature ("Sent from my iPhone").
    Signature,
    /// One line of an attribution ("On … wrote:"), possibly wrapped over up to 3 lines.
    ReplyHeader,
    /// The first line of a mail pasted in without quote marks (a delivery report).
    Embedded,
    /// "From: …" and its kin; a block of two or more starts pasted history.
    HeaderLine,
    /// The first line of such a block.
    HeaderBlock,
}

/// Why a text kept whole is unsure: nothing of the sender's own was found outside quotes.
pub(super) const NO_NEW_TEXT: &str = "no new text outside quoted history";

/// The new text of a reply, and whether the stripper is sure where it ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewText {
    pub text: String,
    /// Why the stripper is not sure the text holds only the sender's own words (a header
    /// block or a quote marker is still inside it). Declines are not read from such text.
    pub unsure: Option<String>,
}

/// The new text of a plain-text body.
pub fn new_text(body: &str) -> NewText {
    // About one line per 40 bytes of mail text; a guess saves most reallocations.
    let mut lines: Vec<&str> = Vec::with_capacity((body.len() / 40 + 1).min(MAX_LINES + 1));
    lines.extend(body.lines().take(MAX_LINES + 1).map(str::trim_end));
    let truncated = lines.len() > MAX_LINES;
    let lines = &lines[..lines.len().min(MAX_LINES)];
    let tags = shape(lines);

    let mut kept: Vec<usize> = Vec::with_capacity(lines.len());
    // After a client signature, the sender's text is over until quoted history shows up;
    // text below that (inline answers) counts again.
    let mut signed = false;
    let mut i = 0;
    while i < lines.len() {
        match tags[i] {
            Tag::Empty | Tag::Text | Tag::HeaderLine if !signed => kept.push(i),
            Tag::Empty | Tag::Text | Tag::HeaderLine => {}
            Tag::Quote => signed = false,
            Tag::Signature => signed = true,
            Tag::ReplyHeader | Tag::Delimiter | Tag::HeaderBlock if !is_sig_dash(lines[i]) => {
                // History opens here. With quoted lines below it (after an attribution or
                // header lines, as Zimbra writes them), it is dropped with them and the
                // text after them is kept; history pasted without quote marks ends all.
                let next = (i..lines.len()).find(|&j| !opens_history(lines[j], tags[j]));
                if next.is_none_or(|j| tags[j] != Tag::Quote) {
                    break;
                }
                i = next.unwrap_or(lines.len());
                continue;
            }
            Tag::ReplyHeader | Tag::Delimiter | Tag::HeaderBlock | Tag::Embedded => break,
        }
        i += 1;
    }
    // Blank lines and a rule left above the cut ("----------" over a header block).
    while kept.last().is_some_and(|&k| tags[k] == Tag::Empty || is_rule(lines[k])) {
        kept.pop();
    }
    let first = kept.iter().position(|&k| tags[k] != Tag::Empty).unwrap_or(kept.len());
    let kept = &kept[first..];

    if kept.is_empty() {
        let text = lines.join("\n").trim().to_owned();
        let unsure = (!text.is_empty()).then(|| NO_NEW_TEXT.to_owned());
        return NewText { text, unsure };
    }
    let mut text = String::with_capacity(kept.iter().map(|&k| lines[k].len() + 1).sum());
    for &k in kept {
        // A blank line between two answers stays one blank line, whatever was cut between.
        if tags[k] == Tag::Empty && text.ends_with("\n\n") {
            continue;
        }
        text.push_str(lines[k]);
        text.push('\n');
    }
    let text = text.trim_end().to_owned();
    let unsure = kept
        .iter()
        .find_map(|&k| doubt(lines[k], tags[k]))
        .or_else(|| truncated.then(|| format!("only the first {MAX_LINES} lines were examined")));
    NewText { text, unsure }
}

/// Lines that introduce quoted history: attribution, header lines, "Original Message".
fn opens_history(line: &str, tag: Tag) -> bool {
    match tag {
        Tag::Empty | Tag::ReplyHeader | Tag::HeaderLine | Tag::HeaderBlock => true,
        Tag::Delimiter => !is_sig_dash(line),
        _ => false,
    }
}

/// A line drawn with one repeated mark: `----------`, `==========`, `──────────`.
fn is_rule(line: &str) -> bool {
    let t = line.trim();
    t.chars().count() >= 3 && t.chars().all(|c| matches!(c, '-' | '_' | '=' | '─' | '—' | '*'))
}

/// The `-- ` signature delimiter: nothing of the sender's follows it.
fn is_sig_dash(line: &str) -> bool {
    let t = line.trim();
    t == "--" || line.starts_with("-- ") && line[3..].trim().is_empty()
}

/// Why a kept line makes the cut doubtful, if it does.
fn doubt(line: &str, tag: Tag) -> Option<String> {
    if tag == Tag::HeaderLine && looks_like_field(line) {
        return Some(format!("kept a header line: {:?}", clip(line)));
    }
    let t = line.trim();
    if t.len() <= MAX_SHAPE_LEN && t.ends_with([':', '：']) && REPLY_HEADER_LOOSE.is_match(t) {
        return Some(format!("kept a reply-header-like line: {:?}", clip(line)));
    }
    None
}

/// A header line whose value looks like a header's (an address, a date), not a sentence.
fn looks_like_field(line: &str) -> bool {
    let value = line.split_once([':', '：']).map_or("", |(_, v)| v);
    value.contains('@')
        || value.contains('<')
        || value.bytes().filter(u8::is_ascii_digit).count() >= 4
}

fn clip(line: &str) -> String {
    line.trim().chars().take(80).collect()
}

/// Tags each line, then joins them into shapes: wrapped reply headers, header blocks.
fn shape(lines: &[&str]) -> Vec<Tag> {
    let mut tags: Vec<Tag> = lines.iter().map(|l| tag(l)).collect();
    // Reply headers: a candidate last line, alone or with one or two lines above it.
    for j in 0..lines.len() {
        if tags[j] != Tag::Text || !ends_like_header(lines[j]) {
            continue;
        }
        for k in 0..3 {
            let Some(start) = j.checked_sub(k) else { break };
            if (start..j).any(|m| tags[m] != Tag::Text) {
                break;
            }
            let joined = join(&lines[start..=j]);
            if joined.len() > 3 * MAX_SHAPE_LEN {
                break;
            }
            if is_reply_header(&joined) {
                let mut start = start;
                while start > 0
                    && j - start < 2
                    && tags[start - 1] == Tag::Text
                    && continues_header(lines[start - 1], lines[start])
                {
                    start -= 1;
                }
                tags[start..=j].fill(Tag::ReplyHeader);
                break;
            }
        }
        // Any line ending in a colon that names an address, directly above quoted lines.
        let next = (j + 1..lines.len()).find(|&m| tags[m] != Tag::Empty);
        if tags[j] == Tag::Text
            && next.is_some_and(|m| tags[m] == Tag::Quote)
            && REPLY_HEADER_LOOSE.is_match(lines[j].trim())
        {
            tags[j] = Tag::ReplyHeader;
            // Its first half, when the client wrapped it.
            if j > 0 && tags[j - 1] == Tag::Text && lines[j - 1].trim_end().ends_with('<') {
                tags[j - 1] = Tag::ReplyHeader;
            }
        }
    }
    // Header blocks: two or more header lines, blank lines allowed between them (HTML).
    let mut i = 0;
    while i < lines.len() {
        if tags[i] != Tag::HeaderLine {
            i += 1;
            continue;
        }
        let (mut count, mut j, mut last) = (1, i + 1, i);
        while j < lines.len() && j <= last + 2 {
            match tags[j] {
                Tag::HeaderLine => {
                    count += 1;
                    last = j;
                }
                Tag::Empty => {}
                _ => break,
            }
            j += 1;
        }
        if count >= 2 {
            tags[i] = Tag::HeaderBlock;
        }
        i = last + 1;
    }
    tags
}

/// The tag of one line on its own.
fn tag(line: &str) -> Tag {
    let t = line.trim();
    if t.is_empty() {
        return Tag::Empty;
    }
    if is_sig_dash(line) {
        return Tag::Delimiter;
    }
    if t.starts_with('>') || is_bar_quote(t) {
        return Tag::Quote;
    }
    if t.len() > MAX_SHAPE_LEN {
        return Tag::Text;
    }
    // Cheap tests first: most lines are text, and each regex call costs.
    let opens_rule = t.starts_with(['-', '_', '*', '=']);
    if (opens_rule || t.ends_with(':')) && DELIMITER.is_match(t) {
        return Tag::Delimiter;
    }
    // Client signatures and report openers are short; markup may surround them and a link
    // follow them ("Get Outlook for iOS<https://aka.ms/…>").
    let lead = t.bytes().find(|b| !matches!(b, b'*' | b'_' | b' ' | b'\t')).unwrap_or(b' ');
    let lead = usize::from(lead.to_ascii_lowercase());
    let cjk_tail = t.ends_with("から送信") || t.ends_with("发送");
    if t.len() <= 90 && (LEADS.0[lead] || LEADS.1[lead] || cjk_tail) {
        let bare = t.split('<').next().unwrap_or(t);
        // html2text writes links as "Get [Outlook for iOS][2]".
        let unlinked;
        let bare = if bare.contains('[') {
            unlinked = LINK_REF.replace_all(bare, "").replace(['[', ']'], "");
            unlinked.as_str()
        } else {
            bare
        };
        let bare = bare.trim_matches(|c: char| c == '*' || c == '_' || c.is_whitespace());
        let first = bare.split_whitespace().next().unwrap_or("");
        let cjk = cjk_tail || !first.is_ascii() && bare.contains("我的");
        if (cjk || first_word_in(first, &SIGNATURE_WORDS)) && SIGNATURE.is_match(bare) {
            return Tag::Signature;
        }
        if first_word_in(first, &EMBEDDED_WORDS) && EMBEDDED.is_match(t) {
            return Tag::Embedded;
        }
    }
    // Field names are short: the colon comes within the first few dozen bytes.
    let head = &t.as_bytes()[..t.len().min(72)];
    let colon_early =
        head.contains(&b':') || !head.is_ascii() && head.windows(3).any(|w| w == "：".as_bytes());
    if colon_early && HEADER_LINE.is_match(t) {
        return Tag::HeaderLine;
    }
    Tag::Text
}

/// First words of the lines `SIGNATURE` and `EMBEDDED` can match, to skip the regexes on
/// every other line.
const SIGNATURE_WORDS: [&str; 34] = [
    "sent",
    "get",
    "obtenir",
    "télécharger",
    "envoyé",
    "von",
    "gesendet",
    "outlook",
    "holen",
    "enviado",
    "enviada",
    "obtener",
    "descargar",
    "obter",
    "baixe",
    "baixar",
    "inviato",
    "scarica",
    "verstuurd",
    "verzonden",
    "download",
    "haal",
    "skickat",
    "hämta",
    "sendt",
    "hent",
    "få",
    "wysłane",
    "wysłano",
    "pobierz",
    "отправлено",
    "получить",
    "скачайте",
    "скачать",
];
const EMBEDDED_WORDS: [&str; 13] = [
    "delivery",
    "this",
    "undelivered",
    "mail",
    "i'm",
    "your",
    "address",
    "message",
    "não",
    "nachricht",
    "mensaje",
    "messaggio",
    "final-recipient:",
];

/// First bytes of `SIGNATURE_WORDS` and `EMBEDDED_WORDS` (and of 发自/發自/来自/來自/从我的).
static LEADS: ([bool; 256], [bool; 256]) =
    (first_bytes(&SIGNATURE_WORDS), first_bytes(&EMBEDDED_WORDS));

const fn first_bytes(words: &[&str]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < words.len() {
        table[words[i].as_bytes()[0] as usize] = true;
        i += 1;
    }
    // Lead bytes of the Chinese signatures ("发自我的iPhone", "從我的…").
    table[0xe5] = true;
    table[0xe4] = true;
    table[0xe6] = true;
    table[0xe7] = true;
    table
}

/// Whether `word` is one of `words` (lower case), ignoring case. Most words fail on their
/// first byte (the same in both cases for the Latin and Cyrillic letters listed).
fn first_word_in(word: &str, words: &[&str]) -> bool {
    let Some(&b0) = word.as_bytes().first() else { return false };
    let b0 = b0.to_ascii_lowercase();
    // Lower-casing keeps the length of the Latin and Cyrillic letters listed.
    let mut candidates = words.iter().filter(|w| w.len() == word.len() && w.as_bytes()[0] == b0);
    if word.is_ascii() {
        return candidates.any(|w| w.eq_ignore_ascii_case(word));
    }
    let mut candidates = candidates.peekable();
    if candidates.peek().is_none() {
        return false;
    }
    let lower = word.to_lowercase();
    candidates.any(|w| *w == lower)
}

/// `|` quoting, but not a table row written by the sender (`| Reel | 800 |`).
fn is_bar_quote(t: &str) -> bool {
    t.starts_with('|') && !(t.len() > 1 && t.ends_with('|') && t.matches('|').count() >= 3)
}

/// The last line of a reply header ends in a colon, or in an address for the date-first
/// form without one ("2013/7/20 Someone <someone@example.com>").
fn ends_like_header(line: &str) -> bool {
    let t = line.trim_end();
    t.len() <= MAX_SHAPE_LEN && (t.ends_with([':', '：']) || t.ends_with('>'))
}

fn join(lines: &[&str]) -> String {
    let mut s = String::new();
    for l in lines {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(l.trim());
    }
    s
}

/// A reply header names a date (a digit) or an address; "On the whole, I wrote:" is text.
fn is_reply_header(joined: &str) -> bool {
    names_date_or_address(joined) && REPLY_HEADER.is_match(joined)
}

fn names_date_or_address(s: &str) -> bool {
    s.contains('@') || s.bytes().any(|b| b.is_ascii_digit())
}

/// A line that continues a reply header wrapped by the client: it starts with the address
/// the line above opened ("Brand <" / "partners@brand.example> a écrit :").
fn continues_header(above: &str, line: &str) -> bool {
    let first = line.split_whitespace().next().unwrap_or("");
    above.trim_end().ends_with('<') || first.starts_with('<') || first.contains('@')
}

/// Whether `text` opens with pasted history: a header block ("From: …" / "Sent: …") or an
/// "Original Message" line. Used on the text after an HTML `<hr>`.
pub(super) fn starts_with_header_block(text: &str) -> bool {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).take(8).collect();
    let tags = shape(&lines);
    tags.first().is_some_and(|&t| t == Tag::HeaderBlock || t == Tag::Delimiter)
}

#[cfg(test)]
mod tests;
