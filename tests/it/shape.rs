//! The shape of the code, as `src/lib.rs` declares it: modules in layers, each using only the
//! layers below (no import circle, no module reaching up to its caller), and no source file over
//! 600 lines, each opening with a comment that says its job.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Longest source file, in lines (unit tests may move to a sibling file).
const MAX_LINES: usize = 600;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The layers listed in `src/lib.rs`: lines `//! N. \`a\` \`b\``, from the top.
fn layers() -> Vec<Vec<String>> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    lib.lines()
        .filter_map(|l| l.strip_prefix("//! "))
        .filter_map(|l| {
            let (n, rest) = l.split_once(". ")?;
            n.parse::<u32>().ok()?;
            Some(
                rest.split('`')
                    .skip(1)
                    .step_by(2)
                    .map(str::to_owned)
                    .collect(),
            )
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`None` for the crate roots).
fn module_of(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(src()).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_owned())
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The top-level modules a file's code names as `crate::x` (in `use` lines, grouped
/// `use crate::{a, b::c}`, and inline paths). Comments are left out.
fn uses(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .map(|l| l.split_once("//").map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n");
    let bytes = code.as_bytes();
    let mut found = BTreeSet::new();
    let mut at = 0;
    while let Some(i) = code[at..].find("crate::") {
        let start = at + i;
        at = start + "crate::".len();
        if start > 0 && is_ident(bytes[start - 1]) {
            continue;
        }
        if bytes.get(at) == Some(&b'{') {
            // A group: the first name of each item at depth 1.
            let mut depth = 0;
            let mut item_start = true;
            for (j, &b) in bytes.iter().enumerate().skip(at) {
                match b {
                    b'{' => {
                        depth += 1;
                        item_start = depth == 1;
                    }
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    b',' if depth == 1 => item_start = true,
                    _ if item_start && is_ident(b) => {
                        let end = bytes[j..].iter().position(|&c| !is_ident(c)).unwrap() + j;
                        found.insert(code[j..end].to_owned());
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let end = bytes[at..]
                .iter()
                .position(|&c| !is_ident(c))
                .map_or(bytes.len(), |p| p + at);
            found.insert(code[at..end].to_owned());
        }
    }
    found.remove("self");
    found
}

#[test]
fn every_module_is_in_one_layer_and_uses_only_the_layers_below() {
    let layers = layers();
    assert!(layers.len() >= 5, "src/lib.rs lists no layers: {layers:?}");
    let mut layer_of = BTreeMap::new();
    for (i, names) in layers.iter().enumerate() {
        for name in names {
            assert!(
                layer_of.insert(name.clone(), i).is_none(),
                "{name} is listed twice"
            );
        }
    }
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let declared: BTreeSet<String> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';').to_owned())
        .collect();
    let listed: BTreeSet<String> = layer_of.keys().cloned().collect();
    assert_eq!(
        declared, listed,
        "src/lib.rs: its modules and its layers differ"
    );

    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let Some(module) = module_of(file) else {
            continue;
        };
        let own = layer_of[&module];
        for used in uses(&std::fs::read_to_string(file).unwrap()) {
            if used == module {
                continue;
            }
            let Some(&theirs) = layer_of.get(&used) else {
                continue; // `crate::` in a macro or a doc path that names no module
            };
            if theirs <= own {
                wrong.push(format!(
                    "{} ({module}, layer {}) uses {used} (layer {})",
                    file.strip_prefix(src()).unwrap().display(),
                    own + 1,
                    theirs + 1
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that point up or sideways:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_source_file_is_long_and_each_says_its_job() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    assert!(files.len() > 20);
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let lines = text.lines().count();
        let name = file.strip_prefix(src()).unwrap().display();
        if lines > MAX_LINES {
            problems.push(format!("{name}: {lines} lines (at most {MAX_LINES})"));
        }
        if !text.starts_with("//!") {
            problems.push(format!(
                "{name}: opens without a //! comment saying its job"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The store boundary holds: only the embedded backend names redb (in code, not comments), so
/// nothing above `store::Store` depends on which backend runs.
#[test]
fn only_the_embedded_store_knows_redb() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let embedded = src().join("store").join("embedded");
    let mut found = Vec::new();
    for file in files.iter().filter(|f| !f.starts_with(&embedded)) {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains("redb::") || code.contains("use redb") {
                found.push(format!(
                    "{}:{}",
                    file.strip_prefix(src()).unwrap().display(),
                    n + 1
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "redb named outside src/store/embedded/: {found:?}"
    );
}

#[test]
fn the_reader_of_uses_finds_groups_inline_paths_and_skips_comments() {
    let text = "use crate::{a::B, c, d::{e, f}};\nuse crate::g::H;\nlet x = crate::i::j();\n// crate::k\nmy_crate::l();\n";
    let found: Vec<String> = uses(text).into_iter().collect();
    assert_eq!(found, ["a", "c", "d", "g", "i"]);
}
