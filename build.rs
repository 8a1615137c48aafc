//! The OpenAPI document and the `/docs` page as the binary keeps them: `src/api/openapi.json`
//! (checked in pretty, for review) without the whitespace between its tokens, and
//! `src/api/docs.html`, each compressed with zstd (about 110 KB less in the binary; hookd
//! unpacks each at its first request with the decoder wasmtime's code cache already links).
//!
//! Link-time size of the release binary, with no cost at run time:
//!
//! - packed relative relocations (`DT_RELR`, glibc 2.36, Debian 12): a position-independent
//!   executable's relocation table shrinks from 24 bytes per pointer to a bitmap.
//! - identical code folding where the linker is LLVM's (rustc's default on x86-64 Linux):
//!   monomorphized generics often compile to byte-identical functions and lld keeps one copy.
//!   Rust never relies on two functions having different addresses.
fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let dir = std::env::var("OUT_DIR").unwrap_or_else(|e| panic!("OUT_DIR: {e}"));
    let dir = std::path::Path::new(&dir);
    compress(&minify_openapi(), &dir.join("openapi.json.zst"));
    const DOCS: &str = "src/api/docs.html";
    println!("cargo::rerun-if-changed={DOCS}");
    let page = std::fs::read(DOCS).unwrap_or_else(|e| panic!("{DOCS}: {e}"));
    compress(&page, &dir.join("docs.html.zst"));
    let target = std::env::var("TARGET").unwrap_or_default();
    let profile = std::env::var("PROFILE").unwrap_or_default();
    if profile != "release" || !target.ends_with("-linux-gnu") {
        return;
    }
    println!("cargo::rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    if target == "x86_64-unknown-linux-gnu" {
        println!("cargo::rustc-link-arg-bins=-Wl,--icf=all");
    }
}

fn compress(bytes: &[u8], to: &std::path::Path) {
    let packed = zstd::bulk::compress(bytes, 19).unwrap_or_else(|e| panic!("zstd: {e}"));
    std::fs::write(to, packed).unwrap_or_else(|e| panic!("{}: {e}", to.display()));
}

fn minify_openapi() -> Vec<u8> {
    const SOURCE: &str = "src/api/openapi.json";
    println!("cargo::rerun-if-changed={SOURCE}");
    let text = std::fs::read_to_string(SOURCE).unwrap_or_else(|e| panic!("{SOURCE}: {e}"));
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_ascii_whitespace() {
            out.push(c);
        }
    }
    out.into_bytes()
}
