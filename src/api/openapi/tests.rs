//! The document against the code: it lists exactly the routes, request schemas accept exactly
//! the parsers' fields, patterns agree with the parsers, every reference resolves.

use super::requests::{option_properties, NULLABLE_FIELDS, REQUEST_FIELDS};
use super::*;

/// The drift test: every route the router serves is in the document, with its method, and
/// the document has nothing else; every route has its own documentation.
#[test]
fn the_document_lists_exactly_the_routes() {
    let doc = document();
    let mut listed = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            listed.push((method.to_ascii_uppercase(), path.clone()));
            assert!(op["summary"].is_string(), "{method} {path} is undocumented");
            let resolved = crate::route::resolve(
                &method.to_ascii_uppercase(),
                &path.replace("{id}", "x-1").replace("{file}", "app.js"),
            )
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
            assert_eq!(resolved.name(), op["operationId"], "{method} {path}");
        }
    }
    let mut served: Vec<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    listed.sort();
    served.sort();
    assert_eq!(listed, served);
}

#[test]
fn request_schemas_accept_exactly_the_parsers_fields() {
    let schemas = &document()["components"]["schemas"];
    for (name, fields) in REQUEST_FIELDS {
        let mut got: Vec<&str> = schemas[name]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut want = fields.to_vec();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "{name}");
    }
    // And the parsers refuse anything else, by name.
    let p = crate::url_policy::UrlPolicy::default();
    let e = crate::parse::create_endpoint(br#"{"extra":1}"#, &p).unwrap_err();
    assert!(e.problem()["errors"].to_string().contains("extra"));
}

/// The parsers refuse `null` and treat an absent field as "leave it": the document must
/// say so, or a generated client sends `null` and schema-driven tests expect a field the
/// parsers never required.
#[test]
fn optional_request_fields_are_neither_required_nor_nullable() {
    let schemas = &document()["components"]["schemas"];
    for (name, fields) in REQUEST_FIELDS {
        let schema = &schemas[name];
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for field in fields.iter() {
            let text = schema["properties"][field].to_string();
            let nullable = NULLABLE_FIELDS.contains(&(name, field));
            assert_eq!(text.contains("null"), nullable, "{name}.{field}: {text}");
        }
        let optional: &[&str] = match name {
            "CreateEndpointRequest" => &crate::parse::CREATE_FIELDS[4..],
            "RecoverRequest" => &[],
            "CreateTokenRequest" => &["expiresAt"],
            _ => fields,
        };
        for field in optional {
            assert!(!required.contains(field), "{name}.{field} is required");
        }
    }
}

/// The option schemas' patterns accept exactly what the parsers accept (semantic rules
/// aside: a regex that does not compile, a reserved header name).
#[test]
fn option_patterns_agree_with_the_parsers() {
    let props = option_properties(false);
    // The schema's patterns anchor themselves; hookd's own engine checks them.
    let pattern = |v: &Value| {
        let p = crate::routing::re2::pattern(v.as_str().unwrap()).unwrap();
        crate::routing::re2::compile(&p, usize::MAX).unwrap()
    };
    let matcher = pattern(&props["labelMatchers"]["items"]["pattern"]);
    for m in [
        r#"a="b""#,
        "a=b",
        " a = b ",
        "a=",
        r#"a!~"x|y""#,
        "a:b_c=~.+",
        r#"a="q\"uote""#,
        r#"a="t\tab""#,
        "a=é",
        "a=\u{85}",
        "a==b",
        "a=!b",
        "a=~~",
        "9=x",
        "a",
        "a=b c",
        r#"a="open"#,
        r#"a="bad\q""#,
        "a=x,y",
        "a=\u{7f}",
        "a=\"ctl\u{1}\"",
        "a\u{a0}=b",
        "\u{b}a=b",
    ] {
        assert_eq!(
            matcher.is_match(m),
            crate::routing::Matcher::parse(m).is_ok(),
            "{m:?}"
        );
    }
    let filter = pattern(&props["filterTypes"]["items"]["pattern"]);
    for f in [
        "a",
        "a.*",
        ".a",
        "a.",
        "a.**",
        "*",
        "",
        "a b",
        "x.y:z-w_v",
        &"x".repeat(100),
        &"x".repeat(101),
    ] {
        assert_eq!(
            filter.is_match(f),
            crate::routing::is_filter_type(f),
            "{f:?}"
        );
    }
    let name = pattern(&props["headers"]["propertyNames"]["pattern"]);
    for n in [
        "X-Api-Key",
        "a b",
        "a:b",
        "",
        "!#$%&'*+.^_`|~-",
        &"x".repeat(101),
    ] {
        assert_eq!(
            name.is_match(n),
            crate::parse::header_name_problem(n).is_none(),
            "{n:?}"
        );
    }
    let value = pattern(&props["headers"]["additionalProperties"]["pattern"]);
    for v in ["", "a", "a b", " a", "a ", "a\tb", "a\nb", "é", "~"] {
        assert_eq!(
            value.is_match(v),
            crate::parse::header_value_problem(v).is_none(),
            "{v:?}"
        );
    }
}

#[test]
fn every_reference_resolves() {
    let doc = document();
    let text = doc.to_string();
    for piece in text.split("\"$ref\":\"#/components/").skip(1) {
        let target = &piece[..piece.find('"').unwrap()];
        let mut node = &doc["components"];
        for part in target.split('/') {
            node = &node[part];
        }
        assert!(!node.is_null(), "dangling $ref {target}");
    }
}

/// The binary serves `src/api/openapi.json` and `src/api/docs.html`; they must be what this
/// code generates. `HOOKD_WRITE_OPENAPI=1 cargo test --lib openapi` rewrites them.
#[test]
fn the_checked_in_document_and_page_are_current() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut json = serde_json::to_string_pretty(document()).unwrap();
    json.push('\n');
    let page = crate::api::docs::render(document());
    let files = [("openapi.json", json), ("docs.html", page)];
    if std::env::var_os("HOOKD_WRITE_OPENAPI").is_some() {
        for (name, text) in &files {
            std::fs::write(dir.join(name), text).unwrap();
        }
    }
    for (name, text) in &files {
        let on_disk = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        assert!(
            on_disk == *text,
            "src/api/{name} is not what the code generates: run `HOOKD_WRITE_OPENAPI=1 cargo test --lib openapi` and commit it"
        );
    }
    // What build.rs packs is the same document, whitespace aside, and the same page.
    let served: Value = serde_json::from_slice(crate::api::docs::openapi()).unwrap();
    assert_eq!(&served, document());
    assert_eq!(crate::api::docs::page(), files[1].1.as_bytes());
}
