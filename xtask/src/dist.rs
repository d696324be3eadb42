//! `cargo xtask dist`: builds `mmsim` (release) and writes what a package
//! ships besides the binary, generated from the command line's own
//! definition (clap_mangen, clap_complete): `TARGET/dist/man/mmsim.1` and
//! `TARGET/dist/completions/` for bash, zsh and fish.

use std::process::Command;

use crate::{cargo, step, target_dir};

/// Runs `mmsim ARGS` and writes its standard output to `path`.
fn write_output(bin: &std::path::Path, args: &[&str], path: &std::path::Path) -> bool {
    match Command::new(bin).args(args).output() {
        Ok(o) if o.status.success() && !o.stdout.is_empty() => match std::fs::write(path, &o.stdout) {
            Ok(()) => {
                println!("    wrote {}", path.display());
                true
            }
            Err(e) => {
                eprintln!("xtask dist: cannot write {}: {e}", path.display());
                false
            }
        },
        Ok(o) => {
            eprintln!(
                "xtask dist: mmsim {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&o.stderr)
            );
            false
        }
        Err(e) => {
            eprintln!("xtask dist: cannot run {}: {e}", bin.display());
            false
        }
    }
}

/// Builds and writes the man page and completions; false on a failure.
pub fn dist() -> bool {
    let mut b = cargo();
    b.args(["build", "--release", "-p", "mmsim"]);
    if !step("build mmsim (release)", b) {
        return false;
    }
    let bin = target_dir().join("release").join("mmsim");
    let dist = target_dir().join("dist");
    let (man, comp) = (dist.join("man"), dist.join("completions"));
    for d in [&man, &comp] {
        if let Err(e) = std::fs::create_dir_all(d) {
            eprintln!("xtask dist: cannot create {}: {e}", d.display());
            return false;
        }
    }
    let mut ok = write_output(&bin, &["man"], &man.join("mmsim.1"));
    for (shell, file) in [("bash", "mmsim.bash"), ("zsh", "_mmsim"), ("fish", "mmsim.fish")] {
        ok &= write_output(&bin, &["completions", shell], &comp.join(file));
    }
    ok
}
