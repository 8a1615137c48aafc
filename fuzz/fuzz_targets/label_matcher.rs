//! Alertmanager label matchers (`labelMatchers`): the parser never panics, reports a position
//! inside the input, and what it accepts prints to a canonical form that parses back to the
//! same matcher. Compiling is total (an automaton within its size, or a reason), and matching
//! agrees with the regex crate's general-purpose engine on the same anchored RE2 pattern.
#![no_main]

use hookd::routing::{re2, Labels, Matcher, Matchers, Op, MAX_MATCHER_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, Vec<(String, String)>)| {
    let (text, pairs) = input;
    match Matcher::parse(text) {
        Ok(m) => {
            assert!(text.len() <= MAX_MATCHER_LEN);
            let canonical = m.to_string();
            let again = Matcher::parse(&canonical)
                .unwrap_or_else(|e| panic!("canonical {canonical:?} of {text:?} fails: {e}"));
            assert_eq!(again, m);
            assert_eq!(again.to_string(), canonical, "canonical form is stable");
            let labels: Labels = pairs.into_iter().collect();
            let Ok(compiled) = Matchers::compile(&[canonical]) else {
                return; // over its size, or a class name RE2 lacks: refused with a reason
            };
            let got = labels.get(&m.name).map_or("", String::as_str);
            let want = match m.op {
                Op::Eq => got == m.value,
                Op::Ne => got != m.value,
                Op::Re | Op::NotRe => {
                    let pattern = re2::pattern(&m.value).expect("parsed, so it has a pattern");
                    let Ok(reference) = regex::RegexBuilder::new(&pattern)
                        .size_limit(1 << 24)
                        .build()
                    else {
                        return;
                    };
                    reference.is_match(got) == (m.op == Op::Re)
                }
            };
            assert_eq!(
                compiled.take(std::slice::from_ref(&labels)),
                want,
                "{text:?} on {got:?}"
            );
        }
        Err(e) => {
            assert!(e.position <= text.len().max(MAX_MATCHER_LEN), "{e:?}");
            assert!(!e.message.is_empty());
        }
    }
});
