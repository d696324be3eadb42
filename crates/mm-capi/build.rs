//! Tells the tests whether this build is instrumented by a sanitizer
//! (`cargo xtask asan`: `-Zsanitizer=address`): then the static library
//! needs the sanitizer's runtime, and `tests/c_example.rs` does not link
//! the C example with gcc. Writes nothing.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(mm_capi_sanitized)");
    println!("cargo::rerun-if-changed=build.rs");
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if flags.split('\x1f').any(|f| f.contains("sanitizer")) {
        println!("cargo::rustc-cfg=mm_capi_sanitized");
    }
}
