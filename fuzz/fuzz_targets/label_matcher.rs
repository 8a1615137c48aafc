//! Alertmanager label matchers (`labelMatchers`): the parser never panics, reports a position
//! inside the input, and what it accepts prints to a canonical form that parses back to the
//! same matcher; matching is total (any labels, any value).
#![no_main]

use hookd::routing::{Labels, Matcher, Rules, MAX_MATCHER_LEN};
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
            let one = m.matches(&labels);
            assert_eq!(again.matches(&labels), one);
            let rules = Rules::compile(&[], &[canonical]).unwrap();
            assert_eq!(rules.takes("x", std::slice::from_ref(&labels)), one);
        }
        Err(e) => {
            assert!(e.position <= text.len().max(MAX_MATCHER_LEN), "{e:?}");
            assert!(!e.message.is_empty());
        }
    }
});
