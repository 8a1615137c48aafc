//! What a transformer plugin returns (body, content type, headers, or its error), and the
//! `format` names that select one: a validated request never carries a header hookd sets
//! itself, a line break, or more than the limits allow.
#![no_main]

use hookd::model::Format;
use hookd::parse::{
    header_name_problem, header_value_problem, transform_answer, TransformAnswer, MAX_DENY_REASON,
    MAX_TRANSFORM_BODY,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (TransformAnswer, &str)| {
    let (answer, format) = input;
    match transform_answer(answer.clone()) {
        Ok(Ok(request)) => {
            assert!(answer.is_ok());
            assert!(request.body.len() <= MAX_TRANSFORM_BODY);
            let ct = request.content_type.as_ref();
            assert!(!ct.is_empty() && ct.len() <= 255);
            assert!(ct.bytes().all(|b| (b' '..=b'~').contains(&b)));
            assert!(request.headers.len() <= 16);
            for (name, value) in &request.headers {
                assert!(header_name_problem(name).is_none(), "{name:?}");
                assert!(header_value_problem(value).is_none(), "{value:?}");
                let lower = name.to_ascii_lowercase();
                assert!(!lower.starts_with("webhook-") && !lower.starts_with("content-"));
            }
        }
        Ok(Err(reason)) => {
            assert!(answer.is_err());
            assert!(!reason.is_empty() && reason.len() <= MAX_DENY_REASON);
            assert!(!reason.chars().any(char::is_control));
        }
        Err(why) => assert!(!why.is_empty()),
    }
    // A format name reads back as itself; a transformer's has a valid plugin name.
    if let Some(f) = Format::parse(format) {
        assert_eq!(f.as_str(), format);
        if let Some(name) = f.plugin() {
            assert!(hookd::parse::is_plugin_name(name));
        }
    }
});
