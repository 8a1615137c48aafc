//! One Alertmanager label matcher as text: `name`, an operator, a value. Parsing is cheap and
//! bounded (it runs in the request handler): the regular expression of `=~` and `!~` is parsed
//! and checked against RE2's syntax here ([`super::re2::pattern`]), and compiled later, off the
//! request path, by [`super::Matchers::compile`].

use std::fmt;

/// Longest matcher, in bytes. Alertmanager configurations hold matchers like
/// `alertname=~"KubePodCrashLooping|KubePodNotReady|..."`; 512 bytes take a list of about twenty
/// alert names.
pub const MAX_MATCHER_LEN: usize = 512;

/// A matcher's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Re,
    NotRe,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Re => "=~",
            Self::NotRe => "!~",
        }
    }

    /// `=~` or `!~`.
    pub fn is_regex(self) -> bool {
        matches!(self, Self::Re | Self::NotRe)
    }
}

/// One parsed matcher.
#[derive(Clone, PartialEq, Eq)]
pub struct Matcher {
    pub name: String,
    pub op: Op,
    pub value: String,
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// The matcher in canonical form: the value quoted, with `"` and `\` escaped.
impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}\"", self.name, self.op.as_str())?;
        for c in self.value.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

/// Why a matcher does not parse or compile: the byte position (from 0) and what was expected
/// there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatcherError {
    pub position: usize,
    pub message: String,
}

impl fmt::Display for MatcherError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at position {}: {}", self.position, self.message)
    }
}

pub(super) fn error(position: usize, message: impl Into<String>) -> MatcherError {
    MatcherError {
        position,
        message: message.into(),
    }
}

impl Matcher {
    /// Parses one matcher: `name`, optional spaces, an operator, optional spaces, and a value,
    /// double-quoted (with `\"`, `\\`, `\n`, `\t` escapes) or bare (no spaces or quotes). A
    /// regular expression is checked against RE2's syntax and hookd's limits (see
    /// [`super::re2`]); whether it compiles within its size is known only from
    /// [`super::Matchers::compile`].
    ///
    /// # Errors
    /// Where it stops making sense, and what was expected there.
    pub fn parse(s: &str) -> Result<Self, MatcherError> {
        if s.len() > MAX_MATCHER_LEN {
            return Err(error(
                MAX_MATCHER_LEN,
                format!("longer than {MAX_MATCHER_LEN} bytes"),
            ));
        }
        let b = s.as_bytes();
        let mut i = 0;
        let skip = |i: &mut usize| {
            while *i < b.len() && b[*i].is_ascii_whitespace() {
                *i += 1;
            }
        };
        skip(&mut i);
        let start = i;
        if i >= b.len() || !(b[i].is_ascii_alphabetic() || b[i] == b'_' || b[i] == b':') {
            return Err(error(
                i,
                "expected a label name (A-Z a-z _ :, then also 0-9)",
            ));
        }
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
            i += 1;
        }
        let name = s[start..i].to_owned();
        skip(&mut i);
        let op = match (b.get(i), b.get(i + 1)) {
            (Some(b'='), Some(b'~')) => Op::Re,
            (Some(b'='), _) => Op::Eq,
            (Some(b'!'), Some(b'=')) => Op::Ne,
            (Some(b'!'), Some(b'~')) => Op::NotRe,
            _ => return Err(error(i, "expected an operator: =, !=, =~ or !~")),
        };
        i += op.as_str().len();
        skip(&mut i);
        let value_at = i;
        let value = if b.get(i) == Some(&b'"') {
            let (value, end) = unquote(s, i)?;
            i = end;
            value
        } else {
            let begin = i;
            for c in s[begin..].chars() {
                if c.is_ascii_whitespace() {
                    break;
                }
                if matches!(
                    c,
                    '"' | '\'' | '`' | ',' | '{' | '}' | '\\' | '=' | '!' | '~'
                ) {
                    return Err(error(
                        i,
                        "a value with this character must be double-quoted",
                    ));
                }
                if c.is_control() {
                    return Err(error(i, "a control character in the value"));
                }
                i += c.len_utf8();
            }
            s[begin..i].to_owned()
        };
        skip(&mut i);
        if i != b.len() {
            return Err(error(i, "unexpected text after the value"));
        }
        if op.is_regex() {
            // Positions inside the (unquoted) value are reported from where the value starts.
            super::re2::pattern(&value).map_err(|e| error(value_at, e))?;
        }
        Ok(Self { name, op, value })
    }
}

/// A double-quoted value starting at `open`; returns it and the position after its closing
/// quote.
fn unquote(s: &str, open: usize) -> Result<(String, usize), MatcherError> {
    let mut out = String::new();
    let mut chars = s[open + 1..].char_indices();
    while let Some((at, c)) = chars.next() {
        let pos = open + 1 + at;
        match c {
            '"' => return Ok((out, pos + 1)),
            '\\' => match chars.next() {
                Some((_, '"')) => out.push('"'),
                Some((_, '\\')) => out.push('\\'),
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, other)) => {
                    return Err(error(pos, format!("unknown escape \\{other}")));
                }
                None => return Err(error(pos, "the value ends inside an escape")),
            },
            c if c.is_control() && c != '\t' => {
                return Err(error(pos, "a control character in the value"));
            }
            c => out.push(c),
        }
    }
    Err(error(s.len(), "the value's closing \" is missing"))
}
