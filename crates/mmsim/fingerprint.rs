// The source fingerprint that ties a loom summary to the code it checked:
// compiled into mmsim by its build script and into xtask as a module, so
// both compute the same value from the same files.

/// The files whose contents decide what the loom checks checked: mm-core,
/// mm-ops' sources and mm-spec with its tests, plus the lock file.
const ROOTS: [&str; 5] = [
    "crates/mm-core",
    "crates/mm-ops/src",
    "crates/mm-ops/Cargo.toml",
    "crates/mm-spec",
    "Cargo.lock",
];

fn collect(root: &std::path::Path, rel: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let path = root.join(rel);
    if path.is_file() {
        let ext = rel.extension().and_then(|e| e.to_str()).unwrap_or("");
        if matches!(ext, "rs" | "toml" | "lock") {
            out.push(rel.to_path_buf());
        }
    } else if let Ok(dir) = std::fs::read_dir(&path) {
        for entry in dir.flatten() {
            let name = entry.file_name();
            if name == "target" || name.to_string_lossy().starts_with('.') {
                continue;
            }
            collect(root, &rel.join(name), out);
        }
    }
}

/// FNV-1a (64 bits) over the sorted relative paths and contents of the
/// files under [`ROOTS`] in the workspace at `root`, as 16 hex digits.
#[allow(dead_code)]
pub fn source_fingerprint(root: &std::path::Path) -> String {
    let mut files = vec![];
    for r in ROOTS {
        collect(root, std::path::Path::new(r), &mut files);
    }
    files.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for f in &files {
        eat(f.to_string_lossy().as_bytes());
        eat(&[0]);
        eat(&std::fs::read(root.join(f)).unwrap_or_default());
        eat(&[0]);
    }
    format!("{h:016x}")
}

/// The files the fingerprint covers, for `cargo:rerun-if-changed`.
#[allow(dead_code)]
pub fn fingerprint_roots() -> &'static [&'static str] {
    &ROOTS
}
