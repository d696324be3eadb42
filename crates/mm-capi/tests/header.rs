//! `include/mm_sim.h` is what cbindgen generates from the sources: the
//! header is committed (build scripts do not write the source tree) and
//! this test regenerates it to check it. `MM_SIM_BLESS=1` rewrites it.

use std::path::Path;

#[test]
fn header_is_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .expect("cbindgen cannot generate the header");
    let mut fresh = Vec::new();
    bindings.write(&mut fresh);
    let path = dir.join("include/mm_sim.h");
    if std::env::var_os("MM_SIM_BLESS").is_some_and(|v| !v.is_empty() && v != "0") {
        std::fs::write(&path, &fresh).expect("cannot write include/mm_sim.h");
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    if committed != fresh {
        let fresh = String::from_utf8_lossy(&fresh);
        let committed = String::from_utf8_lossy(&committed);
        let first = fresh
            .lines()
            .zip(committed.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(fresh.lines().count().min(committed.lines().count()));
        panic!(
            "crates/mm-capi/include/mm_sim.h is stale (first difference at line {}: \
             generated {:?}, committed {:?}).\n\
             Regenerate it with: MM_SIM_BLESS=1 cargo test -p mm-capi --test header",
            first + 1,
            fresh.lines().nth(first).unwrap_or("<end>"),
            committed.lines().nth(first).unwrap_or("<end>"),
        );
    }
}
