//! Compiles the freestanding C helper (`helper/mm-host-helper.c`) into
//! `$OUT_DIR/mm-host-helper` and exports its path as `MM_HOST_HELPER`.
//!
//! The compiler is `$MM_HOST_CC` if set, else `gcc`.

use std::env;
use std::path::PathBuf;
use std::process::Command;

/// Flags giving a static, non-PIE, libc-free executable with exactly two
/// loadable segments (R-X text+rodata, RW- bss) at fixed addresses.
const FLAGS: &[&str] = &[
    "-static",
    "-nostdlib",
    "-ffreestanding",
    "-fno-stack-protector",
    "-Os", // the text and rodata must stay within one page
    "-fno-pie",
    "-no-pie",
    "-fcf-protection=none",
    "-fno-asynchronous-unwind-tables",
    "-fno-unwind-tables",
    "-std=gnu11",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wl,--build-id=none",
    "-Wl,-z,noexecstack",
    "-Wl,-z,noseparate-code",
    "-Wl,-z,norelro",
];

fn main() {
    let src = PathBuf::from("helper/mm-host-helper.c");
    println!("cargo:rerun-if-changed={}", src.display());
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=MM_HOST_CC");

    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if os != "linux" || arch != "x86_64" {
        // The crate compiles to nothing elsewhere (see `lib.rs`).
        return;
    }

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let exe = out.join("mm-host-helper");
    let cc = env::var("MM_HOST_CC").unwrap_or_else(|_| "gcc".to_string());

    let status = Command::new(&cc).args(FLAGS).arg("-o").arg(&exe).arg(&src).status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!(
            "mm-host: compiling {} with `{cc}` failed ({s}); \
             the helper needs gcc with static linking support for x86-64 Linux",
            src.display()
        ),
        Err(e) => panic!(
            "mm-host: cannot run the C compiler `{cc}` ({e}); install gcc \
             (e.g. `apt-get install gcc`) or point MM_HOST_CC at one"
        ),
    }
    println!("cargo:rustc-env=MM_HOST_HELPER={}", exe.display());
}
