//! Builds `examples/c/diff_host.c` with gcc against the static library
//! (`libmm_capi.a`, which cargo builds next to this test) and runs it: a
//! differential check of the model, through the C API, against the kernel
//! this runs on. `CC` overrides the compiler.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The example, compiled once for all tests here.
fn diff_host() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("current_exe");
        // target/<profile>/deps/c_example-HASH: the library's outputs lie
        // beside it (and in target/<profile> after `cargo build`).
        let deps = exe.parent().expect("deps directory");
        let lib = [deps.join("libmm_capi.a"), deps.join("../libmm_capi.a")]
            .into_iter()
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("no libmm_capi.a in {} or above", deps.display()));
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("diff_host");
        let cc = std::env::var("CC").unwrap_or_else(|_| "gcc".into());
        let status = Command::new(&cc)
            .args(["-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-I"])
            .arg(dir.join("include"))
            .arg(dir.join("examples/c/diff_host.c"))
            .arg(&lib)
            .args(["-lpthread", "-ldl", "-lm", "-o"])
            .arg(&out)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {cc}: {e}"));
        assert!(status.success(), "{cc} failed to build diff_host.c: {status}");
        out
    })
}

fn run(sabotage: bool) -> Output {
    let mut c = Command::new(diff_host());
    if sabotage {
        c.env("MM_SIM_DIFF_SABOTAGE", "1");
    } else {
        c.env_remove("MM_SIM_DIFF_SABOTAGE");
    }
    let out = c.output().expect("cannot run diff_host");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
#[cfg_attr(mm_capi_sanitized, ignore = "the sanitized static library needs its runtime")]
fn c_example_matches_the_kernel() {
    let out = run(false);
    assert!(out.status.success(), "diff_host: {}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("checks match the kernel"), "{text}");
}

/// The check can fail: one wrong argument given to the model is caught.
#[test]
#[cfg_attr(mm_capi_sanitized, ignore = "the sanitized static library needs its runtime")]
fn c_example_catches_a_difference() {
    let out = run(true);
    assert_eq!(out.status.code(), Some(1), "diff_host with sabotage: {}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "maps of the region differ",
        "kernel signal 0, model signal 11",
        "checks differ",
    ] {
        assert!(text.contains(want), "no {want:?} in:\n{text}");
    }
}
