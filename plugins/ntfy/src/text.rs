//! Text within ntfy's limits: cut in bytes on a character boundary (saying so with `…`), kept
//! to one line, and links and times as a reader wants them.

use std::borrow::Cow;
use std::io;

use serde_json::Value;

/// The mark a cut text ends with (3 bytes in UTF-8).
pub const CUT: char = '…';

/// Longest link kept (a longer one is left out, never cut).
pub const MAX_LINK: usize = 2000;

/// `s` in at most `max` bytes: whole, or its start up to a character boundary and [`CUT`].
pub fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        s.to_owned()
    } else {
        cut_start(s, max)
    }
}

/// The start of `s` (cut short already) on a character boundary, ending with [`CUT`], in at
/// most `max` bytes (without the mark when `max` has no room for it).
fn cut_start(s: &str, max: usize) -> String {
    let Some(room) = max.checked_sub(CUT.len_utf8()) else {
        return s[..floor_boundary(s, max)].to_owned();
    };
    let mut out = String::with_capacity(max);
    out.push_str(&s[..floor_boundary(s, room)]);
    out.push(CUT);
    out
}

/// The largest index `<= i` that is a character boundary of `s`.
fn floor_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// `s` on one line in at most `max` bytes: each run of white space and control characters
/// becomes one space, the ends are trimmed, and a longer text is [`cut`]. Reads only as much of
/// `s` as it needs, however long `s` is.
pub fn line(s: &str, max: usize) -> String {
    // Most text is one line already: printable ASCII, single inner spaces, none at the ends.
    let b = s.as_bytes();
    let plain = b.first() != Some(&b' ')
        && b.last() != Some(&b' ')
        && b.iter()
            .zip(b.iter().skip(1).chain([&b'x']))
            .all(|(&c, &next)| (0x21..0x7f).contains(&c) || (c == b' ' && next != b' '));
    if plain {
        return cut(s, max);
    }
    let mut out = String::new();
    let mut space = false;
    for c in s.trim().chars() {
        if c.is_whitespace() || c.is_control() {
            space = true;
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
        if out.len() > max {
            break;
        }
    }
    cut(&out, max)
}

/// A JSON value as text: a string as it is (`None` if blank), `null` as `None`, anything else
/// as compact JSON.
pub fn text(v: Option<&Value>) -> Option<Cow<'_, str>> {
    match v? {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(Cow::Borrowed(s)),
        other => Some(Cow::Owned(compact(other, 4096))),
    }
}

/// `v` as compact JSON in at most `max` bytes (cut, ending with [`CUT`], if longer).
/// Serializes only `max` bytes of it, however large `v` is.
pub fn compact(v: &Value, max: usize) -> String {
    let mut w = Bounded {
        buf: Vec::new(),
        limit: max,
        full: false,
    };
    // A full buffer stops the serializer with an error: what it wrote is what we want.
    let _ = serde_json::to_writer(&mut w, v);
    let s = match std::str::from_utf8(&w.buf) {
        Ok(s) => s,
        // Stopped inside a character: keep the whole ones.
        Err(e) => std::str::from_utf8(&w.buf[..e.valid_up_to()]).unwrap_or_default(),
    };
    if w.full {
        cut_start(s, max)
    } else {
        s.to_owned()
    }
}

/// A writer that takes `limit` bytes, then fails (and says it was `full`).
struct Bounded {
    buf: Vec<u8>,
    limit: usize,
    full: bool,
}

impl io::Write for Bounded {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.limit - self.buf.len();
        if data.len() > room {
            self.full = true;
            if room == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Appends `s` to `out` as a JSON string: quoted, with `"`, `\\` and control characters
/// escaped (the rest, UTF-8 included, as it is).
pub fn push_json(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f | 0x7f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            out.push_str(&format!("\\u{b:04x}"));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// `s` if it is an http(s) URL with a host, no white space or control characters, and at most
/// [`MAX_LINK`] bytes.
pub fn web_url(s: &str) -> Option<&str> {
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &s[8..]
    } else if lower.starts_with("http://") {
        &s[7..]
    } else {
        return None;
    };
    let host_starts = rest
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '[');
    let clean = !s.chars().any(|c| c.is_whitespace() || c.is_control());
    (host_starts && clean && s.len() <= MAX_LINK).then_some(s)
}

/// An RFC 3339 time as `2026-11-30 08:00:00 UTC` (seconds, no fraction; an offset other than
/// UTC kept as `+01:00`). `None` for Go's zero time (`0001-01-01T00:00:00Z`, Alertmanager's
/// "not set"); anything else that is not such a time comes back on one line, cut to 40 bytes.
pub fn time(s: &str) -> Option<String> {
    let s = s.trim();
    if s.is_empty() || s.starts_with("0001-01-01") {
        return None;
    }
    let b = s.as_bytes();
    let shaped = b.len() >= 19
        && (0..19).all(|i| match i {
            4 | 7 => b[i] == b'-',
            10 => b[i] == b'T' || b[i] == b't' || b[i] == b' ',
            13 | 16 => b[i] == b':',
            _ => b[i].is_ascii_digit(),
        });
    if !shaped {
        return Some(line(s, 40));
    }
    let zone = s[19..].trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let zone = match zone {
        "Z" | "z" | "+00:00" | "-00:00" => " UTC",
        z if z.len() == 6 && (z.starts_with('+') || z.starts_with('-')) => z,
        _ => "",
    };
    let mut out = String::with_capacity(19 + zone.len());
    out.push_str(&s[..10]);
    out.push(' ');
    out.push_str(&s[11..19]);
    out.push_str(zone);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_count_bytes_and_never_split_a_character() {
        assert_eq!(cut("héllo", 6), "héllo");
        assert_eq!(cut("héllo wörld", 8), "héll…");
        // "🔥" is 4 bytes: 5 bytes leave room for no whole one beside the mark.
        assert_eq!(cut("🔥🔥🔥", 5), "…");
        assert_eq!(cut("🔥🔥🔥", 7), "🔥…");
        assert_eq!(cut("abcdef", 2), "ab");
        assert_eq!(cut("ééé", 1), "");
        let s = "a🔥é€ﾟ👩‍👩‍👧x".repeat(20);
        for max in 0..s.len() + 2 {
            let c = cut(&s, max);
            assert!(c.len() <= max, "{max}: {c}");
            assert!(c == s || c.ends_with(CUT) || max < 3, "{max}: {c}");
        }
    }

    #[test]
    fn lines_are_one_line() {
        assert_eq!(line("  a\n\n b\tc\u{7}d  ", 100), "a b c d");
        assert_eq!(line("abc def", 5), "ab…");
        assert_eq!(line(&"x".repeat(100_000), 10), "xxxxxxx…");
    }

    #[test]
    fn compact_json_is_bounded() {
        let v = serde_json::json!({"a": "é".repeat(10_000), "b": [1, 2]});
        let c = compact(&v, 100);
        assert!(
            c.len() <= 100 && c.starts_with("{\"a\":\"éé") && c.ends_with(CUT),
            "{c}"
        );
        assert_eq!(compact(&serde_json::json!({"job": 7}), 100), r#"{"job":7}"#);
        assert_eq!(compact(&serde_json::json!({"job": 7}), 9), r#"{"job":7}"#);
        assert_eq!(compact(&serde_json::json!({"job": 17}), 9), r#"{"job"…"#);
        assert_eq!(text(Some(&serde_json::json!(3))).as_deref(), Some("3"));
        assert_eq!(text(Some(&serde_json::json!(" "))), None);
        assert_eq!(text(Some(&Value::Null)), None);
    }

    #[test]
    fn json_strings_are_escaped() {
        for s in [
            "plain",
            "q\"uote\\back",
            "line\nbreak\ttab\r",
            "\u{1}\u{7f}é🔥",
            "",
        ] {
            let mut out = String::new();
            push_json(&mut out, s);
            assert_eq!(serde_json::from_str::<String>(&out).unwrap(), s, "{out}");
        }
    }

    #[test]
    fn only_web_links() {
        assert_eq!(
            web_url("https://am.example:9093/"),
            Some("https://am.example:9093/")
        );
        assert_eq!(web_url("HTTP://x.io"), Some("HTTP://x.io"));
        for bad in [
            "",
            "javascript:alert(1)",
            "https://",
            "https:// x",
            "ftp://x.io",
            "http://x.io/a b",
            "http:/x",
        ] {
            assert_eq!(web_url(bad), None, "{bad}");
        }
        assert_eq!(web_url(&format!("https://x.io/{}", "a".repeat(2000))), None);
    }

    #[test]
    fn times_read_well() {
        let t = |s| time(s);
        assert_eq!(
            t("2026-11-29T10:00:00.123456789Z").as_deref(),
            Some("2026-11-29 10:00:00 UTC")
        );
        assert_eq!(
            t("2026-11-29T10:00:00+01:00").as_deref(),
            Some("2026-11-29 10:00:00+01:00")
        );
        assert_eq!(t("0001-01-01T00:00:00Z"), None);
        assert_eq!(t(""), None);
        assert_eq!(t("yesterday\nnoon").as_deref(), Some("yesterday noon"));
    }
}
