//! `GET /docs`: a readable reference page of the OpenAPI document, rendered once from it and
//! served from the binary (no CDN, no script: it works on a box with no internet).

use std::fmt::Write as _;
use std::sync::OnceLock;

use base64::Engine as _;
use serde_json::Value;

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1f24}\
code,pre{font:13px/1.4 ui-monospace,monospace}pre{background:#f4f5f7;padding:.75rem;overflow:auto}\
section{border-top:1px solid #d8dde3;padding-top:.5rem}h2 code{background:#eef;padding:0 .3rem}\
table{border-collapse:collapse}td,th{border:1px solid #d8dde3;padding:.2rem .5rem;text-align:left}";

/// Text as HTML: every value from the document is escaped.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn text(v: &Value) -> String {
    esc(v.as_str().unwrap_or(""))
}

fn render(doc: &Value) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>hookd API {}</title><style>{STYLE}</style></head><body><h1>hookd API <small>{}</small></h1><p>{}</p><p>The machine-readable document: <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a> (OpenAPI {}).</p><h2>Operations</h2><ul>",
        text(&doc["info"]["version"]),
        text(&doc["info"]["version"]),
        text(&doc["info"]["description"]),
        text(&doc["openapi"]),
    );
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    for (path, item) in &paths {
        for (method, op) in item.as_object().into_iter().flatten() {
            let _ = write!(
                h,
                "<li><a href=\"#{}\"><code>{} {}</code></a> {}</li>",
                text(&op["operationId"]),
                esc(&method.to_ascii_uppercase()),
                esc(path),
                text(&op["summary"])
            );
        }
    }
    h.push_str("</ul>");
    for (path, item) in &paths {
        for (method, op) in item.as_object().into_iter().flatten() {
            let _ = write!(
                h,
                "<section id=\"{}\"><h2><code>{} {}</code></h2><p>{}</p>",
                text(&op["operationId"]),
                esc(&method.to_ascii_uppercase()),
                esc(path),
                text(&op["summary"])
            );
            if let Some(d) = op["description"].as_str() {
                let _ = write!(h, "<p>{}</p>", esc(d));
            }
            if let Some(params) = op["parameters"].as_array() {
                h.push_str("<table><tr><th>parameter</th><th>in</th><th>schema</th></tr>");
                for p in params {
                    let _ = write!(
                        h,
                        "<tr><td><code>{}</code></td><td>{}</td><td><code>{}</code></td></tr>",
                        text(&p["name"]),
                        text(&p["in"]),
                        esc(&p["schema"].to_string())
                    );
                }
                h.push_str("</table>");
            }
            if let Some(schema) =
                op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str()
            {
                let name = schema.rsplit('/').next().unwrap_or("");
                let _ = write!(
                    h,
                    "<p>Body: <a href=\"#schema-{0}\"><code>{0}</code></a> (<code>application/json</code>)</p>",
                    esc(name)
                );
            }
            h.push_str("<p>Answers:</p><ul>");
            for (status, resp) in op["responses"].as_object().into_iter().flatten() {
                let described = resp["description"]
                    .as_str()
                    .map(str::to_owned)
                    .or_else(|| {
                        resp["$ref"].as_str().and_then(|r| {
                            let key = r.rsplit('/').next()?;
                            doc["components"]["responses"][key]["description"]
                                .as_str()
                                .map(str::to_owned)
                        })
                    })
                    .unwrap_or_default();
                let _ = write!(
                    h,
                    "<li><code>{}</code> {}</li>",
                    esc(status),
                    esc(&described)
                );
            }
            h.push_str("</ul></section>");
        }
    }
    h.push_str("<h2>Schemas</h2>");
    for (name, schema) in doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let pretty = serde_json::to_string_pretty(schema).unwrap_or_default();
        let _ = write!(
            h,
            "<section id=\"schema-{0}\"><h3>{0}</h3><pre>{1}</pre></section>",
            esc(name),
            esc(&pretty)
        );
    }
    h.push_str("</body></html>");
    h
}

/// The page, rendered once.
pub fn page() -> &'static str {
    static PAGE: OnceLock<String> = OnceLock::new();
    PAGE.get_or_init(|| render(super::openapi::document()))
}

/// The page's Content-Security-Policy: nothing may load; only its own stylesheet applies.
pub fn csp() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        let hash = ring::digest::digest(&ring::digest::SHA256, STYLE.as_bytes());
        format!(
            "default-src 'none'; style-src 'sha256-{}'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
            base64::engine::general_purpose::STANDARD.encode(hash.as_ref())
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_on_the_page_escaped() {
        let page = page();
        for route in crate::route::ROUTES {
            assert!(
                page.contains(&format!("id=\"{}\"", route.name)),
                "{}",
                route.name
            );
        }
        assert!(!page.contains("<script"));
        assert_eq!(
            esc("<img src=x onerror=alert(1)>"),
            "&lt;img src=x onerror=alert(1)&gt;"
        );
        assert!(csp().starts_with("default-src 'none'; style-src 'sha256-"));
    }
}
