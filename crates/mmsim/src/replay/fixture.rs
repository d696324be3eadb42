//! Fixture directories written by `mmsim record` and read by
//! `mmsim replay --fixture DIR`:
//!
//! | file | what |
//! |---|---|
//! | `initial-maps.txt` | `/proc/PID/maps` at the last `execve` |
//! | `trace.txt` | the calls, in strace syntax, in the order they completed |
//! | `final-maps.txt` | `/proc/PID/maps` at `exit_group` |
//! | `meta.txt` | `key: value` lines: `start_brk`, `cwd`, `rlimit_stack`, … |
//! | `files.txt` | `LINE<TAB>record`: the file a trace line opened or mapped, as it was then (optional) |

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mm_ops::procmaps::{MapsLine, parse_maps};

use super::{ImageFacts, ReplayOptions};

/// The initial maps snapshot.
pub const INITIAL_MAPS: &str = "initial-maps.txt";
/// The trace.
pub const TRACE: &str = "trace.txt";
/// The final maps snapshot.
pub const FINAL_MAPS: &str = "final-maps.txt";
/// The metadata.
pub const META: &str = "meta.txt";
/// What each opened or mapped file was (optional).
pub const FILES: &str = "files.txt";
/// Format 2: the snapshots of each address space, `LINE.initial-maps.txt`,
/// `LINE.final-maps.txt` and `LINE.meta.txt`, by the trace line that
/// created it (0: the first process's first image).
pub const IMAGES: &str = "mm";

/// x86-64's `TASK_SIZE` with 4-level page tables.
#[cfg(test)]
const TASK_SIZE: u64 = 0x7fff_ffff_f000;
/// `stack_guard_gap`: 256 pages.
#[cfg(test)]
const STACK_GUARD_GAP: u64 = 256 << 12;

/// A fixture directory, read.
#[derive(Clone, Debug)]
pub struct Fixture {
    /// Where it was read from.
    pub dir: PathBuf,
    /// `trace.txt` (read as a stream by the replay, not loaded).
    pub trace: PathBuf,
    /// `initial-maps.txt`.
    pub initial_maps: String,
    /// `final-maps.txt`, if present.
    pub final_maps: Option<String>,
    /// `meta.txt`.
    pub meta: BTreeMap<String, String>,
    /// `files.txt`: what the file each line opened or mapped was then, by
    /// trace line number.
    pub files: BTreeMap<usize, mm_ops::task::PathInfo>,
    /// Format 2 (`format: 2` in `meta.txt`): the trace holds every
    /// process from the first exec on.
    pub whole_trace: bool,
    /// Format 2: what the recorder saw of each address space.
    pub images: BTreeMap<usize, ImageFacts>,
}

/// `key: value` lines.
fn parse_meta(text: &str, name: &str) -> Result<BTreeMap<String, String>, String> {
    let mut meta = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| format!("{name}: line {}: not `key: value`: {line}", i + 1))?;
        meta.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(meta)
}

/// A numeric `meta.txt` value.
fn meta_number(meta: &BTreeMap<String, String>, key: &str, name: &str) -> Result<Option<u64>, String> {
    match meta.get(key) {
        None => Ok(None),
        Some(v) => number(v)
            .map(Some)
            .ok_or_else(|| format!("{name}: `{key}: {v}` is not a number")),
    }
}

/// The environment keys of `meta` over `base`.
fn meta_env(
    meta: &BTreeMap<String, String>,
    base: &mm_ops::env::ProcEnv,
    name: &str,
) -> Result<mm_ops::env::ProcEnv, String> {
    let mut env = base.clone();
    for key in mm_ops::env::KEYS {
        if let Some(v) = meta.get(key) {
            env.set(key, v).map_err(|e| format!("{name}: {e}"))?;
        }
    }
    Ok(env)
}

/// Reads the `mm/` directory of a format-2 fixture.
fn load_images(dir: &Path) -> Result<BTreeMap<usize, ImageFacts>, String> {
    let mut images: BTreeMap<usize, ImageFacts> = BTreeMap::new();
    let d = dir.join(IMAGES);
    let Ok(entries) = std::fs::read_dir(&d) else {
        return Ok(images);
    };
    let base = mm_ops::env::ProcEnv::default();
    for e in entries {
        let e = e.map_err(|e| format!("{}: {e}", d.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let Some((line, kind)) = name.split_once('.') else {
            continue;
        };
        let Ok(line) = line.parse::<usize>() else {
            continue;
        };
        let shown = format!("{IMAGES}/{name}");
        let text = std::fs::read_to_string(e.path()).map_err(|e| format!("{shown}: {e}"))?;
        let facts = images.entry(line).or_default();
        match kind {
            "initial-maps.txt" => {
                mm_ops::procmaps::parse_maps_snapshot(&text, mm_core::mm::TASK_SIZE_4LEVEL)
                    .map_err(|e| format!("{shown}: {e}"))?;
                facts.initial_maps = Some(text);
            }
            "final-maps.txt" => facts.final_maps = Some(text),
            "meta.txt" => {
                let meta = parse_meta(&text, &shown)?;
                facts.brk = meta_number(&meta, "start_brk", &shown)?;
                facts.start_stack = meta_number(&meta, "start_stack", &shown)?;
                facts.cwd = meta.get("cwd").cloned();
                facts.env = Some(meta_env(&meta, &base, &shown)?);
            }
            _ => {}
        }
    }
    Ok(images)
}

fn read(dir: &Path, name: &str) -> Result<String, String> {
    std::fs::read_to_string(dir.join(name)).map_err(|e| format!("{}: {e}", dir.join(name).display()))
}

/// A number as `meta.txt` writes it: `0x…` hex or decimal.
fn number(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

impl Fixture {
    /// Reads `dir`. `initial-maps.txt` and `trace.txt` are required.
    pub fn load(dir: &Path) -> Result<Fixture, String> {
        let trace = dir.join(TRACE);
        std::fs::metadata(&trace).map_err(|e| format!("{}: {e}", trace.display()))?;
        let initial_maps = read(dir, INITIAL_MAPS)?;
        mm_ops::procmaps::parse_maps_snapshot(&initial_maps, mm_core::mm::TASK_SIZE_4LEVEL)
            .map_err(|e| format!("{INITIAL_MAPS}: {e}"))?;
        let final_maps = read(dir, FINAL_MAPS).ok();
        let meta = match read(dir, META) {
            Ok(text) => parse_meta(&text, META)?,
            Err(_) => BTreeMap::new(),
        };
        let whole_trace = meta.get("format").is_some_and(|f| f == "2");
        let images = if whole_trace {
            load_images(dir)?
        } else {
            BTreeMap::new()
        };
        let mut files = BTreeMap::new();
        if let Ok(text) = read(dir, FILES) {
            for (i, line) in text.lines().enumerate() {
                let bad = |e: String| format!("{FILES}: line {}: {e}", i + 1);
                let (n, rec) = line.split_once('\t').ok_or_else(|| bad("no line number".into()))?;
                let n: usize = n.parse().map_err(|_| bad(format!("bad line number {n:?}")))?;
                files.insert(n, mm_ops::task::PathInfo::from_record(rec).map_err(bad)?);
            }
        }
        Ok(Fixture {
            whole_trace,
            images,
            files,
            dir: dir.to_path_buf(),
            trace,
            initial_maps,
            final_maps,
            meta,
        })
    }

    /// A numeric metadata value.
    pub fn meta_number(&self, key: &str) -> Result<Option<u64>, String> {
        meta_number(&self.meta, key, META)
    }

    /// `base` completed with what the fixture knows; explicit settings in
    /// `base` win.
    pub fn options(&self, base: &ReplayOptions) -> Result<ReplayOptions, String> {
        let mut o = base.clone();
        o.initial_maps = Some(self.initial_maps.clone());
        o.file_facts = self.files.clone();
        o.check = true;
        if o.brk.is_none() {
            o.brk = self.meta_number("start_brk")?;
        }
        if o.start_stack.is_none() {
            o.start_stack = self.meta_number("start_stack")?;
        }
        if let Some(cwd) = self.meta.get("cwd") {
            o.cwd = cwd.clone();
        }
        // Every fault is in the trace: nothing to infer.
        if self.meta.get("faults").is_some_and(|f| f.starts_with("recorded")) && o.assume_written.is_none() {
            o.assume_written = Some(false);
        }
        // The environment the recorder saw (fixtures from before it was
        // recorded have only `rlimit_stack` and `personality`).
        o.env = meta_env(&self.meta, &o.env, META)?;
        o.whole_trace = self.whole_trace;
        o.images = std::sync::Arc::new(self.images.clone());
        Ok(o)
    }
}

pub use mm_ops::env::mmap_base;

/// Compares two maps texts by the columns that do not depend on the file
/// system (range, permissions, offset, name); `None` if they agree,
/// otherwise the lines that differ, side by side.
pub fn diff_maps(recorded: &str, model: &str) -> Result<Option<String>, String> {
    let keys = |t: &str, what: &str| -> Result<Vec<String>, String> {
        Ok(parse_maps(t)
            .map_err(|e| format!("{what} maps: {e}"))?
            .iter()
            .map(MapsLine::key)
            .collect())
    };
    let (r, m) = (keys(recorded, "recorded")?, keys(model, "model")?);
    if r == m {
        return Ok(None);
    }
    let mut out = String::new();
    for i in 0..r.len().max(m.len()) {
        let a = r.get(i).map_or("-", String::as_str);
        let b = m.get(i).map_or("-", String::as_str);
        let mark = if a == b { "  " } else { "!!" };
        out.push_str(&format!("{mark} recorded: {a:<72} model: {b}\n"));
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mmap_base_matches_the_host_default() {
        // 8 MiB stack limit, ASLR off: what this host gives (see
        // docs/semantics.md and the helper's layout tests).
        assert_eq!(mmap_base(8 << 20), 0x7fff_f7ff_f000);
        // A huge limit is clamped to 5/6 of the space.
        assert_eq!(mmap_base(u64::MAX), (TASK_SIZE - TASK_SIZE / 6 * 5 + 0xfff) & !0xfff);
        // 1 GiB + guard gap.
        assert_eq!(mmap_base(1 << 30), TASK_SIZE - (1 << 30) - STACK_GUARD_GAP);
    }

    #[test]
    fn diff_ignores_device_and_inode() {
        let a = "555555554000-555555556000 r--p 00000000 fe:00 123 /bin/x\n";
        let b = "555555554000-555555556000 r--p 00000000 00:1f 9 /bin/x\n";
        assert_eq!(diff_maps(a, b), Ok(None));
        let c = "555555554000-555555557000 r--p 00000000 fe:00 123 /bin/x\n";
        assert!(diff_maps(a, c).unwrap().unwrap().contains("!!"));
    }
}
