//! Writing the fixture directory: the trace file, the maps files, the
//! per-image snapshots under `mm/`, `files.txt` and `meta.txt`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{FILES, FINAL_MAPS, INITIAL_MAPS, META, MM_DIR, Meta, TRACE};

/// The open fixture directory.
pub(crate) struct Fixture {
    dir: PathBuf,
    trace: File,
    buf: Vec<u8>,
    lines: u64,
    /// `files.txt`: what each file was when a line opened or mapped it.
    files: String,
}

/// A failed write, naming the file.
pub(crate) type WriteError = (PathBuf, std::io::Error);

/// Buffered bytes of `trace.txt` beyond which they are written out.
const FLUSH_AT: usize = 64 * 1024;

impl Fixture {
    /// Creates `dir` (and its parents), an empty `trace.txt` in it, and
    /// `mm/`, emptied of the snapshots an earlier recording left there.
    pub(crate) fn create(dir: &Path) -> Result<Fixture, WriteError> {
        std::fs::create_dir_all(dir).map_err(|e| (dir.to_path_buf(), e))?;
        let mm = dir.join(MM_DIR);
        std::fs::create_dir_all(&mm).map_err(|e| (mm.clone(), e))?;
        for entry in std::fs::read_dir(&mm).map_err(|e| (mm.clone(), e))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let snapshot = name
                .split_once('.')
                .is_some_and(|(n, rest)| n.bytes().all(|b| b.is_ascii_digit()) && rest.ends_with(".txt"));
            if snapshot {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let path = dir.join(TRACE);
        let trace = File::create(&path).map_err(|e| (path, e))?;
        Ok(Fixture {
            dir: dir.to_path_buf(),
            trace,
            buf: Vec::with_capacity(FLUSH_AT + 4096),
            lines: 0,
            files: String::new(),
        })
    }

    /// Lines written to the trace so far: after a push, the number of the
    /// line pushed (1-based).
    pub(crate) fn lines(&self) -> u64 {
        self.lines
    }

    fn write_named(&self, name: &str, text: &str) -> Result<(), WriteError> {
        let path = self.dir.join(name);
        std::fs::write(&path, text).map_err(|e| (path, e))
    }

    /// Writes `initial-maps.txt` (the first image's maps; a stale
    /// `final-maps.txt` is removed).
    pub(crate) fn start(&mut self, initial_maps: &str) -> Result<(), WriteError> {
        let _ = std::fs::remove_file(self.dir.join(FINAL_MAPS));
        self.write_named(INITIAL_MAPS, initial_maps)
    }

    /// Writes `mm/NAME`.
    pub(crate) fn write_mm(&self, name: &str, text: &str) -> Result<(), WriteError> {
        self.write_named(&format!("{MM_DIR}/{name}"), text)
    }

    /// Appends one line (without its newline) to the trace.
    pub(crate) fn push(&mut self, line: &str) -> Result<(), WriteError> {
        self.buf.extend_from_slice(line.as_bytes());
        self.buf.push(b'\n');
        self.lines += 1;
        if self.buf.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    /// Notes what the file of trace line `line` was (`files.txt`:
    /// `LINE<TAB>PathInfo record`).
    pub(crate) fn note_file(&mut self, line: u64, info: &mm_ops::task::PathInfo) {
        self.files.push_str(&format!("{line}\t{}\n", info.to_record()));
    }

    fn flush(&mut self) -> Result<(), WriteError> {
        let r = self.trace.write_all(&self.buf);
        self.buf.clear();
        r.map_err(|e| (self.dir.join(TRACE), e))
    }

    /// Writes what is buffered, `final-maps.txt` and `meta.txt`.
    pub(crate) fn finish(mut self, final_maps: &str, meta: &Meta) -> Result<(), WriteError> {
        self.flush()?;
        self.trace.sync_data().map_err(|e| (self.dir.join(TRACE), e))?;
        self.write_named(FINAL_MAPS, final_maps)?;
        self.write_named(FILES, &self.files)?;
        self.write_named(META, &meta.render())
    }
}

/// `arg` as a shell word on one line: as is when it holds only characters
/// no shell treats specially, in single quotes (`'` as `'\''`) otherwise,
/// and, when it holds control characters (a newline would end the
/// `key: value` line), as a `$'…'` word (bash, zsh, ksh; not POSIX sh)
/// with `\n`, `\t`, `\\`, `\'` and `\xHH` escapes.
pub fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./-_".contains(&b));
    if plain {
        return arg.to_string();
    }
    if !arg.bytes().any(|b| b.is_ascii_control()) {
        return format!("'{}'", arg.replace('\'', "'\\''"));
    }
    let mut o = String::from("$'");
    for c in arg.chars() {
        match c {
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            '\r' => o.push_str("\\r"),
            '\\' => o.push_str("\\\\"),
            '\'' => o.push_str("\\'"),
            c if c.is_ascii_control() => o.push_str(&format!("\\x{:02x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('\'');
    o
}

/// The command line `argv` as one shell-quoted string.
pub fn shell_join(argv: &[String]) -> String {
    argv.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("ls"), "ls");
        assert_eq!(shell_quote("/usr/bin/x-y_z.1"), "/usr/bin/x-y_z.1");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("$HOME"), "'$HOME'");
        let argv = ["sh", "-c", "ls; true"].map(String::from);
        assert_eq!(shell_join(&argv), "sh -c 'ls; true'");
        assert_eq!(shell_quote("a\nb'c\\d\x01"), "$'a\\nb\\'c\\\\d\\x01'");
    }
}
