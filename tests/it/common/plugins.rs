//! Plugin fixtures, written in WebAssembly text and compiled by the `wat` crate, so the tests
//! need no wasm toolchain. Each is a component implementing hookd:plugin/url-policy or
//! hookd:plugin/transformer (or, for the load tests, deliberately neither).
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

/// A url-policy component whose core `check` runs `on_boom` when the endpoint name is 4 bytes
/// long ("boom") and otherwise allows. `on_boom` must leave an i32 (the answer's address) on the
/// stack or never return. `pages` is the initial memory size.
pub fn component(on_boom: &str, pages: u32, data: &str) -> String {
    format!(
        r#"(component
  (core module $m
    (memory (export "memory") {pages})
    (global $heap (mut i32) (i32.const 1024))
    {data}
    (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (global.get $heap))
      (global.set $heap (i32.add (global.get $heap) (local.get 3)))
      (local.get $p))
    ;; params: url ptr/len, name ptr/len, operation ptr/len, settings ptr/len
    (func (export "check") (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
      (if (result i32) (i32.eq (local.get 3) (i32.const 4))
        (then {on_boom})
        (else
          ;; result<_, string>: discriminant 0 (ok) at address 16
          (i32.store8 (i32.const 16) (i32.const 0))
          (i32.const 16)))))
  (core instance $i (instantiate $m))
  (func (export "check")
    (param "url" string) (param "name" string) (param "operation" string) (param "settings" string)
    (result (result (error string)))
    (canon lift (core func $i "check") (memory (core memory $i "memory")) (realloc (core func $i "cabi_realloc")))))"#
    )
}

/// Answers err(reason) for "boom": the reason is `len` bytes at address 256.
fn deny_with(len: usize) -> String {
    format!(
        "(i32.store8 (i32.const 16) (i32.const 1)) (i32.store (i32.const 20) (i32.const 256)) (i32.store (i32.const 24) (i32.const {len})) (i32.const 16)"
    )
}

/// Every fixture by name, as WAT.
pub fn fixture(name: &str) -> String {
    match name {
        "allow" => component("(i32.const 16) (i32.store8 (i32.const 16) (i32.const 0))", 1, ""),
        "deny" => component(
            &deny_with(20),
            1,
            r#"(data (i32.const 256) "boom is not allowed!")"#,
        ),
        "loop" => component("(loop $l (br $l)) (unreachable)", 1, ""),
        "memory-bomb" => component(
            "(loop $l (drop (memory.grow (i32.const 16))) (br $l)) (unreachable)",
            1,
            "",
        ),
        "trap" => component("(unreachable)", 1, ""),
        // A 3 MB deny reason: within the memory limit, far over the answer limit.
        "oversized" => component(&deny_with(3_000_000), 48, ""),
        // Points the reason past the end of memory.
        "out-of-bounds" => component(
            "(i32.store8 (i32.const 16) (i32.const 1)) (i32.store (i32.const 20) (i32.const 65000)) (i32.store (i32.const 24) (i32.const 100000)) (i32.const 16)",
            1,
            "",
        ),
        "wrong-world" => r#"(component
  (core module $m (func (export "validate") (param i32 i32) (result i32) (i32.const 0)))
  (core instance $i (instantiate $m))
  (func (export "validate") (param "url" string) (result bool)
    (canon lift (core func $i "validate"))))"#
            .replace("(param \"url\" string)", "(param \"a\" u32) (param \"b\" u32)"),
        "imports-wasi" => {
            let base = component("(i32.const 16)", 1, "");
            base.replacen(
                "(component",
                r#"(component
  (import "wasi:random/random@0.2.0" (instance (export "get-random-u64" (func (result u64)))))"#,
                1,
            )
        }
        other => panic!("no fixture {other}"),
    }
}

/// Compiles fixture `name` into `dir/name.wasm`.
pub fn write_fixture(dir: &Path, name: &str) -> PathBuf {
    write_wat(dir, name, &fixture(name))
}

/// Compiles `wat` into `dir/name.wasm`.
fn write_wat(dir: &Path, name: &str, wat: &str) -> PathBuf {
    let bytes = wat::parse_str(wat).unwrap_or_else(|e| panic!("{name}: {e}"));
    let path = dir.join(format!("{name}.wasm"));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A `[[plugins]]` table for a fixture.
pub fn plugin_toml(name: &str, path: &Path, on_error: &str) -> String {
    format!(
        "[[plugins]]\nname = \"{name}\"\npath = \"{}\"\non_error = \"{on_error}\"\n",
        path.display()
    )
}

/// A transformer component (hookd:plugin/transformer) whose core `transform` answers a
/// request for most events: the payload as the body, `text/plain`, and one header `X-Settings`
/// with the settings. For an endpoint named "hostile" (7 bytes) it runs `on_boom` instead, which
/// must leave an i32 (the answer's address) on the stack or never return.
pub fn transformer(on_boom: &str, pages: u32, data: &str) -> String {
    format!(
        r#"(component
  (core module $m
    (memory (export "memory") {pages})
    (global $heap (mut i32) (i32.const 4096))
    (data (i32.const 256) "text/plain")
    (data (i32.const 300) "X-Settings")
    {data}
    (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (global.get $heap))
      (global.set $heap (i32.add (global.get $heap) (local.get 3)))
      (local.get $p))
    ;; params (pointer, length): id, event type, timestamp, payload, endpoint name, settings
    (func (export "transform") (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
      (if (result i32) (i32.eq (local.get 9) (i32.const 7))
        (then {on_boom})
        (else
          ;; result<request, string>: ok (0) at 16; body = payload, content type at 256,
          ;; headers = one (name at 300, value = settings) at 64
          (i32.store8 (i32.const 16) (i32.const 0))
          (i32.store (i32.const 20) (local.get 6))
          (i32.store (i32.const 24) (local.get 7))
          (i32.store (i32.const 28) (i32.const 256))
          (i32.store (i32.const 32) (i32.const 10))
          (i32.store (i32.const 36) (i32.const 64))
          (i32.store (i32.const 40) (i32.const 1))
          (i32.store (i32.const 64) (i32.const 300))
          (i32.store (i32.const 68) (i32.const 10))
          (i32.store (i32.const 72) (local.get 10))
          (i32.store (i32.const 76) (local.get 11))
          (i32.const 16)))))
  (core instance $i (instantiate $m))
  (type $event' (record (field "id" string) (field "event-type" string) (field "timestamp" string) (field "payload" string) (field "endpoint-name" string)))
  (export $event "event" (type $event'))
  (type $request' (record (field "body" (list u8)) (field "content-type" string) (field "headers" (list (tuple string string)))))
  (export $request "request" (type $request'))
  (func (export "transform") (param "event" $event) (param "settings" string) (result (result $request (error string)))
    (canon lift (core func $i "transform") (memory (core memory $i "memory")) (realloc (core func $i "cabi_realloc")))))"#
    )
}

/// `wat` (a [`transformer`]) with the `shared-transformer` export `uses-endpoint-name`, of
/// result type `ty`, answering `value`.
fn declaring(wat: String, ty: &str, value: u32) -> String {
    let core = format!(
        "(func (export \"uses-endpoint-name\") (result i32) (i32.const {value}))\n    ;; params"
    );
    let wat = wat.replacen(";; params", &core, 1);
    let at = wat.rfind(')').unwrap_or(wat.len());
    format!(
        "{}\n  (func (export \"uses-endpoint-name\") (result {ty}) (canon lift (core func $i \"uses-endpoint-name\"))))",
        &wat[..at]
    )
}

/// For "hostile": an ok answer whose content type is `ct_len` bytes at 512 and whose headers are
/// `headers` (count) tuples at 64, body empty.
fn transform_answer(ct_len: usize, headers: usize) -> String {
    format!(
        "(i32.store8 (i32.const 16) (i32.const 0)) (i32.store (i32.const 20) (i32.const 0)) (i32.store (i32.const 24) (i32.const 0)) \
         (i32.store (i32.const 28) (i32.const 512)) (i32.store (i32.const 32) (i32.const {ct_len})) \
         (i32.store (i32.const 36) (i32.const 64)) (i32.store (i32.const 40) (i32.const {headers})) (i32.const 16)"
    )
}

/// Every transformer fixture by name, as WAT.
pub fn transformer_fixture(name: &str) -> String {
    match name {
        "echo" => transformer("(unreachable)", 1, ""),
        // Says it leaves the endpoint's name unused: called once per event, given the name "".
        "echo-shared" => declaring(transformer("(unreachable)", 1, ""), "bool", 0),
        // Says it uses the name: as if it did not say.
        "echo-named" => declaring(transformer("(unreachable)", 1, ""), "bool", 1),
        // Says it with the wrong type.
        "bad-declaration" => declaring(transformer("(unreachable)", 1, ""), "u32", 0),
        // Room (4 MiB, its allocator never grows memory) for a 1,000-alert group.
        "echo-large" => transformer("(unreachable)", 64, ""),
        // Its own error.
        "error" => transformer(
            "(i32.store8 (i32.const 16) (i32.const 1)) (i32.store (i32.const 20) (i32.const 600)) (i32.store (i32.const 24) (i32.const 15)) (i32.const 16)",
            1,
            r#"(data (i32.const 600) "no topic is set")"#,
        ),
        "loop" => transformer("(loop $l (br $l)) (unreachable)", 1, ""),
        "memory-bomb" => transformer(
            "(loop $l (drop (memory.grow (i32.const 16))) (br $l)) (unreachable)",
            1,
            "",
        ),
        "trap" => transformer("(unreachable)", 1, ""),
        // A content type with a line break: a forged header.
        "bad-content-type" => transformer(
            &transform_answer(20, 0),
            1,
            r#"(data (i32.const 512) "text/plain\0d\0aX-Evil: 1")"#,
        ),
        // A header hookd sets itself: a forged signature.
        "reserved-header" => transformer(
            &format!(
                "(i32.store (i32.const 64) (i32.const 700)) (i32.store (i32.const 68) (i32.const 17)) \
                 (i32.store (i32.const 72) (i32.const 720)) (i32.store (i32.const 76) (i32.const 9)) {}",
                transform_answer(10, 1)
            ),
            1,
            r#"(data (i32.const 512) "text/plain") (data (i32.const 700) "webhook-signature") (data (i32.const 720) "v1,forged")"#,
        ),
        // A 5 MB body: within the memory limit, over the body limit.
        "oversized" => transformer(
            "(i32.store8 (i32.const 16) (i32.const 0)) (i32.store (i32.const 20) (i32.const 0)) (i32.store (i32.const 24) (i32.const 5000000)) \
             (i32.store (i32.const 28) (i32.const 256)) (i32.store (i32.const 32) (i32.const 10)) \
             (i32.store (i32.const 36) (i32.const 0)) (i32.store (i32.const 40) (i32.const 0)) (i32.const 16)",
            80,
            "",
        ),
        other => panic!("no transformer fixture {other}"),
    }
}

/// Compiles transformer fixture `name` into `dir/name.wasm`.
pub fn write_transformer(dir: &Path, name: &str) -> PathBuf {
    write_wat(dir, name, &transformer_fixture(name))
}

/// A `[[transformers]]` table.
pub fn transformer_toml(name: &str, path: &Path, settings: &str) -> String {
    format!(
        "[[transformers]]\nname = \"{name}\"\npath = \"{}\"\nsettings = \"{settings}\"\n",
        path.display()
    )
}
