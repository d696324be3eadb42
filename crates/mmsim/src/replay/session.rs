//! One replay, line by line: what [`super::replay_lines`] and
//! [`super::replay_stream`] share. A [`Session`] holds the model, the
//! parser and the counts; it takes lines one at a time, so a replay needs
//! memory for its model, not for its input.

use std::io::Write;

use mm_ops::strace::{Line, Parser, equivalent_call, format_call, format_result, parse_path_op, split_pid};

use super::deferred::Deferred;
use super::procs::{self, Procs};
use super::tree::Tree;
use super::{ReplayError, ReplayOptions, ReplaySummary, Replayer, apply_line};

/// strace's own lines: exits, signals, its messages, its `????` and
/// resumption markers. Anything else that is not a call is junk.
pub(crate) fn is_strace_message(text: &str) -> bool {
    let b = split_pid(text).1.trim_start();
    ["+++ ", "--- ", "strace: ", "????", "<... ", "[ Process PID=", "[pid "]
        .iter()
        .any(|p| b.starts_with(p))
}

/// Finds the line after the last successful `execve` of the followed
/// process, one line at a time ([`procs::start_after_last_exec`] over a
/// slice).
#[derive(Default)]
pub(crate) struct LastExec {
    procs: Procs,
    seen: usize,
    /// Lines before the replay starts (0 when no exec was seen).
    pub start: usize,
}

impl LastExec {
    /// Notes the next line; true when it is a successful exec of ours.
    pub(crate) fn observe(&mut self, text: &str) -> bool {
        self.seen += 1;
        if !self.procs.observe(text) {
            return false;
        }
        if procs::is_successful_exec(text) {
            self.start = self.seen;
            return true;
        }
        false
    }
}

/// A replay in progress.
pub(crate) struct Session<'o> {
    opts: &'o ReplayOptions,
    tree: Tree,
    parser: Parser,
    deferred: Deferred,
    pub(crate) summary: ReplaySummary,
}

impl<'o> Session<'o> {
    /// A fresh model set up as `opts` says; `before` lines come before the
    /// replay's start (skipped: the snapshot is of the address space after
    /// them).
    pub(crate) fn new(opts: &'o ReplayOptions, before: usize) -> Result<Session<'o>, ReplayError> {
        let mut summary = ReplaySummary {
            before_exec: before,
            ..ReplaySummary::default()
        };
        summary.lines = before;
        Ok(Session {
            opts,
            tree: Tree::new(Replayer::new(opts).map_err(ReplayError::Setup)?, opts.pid),
            parser: Parser::new(),
            deferred: Deferred::default(),
            summary,
        })
    }

    /// Replays line `lineno` (from 1).
    pub(crate) fn feed(&mut self, lineno: usize, text: &str, out: &mut impl Write) -> Result<(), ReplayError> {
        let summary = &mut self.summary;
        summary.lines = lineno;
        let owner = self.tree.observe(lineno, text, self.opts, summary)?;
        if !owner.selected {
            summary.other_processes += 1;
        }
        let several = self.tree.several();
        let parsed = self.parser.feed(text);
        // `None` for a line of a process whose model is gone (it ended, as
        // its exit line says): nothing to apply it to.
        let r = self.tree.replayer(owner.idx);
        let check = owner.checked;
        // Lines of processes outside the `--pid` tree are applied, and
        // counted as theirs only.
        let counted = owner.selected;
        match parsed {
            Err(e) => {
                return Err(ReplayError::Parse {
                    line: lineno,
                    message: e.message().to_string(),
                    text: text.to_string(),
                });
            }
            Ok(None) => self.deferred.push(lineno, text),
            Ok(Some(Line::Call(tl))) => {
                let Some(r) = r else {
                    if counted {
                        summary.other_processes += 1;
                    }
                    return Ok(());
                };
                if let Some(info) = self.opts.file_facts.get(&lineno) {
                    r.learn_file(&tl.call, info);
                }
                let step = apply_line(r, &tl, lineno, text, check, summary)?;
                if !owner.selected {
                    return Ok(());
                }
                summary.calls += 1;
                if !step.applied {
                    summary.not_applied += 1;
                }
                let result = format_result(&tl.call, &step.outcome);
                // Once a second process appears, each line names its own.
                let pid = tl.pid.filter(|_| several);
                if self.opts.json {
                    let call = format_call(&tl.call);
                    let line = crate::json::replay_call(lineno, pid, &call, &result, step.applied);
                    writeln!(out, "{line}").map_err(ReplayError::Write)?;
                } else if let Some(pid) = pid {
                    writeln!(out, "{pid} {} = {result}", format_call(&tl.call)).map_err(ReplayError::Write)?;
                } else {
                    writeln!(out, "{} = {result}", format_call(&tl.call)).map_err(ReplayError::Write)?;
                }
            }
            Ok(Some(Line::Skipped { name: Some(name) })) => {
                let mut path_op = None;
                if let Some(r) = r {
                    // unlink and rename change the names maps lines show,
                    // in every process: the file system is one.
                    if let Ok(Some(op)) = parse_path_op(text) {
                        path_op = r.resolve_path_op(&op);
                    }
                    // fcntl(F_DUPFD) and creat make descriptors as dup and
                    // open do: applied (not printed), so that file identity
                    // holds.
                    if let Ok(Some(tl)) = equivalent_call(text) {
                        apply_line(r, &tl, lineno, text, check, summary)?;
                    }
                }
                if let Some(op) = path_op {
                    self.tree.apply_path_op(&op);
                }
                if counted {
                    *summary.skipped_calls.entry(name).or_default() += 1;
                }
            }
            Ok(Some(Line::Skipped { name: None })) if !counted => {}
            Ok(Some(Line::Skipped { name: None })) => {
                if is_strace_message(text) {
                    summary.strace_lines += 1;
                } else {
                    summary.unrecognized += 1;
                    if summary.first_unrecognized.is_none() {
                        summary.first_unrecognized = Some((lineno, text.chars().take(120).collect()));
                    }
                }
            }
            Ok(Some(Line::Blank)) if counted => summary.blank_lines += 1,
            Ok(Some(Line::Blank)) => {}
        }
        Ok(())
    }

    /// Ends the replay: halves of split calls whose other half never came
    /// are errors; the final maps are taken (and printed with
    /// [`ReplayOptions::maps`]). Input in which nothing was recognized is
    /// an error.
    pub(crate) fn finish(mut self, out: &mut impl Write) -> Result<ReplaySummary, ReplayError> {
        let lines = self.summary.lines;
        let deferred = &self.deferred;
        let lost = self.parser.finish().into_iter().map(|e| {
            let (line, message, text) = deferred
                .find(e.message())
                .unwrap_or_else(|| (lines, e.message().to_string(), String::new()));
            ReplayError::Parse { line, message, text }
        });
        if let Some(e) = lost.min_by_key(|e| match e {
            ReplayError::Parse { line, .. } => *line,
            _ => usize::MAX,
        }) {
            return Err(e);
        }
        let s = &self.summary;
        if s.unrecognized > 0 && s.calls == 0 && s.skipped_calls.is_empty() && s.strace_lines == 0 {
            let (line, text) = s.first_unrecognized.clone().unwrap_or_default();
            return Err(ReplayError::Parse {
                line,
                message: format!(
                    "no line of the input is a system call or a message of strace's ({} lines not understood)",
                    s.unrecognized
                ),
                text,
            });
        }
        self.summary.processes = self.tree.processes();
        self.summary.final_maps = self.tree.finish(self.opts, &mut self.summary);
        if self.opts.maps && !self.opts.json {
            out.write_all(self.summary.final_maps.as_bytes())
                .map_err(ReplayError::Write)?;
        }
        out.flush().map_err(ReplayError::Write)?;
        Ok(self.summary)
    }
}
