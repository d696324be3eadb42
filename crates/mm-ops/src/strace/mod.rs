//! strace syntax: reading calls from strace output, and writing calls and
//! results the way strace prints them.
//!
//! # Reading
//!
//! [`parse_line`] reads one line; [`Parser`] reads a whole trace and joins
//! the `<unfinished ...>` / `<... NAME resumed>` halves strace `-f` prints
//! when processes interleave.  A line is one of:
//!
//! * [`Line::Call`]: one of the modeled calls (`mmap`, `munmap`, `mprotect`,
//!   `brk`, `mremap`, `madvise`, `open`, `openat`, `close`, `dup`, `dup2`,
//!   `dup3`, `memfd_create`, `ftruncate` and the model's own
//!   `fault(ADDR, READ|WRITE|EXEC)`), with its recorded result if the line
//!   has one;
//! * [`Line::Skipped`]: any other system call, and strace's own lines
//!   (`+++ exited with 0 +++`, `--- SIGSEGV {…} ---`,
//!   `strace: Process 123 attached`, …);
//! * [`Line::Blank`]: an empty line or a `#` comment.
//!
//! A modeled call that cannot be read (argument count, unknown flag name,
//! bad number, unbalanced parentheses or quotes) is a [`ParseError`].
//!
//! Accepted: the default output and the `-X raw`, `-X verbose`, `-y`,
//! `-yy`, `-x`, `-xx`, `-f` (`[pid N]` and bare pid column), `-t`, `-tt`,
//! `-ttt`, `-r`, `-T`, `-i` and `-n` variants, fault injection notes
//! (`(INJECTED)`, `(DELAYED)`), and hand-written names strace does not print
//! (`MAP_HUGE_2MB`, `MAP_ANON`, `MFD_HUGE_1GB`, `O_ASYNC`, the names newer
//! strace versions know: `MAP_DROPPABLE`, `MAP_ABOVE4G`,
//! `MADV_GUARD_INSTALL`, `MFD_NOEXEC_SEAL`, …).
//!
//! Conventions:
//!
//! * A string strace cut at its `-s` limit (`"a-long-name…"...`) is read with
//!   a literal `...` suffix, so that [`format_call`] prints it back the same.
//! * Strings are bytes to strace; bytes that are not UTF-8 become U+FFFD.
//! * In `-y` annotations (`3</tmp/x>`), `(deleted)` after the path and the
//!   `-yy` detail (`</dev/null<char 1:3>>`) are dropped.  strace 6.1 escapes
//!   `<` and `>` inside the path (`\74`, `\76`); a raw `>` in a path (older
//!   strace) ends the annotation early.
//! * `mremap`'s fifth argument defaults to 0 when absent.
//!
//! # Writing
//!
//! [`format_call`] and [`format_result`] print what strace 6.1 (Debian, the
//! oracle the tests were captured with) prints by default on x86-64.

mod build;
mod errno;
mod format;
mod lex;
mod pathop;
mod result;
mod value;
mod xlat;

use crate::call::{Call, Outcome};
use build::NAMES;
pub use format::{format_call, format_result, quote_string, visible};
use lex::{Body, UNFINISHED};
pub use pathop::{PathArg, PathOp, PathOpLine, equivalent_call, parse_path_op};

/// A modeled call read from a trace line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceLine {
    /// The process or thread id (`[pid N]` or the `-f -o` pid column).
    pub pid: Option<u32>,
    /// The call.
    pub call: Call,
    /// The result recorded after ` = `, if the line has one.
    pub recorded: Option<Recorded>,
    /// The `-y` path of the descriptor argument (`mmap`'s fd, `close`,
    /// `dup`, `ftruncate`, and `oldfd` of `dup2`/`dup3`).
    pub fd_path: Option<String>,
    /// The `-y` path of `newfd` of `dup2`/`dup3` (the file it referred to
    /// before the call).
    pub newfd_path: Option<String>,
    /// The `-y` path of `openat`'s `dirfd` (`AT_FDCWD</home/me>`).
    pub dirfd_path: Option<String>,
}

/// A recorded result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// `= 0`, `= 0x7f…`, `= 3`, `= -1 ENOMEM (…)`, `= SIGSEGV`, or
    /// `= ? ERESTARTSYS (…)` (an `Err` with the restart errno).
    Outcome(Outcome),
    /// `= 3</tmp/x>`: a descriptor and its `-y` path.
    FdWithPath(u64, String),
    /// `= ?`: no result (the process left during the call).
    Unknown,
}

impl Recorded {
    /// The outcome, with a `-y` path reduced to the descriptor number.
    pub fn outcome(&self) -> Option<Outcome> {
        match *self {
            Recorded::Outcome(o) => Some(o),
            Recorded::FdWithPath(fd, _) => Some(Outcome::Val(fd)),
            Recorded::Unknown => None,
        }
    }
}

/// What one line holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// A modeled call.
    Call(TraceLine),
    /// Another system call (`name`) or a line of strace's own (`None`).
    Skipped {
        /// The system call's name, when the line is a system call.
        name: Option<String>,
    },
    /// An empty line or a `#` comment.
    Blank,
}

/// Why a line could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    message: String,
}

impl ParseError {
    fn new(message: impl Into<String>) -> ParseError {
        ParseError {
            message: message.into(),
        }
    }

    /// The explanation, without line number or text.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}

/// A line before `unfinished`/`resumed` halves are joined.
enum Raw {
    Line(Line),
    Unfinished {
        pid: Option<u32>,
        name: String,
        head: String,
    },
    Resumed {
        pid: Option<u32>,
        name: String,
        rest: String,
    },
}

fn is_modeled(name: &str) -> bool {
    NAMES.contains(&name)
}

fn classify(text: &str) -> Result<Raw, ParseError> {
    let (pid, s) = lex::split_prefix(text);
    classify_body(pid, s)
}

fn classify_body(pid: Option<u32>, s: &str) -> Result<Raw, ParseError> {
    match lex::body(s) {
        Body::Blank => Ok(Raw::Line(Line::Blank)),
        Body::Other => Ok(Raw::Line(Line::Skipped { name: None })),
        Body::Resumed { name, rest } => Ok(Raw::Resumed {
            pid,
            name: name.to_string(),
            rest: rest.to_string(),
        }),
        Body::Call { name, rest } => {
            let trimmed = s.trim_end();
            if let Some(head) = trimmed.strip_suffix(UNFINISHED) {
                let head = head.strip_suffix(' ').unwrap_or(head);
                return Ok(Raw::Unfinished {
                    pid,
                    name: name.to_string(),
                    head: head.to_string(),
                });
            }
            if !is_modeled(name) {
                return Ok(Raw::Line(Line::Skipped {
                    name: Some(name.to_string()),
                }));
            }
            let args = lex::split_args(rest)?;
            let Some(tail) = args.tail else {
                return Err(ParseError::new(format!("{name}: missing `)`")));
            };
            if !build::is_modeled_line(name, &args.args) {
                return Ok(Raw::Line(Line::Skipped {
                    name: Some(name.to_string()),
                }));
            }
            let (call, paths) = build::build(name, &args.args)?;
            let recorded =
                result::tail(tail).map_err(|e| ParseError::new(format!("{name}: result: {}", e.message())))?;
            Ok(Raw::Line(Line::Call(TraceLine {
                pid,
                call,
                recorded,
                fd_path: paths.fd,
                newfd_path: paths.newfd,
                dirfd_path: paths.dirfd,
            })))
        }
    }
}

/// Splits the columns strace puts before a call (`[pid N]`, the `-f -o`
/// pid column, timestamps, `-i`, `-n`) off `line`: the pid, if any, and
/// the rest.
pub fn split_pid(line: &str) -> (Option<u32>, &str) {
    lex::split_prefix(line)
}

/// Reads one line on its own.
///
/// The halves of a call strace split (`mmap(… <unfinished ...>` and
/// `<... mmap resumed>) = …`) are errors for the modeled calls and skipped
/// for the others; use [`Parser`] to join them.
pub fn parse_line(text: &str) -> Result<Line, ParseError> {
    match classify(text)? {
        Raw::Line(l) => Ok(l),
        Raw::Unfinished { name, .. } | Raw::Resumed { name, .. } => {
            if is_modeled(&name) {
                Err(ParseError::new(format!(
                    "{name}: half of a call strace split in two; read the trace with a Parser"
                )))
            } else {
                Ok(Line::Skipped { name: Some(name) })
            }
        }
    }
}

/// An unfinished call waiting for its resumed half.
#[derive(Debug)]
struct Pending {
    pid: Option<u32>,
    name: String,
    head: String,
}

/// Reads a trace line by line, joining `<unfinished ...>` calls with their
/// `<... NAME resumed>` lines (by pid, and by name when strace stopped
/// printing pids in between), and lines strace cut with
/// `strace: Process N attached` with their continuation.
#[derive(Debug, Default)]
pub struct Parser {
    pending: Vec<Pending>,
    interrupted: Option<String>,
    lost: Vec<ParseError>,
}

impl Parser {
    /// A parser with nothing pending.
    pub fn new() -> Parser {
        Parser::default()
    }

    /// Reads the next line.  `Ok(None)` means the line is half of a call
    /// (or of a line) that a later line completes.
    pub fn feed(&mut self, line: &str) -> Result<Option<Line>, ParseError> {
        if let Some(head) = self.interrupted.take() {
            if line.trim() == UNFINISHED {
                return self.process(&format!("{head} {UNFINISHED}"));
            }
            if is_continuation(line) {
                return self.process(&format!("{head}{line}"));
            }
            self.lose(&head);
        }
        if let Some(head) = cut_attached(line) {
            self.interrupted = Some(head.to_string());
            return Ok(None);
        }
        self.process(line)
    }

    /// Ends the trace: errors for the modeled calls that were never
    /// completed (unfinished and never resumed, or cut and never continued).
    pub fn finish(&mut self) -> Vec<ParseError> {
        if let Some(head) = self.interrupted.take() {
            self.lose(&head);
        }
        for p in std::mem::take(&mut self.pending) {
            if is_modeled(&p.name) {
                self.lost.push(ParseError::new(format!(
                    "{}: `<unfinished ...>` call never resumed: {}",
                    p.name, p.head
                )));
            }
        }
        std::mem::take(&mut self.lost)
    }

    fn lose(&mut self, head: &str) {
        let (_, s) = lex::split_prefix(head);
        if let Body::Call { name, .. } = lex::body(s)
            && is_modeled(name)
        {
            self.lost.push(ParseError::new(format!(
                "{name}: call cut by `strace: Process … attached` never continued: {head}"
            )));
        }
    }

    fn process(&mut self, line: &str) -> Result<Option<Line>, ParseError> {
        match classify(line)? {
            Raw::Line(l) => Ok(Some(l)),
            Raw::Unfinished { pid, name, head } => {
                if let Some(i) = self.pending.iter().position(|p| p.pid == pid) {
                    let old = self.pending.remove(i);
                    if is_modeled(&old.name) {
                        self.lost.push(ParseError::new(format!(
                            "{}: `<unfinished ...>` call never resumed: {}",
                            old.name, old.head
                        )));
                    }
                }
                self.pending.push(Pending { pid, name, head });
                Ok(None)
            }
            Raw::Resumed { pid, name, rest } => {
                let by_pid = self.pending.iter().position(|p| p.pid == pid && p.name == name);
                let by_name = || {
                    let mut it = self.pending.iter().enumerate().filter(|(_, p)| p.name == name);
                    match (it.next(), it.next()) {
                        (Some((i, _)), None) => Some(i),
                        _ => None,
                    }
                };
                let Some(i) = by_pid.or_else(by_name) else {
                    if is_modeled(&name) {
                        return Err(ParseError::new(format!(
                            "{name}: `<... {name} resumed>` without its `<unfinished ...>` line"
                        )));
                    }
                    return Ok(Some(Line::Skipped { name: Some(name) }));
                };
                let p = self.pending.remove(i);
                let rest = rest.trim_start();
                let rest = rest.strip_prefix(UNFINISHED).unwrap_or(rest);
                let joined = format!("{}{}", p.head, rest);
                match classify_body(pid.or(p.pid), &joined)? {
                    Raw::Line(l) => Ok(Some(l)),
                    _ => Err(ParseError::new(format!(
                        "{name}: resumed call could not be joined: {joined}"
                    ))),
                }
            }
        }
    }
}

/// If `line` ends with `strace: Process N attached` printed into the middle
/// of a call, the call's part before it.
fn cut_attached(line: &str) -> Option<&str> {
    let idx = line.rfind("strace: Process ")?;
    let tail = line[idx + "strace: Process ".len()..].trim_end();
    let n = tail.strip_suffix(" attached")?;
    if idx == 0 || !n.bytes().all(|b| b.is_ascii_digit()) || n.is_empty() {
        return None;
    }
    let head = &line[..idx];
    let (_, s) = lex::split_prefix(head);
    matches!(lex::body(s), Body::Call { .. }).then_some(head)
}

/// True when `line` continues a line cut by `strace: Process N attached`
/// (` => {…}, 88) = 6087`, `) = 0`) rather than starting a new one.
fn is_continuation(line: &str) -> bool {
    let (_, s) = lex::split_prefix(line);
    let t = s.trim_start();
    matches!(lex::body(s), Body::Other) && !(t.starts_with("+++") || t.starts_with("---") || t.starts_with("strace:"))
}

#[cfg(test)]
mod proptests;
