//! Text for messages: cut to a length in characters (never inside a UTF-8 sequence or an
//! escape, always saying so with `…`), and escaped for the markup of the target.

/// The mark a cut text ends with.
pub const CUT: char = '…';

/// `s` in at most `max` characters: whole, or its start and [`CUT`].
pub fn cut(s: &str, max: usize) -> String {
    // A text of at most `max` bytes has at most `max` characters.
    if s.len() <= max || s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    if max > 0 {
        out.push(CUT);
    }
    out
}

/// `s` with `escape` applied to each character, in at most `max` characters of output: an
/// escape is kept whole or left out with what follows, and a cut ends with [`CUT`].
pub fn escape_within(s: &str, max: usize, escape: fn(char) -> Option<&'static str>) -> String {
    // The characters a character takes once escaped.
    let width = |e: Option<&str>| e.map_or(1, |e| e.chars().count());
    // Most text has nothing to escape and fits: then it is copied as it is.
    if s.len() <= max && !s.chars().any(|c| escape(c).is_some()) {
        return s.to_owned();
    }
    let total: usize = s.chars().map(|c| width(escape(c))).sum();
    let room = if total <= max {
        max
    } else {
        max.saturating_sub(1)
    };
    let mut out = String::with_capacity(s.len().min(room * 4) + 8);
    let mut len = 0;
    for c in s.chars() {
        let e = escape(c);
        let piece_len = width(e);
        if len + piece_len > room {
            break;
        }
        match e {
            Some(e) => out.push_str(e),
            None => out.push(c),
        }
        len += piece_len;
    }
    if total > max && max > 0 {
        out.push(CUT);
    }
    out
}

/// Markdown's escapes (Discord, Mattermost): a backslash before each character Markdown reads,
/// and a zero-width space after `@`, so `@everyone`, `@channel` and `@here` do not read as
/// mentions.
pub fn markdown_escape(c: char) -> Option<&'static str> {
    Some(match c {
        '\\' => "\\\\",
        '*' => "\\*",
        '_' => "\\_",
        '~' => "\\~",
        '`' => "\\`",
        '|' => "\\|",
        '>' => "\\>",
        '<' => "\\<",
        '#' => "\\#",
        '[' => "\\[",
        ']' => "\\]",
        '(' => "\\(",
        ')' => "\\)",
        '-' => "\\-",
        '!' => "\\!",
        '@' => "@\u{200B}",
        _ => return None,
    })
}

/// Markdown's escapes within one line that is never a block or a link (Discord's embed titles):
/// only the characters that format inline text, and `@` as in [`markdown_escape`]. A title
/// shows `db-1` rather than `db\-1` where the client does not read Markdown there.
pub fn inline_markdown_escape(c: char) -> Option<&'static str> {
    match c {
        '\\' | '*' | '_' | '~' | '`' | '|' | '@' => markdown_escape(c),
        _ => None,
    }
}

/// Characters of `s`.
pub fn chars(s: &str) -> usize {
    s.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amp(c: char) -> Option<&'static str> {
        (c == '&').then_some("&amp;")
    }

    #[test]
    fn cuts_count_characters_and_say_so() {
        assert_eq!(cut("héllo", 5), "héllo");
        assert_eq!(cut("héllo wörld", 5), "héll…");
        assert_eq!(cut("🔥🔥🔥", 2), "🔥…");
        assert_eq!(cut("abc", 0), "");
    }

    #[test]
    fn escapes_are_kept_whole() {
        assert_eq!(escape_within("a&b", 7, amp), "a&amp;b");
        // "a&amp;" is 6; with the cut mark only "a" fits before the escape.
        assert_eq!(escape_within("a&b", 6, amp), "a…");
        assert_eq!(escape_within("a&b", 3, amp), "a…");
        for max in 0..12 {
            let s = escape_within("x&&yé&", max, amp);
            assert!(chars(&s) <= max, "{max}: {s}");
            assert!(!s.contains("&a…") && !s.ends_with("&am"), "{s}");
        }
    }
}
