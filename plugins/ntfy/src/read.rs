//! An Alertmanager group read straight into the fields the notification uses, its text borrowed
//! from the payload where it has no escapes: no tree of JSON values, no map per object.
//!
//! Leniently, as Alertmanager's receivers must: a field of another type than expected reads as
//! absent (an `alerts` that is not an array has no alerts; an element that is not an object is
//! left out), a label value that is not a string reads as its JSON text, a repeated key keeps
//! its last value. Only malformed JSON fails.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::text::compact;

/// An Alertmanager group (webhook payload version 4).
#[derive(Debug, Default)]
pub struct Group<'a> {
    pub status: Option<Cow<'a, str>>,
    pub group_labels: Pairs<'a>,
    pub common_labels: Pairs<'a>,
    pub external_url: Option<Cow<'a, str>>,
    pub truncated_alerts: usize,
    pub alerts: Vec<Alert<'a>>,
}

/// One alert of a group.
#[derive(Debug, Default)]
pub struct Alert<'a> {
    pub status: Option<Cow<'a, str>>,
    pub labels: Pairs<'a>,
    pub annotations: Pairs<'a>,
    pub starts_at: Option<Cow<'a, str>>,
    pub ends_at: Option<Cow<'a, str>>,
    pub generator_url: Option<Cow<'a, str>>,
}

/// Names and their values as text (see [`Text`]), sorted by name, each name once (its last
/// value), values that read as no text left out.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pairs<'a>(pub Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'a> Pairs<'a> {
    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_ref().cmp(name))
            .ok()
            .map(|i| self.0[i].1.as_ref())
    }
}

/// `payload` as a group.
///
/// # Errors
/// Malformed JSON (`payload: not JSON (...)`), or JSON that is not an object.
pub fn group(payload: &str) -> Result<Group<'_>, String> {
    let not_json = |e: serde_json::Error| format!("payload: not JSON ({e})");
    let mut de = serde_json::Deserializer::from_str(payload);
    let group = Object::<Group>::deserialize(&mut de).map_err(not_json)?;
    de.end().map_err(not_json)?;
    group
        .0
        .ok_or_else(|| "payload: an Alertmanager group must be a JSON object".to_owned())
}

/// What [`Object`] reads from a JSON object, one member at a time.
trait Members<'de>: Default {
    fn member<A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<(), A::Error>;
}

impl<'de> Members<'de> for Group<'de> {
    fn member<A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<(), A::Error> {
        match name {
            "status" => self.status = map.next_value::<Str>()?.0,
            "groupLabels" => self.group_labels = map.next_value()?,
            "commonLabels" => self.common_labels = map.next_value()?,
            "externalURL" => self.external_url = map.next_value::<Text>()?.0,
            "truncatedAlerts" => self.truncated_alerts = map.next_value::<Count>()?.0,
            "alerts" => self.alerts = map.next_value::<Objects<Alert>>()?.0,
            _ => drop(map.next_value::<IgnoredAny>()?),
        }
        Ok(())
    }
}

impl<'de> Members<'de> for Alert<'de> {
    fn member<A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<(), A::Error> {
        match name {
            "status" => self.status = map.next_value::<Str>()?.0,
            "labels" => self.labels = map.next_value()?,
            "annotations" => self.annotations = map.next_value()?,
            "startsAt" => self.starts_at = map.next_value::<Text>()?.0,
            "endsAt" => self.ends_at = map.next_value::<Text>()?.0,
            "generatorURL" => self.generator_url = map.next_value::<Text>()?.0,
            _ => drop(map.next_value::<IgnoredAny>()?),
        }
        Ok(())
    }
}

/// Visitor methods for every JSON value but the ones a type takes: they read as `$none`.
macro_rules! otherwise {
    ($none:expr; $($method:ident($($arg:ty)?)),*) => {
        $(fn $method<E: de::Error>(self $(, _: $arg)?) -> Result<Self::Value, E> {
            Ok($none)
        })*
    };
}

/// Visitor methods for a JSON string, each handing it to `$wrap` as a `Cow` (borrowed where it
/// has no escapes).
macro_rules! strings {
    ($wrap:expr) => {
        fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
            Ok($wrap(Cow::Borrowed(s)))
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            Ok($wrap(Cow::Owned(s.to_owned())))
        }
        fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
            Ok($wrap(Cow::Owned(s)))
        }
    };
}

/// A `T` read from a JSON object; `None` for any other value.
struct Object<T>(Option<T>);

impl<'de, T: Members<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Members<'de>> Visitor<'de> for V<T> {
            type Value = Object<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut t = T::default();
                while let Some(name) = map.next_key::<Name>()? {
                    t.member(&name.0, &mut map)?;
                }
                Ok(Object(Some(t)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Object(None))
            }
            otherwise!(Object(None); visit_bool(bool), visit_i64(i64), visit_u64(u64),
                visit_f64(f64), visit_str(&str), visit_unit());
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// The objects of a JSON array (other elements left out); none for any other value.
struct Objects<T>(Vec<T>);

impl<'de, T: Members<'de>> Deserialize<'de> for Objects<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Members<'de>> Visitor<'de> for V<T> {
            type Value = Objects<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut all = Vec::new();
                while let Some(o) = seq.next_element::<Object<T>>()? {
                    all.extend(o.0);
                }
                Ok(Objects(all))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Objects(Vec::new()))
            }
            otherwise!(Objects(Vec::new()); visit_bool(bool), visit_i64(i64), visit_u64(u64),
                visit_f64(f64), visit_str(&str), visit_unit());
        }
        d.deserialize_any(V(PhantomData))
    }
}

impl<'de> Deserialize<'de> for Pairs<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Pairs<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut pairs: Vec<(Cow<'de, str>, Option<Cow<'de, str>>)> = Vec::new();
                while let Some((name, value)) = map.next_entry::<Name, Text>()? {
                    pairs.push((name.0, value.0));
                }
                // Sorted by name, the last value of a repeated name kept (as a map would).
                pairs.sort_by(|a, b| a.0.cmp(&b.0));
                let mut kept: Vec<(Cow<'de, str>, Cow<'de, str>)> = Vec::with_capacity(pairs.len());
                let mut i = 0;
                while i < pairs.len() {
                    let mut last = i;
                    while last + 1 < pairs.len() && pairs[last + 1].0 == pairs[i].0 {
                        last += 1;
                    }
                    if let Some(v) = pairs[last].1.take() {
                        kept.push((std::mem::take(&mut pairs[last].0), v));
                    }
                    i = last + 1;
                }
                Ok(Pairs(kept))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Pairs::default())
            }
            otherwise!(Pairs::default(); visit_bool(bool), visit_i64(i64), visit_u64(u64),
                visit_f64(f64), visit_str(&str), visit_unit());
        }
        d.deserialize_any(V)
    }
}

/// A name, borrowed where it has no escapes.
struct Name<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a name")
            }
            strings!(Name);
        }
        d.deserialize_str(V)
    }
}

/// A string as it is; `None` for any other value.
struct Str<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Text::deserialize(d)?;
        Ok(Str(if text.1 { text.0 } else { None }))
    }
}

/// Any JSON value as text: a string as it is (`None` if blank), `null` as `None`, a number or
/// boolean as written, an object or array as compact JSON (at most 4,096 bytes). The flag says
/// whether it was a string.
struct Text<'a>(Option<Cow<'a, str>>, bool);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        fn string(s: Cow<'_, str>) -> Text<'_> {
            Text((!s.trim().is_empty()).then_some(s), true)
        }
        fn written<E>(s: String) -> Result<Text<'static>, E> {
            Ok(Text(Some(Cow::Owned(s)), false))
        }
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            strings!(string);
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
                written(b.to_string())
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
                written(n.to_string())
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
                written(n.to_string())
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
                written(compact(&Value::from(n), 4096))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Text(None, false))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let v = Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
                written(compact(&v, 4096))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                let v = Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                written(compact(&v, 4096))
            }
        }
        d.deserialize_any(V)
    }
}

/// A whole number (beyond `usize` read as its largest value); 0 for any other value.
struct Count(usize);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Text::deserialize(d)?;
        let n = match (text.0, text.1) {
            (Some(t), false) => t.parse::<u64>().ok(),
            _ => None,
        };
        Ok(Count(
            n.map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_read_leniently_and_borrow_their_text() {
        let g = group(
            r#"{"status":"firing","truncatedAlerts":"7","externalURL":"http://am",
                "commonLabels":{"job":"node","b":1,"a":null,"job":"db","x":" ","o":{"k":[1,2]}},
                "groupLabels":[1],"alerts":[1,{"status":3,"labels":{"alertname":"Down\n"},
                "startsAt":"2026-11-30T08:00:00Z"},"x"],"alerts2":{}}"#,
        )
        .unwrap();
        assert_eq!(g.status.as_deref(), Some("firing"));
        assert_eq!(g.truncated_alerts, 0, "a count is a number");
        assert!(matches!(g.external_url, Some(Cow::Borrowed("http://am"))));
        assert_eq!(
            g.common_labels.0,
            [
                (Cow::Borrowed("b"), Cow::Borrowed("1")),
                (Cow::Borrowed("job"), Cow::Borrowed("db")),
                (Cow::Borrowed("o"), Cow::Borrowed(r#"{"k":[1,2]}"#)),
            ]
        );
        assert_eq!(g.common_labels.get("job"), Some("db"));
        assert_eq!(g.common_labels.get("a"), None);
        assert!(g.group_labels.0.is_empty());
        assert_eq!(g.alerts.len(), 1);
        let a = &g.alerts[0];
        assert_eq!(a.status, None, "a status is a string");
        assert!(matches!(a.labels.get("alertname"), Some("Down\n")));
        assert_eq!(a.starts_at.as_deref(), Some("2026-11-30T08:00:00Z"));
        assert_eq!(group("{}").unwrap().alerts.len(), 0);
        assert!(group("[1]").unwrap_err().contains("must be a JSON object"));
        assert!(group("{} x")
            .unwrap_err()
            .starts_with("payload: not JSON ("));
    }
}
