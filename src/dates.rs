//! Times as operators and their CRMs write them: the `sent_at` column of an outreach
//! import, `outreach record --sent-at` and every `--since`. One parser for all of them.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// A time as CRMs and mail clients export it: RFC 3339 (`2026-11-15T16:59:12Z`), RFC 2822
/// (`Sun, 15 Nov 2026 16:59:12 GMT`, weekday optional, numeric or named zone), or plain
/// `YYYY-MM-DD[ HH:MM[:SS]]` (also with `T`), taken as UTC.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    let bad = |why: &str| {
        format!("{s:?} is not a date{why} (expected RFC 3339, RFC 2822 or YYYY-MM-DD HH:MM:SS)")
    };
    if s.is_empty() {
        return Err(bad(""));
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Ok(d.to_utc());
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
    {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(d.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    if !s.starts_with(|c: char| c.is_ascii_digit()) && !s.contains(',') {
        // Neither ISO-like nor RFC 2822 with a weekday; RFC 2822 without one starts with
        // the day of the month.
        return Err(bad(""));
    }
    let normalised = rfc2822_zone(s).map_err(|why| bad(&why))?;
    DateTime::parse_from_rfc2822(&normalised)
        .map(|d| d.to_utc())
        .map_err(|e| bad(&format!(": {e}")))
}

/// Rewrites an RFC 2822 date's zone as a numeric offset, dropping a trailing comment
/// (`+0000 (UTC)`). chrono takes GMT, UT and the US zones but not `UTC`, and takes every
/// military letter as +0000; RFC 2822 says those letters carry no information (RFC 822
/// had their signs backwards), so only `Z` is accepted and the others are refused rather
/// than guessed.
fn rfc2822_zone(s: &str) -> Result<String, String> {
    let s = match s.rfind('(') {
        Some(i) if s.ends_with(')') => s[..i].trim_end(),
        _ => s,
    };
    let (rest, zone) = s.rsplit_once(char::is_whitespace).ok_or_else(String::new)?;
    if !zone.chars().all(|c| c.is_ascii_alphabetic()) {
        return Ok(s.to_owned());
    }
    let offset = match zone.to_ascii_uppercase().as_str() {
        "UT" | "UTC" | "GMT" | "Z" => "+0000",
        "EST" => "-0500",
        "EDT" => "-0400",
        "CST" => "-0600",
        "CDT" => "-0500",
        "MST" => "-0700",
        "MDT" => "-0600",
        "PST" => "-0800",
        "PDT" => "-0700",
        _ => return Err(format!(": unknown time zone {zone:?}")),
    };
    Ok(format!("{} {offset}", rest.trim_end()))
}

/// `--since`: any time [`parse_time`] reads (a date alone is midnight UTC).
pub fn parse_since(s: &str) -> Result<DateTime<Utc>, String> {
    parse_time(s).map_err(|e| format!("--since {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> String {
        parse_time(s).unwrap_or_else(|e| panic!("{s:?}: {e}")).to_rfc3339()
    }

    #[test]
    fn rfc3339() {
        assert_eq!(at("2026-11-15T16:59:12Z"), "2026-11-15T16:59:12+00:00");
        assert_eq!(at("2026-11-15T17:59:12+01:00"), "2026-11-15T16:59:12+00:00");
        assert_eq!(at("2026-11-15T16:59:12.250Z"), "2026-11-15T16:59:12.250+00:00");
    }

    #[test]
    fn rfc2822_with_and_without_weekday() {
        assert_eq!(at("Sun, 15 Nov 2026 16:59:12 GMT"), "2026-11-15T16:59:12+00:00");
        assert_eq!(at("15 Nov 2026 16:59:12 GMT"), "2026-11-15T16:59:12+00:00");
        assert_eq!(at("Sun, 15 Nov 2026 17:59:12 +0100"), "2026-11-15T16:59:12+00:00");
        assert_eq!(at("15 Nov 2026 11:59:12 -0500"), "2026-11-15T16:59:12+00:00");
        assert_eq!(at("Sun, 15 Nov 2026 16:59:12 +0000 (UTC)"), "2026-11-15T16:59:12+00:00");
        assert_eq!(at("Thu, 5 Nov 2026 16:59 GMT"), "2026-11-05T16:59:00+00:00");
    }

    #[test]
    fn rfc2822_named_zones() {
        for (zone, utc_hour) in [
            ("GMT", 12),
            ("UT", 12),
            ("UTC", 12),
            ("utc", 12),
            ("Z", 12),
            ("EST", 17),
            ("EDT", 16),
            ("CST", 18),
            ("CDT", 17),
            ("MST", 19),
            ("MDT", 18),
            ("PST", 20),
            ("PDT", 19),
        ] {
            let d = parse_time(&format!("15 Nov 2026 12:00:00 {zone}"))
                .unwrap_or_else(|e| panic!("{zone}: {e}"));
            assert_eq!(d.to_rfc3339(), format!("2026-11-15T{utc_hour}:00:00+00:00"), "{zone}");
        }
    }

    #[test]
    fn plain_dates_are_utc() {
        assert_eq!(at("2026-11-15 16:59:12"), "2026-11-15T16:59:12+00:00");
        assert_eq!(at("2026-11-15 16:59"), "2026-11-15T16:59:00+00:00");
        assert_eq!(at("2026-11-15T16:59:12"), "2026-11-15T16:59:12+00:00");
        assert_eq!(at("2026-11-15T16:59"), "2026-11-15T16:59:00+00:00");
        assert_eq!(at("2026-11-15"), "2026-11-15T00:00:00+00:00");
    }

    #[test]
    fn invalid_dates_say_why() {
        for s in [
            "",
            "yesterday",
            "15/11/2026",
            "2026-13-01 10:00",
            "2026-11-15 25:00",
            "Sun, 32 Nov 2026 16:59:12 GMT",
            "Mon, 15 Nov 2026 16:59:12 GMT", // 15 Nov 2026 is a Sunday
            "15 Nov 2026 16:59:12 CET",      // not an RFC 2822 zone: ambiguous
            "15 Nov 2026 16:59:12 A",        // military zones other than Z carry no offset
            "15 Nov 2026 16:59:12 +2500",
        ] {
            let e = parse_time(s).expect_err(s);
            assert!(e.contains("is not a date"), "{s:?}: {e}");
        }
        assert!(parse_time("15 Nov 2026 16:59:12 CET").unwrap_err().contains("\"CET\""));
    }

    #[test]
    fn since_takes_a_date_or_a_time() {
        assert_eq!(parse_since("2026-11-01").unwrap().to_rfc3339(), "2026-11-01T00:00:00+00:00");
        assert_eq!(
            parse_since("2026-11-01T10:00:00+02:00").unwrap().to_rfc3339(),
            "2026-11-01T08:00:00+00:00"
        );
        assert!(parse_since("last week").unwrap_err().starts_with("--since \"last week\""));
    }
}
