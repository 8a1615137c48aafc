//! Routing rules of an endpoint, pure: which alerts it gets.
//!
//! - `filterTypes`: event types, each exact or ending in `.*` (`alertmanager.*` matches
//!   `alertmanager.firing`); none means every type.
//! - `labelMatchers`: Alertmanager matchers in Alertmanager's own syntax (`severity="critical"`,
//!   `team=~"db|storage"`, `env!="staging"`, `alertname!~"Watchdog|InfoInhibitor"`). Regexes are
//!   RE2-style and anchored at both ends, as in Alertmanager; a label an alert lacks reads as the
//!   empty string. An endpoint takes an alert when one of its label sets satisfies every matcher:
//!   for an Alertmanager payload the `commonLabels`, or any one alert's `labels`; for a native
//!   alert, the payload's top-level `labels` object.

use std::collections::BTreeMap;
use std::fmt;

use regex::{Regex, RegexBuilder};

/// Most filter types, and most matchers, one endpoint may have.
pub const MAX_RULES: usize = 50;
/// Longest matcher, in bytes.
pub const MAX_MATCHER_LEN: usize = 1024;
/// Compiled size a matcher's regex may reach (the regex crate's own limit), so one matcher
/// cannot make every alert slow.
const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// A set of labels: name -> value.
pub type Labels = BTreeMap<String, String>;

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
}

/// One parsed matcher.
#[derive(Clone)]
pub struct Matcher {
    pub name: String,
    pub op: Op,
    pub value: String,
    /// For `=~` and `!~`: the value, anchored.
    regex: Option<Regex>,
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

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

/// Why a matcher does not parse: the byte position (from 0) and what was expected there.
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

fn error(position: usize, message: impl Into<String>) -> MatcherError {
    MatcherError {
        position,
        message: message.into(),
    }
}

impl Matcher {
    /// Parses one matcher: `name`, optional spaces, an operator, optional spaces, and a value,
    /// double-quoted (with `\"`, `\\`, `\n`, `\t` escapes) or bare (no spaces or quotes).
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
        let regex = match op {
            Op::Re | Op::NotRe => Some(
                RegexBuilder::new(&format!("^(?:{value})$"))
                    .size_limit(REGEX_SIZE_LIMIT)
                    .dfa_size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| {
                        let why = match e {
                            regex::Error::CompiledTooBig(_) => {
                                "the regular expression is too large".to_owned()
                            }
                            other => format!(
                                "not a valid regular expression ({})",
                                first_line(&other.to_string())
                            ),
                        };
                        error(start, why)
                    })?,
            ),
            Op::Eq | Op::Ne => None,
        };
        Ok(Self {
            name,
            op,
            value,
            regex,
        })
    }

    /// Whether `labels` satisfy this matcher (an absent label reads as "").
    pub fn matches(&self, labels: &Labels) -> bool {
        let got = labels.get(&self.name).map_or("", String::as_str);
        match (self.op, &self.regex) {
            (Op::Eq, _) => got == self.value,
            (Op::Ne, _) => got != self.value,
            (Op::Re, Some(re)) => re.is_match(got),
            (Op::NotRe, Some(re)) => !re.is_match(got),
            (Op::Re | Op::NotRe, None) => false,
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
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

/// An endpoint's rules, compiled.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub filter_types: Vec<String>,
    pub matchers: Vec<Matcher>,
    /// Takes nothing at all (rules that could not be compiled).
    never: bool,
}

impl Rules {
    /// Compiles stored rules (already validated when they were accepted).
    ///
    /// # Errors
    /// The first matcher that no longer parses (a damaged record).
    pub fn compile(filter_types: &[String], matchers: &[String]) -> Result<Self, MatcherError> {
        Ok(Self {
            filter_types: filter_types.to_vec(),
            matchers: matchers
                .iter()
                .map(|m| Matcher::parse(m))
                .collect::<Result<_, _>>()?,
            never: false,
        })
    }

    /// Rules that take no alert.
    pub fn nothing() -> Self {
        Self {
            never: true,
            ..Self::default()
        }
    }

    /// Whether an alert of `event_type` with `label_sets` goes to this endpoint.
    pub fn takes(&self, event_type: &str, label_sets: &[Labels]) -> bool {
        !self.never
            && type_matches(&self.filter_types, event_type)
            && (self.matchers.is_empty()
                || label_sets
                    .iter()
                    .any(|labels| self.matchers.iter().all(|m| m.matches(labels))))
    }
}

/// Whether `event_type` passes `filters` (none: everything).
pub fn type_matches(filters: &[String], event_type: &str) -> bool {
    filters.is_empty()
        || filters.iter().any(|f| match f.strip_suffix(".*") {
            Some(prefix) => event_type
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('.')),
            None => f == event_type,
        })
}

/// Whether `f` is a valid filter type: an event type (1-100 characters of `A-Z a-z 0-9 . _ : -`),
/// or one followed by `.*`.
pub fn is_filter_type(f: &str) -> bool {
    let base = f.strip_suffix(".*").unwrap_or(f);
    (1..=100).contains(&base.len())
        && base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
        && !base.ends_with('.')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn alertmanager_matchers_parse_and_match() {
        let l = labels(&[
            ("severity", "critical"),
            ("team", "db"),
            ("alertname", "Watchdog"),
        ]);
        for (m, want) in [
            (r#"severity="critical""#, true),
            ("severity=critical", true),
            (r#"  severity = "critical"  "#, true),
            (r#"severity!="critical""#, false),
            (r#"team=~"db|storage""#, true),
            (r#"team=~"d""#, false), // anchored: no partial match
            (r#"team!~"web.*""#, true),
            (r#"alertname!~"Watchdog|InfoInhibitor""#, false),
            (r#"env!="staging""#, true), // absent reads as ""
            (r#"env="""#, true),
            (r#"env=~".+""#, false),
            (r#"msg="say \"hi\"""#, false),
        ] {
            let parsed = Matcher::parse(m).unwrap_or_else(|e| panic!("{m}: {e}"));
            assert_eq!(parsed.matches(&l), want, "{m}");
        }
        let m = Matcher::parse(r#"msg="a \"b\" \\ c""#).unwrap();
        assert_eq!(m.value, r#"a "b" \ c"#);
        assert_eq!(m.to_string(), r#"msg="a \"b\" \\ c""#);
        assert_eq!(Matcher::parse(&m.to_string()).unwrap(), m);
    }

    #[test]
    fn bad_matchers_name_the_position() {
        for (m, position, word) in [
            ("", 0, "label name"),
            ("9lives=x", 0, "label name"),
            ("sev", 3, "operator"),
            ("sev==x", 4, "double-quoted"),
            ("sev<x", 3, "operator"),
            (r#"sev="open"#, 9, "closing"),
            (r#"sev="a\qb""#, 6, "escape"),
            (r#"sev="x" y"#, 8, "after the value"),
            (r#"sev=~"(""#, 0, "regular expression"),
            ("sev=a,b", 5, "double-quoted"),
        ] {
            let e = Matcher::parse(m).unwrap_err();
            assert_eq!(e.position, position, "{m}: {e}");
            assert!(e.message.contains(word), "{m}: {e}");
        }
        let huge = format!(r#"x=~"{}""#, "a{1000}".repeat(100));
        assert!(Matcher::parse(&huge)
            .unwrap_err()
            .message
            .contains("too large"));
    }

    /// The Unicode classes Go's RE2 (and so Alertmanager) knows work; the ones it does not
    /// (ages, boolean properties, segmentation) are refused as invalid, as Alertmanager does.
    #[test]
    fn regex_unicode_classes_are_re2_s() {
        let l = labels(&[("city", "Αθήνα"), ("zone", "eu-7"), ("note", "Ünïcode")]);
        for m in [
            r#"city=~"\\p{Greek}+""#,
            r#"zone=~"\\w+-\\d""#,
            r#"note=~"\\p{Lu}\\p{Ll}+""#,
            r#"note=~"(?i)ÜNÏCODE""#,
        ] {
            let parsed = Matcher::parse(m).unwrap_or_else(|e| panic!("{m}: {e}"));
            assert!(parsed.matches(&l), "{m}");
        }
        for m in [
            r#"x=~"\\p{Alphabetic}""#,
            r#"x=~"\\p{Age:6.0}""#,
            r#"x=~"\\p{WB=ALetter}""#,
        ] {
            let e = Matcher::parse(m).unwrap_err();
            assert!(e.message.contains("regular expression"), "{m}: {e}");
        }
    }

    #[test]
    fn routing_by_type_and_labels() {
        assert!(type_matches(&[], "anything"));
        let f = vec!["alertmanager.*".to_owned(), "deploy".to_owned()];
        assert!(type_matches(&f, "alertmanager.firing"));
        assert!(type_matches(&f, "deploy"));
        assert!(!type_matches(&f, "alertmanagerx.firing"));
        assert!(!type_matches(&f, "alertmanager"));
        assert!(!type_matches(&f, "deploy.started"));
        for ok in ["a", "alertmanager.*", "a.b:c-d_e", "x.y.*"] {
            assert!(is_filter_type(ok), "{ok}");
        }
        for bad in ["", "*", ".*", "a b", "a.", "a.**", &"x".repeat(101)] {
            assert!(!is_filter_type(bad), "{bad}");
        }
        let rules = Rules::compile(
            &[],
            &[r#"team="db""#.into(), r#"severity=~"critical|page""#.into()],
        )
        .unwrap();
        let db_warning = labels(&[("team", "db"), ("severity", "warning")]);
        let db_critical = labels(&[("team", "db"), ("severity", "critical")]);
        assert!(!rules.takes("x", std::slice::from_ref(&db_warning)));
        assert!(
            rules.takes("x", &[db_warning, db_critical]),
            "any one set satisfying all"
        );
        assert!(!rules.takes("x", &[]));
        assert!(Rules::default().takes("x", &[]));
        assert!(!Rules::nothing().takes("x", &[Labels::new()]));
    }
}
