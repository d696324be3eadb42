//! What a replay reports: the [`ReplaySummary`] printed at the end, and
//! the [`ReplayError`] that stops it.

use std::collections::BTreeMap;
use std::fmt;
use std::io;

/// What a replay read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Lines read.
    pub lines: usize,
    /// Modeled calls printed.
    pub calls: usize,
    /// Of those, calls whose recorded failure was taken as is (opens,
    /// `shmget`, `memfd_secret`, a refused `setrlimit`).
    pub not_applied: usize,
    /// Other system calls, by name.
    pub skipped_calls: BTreeMap<String, usize>,
    /// strace's own lines (`+++ exited …`, `--- SIGSEGV …`, `strace: …`).
    pub strace_lines: usize,
    /// Blank lines and `#` comments.
    pub blank_lines: usize,
    /// Lines before the last `execve` (skipped: the initial maps are the
    /// address space after it).
    pub before_exec: usize,
    /// Lines of processes outside the `--pid` tree: replayed (a child's
    /// model is its parent's at the fork), not printed nor checked.
    pub other_processes: usize,
    /// Results compared with a recorded one (`--check`).
    pub checked: usize,
    /// Results that differ from the recorded ones (`--check`).
    pub divergences: Vec<Divergence>,
    /// The address space at the end, in `/proc/PID/maps` format.
    pub final_maps: String,
    /// Lines that are neither calls nor strace's own messages (junk).
    pub unrecognized: usize,
    /// The first of them: line number and text (cut at 120 characters).
    pub first_unrecognized: Option<(usize, String)>,
    /// Times a streamed replay started over at a later `execve` (it cannot
    /// look ahead for the last one; what it printed before belongs to an
    /// earlier image).
    pub restarts: usize,
    /// Processes seen (the first one included).
    pub processes: usize,
    /// Processes that exec'd with no snapshot of their new image: printed,
    /// not checked.
    pub unanchored: usize,
    /// Address spaces compared with the recorder's snapshots: each fork
    /// child's right after the fork, and each image's final maps.
    pub maps_checks: Vec<MapsCheck>,
    /// Faults the trace shows succeeding through a protection key that the
    /// thread's PKRU refused in the model: rights the program gave itself
    /// with `WRPKRU`, which no system call shows, learned from the trace
    /// ([`Step::pkru_learned`](crate::replay::Step::pkru_learned)).
    pub pkru_learned: usize,
}

/// One address space compared with a snapshot of the recorder's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapsCheck {
    /// The process.
    pub pid: u32,
    /// The image: the line that created it (0: the first one).
    pub image: usize,
    /// `after fork` or `final`.
    pub what: &'static str,
    /// `None` when identical; otherwise the lines side by side (or why
    /// they could not be compared).
    pub diff: Option<String>,
}

impl fmt::Display for MapsCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let image = if self.image == 0 {
            "its first image".to_string()
        } else {
            format!("the image of line {}", self.image)
        };
        match &self.diff {
            None => write!(f, "pid {}, {image}: maps {} identical", self.pid, self.what),
            Some(d) => write!(f, "pid {}, {image}: maps {} differ:\n{d}", self.pid, self.what),
        }
    }
}

/// A model result that differs from the recorded one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// The line number (from 1).
    pub line: usize,
    /// The line's text.
    pub text: String,
    /// The model's result, as strace prints it.
    pub model: String,
    /// The recorded result.
    pub recorded: String,
    /// The model's `/proc/PID/maps` lines around the addresses involved
    /// (the call's, and both results when they are addresses), after the
    /// call: each line containing one, and its neighbours.
    pub around: Vec<String>,
}

/// The addresses a call names, and its results when they are addresses
/// (mmap, mremap, brk): where a divergence is to be looked for.
pub(crate) fn call_addresses(call: &mm_ops::Call, results: &[&mm_ops::Outcome]) -> Vec<u64> {
    use mm_ops::{Call, Outcome};
    let mut a = match *call {
        // A NULL hint names no address.
        Call::Mmap { addr: 0, .. } => vec![],
        Call::Mmap { addr, len, .. } | Call::Munmap { addr, len } | Call::Mprotect { addr, len, .. } => {
            vec![addr, addr.saturating_add(len.max(1) - 1)]
        }
        Call::Madvise { addr, len, .. }
        | Call::Mlock { addr, len }
        | Call::Mlock2 { addr, len, .. }
        | Call::Munlock { addr, len }
        | Call::Mseal { addr, len, .. } => vec![addr, addr.saturating_add(len.max(1) - 1)],
        Call::Mremap {
            old_addr,
            old_len,
            new_addr,
            ..
        } => vec![old_addr, old_addr.saturating_add(old_len.max(1) - 1), new_addr],
        Call::Brk { addr } => vec![addr],
        Call::Fault { addr, .. } => vec![addr],
        _ => vec![],
    };
    if call.returns_address() {
        for r in results {
            if let Outcome::Val(v) = r {
                a.push(*v);
            }
        }
    }
    a.retain(|&x| x != 0);
    a
}

/// The lines of `maps` that contain one of `addrs`, or come just before or
/// after such an address (its neighbours), in order.
pub(crate) fn maps_around(maps: &str, addrs: &[u64]) -> Vec<String> {
    let lines: Vec<(u64, u64, &str)> = maps
        .lines()
        .filter_map(|l| {
            let (range, _) = l.split_once(' ')?;
            let (s, e) = range.split_once('-')?;
            Some((u64::from_str_radix(s, 16).ok()?, u64::from_str_radix(e, 16).ok()?, l))
        })
        .collect();
    let mut keep = vec![false; lines.len()];
    for &a in addrs {
        // The first line ending above `a`: it holds `a`, or follows it.
        let i = lines.partition_point(|&(_, e, _)| e <= a);
        for j in [i.wrapping_sub(1), i, i + 1] {
            if let Some(k) = keep.get_mut(j) {
                *k = true;
            }
        }
    }
    lines
        .iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|((_, _, l), _)| l.to_string())
        .collect()
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}: model = {}, recorded = {}: {}",
            self.line, self.model, self.recorded, self.text
        )
    }
}

impl ReplaySummary {
    /// All lines that were not modeled calls.
    pub fn skipped(&self) -> usize {
        self.skipped_calls.values().sum::<usize>()
            + self.strace_lines
            + self.blank_lines
            + self.before_exec
            + self.other_processes
            + self.unrecognized
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl fmt::Display for ReplaySummary {
    /// `27 calls replayed, 5 lines skipped (read 3, write 2)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} replayed", plural(self.calls, "call", "calls"))?;
        if self.not_applied > 0 {
            write!(
                f,
                " ({} taken from the trace)",
                plural(self.not_applied, "failed call", "failed calls")
            )?;
        }
        write!(f, ", {} skipped", plural(self.skipped(), "line", "lines"))?;
        let mut parts: Vec<(String, usize)> = self.skipped_calls.iter().map(|(k, &v)| (k.clone(), v)).collect();
        parts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        if self.strace_lines > 0 {
            parts.push(("strace messages".into(), self.strace_lines));
        }
        if self.blank_lines > 0 {
            parts.push(("blank or comments".into(), self.blank_lines));
        }
        if self.before_exec > 0 {
            parts.push(("before the last execve".into(), self.before_exec));
        }
        if self.other_processes > 0 {
            parts.push(("other processes".into(), self.other_processes));
        }
        if self.unrecognized > 0 {
            parts.push(("not understood".into(), self.unrecognized));
        }
        if !parts.is_empty() {
            let list: Vec<String> = parts.iter().map(|(k, v)| format!("{k} {v}")).collect();
            write!(f, " ({})", list.join(", "))?;
        }
        if let Some((line, text)) = &self.first_unrecognized {
            write!(f, "; first line not understood: line {line}: {text:?}")?;
        }
        if self.processes > 1 {
            write!(f, "; {} processes", self.processes)?;
            let differ = self.maps_checks.iter().filter(|c| c.diff.is_some()).count();
            if !self.maps_checks.is_empty() {
                write!(
                    f,
                    ", {} compared ({differ} differ)",
                    plural(self.maps_checks.len(), "address space", "address spaces")
                )?;
            }
        }
        if self.unanchored > 0 {
            write!(
                f,
                "; {} with no snapshot of its exec (not checked)",
                plural(self.unanchored, "process", "processes")
            )?;
        }
        if self.pkru_learned > 0 {
            write!(
                f,
                "; PKRU rights learned from {} (WRPKRU is no system call)",
                plural(self.pkru_learned, "fault", "faults")
            )?;
        }
        if self.checked > 0 {
            write!(
                f,
                "; {} checked, {}",
                self.checked,
                plural(self.divergences.len(), "divergence", "divergences")
            )?;
        }
        Ok(())
    }
}

/// Why a replay stopped.
#[derive(Debug)]
pub enum ReplayError {
    /// A line that cannot be read, or a modeled call split by strace whose
    /// other half never came.
    Parse {
        /// The line number (from 1).
        line: usize,
        /// The explanation.
        message: String,
        /// The line's text (empty when unknown).
        text: String,
    },
    /// Reading the input failed.
    Read {
        /// The line being read (from 1).
        line: usize,
        /// The error.
        source: io::Error,
    },
    /// The model panicked on a call: a bug in the model, not in the input.
    ModelPanic {
        /// The line number (from 1).
        line: usize,
        /// The panic's message.
        message: String,
        /// The line's text.
        text: String,
    },
    /// Writing the output failed.
    Write(io::Error),
    /// The model could not be set up (a bad initial maps snapshot).
    Setup(String),
}

/// The text of a panic payload.
pub(super) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::Parse { line, message, text } if text.is_empty() => {
                write!(f, "line {line}: {message}")
            }
            ReplayError::Parse { line, message, text } => write!(f, "line {line}: {message}: {text}"),
            ReplayError::Read { line, source } => write!(f, "reading line {line}: {source}"),
            ReplayError::ModelPanic { line, message, text } => write!(
                f,
                "line {line}: internal error: the model panicked ({message}) on: {text}"
            ),
            ReplayError::Write(e) => write!(f, "writing the output: {e}"),
            ReplayError::Setup(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ReplayError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReplayError::Read { source, .. } | ReplayError::Write(source) => Some(source),
            ReplayError::Parse { .. } | ReplayError::ModelPanic { .. } | ReplayError::Setup(_) => None,
        }
    }
}
