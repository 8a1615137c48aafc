//! The transformer's settings: `topic=<name>` (required) and `priority=<1-5>` (optional), as
//! `key=value` items separated by commas or white space.

use crate::setting_items;
use crate::text::cut;

/// What the settings ask for.
#[derive(Debug, PartialEq, Eq)]
pub struct Settings {
    /// The ntfy topic to publish to.
    pub topic: String,
    /// A priority for every message, instead of the one derived from the alert.
    pub priority: Option<u8>,
}

/// The keys the settings know.
const KEYS: &str = "topic, priority";

impl Settings {
    /// Reads `settings`.
    ///
    /// # Errors
    /// What is wrong, starting with `settings: `: an item that is not `key=value`, a key given
    /// twice, unknown keys (all of them named), a missing or invalid topic, a bad priority.
    pub fn parse(settings: &str) -> Result<Settings, String> {
        let mut topic: Option<&str> = None;
        let mut priority: Option<&str> = None;
        let mut unknown = Vec::new();
        for item in setting_items(settings) {
            let Some((key, value)) = item.split_once('=') else {
                return Err(format!(
                    "settings: `{}` is not key=value (keys: {KEYS})",
                    cut(item, 64)
                ));
            };
            let slot = match key {
                "topic" => &mut topic,
                "priority" => &mut priority,
                _ => {
                    unknown.push(cut(key, 64));
                    continue;
                }
            };
            if slot.replace(value).is_some() {
                return Err(format!("settings: {key} is given twice"));
            }
        }
        if !unknown.is_empty() {
            let s = if unknown.len() == 1 { "" } else { "s" };
            return Err(format!(
                "settings: unknown key{s} {} (keys: {KEYS})",
                unknown.join(", ")
            ));
        }
        let topic = match topic {
            None => return Err("settings: topic=<name> is required, e.g. `topic=alerts`".into()),
            Some(t) if !valid_topic(t) => {
                return Err(format!(
                    "settings: topic `{}` is not an ntfy topic name (1-64 of A-Z a-z 0-9 _ -)",
                    cut(t, 80)
                ))
            }
            Some(t) => t.to_owned(),
        };
        let priority = priority
            .map(|p| {
                parse_priority(p).ok_or_else(|| {
                    format!(
                        "settings: priority `{}` is not 1-5 (or min, low, default, high, max)",
                        cut(p, 40)
                    )
                })
            })
            .transpose()?;
        Ok(Settings { topic, priority })
    }
}

/// ntfy's rule for topic names: 1 to 64 of `A-Z a-z 0-9 _ -`.
fn valid_topic(t: &str) -> bool {
    (1..=64).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `1`-`5`, or ntfy's names for them.
fn parse_priority(p: &str) -> Option<u8> {
    Some(match p.to_ascii_lowercase().as_str() {
        "1" | "min" => 1,
        "2" | "low" => 2,
        "3" | "default" => 3,
        "4" | "high" => 4,
        "5" | "max" | "urgent" => 5,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Settings {
        Settings::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> String {
        Settings::parse(s).expect_err(s)
    }

    #[test]
    fn topic_and_priority() {
        assert_eq!(
            ok("topic=alerts"),
            Settings {
                topic: "alerts".into(),
                priority: None
            }
        );
        assert_eq!(ok(" topic=Ops_Alerts-2 , priority=5 ").priority, Some(5));
        assert_eq!(ok("priority=high\ntopic=a").priority, Some(4));
        assert_eq!(ok(&format!("topic={}", "x".repeat(64))).topic.len(), 64);
    }

    #[test]
    fn bad_settings_say_what_is_wrong() {
        for (s, says) in [
            ("", "topic=<name> is required"),
            ("priority=4", "topic=<name> is required"),
            ("topic=", "not an ntfy topic name"),
            ("topic=a.b", "`a.b` is not an ntfy topic name"),
            ("topic=alerts/x", "not an ntfy topic name"),
            ("topic=tést", "not an ntfy topic name"),
            ("alerts", "`alerts` is not key=value"),
            ("topic=a topic=b", "topic is given twice"),
            ("topic=a priority=6", "priority `6` is not 1-5"),
            ("topic=a priority=", "priority `` is not 1-5"),
            (
                "topic=a server=x",
                "unknown key server (keys: topic, priority)",
            ),
            ("Topic=a title=x", "unknown keys Topic, title"),
        ] {
            let e = err(s);
            assert!(e.starts_with("settings: ") && e.contains(says), "{s}: {e}");
        }
        assert!(err(&format!("topic={}", "x".repeat(65))).contains("not an ntfy topic"));
    }
}
