//! The regular expressions of `=~` and `!~` matchers: RE2's syntax (Go's, so Alertmanager's),
//! compiled to a deterministic automaton whose size is bounded, so that matching a label costs
//! a few nanoseconds per byte whatever the expression, and compiling one costs a bounded amount.
//!
//! What differs from a general-purpose regex engine, and why:
//!
//! - `\d`, `\w`, `\s` and `\b` are ASCII, as in Go: `\w` is `[0-9A-Za-z_]`. (A Unicode `\w`
//!   alone compiles to a 177 KB automaton.)
//! - Syntax RE2 does not have is refused: class set operations (`&&`, `--`, `~~`), the flags
//!   `x`, `u` and `R`, `\<`, `\>`, `\b{...}`, and counted repetitions over 1000.
//! - A pattern that turns on case-insensitive matching (`(?i)`) may not hold a Unicode class
//!   (`\p{..}`, `\P{..}`) or a range wider than 256 characters: case-folding those takes up to
//!   12 ms each to compile.
//! - The automaton of one matcher may take [`MAX_DFA_BYTES`], all of an endpoint's together
//!   [`MAX_RULES_BYTES`]; a pattern over its share is refused with that reason.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};

use regex_automata::dfa::{dense, Automaton, StartKind};
use regex_automata::nfa::thompson;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input, MatchKind};
use regex_syntax::ast::{
    self, Assertion, AssertionKind, Ast, ClassPerlKind, ClassSetBinaryOp, ClassSetItem, Flag,
    Flags, RepetitionKind, RepetitionRange,
};

/// Most memory the automaton of one matcher may take.
pub const MAX_DFA_BYTES: usize = 256 * 1024;
/// Most memory the automata of one endpoint's matchers may take together.
pub const MAX_RULES_BYTES: usize = 1024 * 1024;
/// Working memory while building one automaton (it bounds the time too: about 15 ms).
const DETERMINIZE_BYTES: usize = 1024 * 1024;
/// The compiled NFA an automaton is built from.
const NFA_BYTES: usize = 256 * 1024;
/// RE2's own limit on a counted repetition.
const MAX_REPEAT: u32 = 1000;
/// With `(?i)`, the widest range a class may hold.
const MAX_FOLDED_RANGE: u32 = 256;
/// How deep groups and classes may nest.
const NEST_LIMIT: u32 = 64;

type Dfa = dense::DFA<Vec<u32>>;

/// A compiled regular expression, anchored at both ends. Matchers with the same pattern share
/// one automaton (see [`compile`]).
#[derive(Clone, Debug)]
pub struct Regex {
    dfa: Arc<Dfa>,
}

impl Regex {
    /// Whether `haystack` matches the whole expression. Linear in its length, with no cache
    /// and no fallback to a slower engine.
    pub fn is_match(&self, haystack: &str) -> bool {
        // No quit bytes and no Unicode word boundaries (checked when it was built), so the
        // search cannot fail.
        self.dfa
            .try_search_fwd(&Input::new(haystack).anchored(Anchored::Yes))
            .is_ok_and(|m| m.is_some())
    }

    /// Heap memory the automaton takes.
    pub fn memory(&self) -> usize {
        self.dfa.memory_usage()
    }
}

/// Checks `value` against RE2's syntax and hookd's limits and returns the pattern to compile:
/// anchored, with the Perl classes and word boundaries made ASCII. Linear in the length of
/// `value`: it parses, it does not compile.
///
/// # Errors
/// A sentence saying what is wrong (with the byte position inside `value` where there is one).
pub fn pattern(value: &str) -> Result<String, String> {
    let ast = ast::parse::ParserBuilder::new()
        .nest_limit(NEST_LIMIT)
        .build()
        .parse(value)
        .map_err(|e| {
            format!(
                "not a valid regular expression ({} at byte {})",
                e.kind(),
                e.span().start.offset
            )
        })?;
    let mut check = Check::default();
    ast::visit(&ast, &mut check)?;
    if check.case_insensitive {
        if let Some(at) = check.costly_to_fold {
            return Err(format!(
                "with (?i), a Unicode class or a range of more than {MAX_FOLDED_RANGE} characters (at byte {at}) is refused: case-folding it is costly to compile"
            ));
        }
    }
    check.replace.sort_by_key(|r| r.0);
    let mut out = String::with_capacity(value.len() + 16);
    out.push_str("^(?:");
    let mut from = 0;
    for (start, end, with) in &check.replace {
        out.push_str(&value[from..*start]);
        out.push_str(with);
        from = *end;
    }
    out.push_str(&value[from..]);
    out.push_str(")$");
    Ok(out)
}

/// Automata in use, by pattern: endpoints with the same matcher share one (an automaton for
/// `severity=~"crit.*"` takes about 4 KB, and thousands of endpoints may have it).
struct Built {
    by_pattern: HashMap<String, Weak<Dfa>>,
    /// At this many entries, those no endpoint uses any more are dropped.
    sweep_at: usize,
}

static BUILT: LazyLock<Mutex<Built>> = LazyLock::new(|| {
    Mutex::new(Built {
        by_pattern: HashMap::new(),
        sweep_at: 64,
    })
});

fn built() -> std::sync::MutexGuard<'static, Built> {
    BUILT.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Compiles a pattern from [`pattern`] to an automaton of at most `limit` bytes, or shares the
/// one a matcher in use with the same pattern has (building it again would give the same).
///
/// # Errors
/// A sentence saying why: an invalid class name, or an automaton over `limit`.
pub fn compile(pattern: &str, limit: usize) -> Result<Regex, String> {
    let shared = built().by_pattern.get(pattern).and_then(Weak::upgrade);
    if let Some(dfa) = shared.filter(|d| d.memory_usage() <= limit.min(MAX_DFA_BYTES)) {
        return Ok(Regex { dfa });
    }
    let regex = build(pattern, limit)?;
    let mut built = built();
    built
        .by_pattern
        .insert(pattern.to_owned(), Arc::downgrade(&regex.dfa));
    if built.by_pattern.len() >= built.sweep_at {
        built.by_pattern.retain(|_, dfa| dfa.strong_count() > 0);
        built.sweep_at = (built.by_pattern.len() * 2).max(64);
    }
    Ok(regex)
}

/// Builds the automaton of `pattern`, of at most `limit` bytes.
fn build(pattern: &str, limit: usize) -> Result<Regex, String> {
    let limit = limit.min(MAX_DFA_BYTES);
    let dfa = dense::Builder::new()
        .configure(
            dense::Config::new()
                .match_kind(MatchKind::All)
                .start_kind(StartKind::Anchored)
                .minimize(false)
                .dfa_size_limit(Some(limit))
                .determinize_size_limit(Some(DETERMINIZE_BYTES)),
        )
        .syntax(syntax::Config::new().nest_limit(NEST_LIMIT))
        .thompson(
            thompson::Config::new()
                .nfa_size_limit(Some(NFA_BYTES))
                .which_captures(thompson::WhichCaptures::None),
        )
        .build(pattern)
        .map_err(|e| {
            // The builder's own message is only the outermost cause ("error building NFA").
            let mut text = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                text = format!("{text}: {c}");
                cause = c.source();
            }
            if text.contains("size limit") || text.contains("exceeded") {
                format!(
                    "the regular expression is too large: its automaton would take more than {} KiB{}",
                    limit / 1024,
                    if limit < MAX_DFA_BYTES {
                        " (what is left of the endpoint's matchers' share)"
                    } else {
                        ""
                    }
                )
            } else {
                format!("not a valid regular expression ({})", last_line(&text))
            }
        })?;
    if dfa.memory_usage() > limit {
        return Err(format!(
            "the regular expression is too large: its automaton takes {} KiB, more than {} KiB",
            dfa.memory_usage().div_ceil(1024),
            limit / 1024
        ));
    }
    Ok(Regex { dfa: Arc::new(dfa) })
}

fn last_line(s: &str) -> &str {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
}

/// What the AST walk finds.
#[derive(Default)]
struct Check {
    /// `(?i)` turned on anywhere (conservative: it may apply to less than all).
    case_insensitive: bool,
    /// The first item that would be costly to case-fold.
    costly_to_fold: Option<usize>,
    /// (start, end, replacement) in the order met, which is the order of the text.
    replace: Vec<(usize, usize, &'static str)>,
}

/// Go's Perl classes, as bracketed ASCII classes (valid inside a class too, as a nested one;
/// `\x20` rather than a space, which `(?x)` would drop, though `x` is refused anyway).
fn perl(kind: &ClassPerlKind, negated: bool) -> &'static str {
    match (kind, negated) {
        (ClassPerlKind::Digit, false) => "[0-9]",
        (ClassPerlKind::Digit, true) => "[^0-9]",
        (ClassPerlKind::Space, false) => r"[\t\n\f\r\x20]",
        (ClassPerlKind::Space, true) => r"[^\t\n\f\r\x20]",
        (ClassPerlKind::Word, false) => "[0-9A-Za-z_]",
        (ClassPerlKind::Word, true) => "[^0-9A-Za-z_]",
    }
}

impl Check {
    fn flags(&mut self, flags: &Flags) -> Result<(), String> {
        let mut negated = false;
        for item in &flags.items {
            match &item.kind {
                ast::FlagsItemKind::Negation => negated = true,
                ast::FlagsItemKind::Flag(Flag::CaseInsensitive) => {
                    self.case_insensitive |= !negated;
                }
                ast::FlagsItemKind::Flag(
                    Flag::MultiLine | Flag::DotMatchesNewLine | Flag::SwapGreed,
                ) => {}
                ast::FlagsItemKind::Flag(_) => {
                    return Err(format!(
                        "the flag at byte {} is not in RE2's syntax (i, m, s and U are)",
                        item.span.start.offset
                    ));
                }
            }
        }
        Ok(())
    }

    fn costly(&mut self, at: usize) {
        self.costly_to_fold.get_or_insert(at);
    }

    /// `\p{..}`: RE2 knows general categories and scripts by name, never `name=value`. (Boolean
    /// properties, ages and segmentation classes are unknown names: hookd is built without
    /// their tables, so compiling refuses them.)
    fn unicode(&mut self, c: &ast::ClassUnicode) -> Result<(), String> {
        if let ast::ClassUnicodeKind::NamedValue { .. } = c.kind {
            return Err(format!(
                "the class at byte {} is not in RE2's syntax (\\p{{Greek}} and \\p{{Lu}} are; name=value is not)",
                c.span.start.offset
            ));
        }
        self.costly(c.span.start.offset);
        Ok(())
    }
}

impl ast::Visitor for &mut Check {
    type Output = ();
    type Err = String;

    fn finish(self) -> Result<(), String> {
        Ok(())
    }

    fn visit_pre(&mut self, ast: &Ast) -> Result<(), String> {
        match ast {
            Ast::Flags(set) => self.flags(&set.flags)?,
            Ast::Group(g) => {
                if let ast::GroupKind::NonCapturing(flags) = &g.kind {
                    self.flags(flags)?;
                }
            }
            Ast::ClassPerl(c) => {
                self.replace.push((
                    c.span.start.offset,
                    c.span.end.offset,
                    perl(&c.kind, c.negated),
                ));
            }
            Ast::ClassUnicode(c) => self.unicode(c)?,
            Ast::Assertion(a) => self.assertion(a)?,
            Ast::Repetition(r) => {
                if let RepetitionKind::Range(range) = &r.op.kind {
                    let most = match range {
                        RepetitionRange::Exactly(n) | RepetitionRange::AtLeast(n) => *n,
                        RepetitionRange::Bounded(a, b) => (*a).max(*b),
                    };
                    if most > MAX_REPEAT {
                        return Err(format!(
                            "a counted repetition over {MAX_REPEAT} (at byte {}) is not allowed, as in RE2",
                            r.op.span.start.offset
                        ));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn visit_class_set_item_pre(&mut self, item: &ClassSetItem) -> Result<(), String> {
        match item {
            ClassSetItem::Perl(c) => {
                self.replace.push((
                    c.span.start.offset,
                    c.span.end.offset,
                    perl(&c.kind, c.negated),
                ));
            }
            ClassSetItem::Unicode(c) => self.unicode(c)?,
            ClassSetItem::Range(r)
                if u32::from(r.end.c) - u32::from(r.start.c) > MAX_FOLDED_RANGE =>
            {
                self.costly(r.span.start.offset);
            }
            _ => {}
        }
        Ok(())
    }

    fn visit_class_set_binary_op_pre(&mut self, op: &ClassSetBinaryOp) -> Result<(), String> {
        Err(format!(
            "class set operations (&&, --, ~~; at byte {}) are not in RE2's syntax",
            op.span.start.offset
        ))
    }
}

impl Check {
    fn assertion(&mut self, a: &Assertion) -> Result<(), String> {
        let with = match a.kind {
            AssertionKind::WordBoundary => r"(?-u:\b)",
            AssertionKind::NotWordBoundary => r"(?-u:\B)",
            AssertionKind::StartLine
            | AssertionKind::EndLine
            | AssertionKind::StartText
            | AssertionKind::EndText => return Ok(()),
            _ => {
                return Err(format!(
                    "the assertion at byte {} is not in RE2's syntax (^ $ \\A \\z \\b \\B are)",
                    a.span.start.offset
                ))
            }
        };
        self.replace
            .push((a.span.start.offset, a.span.end.offset, with));
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn re(value: &str) -> Regex {
        compile(&pattern(value).unwrap(), MAX_DFA_BYTES).unwrap_or_else(|e| panic!("{value}: {e}"))
    }

    #[test]
    fn matchers_with_one_pattern_share_one_automaton_within_each_limit() {
        let p = pattern("shared-(crit|page)-[0-9]+").unwrap();
        let a = compile(&p, MAX_DFA_BYTES).unwrap();
        let b = compile(&p, MAX_DFA_BYTES).unwrap();
        assert!(Arc::ptr_eq(&a.dfa, &b.dfa));
        assert!(b.is_match("shared-page-7") && !b.is_match("shared-warn-7"));
        // A share too small for it is refused as if it were built again.
        let small = compile(&p, 64).unwrap_err();
        assert!(small.contains("too large"), "{small}");
        // Once no matcher uses it, it is built again (and the same).
        drop((a, b));
        let c = compile(&p, MAX_DFA_BYTES).unwrap();
        assert!(c.is_match("shared-crit-12"));
        // Dropped entries are swept as others arrive.
        drop(c);
        for i in 0..200 {
            drop(compile(&pattern(&format!("sweep-{i}")).unwrap(), MAX_DFA_BYTES).unwrap());
        }
        let left = built()
            .by_pattern
            .keys()
            .filter(|k| k.contains("sweep-"))
            .count();
        assert!(left < 200, "{left}");
    }

    #[test]
    fn perl_classes_and_boundaries_are_ascii_as_in_go() {
        assert_eq!(pattern(r"\w+-\d").unwrap(), "^(?:[0-9A-Za-z_]+-[0-9])$");
        assert_eq!(pattern(r"[\w.]+").unwrap(), "^(?:[[0-9A-Za-z_].]+)$");
        assert!(re(r"\w+").is_match("eu_7"));
        assert!(!re(r"\w+").is_match("é"), "Go's \\w is ASCII");
        assert!(re(r"[\W]").is_match("é"));
        assert!(re(r"\s\S").is_match(" x"));
        assert!(re(r"[\d\s]+").is_match("1 2"));
        assert!(re(r".*\bdb\b.*").is_match("the db is down"));
        assert!(!re(r".*\bdb\b.*").is_match("thedbis"));
        assert!(re(r"a\Bb").is_match("ab"));
        // Unicode classes, case folding and dot stay Unicode.
        assert!(re(r"\p{Greek}+").is_match("Αθήνα"));
        assert!(re(r"(?i)ÜNÏCODE").is_match("ünïcode"));
        assert!(re("..").is_match("éé"));
    }

    #[test]
    fn what_re2_lacks_or_costs_too_much_is_refused() {
        for (value, word) in [
            (r"[\p{Any}&&a]", "set operations"),
            ("[a-z--b]", "set operations"),
            ("(?x)a b", "flag"),
            ("(?-u:a)", "flag"),
            ("(?R)a", "flag"),
            (r"\<a", "assertion"),
            (r"\b{start}a", "assertion"),
            ("a{1001}", "repetition"),
            ("a{2,1001}", "repetition"),
            (r"(?i)\p{L}", "(?i)"),
            (r"(?i:x)\P{Greek}", "(?i)"),
            (r"(?i)[\x00-\x{10FFFF}]", "(?i)"),
            (r"(?i)[^\p{L}]", "(?i)"),
            ("(", "not a valid"),
            ("a{3", "not a valid"),
        ] {
            let e = pattern(value).unwrap_err();
            assert!(e.contains(word), "{value}: {e}");
        }
        // Allowed: (?i) with ASCII ranges and narrow ones, Unicode classes without (?i).
        for ok in [
            r"(?i)[a-zà-ÿ]+",
            r"(?i).*error.*",
            r"\p{Any}",
            "a{1000}",
            r"(?-i)x",
        ] {
            assert!(pattern(ok).is_ok(), "{ok}");
        }
        // (?-i) only: not case-insensitive.
        assert!(pattern(r"(?-i)\p{L}").is_ok());
    }

    #[test]
    fn automata_are_bounded() {
        let big = pattern("[ab]*a[ab]{3600}").unwrap_err();
        assert!(big.contains("repetition"), "{big}");
        let e = compile(&pattern("[ab]*a[ab]{20}").unwrap(), MAX_DFA_BYTES).unwrap_err();
        assert!(e.contains("too large"), "{e}");
        let e = compile(&pattern(r"\p{L}{50}").unwrap(), MAX_DFA_BYTES).unwrap_err();
        assert!(e.contains("too large"), "{e}");
        let small = compile(&pattern(".{100}").unwrap(), 4096).unwrap_err();
        assert!(small.contains("what is left"), "{small}");
        let e = compile(&pattern(r"\p{NoSuchClass}").unwrap(), MAX_DFA_BYTES).unwrap_err();
        assert!(e.contains("not a valid"), "{e}");
        assert!(re(r"[ab]*a[ab]{5}").memory() <= MAX_DFA_BYTES);
    }
}
