//! The console (`/console/`): a single page compiled into the binary, talking only to hookd's
//! own `/api/v1` with the token a person enters. No build step, nothing from another origin:
//! the assets are the files in `src/console/`, served with an `ETag` (revalidated on every load,
//! answered `304` when unchanged) and a Content-Security-Policy that allows scripts, styles and
//! requests to this origin only.

use std::sync::OnceLock;

use hyper::body::Bytes;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, ETAG, LOCATION};
use hyper::{Response, StatusCode};

use super::{Body, HttpResponse};
use crate::error::ApiError;

/// Every asset: (file name, content type, bytes). `index.html` is served at `/console/`.
const ASSETS: [(&str, &str, &[u8]); 6] = [
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../console/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/app.js"),
    ),
    (
        "dom.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/dom.js"),
    ),
    (
        "options.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/options.js"),
    ),
    (
        "lib.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/lib.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../console/app.css"),
    ),
];

/// The policy of every `/console/` response: this origin only, no inline script or style, no
/// framing, no form posts elsewhere.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The asset called `name` (`""` for the page itself).
fn asset(name: &str) -> Option<(usize, &'static str, &'static [u8])> {
    let name = if name.is_empty() { "index.html" } else { name };
    ASSETS
        .iter()
        .enumerate()
        .find(|(_, (n, _, _))| *n == name)
        .map(|(i, (_, ct, bytes))| (i, *ct, *bytes))
}

/// Each asset's strong `ETag`: the first 16 bytes of its SHA-256, in hex, quoted.
fn etag(index: usize) -> &'static str {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|(_, _, bytes)| {
                let d = ring::digest::digest(&ring::digest::SHA256, bytes);
                let hex: String = d.as_ref()[..16]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                format!("\"{hex}\"")
            })
            .collect()
    });
    tags.get(index).map_or("\"\"", String::as_str)
}

/// The security headers of every console response.
fn secure(resp: &mut HttpResponse) {
    let h = resp.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
}

/// `GET /console/` and `GET /console/{file}`: the asset, or `304` when `if_none_match` names it.
///
/// # Errors
/// `404` for a file the console does not have.
pub fn serve(file: &str, if_none_match: Option<&[u8]>) -> Result<HttpResponse, ApiError> {
    let (index, content_type, bytes) = asset(file)
        .ok_or_else(|| ApiError::NotFound(format!("the console has no file '{file}'")))?;
    let tag = etag(index);
    // If-None-Match compares weakly (RFC 9110, 13.1.2): `W/"x"` names the tag `"x"` too.
    let fresh = if_none_match.is_some_and(|v| {
        v.split(|b| *b == b',').any(|t| {
            let t = t.trim_ascii();
            t.strip_prefix(b"W/").unwrap_or(t) == tag.as_bytes() || t == b"*"
        })
    });
    let mut resp = if fresh {
        let mut r = Response::new(Body::full(Bytes::new()));
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let mut r = Response::new(Body::full(Bytes::from_static(bytes)));
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        r
    };
    if let Ok(v) = HeaderValue::from_str(tag) {
        resp.headers_mut().insert(ETAG, v);
    }
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    secure(&mut resp);
    Ok(resp)
}

/// `GET /console`: to `/console/` (relative links need the slash).
pub fn redirect() -> HttpResponse {
    let mut resp = Response::new(Body::full(Bytes::new()));
    *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
    resp.headers_mut()
        .insert(LOCATION, HeaderValue::from_static("/console/"));
    secure(&mut resp);
    resp
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn assets_etags_and_headers() {
        let page = serve("", None).unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
        let tag = page.headers()[ETAG].to_str().unwrap().to_owned();
        assert_eq!(tag.len(), 34);
        let again = serve("index.html", Some(tag.as_bytes())).unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        let weak = format!("\"zz\", W/{tag}");
        let again = serve("index.html", Some(weak.as_bytes())).unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "weak comparison");
        let other = serve("index.html", Some(b"\"0000\", W/\"x\"")).unwrap();
        assert_eq!(other.status(), StatusCode::OK);
        assert_ne!(serve("app.js", None).unwrap().headers()[ETAG], tag);
        for name in ["", "app.js", "lib.js", "app.css"] {
            let r = serve(name, None).unwrap();
            let h = r.headers();
            assert_eq!(h["content-security-policy"], CSP);
            assert_eq!(h["x-content-type-options"], "nosniff");
            assert_eq!(h["referrer-policy"], "no-referrer");
            assert_eq!(h[CACHE_CONTROL], "no-cache");
        }
        assert!(matches!(
            serve("../Cargo.toml", None),
            Err(ApiError::NotFound(_))
        ));
        assert!(matches!(serve("APP.JS", None), Err(ApiError::NotFound(_))));
        // No inline script or style, and nothing from another origin, in the page itself.
        let html = std::str::from_utf8(ASSETS[0].2).unwrap();
        assert!(!html.contains("<script>") && !html.contains("style=") && !html.contains("<style"));
        assert!(!html.contains("http://") && !html.contains("https://"));
        for (name, _, bytes) in ASSETS {
            let text = std::str::from_utf8(bytes).unwrap();
            assert!(
                !text.contains("from \"http") && !text.contains("url(http"),
                "{name}"
            );
            assert!(
                !text.contains("innerHTML") && !text.contains("eval("),
                "{name}"
            );
        }
        assert!(!CSP.contains("unsafe-"));
    }

    #[test]
    fn the_console_offers_every_format() {
        let app =
            std::str::from_utf8(ASSETS.iter().find(|a| a.0 == "options.js").unwrap().2).unwrap();
        let names: Vec<String> = crate::model::Format::ALL
            .iter()
            .map(|f| format!("\"{}\"", f.as_str()))
            .collect();
        let want = format!("export const FORMATS = [{}];", names.join(", "));
        assert!(app.contains(&want), "src/console/options.js lacks {want}");
    }
}
