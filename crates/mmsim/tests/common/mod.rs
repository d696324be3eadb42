//! Helpers shared by the integration tests: running the `mmsim` binary,
//! temporary directories, and maps lines.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What a run of `mmsim` gave.
#[derive(Debug)]
pub struct Run {
    /// Exit status (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// The stdout lines that are calls (not maps lines).
    pub fn call_lines(&self) -> Vec<&str> {
        self.stdout.lines().filter(|l| !is_maps_line(l)).collect()
    }
}

/// Runs `mmsim ARGS` with `stdin` as standard input.
pub fn mmsim(args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mmsim"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mmsim starts");
    let mut input = child.stdin.take().expect("stdin");
    let text = stdin.to_string();
    // Write from another thread so that a large output cannot block us.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(text.as_bytes());
    });
    let out = child.wait_with_output().expect("mmsim runs");
    writer.join().expect("writer");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `mmsim replay ARGS… -` with `script` on standard input.
pub fn replay(args: &[&str], script: &str) -> Run {
    let mut a = vec!["replay"];
    a.extend_from_slice(args);
    a.push("-");
    mmsim(&a, script)
}

/// A fresh directory under the system's temporary directory, removed when
/// dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `mmsim-test-TAG-PID`.
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("mmsim-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        // The host's paths in maps are canonical.
        TempDir(std::fs::canonicalize(&p).expect("canonical temp dir"))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The directory as a string.
    pub fn str(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }

    /// Creates `name` in the directory with `len` bytes; returns its path.
    pub fn file(&self, name: &str, len: u64) -> String {
        let p = self.0.join(name);
        let f = std::fs::File::create(&p).expect("create file");
        f.set_len(len).expect("set length");
        p.to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// True for a `/proc/PID/maps` line (`start-end perms …`).
pub fn is_maps_line(l: &str) -> bool {
    let Some((range, _)) = l.split_once(' ') else {
        return false;
    };
    let Some((a, b)) = range.split_once('-') else {
        return false;
    };
    !a.is_empty()
        && !b.is_empty()
        && a.bytes().all(|c| c.is_ascii_hexdigit())
        && b.bytes().all(|c| c.is_ascii_hexdigit())
}

/// A maps line without the dev and inode columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapsKey {
    /// Start address.
    pub start: u64,
    /// End address.
    pub end: u64,
    /// `rwxp`.
    pub perms: String,
    /// Offset column.
    pub offset: u64,
    /// Path or pseudo-name; empty for anonymous memory.
    pub name: String,
}

/// The maps lines of `text`, without dev and inode.
pub fn maps_keys(text: &str) -> Vec<MapsKey> {
    text.lines()
        .filter(|l| is_maps_line(l))
        .map(|l| {
            let mut f = l.split_whitespace();
            let (s, e) = f.next().and_then(|r| r.split_once('-')).expect("range");
            let perms = f.next().expect("perms").to_string();
            let offset = u64::from_str_radix(f.next().expect("offset"), 16).expect("hex offset");
            let _dev = f.next();
            let _ino = f.next();
            MapsKey {
                start: u64::from_str_radix(s, 16).expect("hex start"),
                end: u64::from_str_radix(e, 16).expect("hex end"),
                perms,
                offset,
                name: f.collect::<Vec<_>>().join(" "),
            }
        })
        .collect()
}

/// The maps lines of `text` that start inside `[lo, hi)`.
pub fn maps_in(text: &str, lo: u64, hi: u64) -> Vec<MapsKey> {
    maps_keys(text)
        .into_iter()
        .filter(|k| (lo..hi).contains(&k.start))
        .collect()
}
