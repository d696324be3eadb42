//! Test summaries for CI logs: tests append one line to a file in
//! `$MM_CI_SUMMARY_DIR` (set by `cargo xtask ci`), which xtask prints at the
//! end, so that a reader of the CI log sees the counts.

/// Records `line` for the CI summary under `name` (and prints it).
pub fn report(name: &str, line: &str) {
    println!("{line}");
    if let Some(dir) = std::env::var_os("MM_CI_SUMMARY_DIR") {
        let path = std::path::Path::new(&dir).join(format!("{name}.txt"));
        let _ = std::fs::write(path, format!("{line}\n"));
    }
}
