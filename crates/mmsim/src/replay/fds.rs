//! The replay's own view of the descriptor table: which descriptors the
//! input opened and closed, which it used without opening them (inherited),
//! and the paths behind them.
//!
//! The model keeps the real table; this copy answers what the model does
//! not expose: whether a descriptor is foreign to the input (so that its
//! `-y` path names an inherited file), the lowest free descriptor for an
//! open whose result the trace did not record, and the directory behind an
//! `openat` dirfd.

use std::collections::{BTreeMap, BTreeSet};

use mm_ops::call::{Call, Outcome};

/// The lowest descriptor that is not a standard stream.
const FIRST_FD: i64 = 3;

/// Descriptors as the input has shown them so far.
#[derive(Clone, Debug, Default)]
pub(crate) struct FdTracker {
    /// Opened by the input (open, openat, dup*, memfd_create) and not
    /// closed since, with the path when known.
    opened: BTreeMap<i64, Option<String>>,
    /// Used before any line opened them: open before the input began.
    inherited: BTreeMap<i64, Option<String>>,
    /// Closed by the input and not opened again.
    closed: BTreeSet<i64>,
    /// No descriptor below this one is free (only a close frees one): the
    /// scan of [`lowest_free`](Self::lowest_free) starts here, so a trace
    /// of many opens stays linear.
    free_hint: std::cell::Cell<i64>,
}

impl FdTracker {
    /// True when no line opened or closed `fd`: an open descriptor of
    /// `fd` was inherited from before the input began.
    pub(crate) fn is_foreign(&self, fd: i64) -> bool {
        fd >= 0 && !self.opened.contains_key(&fd) && !self.closed.contains(&fd)
    }

    /// Records that a line used `fd`, foreign to the input, as an open
    /// descriptor (with its `-y` path when the line has one).
    pub(crate) fn inherit(&mut self, fd: i64, path: Option<&str>) {
        let slot = self.inherited.entry(fd).or_default();
        if let Some(p) = path {
            *slot = Some(p.to_string());
        }
    }

    /// True when the input closed `fd` and nothing it showed opened it
    /// again.
    pub(crate) fn is_closed(&self, fd: i64) -> bool {
        self.closed.contains(&fd)
    }

    /// Records that `fd`, which the input closed, is open again: a call the
    /// input does not show (socket, creat, fcntl F_DUPFD, …) reopened it.
    pub(crate) fn reopen(&mut self, fd: i64, path: Option<&str>) {
        self.closed.remove(&fd);
        self.inherited.insert(fd, path.map(str::to_string));
    }

    /// The path behind `fd`, when the input showed it.
    pub(crate) fn path_of(&self, fd: i64) -> Option<&str> {
        self.opened
            .get(&fd)
            .or_else(|| self.inherited.get(&fd))
            .and_then(|p| p.as_deref())
    }

    fn is_live(&self, fd: i64) -> bool {
        self.opened.contains_key(&fd)
            || self.inherited.contains_key(&fd)
            || (fd < FIRST_FD && !self.closed.contains(&fd))
    }

    /// The lowest descriptor not known to be open: what the kernel would
    /// hand out, as far as the input tells.
    pub(crate) fn lowest_free(&self) -> i64 {
        let mut fd = self.free_hint.get();
        while self.is_live(fd) {
            fd += 1;
        }
        self.free_hint.set(fd);
        fd
    }

    fn install(&mut self, fd: i64, path: Option<String>) {
        self.closed.remove(&fd);
        self.inherited.remove(&fd);
        self.opened.insert(fd, path);
    }

    /// Updates the table after the model answered `outcome` to `call`;
    /// `path` is the absolute path an open-like call opened, when known.
    pub(crate) fn after(&mut self, call: &Call, outcome: &Outcome, path: Option<String>) {
        let &Outcome::Val(v) = outcome else {
            return;
        };
        match *call {
            Call::Open { .. } | Call::Openat { .. } | Call::MemfdCreate { .. } | Call::MemfdSecret { .. } => {
                self.install(v as i64, path);
            }
            Call::Dup { fd } => {
                let p = self.path_of(fd).map(str::to_string);
                self.install(v as i64, p);
            }
            Call::Dup2 { oldfd, newfd } | Call::Dup3 { oldfd, newfd, .. } if oldfd != newfd => {
                let p = self.path_of(oldfd).map(str::to_string);
                self.install(newfd, p);
            }
            Call::Close { fd } => {
                self.opened.remove(&fd);
                self.inherited.remove(&fd);
                self.closed.insert(fd);
                if fd >= 0 && fd < self.free_hint.get() {
                    self.free_hint.set(fd);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_skips_the_standard_streams_and_open_descriptors() {
        let mut t = FdTracker::default();
        assert_eq!(t.lowest_free(), 3);
        t.inherit(3, Some("/a"));
        let open = Call::Open {
            path: "/b".into(),
            flags: 0,
            mode: None,
        };
        t.after(&open, &Outcome::Val(4), Some("/b".into()));
        assert_eq!(t.lowest_free(), 5);
        t.after(&Call::Close { fd: 0 }, &Outcome::Val(0), None);
        assert_eq!(t.lowest_free(), 0);
        assert!(!t.is_foreign(0));
        assert!(t.is_foreign(7));
        t.after(&Call::Dup2 { oldfd: 3, newfd: 7 }, &Outcome::Val(7), None);
        assert_eq!(t.path_of(7), Some("/a"));
        assert!(!t.is_foreign(7));
    }

    #[test]
    fn lowest_free_follows_closes_below_the_hint() {
        let mut t = FdTracker::default();
        let open = Call::Open {
            path: "/x".into(),
            flags: 0,
            mode: None,
        };
        for _ in 0..100_000 {
            let fd = t.lowest_free();
            t.after(&open, &Outcome::Val(fd as u64), None);
        }
        assert_eq!(t.lowest_free(), 100_003);
        t.after(&Call::Close { fd: 50 }, &Outcome::Val(0), None);
        assert_eq!(t.lowest_free(), 50);
        t.after(&open, &Outcome::Val(50), None);
        assert_eq!(t.lowest_free(), 100_003);
        t.after(&Call::Close { fd: 1 }, &Outcome::Val(0), None);
        assert_eq!(t.lowest_free(), 1);
    }
}
