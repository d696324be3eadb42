//! Stamps the build with the source fingerprint and git commit that
//! `mmsim simulate` compares with the loom summary's.

#[path = "fingerprint.rs"]
mod fingerprint;

use std::path::Path;
use std::process::Command;

fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(root).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for r in fingerprint::fingerprint_roots() {
        println!("cargo:rerun-if-changed=../../{r}");
    }
    println!("cargo:rerun-if-changed=../../.git/HEAD");
    println!("cargo:rerun-if-changed=fingerprint.rs");
    let fp = fingerprint::source_fingerprint(&root);
    let commit = git(&root, &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=MMSIM_SOURCE_FINGERPRINT={fp}");
    println!("cargo:rustc-env=MMSIM_GIT_COMMIT={commit}");
    // OUT_DIR is TARGET/PROFILE/build/mmsim-HASH/out: the target directory
    // (wherever CARGO_TARGET_DIR put it) is four levels up.
    let out = std::env::var("OUT_DIR").unwrap_or_default();
    let target = Path::new(&out)
        .ancestors()
        .nth(4)
        .map_or_else(|| root.join("target"), Path::to_path_buf);
    println!("cargo:rustc-env=MMSIM_TARGET_DIR={}", target.display());
}
