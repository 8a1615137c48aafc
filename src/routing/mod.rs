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

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

mod matcher;
pub mod re2;

pub use matcher::{Matcher, MatcherError, Op, MAX_MATCHER_LEN};
pub use re2::{MAX_DFA_BYTES, MAX_RULES_BYTES};

/// Most filter types, and most matchers, one endpoint may have.
pub const MAX_RULES: usize = 50;
/// Longest label value an alert may carry, in bytes: routing reads every value a matcher names,
/// so this bounds what one match costs.
pub const MAX_LABEL_VALUE: usize = 2048;
/// Most alerts one Alertmanager notification may group (its label sets are these alerts' labels
/// and the `commonLabels`): Alertmanager's `max_alerts` in a `webhook_config` keeps to it.
pub const MAX_GROUP_ALERTS: usize = 1000;

/// A set of labels: name -> value.
pub type Labels = BTreeMap<String, String>;

/// One matcher, compiled.
#[derive(Debug)]
struct Compiled {
    name: String,
    /// `!=` and `!~`.
    negate: bool,
    test: Test,
}

#[derive(Debug)]
enum Test {
    Equals(String),
    Regex(re2::Regex),
}

impl Compiled {
    /// Whether `labels` satisfy this matcher (an absent label reads as "").
    fn matches(&self, labels: &Labels) -> bool {
        let got = labels.get(&self.name).map_or("", String::as_str);
        let hit = match &self.test {
            Test::Equals(v) => got == v,
            Test::Regex(re) => re.is_match(got),
        };
        hit != self.negate
    }
}

/// An endpoint's label matchers, compiled: what routing runs. Cheap to share ([`Arc`]); built
/// once, off the request path, when the matchers are set.
#[derive(Debug, Default)]
pub struct Matchers {
    list: Vec<Compiled>,
    /// Takes nothing at all (stored matchers that no longer compile).
    never: bool,
    memory: usize,
}

impl Matchers {
    /// Parses and compiles matchers, each to an automaton within what is left of the
    /// endpoint's [`MAX_RULES_BYTES`]. Bounded: at most [`MAX_RULES`] matchers of at most
    /// [`MAX_MATCHER_LEN`] bytes, each automaton built within a bounded working memory.
    ///
    /// # Errors
    /// The index of the first matcher that does not parse or compile, and why.
    pub fn compile(matchers: &[String]) -> Result<Self, (usize, String)> {
        let mut out = Self::default();
        for (i, text) in matchers.iter().enumerate() {
            let m = Matcher::parse(text).map_err(|e| (i, e.to_string()))?;
            let test = if m.op.is_regex() {
                let pattern = re2::pattern(&m.value).map_err(|e| (i, e))?;
                let re = re2::compile(&pattern, MAX_RULES_BYTES.saturating_sub(out.memory))
                    .map_err(|e| (i, e))?;
                out.memory += re.memory();
                Test::Regex(re)
            } else {
                Test::Equals(m.value)
            };
            out.list.push(Compiled {
                name: m.name,
                negate: matches!(m.op, Op::Ne | Op::NotRe),
                test,
            });
        }
        Ok(out)
    }

    /// These matchers, to share: every endpoint without matchers shares one allocation (a
    /// routing table entry is about a third smaller for it).
    pub fn shared(self) -> Arc<Self> {
        static NONE: std::sync::LazyLock<Arc<Matchers>> =
            std::sync::LazyLock::new(|| Arc::new(Matchers::default()));
        if self.list.is_empty() && !self.never {
            NONE.clone()
        } else {
            Arc::new(self)
        }
    }

    /// Matchers that take no alert.
    pub fn nothing() -> Self {
        Self {
            never: true,
            ..Self::default()
        }
    }

    /// Whether one of `label_sets` satisfies every matcher (no matchers: yes).
    pub fn take(&self, label_sets: &[Labels]) -> bool {
        !self.never
            && (self.list.is_empty()
                || label_sets
                    .iter()
                    .any(|labels| self.list.iter().all(|m| m.matches(labels))))
    }

    /// How many matchers.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Heap memory the automata take.
    pub fn memory(&self) -> usize {
        self.memory
    }

    /// Whether compiling these needs real work (an automaton to build).
    pub fn needs_compiling(matchers: &[String]) -> bool {
        matchers
            .iter()
            .any(|m| m.contains("=~") || m.contains("!~"))
    }
}

/// An endpoint's rules: its event-type filters and its compiled matchers.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub filter_types: Box<[String]>,
    pub matchers: Arc<Matchers>,
}

impl Rules {
    /// Compiles rules (for tests and tools; the server compiles the matchers once, when they
    /// are set, and hands them on).
    ///
    /// # Errors
    /// As [`Matchers::compile`].
    pub fn compile(filter_types: &[String], matchers: &[String]) -> Result<Self, (usize, String)> {
        Ok(Self {
            filter_types: filter_types.into(),
            matchers: Arc::new(Matchers::compile(matchers)?),
        })
    }

    /// Rules that take no alert.
    pub fn nothing() -> Self {
        Self {
            filter_types: Box::default(),
            matchers: Arc::new(Matchers::nothing()),
        }
    }

    /// Whether an alert of `event_type` with `label_sets` goes to this endpoint.
    pub fn takes(&self, event_type: &str, label_sets: &[Labels]) -> bool {
        type_matches(&self.filter_types, event_type) && self.matchers.take(label_sets)
    }
}

/// One endpoint in the [`RouteTable`].
#[derive(Debug, Clone)]
pub struct Route {
    pub rules: Rules,
    /// A disabled endpoint keeps its compiled rules, for when it is enabled again.
    pub enabled: bool,
}

/// Every endpoint's rules: an immutable snapshot that routing reads without a lock, while the
/// store's writer publishes the next one after each commit that changes an endpoint.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    /// By endpoint id. `Box<str>`, `Box<[String]>` and one shared `Matchers` for endpoints
    /// without matchers keep an entry to about 100 bytes.
    routes: HashMap<Box<str>, Route>,
    /// Matchers of enabled endpoints, all together (for [`RouteTable::cost`]).
    matchers: usize,
}

impl RouteTable {
    pub fn get(&self, id: &str) -> Option<&Route> {
        self.routes.get(id)
    }

    /// Sets (or with `None` removes) endpoint `id`'s route.
    pub fn set(&mut self, id: &str, route: Option<Route>) {
        let weight = |r: &Route| if r.enabled { r.rules.matchers.len() } else { 0 };
        let old = match route {
            Some(r) => {
                self.matchers += weight(&r);
                self.routes.insert(id.into(), r)
            }
            None => self.routes.remove(id),
        };
        if let Some(old) = old {
            self.matchers -= weight(&old);
        }
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The enabled endpoints that take an alert of `event_type` with `label_sets`.
    pub fn targets(&self, event_type: &str, label_sets: &[Labels]) -> Vec<String> {
        self.routes
            .iter()
            .filter(|(_, r)| r.enabled && r.rules.takes(event_type, label_sets))
            .map(|(id, _)| id.to_string())
            .collect()
    }

    /// A bound on the work [`RouteTable::targets`] does for `label_sets`, in label bytes read:
    /// every matcher of every enabled endpoint reading every byte of every set. Matching reads
    /// each byte once (an automaton), so the time is proportional.
    pub fn cost(&self, label_sets: &[Labels]) -> usize {
        let bytes: usize = label_sets
            .iter()
            .map(|l| l.values().map(|v| v.len() + 8).sum::<usize>() + 8)
            .sum();
        self.routes.len() + self.matchers.saturating_mul(bytes)
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

    fn one(m: &str) -> Matchers {
        Matchers::compile(&[m.to_owned()]).unwrap_or_else(|(_, e)| panic!("{m}: {e}"))
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
            Matcher::parse(m).unwrap_or_else(|e| panic!("{m}: {e}"));
            assert_eq!(one(m).take(std::slice::from_ref(&l)), want, "{m}");
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
            (r#"sev=~"(""#, 5, "regular expression"),
            ("sev=a,b", 5, "double-quoted"),
            (
                &format!("x={}", "a".repeat(MAX_MATCHER_LEN)),
                MAX_MATCHER_LEN,
                "longer",
            ),
        ] {
            let e = Matcher::parse(m).unwrap_err();
            assert_eq!(e.position, position, "{m}: {e}");
            assert!(e.message.contains(word), "{m}: {e}");
        }
        // Parses (the syntax is fine), but the automaton is over its size.
        let huge = format!(r#"x=~"{}""#, "(a|b)*a(a|b){20}");
        Matcher::parse(&huge).unwrap();
        let (i, e) = Matchers::compile(&["a=\"1\"".into(), huge]).unwrap_err();
        assert_eq!(i, 1);
        assert!(e.contains("too large"), "{e}");
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
            assert!(one(m).take(std::slice::from_ref(&l)), "{m}");
        }
        for m in [
            r#"x=~"\\p{Alphabetic}""#,
            r#"x=~"\\p{Age:6.0}""#,
            r#"x=~"\\p{WB=ALetter}""#,
        ] {
            let (_, e) = Matchers::compile(&[m.to_owned()]).unwrap_err();
            assert!(
                e.contains("regular expression") || e.contains("RE2"),
                "{m}: {e}"
            );
        }
    }

    /// One endpoint's automata share MAX_RULES_BYTES: matchers that fit alone are refused
    /// together once their sum is over it.
    #[test]
    fn an_endpoint_s_automata_share_one_budget() {
        let m = r#"x=~".{100}""#.to_owned(); // about 100 KiB each
        let alone = Matchers::compile(std::slice::from_ref(&m)).unwrap();
        assert!(alone.memory() > 64 * 1024 && alone.memory() <= MAX_DFA_BYTES);
        let many: Vec<String> = (0..20).map(|i| format!(r#"x{i}=~".{{100}}""#)).collect();
        let (at, e) = Matchers::compile(&many).unwrap_err();
        assert!(at >= MAX_RULES_BYTES / MAX_DFA_BYTES, "{at}");
        assert!(at < 20);
        assert!(e.contains("what is left"), "{e}");
        let fits: Vec<String> = many[..at].to_vec();
        assert!(Matchers::compile(&fits).unwrap().memory() <= MAX_RULES_BYTES);
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

    #[test]
    fn the_route_table_routes_enabled_endpoints_and_counts_their_matchers() {
        let mut t = RouteTable::default();
        let rules = |m: &[&str]| Rules {
            filter_types: Box::default(),
            matchers: Arc::new(
                Matchers::compile(&m.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap(),
            ),
        };
        t.set(
            "a",
            Some(Route {
                rules: rules(&["team=\"db\""]),
                enabled: true,
            }),
        );
        t.set(
            "b",
            Some(Route {
                rules: rules(&["team=\"web\"", "x!=\"y\""]),
                enabled: true,
            }),
        );
        t.set(
            "c",
            Some(Route {
                rules: rules(&[]),
                enabled: false,
            }),
        );
        let l = vec![labels(&[("team", "db")])];
        assert_eq!(t.targets("x", &l), vec!["a".to_owned()]);
        assert_eq!(t.matchers, 3);
        t.set(
            "b",
            Some(Route {
                rules: rules(&["team=\"web\""]),
                enabled: false,
            }),
        );
        assert_eq!(t.matchers, 1);
        t.set("a", None);
        assert_eq!(t.matchers, 0);
        assert!(t.targets("x", &l).is_empty());
        assert_eq!(t.len(), 2);
        assert!(t.cost(&l) < 100);
    }
}
