//! Reading an event's JSON leniently, straight into the fields a renderer uses: every field
//! takes whatever JSON it holds (as text where it is not a string; an object where one is
//! expected, else nothing) and never fails the whole read, and text is borrowed from the event
//! where it has no escapes. A render of a one-alert group so allocates a few strings, not a
//! tree of JSON values. A repeated member keeps its last value, as a JSON object reads.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// Text of an event: borrowed from it where the JSON has no escapes.
pub type Str<'a> = Cow<'a, str>;

/// Any JSON value as text: a string as it is, a number or `true`/`false` as written, an object
/// or array as compact JSON; none for `null` or a blank string.
#[derive(Debug, Default)]
pub struct Text<'a>(pub Option<Str<'a>>);

/// A count (`truncatedAlerts`): a whole number, else 0.
#[derive(Debug, Default)]
pub struct Count(pub usize);

/// An object's members whose values have text, in their order (a repeated name keeps its
/// first place and its last value); anything else is no members.
#[derive(Debug, Default)]
pub struct Pairs<'a>(pub Vec<(Str<'a>, Str<'a>)>);

/// An array's elements that are objects of `T`; anything else is none.
#[derive(Debug)]
pub struct Objects<T>(pub Vec<T>);

impl<T> Default for Objects<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

/// An object read as `T`, or none for any other JSON.
pub struct Lenient<T>(Option<T>);

impl<'a, T: Deserialize<'a>> Lenient<T> {
    /// `text` read as an object of `T`; none if it is not JSON or not an object.
    pub fn parse(text: &'a str) -> Option<T> {
        serde_json::from_str::<Lenient<T>>(text)
            .ok()
            .and_then(|l| l.0)
    }
}

/// An object's member name, borrowed where it has no escapes.
pub struct Key<'a>(pub Str<'a>);

/// Reads an object's members into `out` by name (`set` reads the value of those it knows and
/// says whether it did); the others are skipped.
///
/// # Errors
/// Malformed JSON.
pub fn members<'de, A, T>(
    mut map: A,
    mut out: T,
    set: impl Fn(&mut T, &str, &mut A) -> Result<bool, A::Error>,
) -> Result<T, A::Error>
where
    A: MapAccess<'de>,
{
    while let Some(Key(name)) = map.next_key::<Key<'de>>()? {
        if !set(&mut out, &name, &mut map)? {
            map.next_value::<IgnoredAny>()?;
        }
    }
    Ok(out)
}

/// A struct of lenient fields and its `Deserialize`: each field is read from the member named
/// beside it (by [`members`]), every other member is skipped.
macro_rules! object_reader {
    ($(#[$meta:meta])* struct $t:ident<$l:lifetime> {
        $($(#[$fmeta:meta])* $field:ident: $ty:ty = $name:literal,)*
    }) => {
        $(#[$meta])*
        #[derive(Debug, Default)]
        struct $t<$l> {
            $($(#[$fmeta])* $field: $ty,)*
        }

        impl<'de: $l, $l> serde::Deserialize<'de> for $t<$l> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = $t<'de>;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("an object")
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        map: A,
                    ) -> Result<Self::Value, A::Error> {
                        $crate::format::lenient::members(
                            map,
                            $t::default(),
                            |out: &mut $t<'de>, name: &str, map: &mut A| {
                                match name {
                                    $($name => out.$field = map.next_value()?,)*
                                    _ => return Ok(false),
                                }
                                Ok(true)
                            },
                        )
                    }
                }
                d.deserialize_map(V)
            }
        }
    };
}
pub(crate) use object_reader;

/// The visitor methods for the JSON a type does not read: scalars give `$none`; an array or an
/// object (unless the type reads it) is skipped whole and gives `$none`.
macro_rules! otherwise {
    ($none:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok($none)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($none)
        }
    };
    ($none:expr, seq) => {
        otherwise!($none);
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($none)
        }
    };
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Lenient<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|t| Lenient(Some(t)))
            }
            otherwise!(Lenient(None), seq);
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Objects<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Objects<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut all = Vec::new();
                while let Some(one) = seq.next_element::<Lenient<T>>()? {
                    all.extend(one.0);
                }
                Ok(Objects(all))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Objects(Vec::new()))
            }
            otherwise!(Objects(Vec::new()));
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Whatever it holds is read whole; only a whole number counts.
        let n = serde_json::Value::deserialize(d)
            .ok()
            .and_then(|v| v.as_u64());
        Ok(Count(
            n.map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX)),
        ))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        fn some<'a, E>(s: Str<'a>) -> Result<Text<'a>, E> {
            Ok(Text((!s.trim().is_empty()).then_some(s)))
        }
        fn shown<'a, E>(s: String) -> Result<Text<'a>, E> {
            Ok(Text(Some(Cow::Owned(s))))
        }
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                some(Cow::Borrowed(s))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                some(Cow::Owned(s.to_owned()))
            }
            fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                some(Cow::Owned(s))
            }
            fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Borrowed(if b { "true" } else { "false" }))))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
                shown(n.to_string())
            }
            fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
                shown(n.to_string())
            }
            fn visit_f64<E>(self, n: f64) -> Result<Self::Value, E> {
                shown(serde_json::Value::from(n).to_string())
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Text(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let v = serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
                shown(v.to_string())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                let v = serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                shown(v.to_string())
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Pairs<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Pairs<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut pairs: Vec<(Str<'de>, Option<Str<'de>>)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<Key<'de>, Text<'de>>()? {
                    match pairs.iter_mut().find(|(name, _)| *name == k.0) {
                        Some(pair) => pair.1 = v.0,
                        None => pairs.push((k.0, v.0)),
                    }
                }
                let pairs = pairs.into_iter().filter_map(|(k, v)| Some((k, v?)));
                Ok(Pairs(pairs.collect()))
            }
            otherwise!(Pairs(Vec::new()), seq);
        }
        d.deserialize_any(V)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a name")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}
