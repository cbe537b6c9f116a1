//! The name of a report's style (the MTA or provider that wrote it), shown in the reason.

use mail_parser::Message;

use super::{Gathered, floor_char};
use crate::mail::headers::Headers;

/// Telltales of report styles, looked for in the sender, the X-Mailer and the headers'
/// names, then in the notice (all lower case). First match wins; for the reason only.
const STYLES: &[(&str, &str)] = &[
    ("amazonses", "amazon ses"),
    ("sendgrid", "sendgrid"),
    ("mailgun", "mailgun"),
    ("postmark", "postmark"),
    ("x-zohomail", "zoho"),
    ("zoho", "zoho"),
    ("barracuda", "barracuda"),
    ("mcafee", "mcafee"),
    ("m-filter", "m-filter"),
    ("groupwise", "groupwise"),
    ("domino", "domino"),
    ("lotus notes", "domino"),
    ("apache james", "apache james"),
    ("dragonfly", "dragonfly mail agent"),
    ("opensmtpd", "opensmtpd"),
    ("courier", "courier"),
    ("x-mlserver", "fml"),
    ("docomo.ne.jp", "docomo"),
    ("ezweb.ne.jp", "kddi"),
    ("au.com", "kddi"),
    ("vtext.com", "verizon"),
    ("vzwpix.com", "verizon"),
    ("verizon", "verizon"),
    ("yahoo.com", "yahoo"),
    ("x-yahoo", "yahoo"),
    ("googlemail.com", "gmail"),
    ("google.com", "gmail"),
    ("outlook.com", "outlook.com"),
    ("hotmail.com", "outlook.com"),
];

/// The report style, for the reason.
/// `report_type` is the root's `multipart/report` type, if any.
pub(super) fn style(
    msg: &Message<'_>,
    s: &Headers,
    report_type: Option<&str>,
    g: &Gathered,
    formal: bool,
) -> &'static str {
    let notice = g.notice.as_str();
    let has = |needle: &str| notice.contains(needle);
    if s.get("X-MS-Exchange-Message-Is-Ndr").is_some()
        || has("Diagnostic information for administrators")
    {
        return "exchange ndr";
    }
    let from = msg.from().and_then(|a| a.first());
    let mut sender = [
        from.and_then(|a| a.name.as_deref()).unwrap_or_default(),
        from.and_then(|a| a.address.as_deref()).unwrap_or_default(),
        s.get("X-Mailer").unwrap_or_default(),
    ]
    .join(" ");
    for (name, _) in s.iter().filter(|(n, _)| n.starts_with(['X', 'x'])) {
        sender.push(' ');
        sender.push_str(name);
    }
    let sender = sender.to_lowercase();
    if let Some((_, name)) = STYLES.iter().find(|(needle, _)| sender.contains(needle)) {
        return name;
    }
    let head = notice[..floor_char(notice, 4096)].to_lowercase();
    if let Some((_, name)) = STYLES.iter().take(17).find(|(needle, _)| head.contains(needle)) {
        return name;
    }
    if s.get("X-Failed-Recipients").is_some()
        || has("This message was created automatically by mail delivery software")
    {
        return "exim";
    }
    if has("qmail-send program") || has("Remote host said:") && !formal {
        return "qmail";
    }
    if has("Transcript of session follows") || has("Transcript of Session Follows") {
        return "sendmail";
    }
    if has("This is the mail system at host") {
        return "postfix";
    }
    if let Some(kind) = g.status_part {
        return kind;
    }
    if report_type == Some("delivery-status") {
        return "delivery-status report";
    }
    "delivery notice"
}
