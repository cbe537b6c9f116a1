//! Making stored text safe to show: `collabctl`'s human output and its CSV export.
//!
//! Everything shown comes from mail, CSV imports or operators' flags, so any value may hold
//! terminal control sequences (`ESC[31m`, an OSC title, a newline that fakes a table row) or
//! be megabytes long. Human output goes through [`clip`] (one line: every control
//! character escaped, cut to a width), [`text`] (the same with a generous cap, for values
//! shown on their own line) or [`multiline`] (newlines kept), and tables through [`table`];
//! `--json` through [`json`], which stays exact; CSV cells through [`csv_cell`].
//!
//! Widths count chars, not terminal columns: bounded, panic-free and good enough for the
//! ASCII that fills most cells (a CJK name pushes its row's later columns a little).

use std::borrow::Cow;
use std::fmt::Write as _;

/// Widest table cell, in chars, before it is cut with `…`.
pub const CELL_MAX: usize = 60;
/// Widest last cell of a table row: it pushes no other column (errors, reasons, emails).
pub const LAST_CELL_MAX: usize = 200;
/// Longest value shown on a line of its own (`collab show`'s terms, `mailbox show`).
pub const TEXT_MAX: usize = 2000;

/// What replaces the end of a cut value.
pub const ELLIPSIS: char = '…';

/// Whether `c` must never reach a terminal raw: C0 controls (ESC, BEL, CR, LF, TAB, …), DEL,
/// C1 controls (U+0080–U+009F; U+009B is a one-char CSI for some terminals), the Unicode
/// bidi controls (overrides and isolates reorder what follows: "Trojan Source") and the
/// line and paragraph separators.
pub fn is_unsafe(c: char) -> bool {
    matches!(
        c,
        '\0'..='\x1f'
            | '\x7f'..='\u{9f}'
            | '\u{061c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
    )
}

/// How an unsafe char is shown: `\t`, `\n`, `\r`, `\e` (ESC), else `\u{hex}`.
fn escape_char(c: char, out: &mut String) {
    match c {
        '\t' => out.push_str("\\t"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\x1b' => out.push_str("\\e"),
        c => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
}

/// `s` with every unsafe char escaped ([`is_unsafe`]), uncut.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if is_unsafe(c) {
            escape_char(c, &mut out);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `s` cut to at most `max` chars, the last of them `…` when anything was left out. Cuts
/// only between chars, so never inside a multi-byte one.
pub fn cut(s: &str, max: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max) {
        None => Cow::Borrowed(s),
        Some(_) if max == 0 => Cow::Borrowed(""),
        Some(_) => {
            let keep = s.char_indices().nth(max - 1).map_or(s.len(), |(i, _)| i);
            Cow::Owned(format!("{}{ELLIPSIS}", &s[..keep]))
        }
    }
}

/// One line of at most `max` chars: unsafe chars escaped, then cut with `…`. An escape is
/// never split, and the work stops at the cut, however long `s` is.
pub fn clip(s: &str, max: usize) -> String {
    render(s, max, false)
}

/// A value shown on a line of its own: [`clip`] to [`TEXT_MAX`].
pub fn text(s: &str) -> String {
    clip(s, TEXT_MAX)
}

/// Text whose lines are meant (a message to be sent, shown by `--dry-run`): like [`clip`],
/// but LF and CRLF stay line breaks.
pub fn multiline(s: &str, max: usize) -> String {
    render(s, max, true)
}

fn render(s: &str, max: usize, newlines: bool) -> String {
    let mut out = String::with_capacity(s.len().min(max.saturating_mul(4).saturating_add(8)));
    // Chars in `out`, and the length of `out` when it last held at most `max - 1` chars
    // (where `…` goes if the rest does not fit).
    let (mut width, mut keep) = (0, 0);
    let mut piece = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        piece.clear();
        match c {
            '\r' if newlines && chars.peek() == Some(&'\n') => continue,
            '\n' if newlines => piece.push('\n'),
            c if is_unsafe(c) => escape_char(c, &mut piece),
            c => piece.push(c),
        }
        let w = piece.chars().count();
        if width + w > max {
            out.truncate(keep);
            if max > 0 {
                out.push(ELLIPSIS);
            }
            return out;
        }
        out.push_str(&piece);
        width += w;
        if width < max {
            keep = out.len();
        }
    }
    out
}

/// Left-aligned columns sized to their widest cell, two spaces apart. Every cell is
/// [`clip`]ped ([`CELL_MAX`]; the last column [`LAST_CELL_MAX`]), so no stored value can
/// make a row span lines or a column unbounded. Cells past the headers' count are dropped.
pub fn table(headers: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let n = headers.len();
    let cap = |i: usize| if i + 1 == n { LAST_CELL_MAX } else { CELL_MAX };
    let clipped = |cells: &mut dyn Iterator<Item = &str>| -> Vec<String> {
        cells.take(n).enumerate().map(|(i, c)| clip(c, cap(i))).collect()
    };
    let head = clipped(&mut headers.iter().copied());
    let rows: Vec<Vec<String>> =
        rows.into_iter().map(|r| clipped(&mut r.iter().map(String::as_str))).collect();
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(&head).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in r.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            // Padding by hand: `{:<w$}` refuses widths over 65,535 (bounded here anyway).
            line.extend(std::iter::repeat_n(' ', w.saturating_sub(cell.chars().count())));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// JSON text made safe for a terminal and still exact: serde_json escapes C0 controls,
/// this escapes the other unsafe chars ([`is_unsafe`]: DEL, C1, bidi) as `\uXXXX`. Outside
/// strings JSON text is ASCII without DEL, so only string contents change, to the same
/// value.
pub fn json(text: String) -> String {
    if !text.chars().any(is_unsafe_in_json) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_unsafe_in_json(c) {
            // Every unsafe char is in the Basic Multilingual Plane: one `\uXXXX`.
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// Unsafe chars that may appear raw in serde_json's output (it escapes the C0 ones, and
/// its pretty form's newlines and indentation are its own).
fn is_unsafe_in_json(c: char) -> bool {
    c > '\x1f' && is_unsafe(c)
}

/// A CSV cell a spreadsheet will not run: one starting with `=`, `+`, `-`, `@`, TAB or CR
/// gets a leading `'` (OWASP, "CSV Injection"). That includes negative-looking numbers
/// ("-2+3" is a formula, and no exported column holds a bare number that can be negative).
pub fn csv_cell(s: &str) -> Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_chars_are_escaped_and_the_rest_kept() {
        assert_eq!(escape("plain, Ünïcode ✓ 日本"), "plain, Ünïcode ✓ 日本");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(escape("\x1b[31mred\x1b[0m"), "\\e[31mred\\e[0m");
        assert_eq!(escape("\x1b]0;pwned\x07"), "\\e]0;pwned\\u{7}");
        assert_eq!(escape("a\nb\rc\td"), "a\\nb\\rc\\td");
        assert_eq!(escape("\0\x7f\u{80}\u{9b}\u{9f}"), "\\u{0}\\u{7f}\\u{80}\\u{9b}\\u{9f}");
        assert_eq!(escape("\u{202e}evil\u{2066}\u{2069}"), "\\u{202e}evil\\u{2066}\\u{2069}");
        assert_eq!(escape("\u{2028}\u{200f}"), "\\u{2028}\\u{200f}");
        // Neighbours of the ranges are ordinary text.
        assert_eq!(escape("\u{a0}\u{2065}\u{206a}\u{2027}"), "\u{a0}\u{2065}\u{206a}\u{2027}");
    }

    #[test]
    fn every_unsafe_char_is_escaped_to_safe_ascii() {
        for c in (0..=0x10ffff).filter_map(char::from_u32).filter(|&c| is_unsafe(c)) {
            let shown = clip(&c.to_string(), 20);
            assert!(shown.starts_with('\\') && shown.is_ascii(), "{c:?} -> {shown:?}");
            assert!(!shown.chars().any(is_unsafe), "{c:?} -> {shown:?}");
        }
    }

    #[test]
    fn cut_is_char_safe_and_bounded() {
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut("exactly10!", 10), "exactly10!");
        assert_eq!(cut("eleven chars", 10), "eleven ch…");
        // Multi-byte chars are never split: the cut falls between chars.
        assert_eq!(cut("ééééé", 3), "éé…");
        assert_eq!(cut("日本語のテキスト", 4), "日本語…");
        assert_eq!(cut("👩‍👩‍👧x", 2), "👩…");
        assert_eq!(cut("abc", 0), "");
        assert_eq!(cut("", 0), "");
        for max in 0..12 {
            for s in ["", "a", "ü日👩‍👩‍👧 mixed ÿ", "ascii only text"] {
                let c = cut(s, max);
                assert!(c.chars().count() <= max, "{s:?} {max} -> {c:?}");
            }
        }
    }

    #[test]
    fn clip_escapes_then_cuts_without_splitting_an_escape() {
        assert_eq!(clip("ok", 60), "ok");
        assert_eq!(clip("a\nb", 60), "a\\nb");
        // "ab" + "\u{9b}" (6 chars) does not fit in 6 with the ellipsis: cut before it.
        assert_eq!(clip("ab\u{9b}cd", 6), "ab…");
        assert_eq!(clip("ab\u{9b}", 8), "ab\\u{9b}");
        assert_eq!(clip("abcdef", 5), "abcd…");
        assert_eq!(clip("abcde", 5), "abcde");
        assert_eq!(clip("abcdef", 1), "…");
        assert_eq!(clip("abcdef", 0), "");
        assert_eq!(clip("日本語のテキスト", 4), "日本語…");
        let huge = "x\x1b".repeat(1_000_000);
        let c = clip(&huge, CELL_MAX);
        assert!(c.chars().count() <= CELL_MAX && c.chars().count() >= CELL_MAX - 2, "{c}");
        assert!(c.ends_with(ELLIPSIS) && !c.contains('\x1b'));
    }

    #[test]
    fn multiline_keeps_line_breaks_only() {
        assert_eq!(
            multiline("Subject: hi\r\n\r\nbody\x1b[2J\n", 100),
            "Subject: hi\n\nbody\\e[2J\n"
        );
        assert_eq!(multiline("lone\rcr", 100), "lone\\rcr");
        assert_eq!(multiline("a\nbcdef", 4), "a\nb…");
    }

    #[test]
    fn tables_cut_cells_and_never_panic_on_huge_values() {
        let huge = "S".repeat(2 * 1024 * 1024);
        let hostile = "Eve\x1b[31m\x1b]0;pwned\x07\n99  FAKE  ROW";
        let t = table(
            &["ID", "NAME", "LAST"],
            vec![
                vec!["1".into(), huge.clone(), huge.clone()],
                vec!["2".into(), hostile.into(), "x".into(), "extra cell".into()],
                vec!["3".into()],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(lines.iter().all(|l| l.chars().count() <= 2 + 2 + CELL_MAX + 2 + LAST_CELL_MAX));
        assert!(!t.contains(['\x1b', '\x07']) && !t.contains("extra cell"));
        assert!(lines[2].starts_with("2   Eve\\e[31m\\e]0;pwned\\u{7}\\n99  FAKE  ROW"), "{t}");
        assert_eq!(lines[1].chars().filter(|&c| c == ELLIPSIS).count(), 2);
        // Columns line up: the third starts at the same place on every full row.
        assert_eq!(lines[0].find("LAST"), Some(4 + CELL_MAX + 2));
        assert_eq!(lines[3], "3");
    }

    #[test]
    fn json_stays_exact_and_terminal_safe() {
        let v = serde_json::json!({"s": "\x1b[31m\u{7}\u{7f}\u{9b}\u{202e}\u{2069}✓\n"});
        for text in [serde_json::to_string(&v).unwrap(), serde_json::to_string_pretty(&v).unwrap()]
        {
            let safe = json(text);
            assert!(!safe.chars().any(|c| is_unsafe(c) && c != '\n'), "{safe}");
            assert!(safe.contains('✓'));
            assert_eq!(serde_json::from_str::<serde_json::Value>(&safe).unwrap(), v);
        }
    }

    #[test]
    fn csv_cells_that_start_a_formula_are_neutralised() {
        for s in ["=HYPERLINK(\"http://x\",\"y\")", "+1", "-2+3", "@SUM(1)", "\tx", "\rx", "-5"] {
            assert_eq!(csv_cell(s), format!("'{s}"));
        }
        for s in ["", "Ana", "1", "a=b", " =1", "'already", "[]", "{\"a\":-1}"] {
            assert!(matches!(csv_cell(s), Cow::Borrowed(x) if x == s));
        }
    }
}
