//! What a trace tells about files and descriptors, applied to a
//! [`Replayer`]: the files a line opened or mapped as the recording saw
//! them, `unlink` and `rename`, `-y` annotations of descriptors the input
//! never opened, and paths relative to a directory descriptor.

use std::borrow::Cow;

use mm_ops::call::{Call, Outcome};
use mm_ops::strace::{PathArg, PathOp, PathOpLine, Recorded, TraceLine};
use mm_ops::uapi::MAP_ANONYMOUS;

use super::{Replayer, is_at_fdcwd, join};

/// An `unlink` or `rename` with its paths made absolute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolvedPathOp {
    /// `unlink(path)`, `unlinkat`.
    Unlink(String),
    /// `rename(from, to)`, `renameat`, `renameat2`.
    Rename {
        /// The old name.
        from: String,
        /// The new name.
        to: String,
    },
}

impl Replayer {
    /// Takes what the recording saw of the file `call` opens or maps: the
    /// probe answers with it for that path, and a file the model already
    /// has takes its size (a `write(2)` the trace does not show may have
    /// grown it).
    pub fn learn_file(&mut self, call: &Call, info: &mm_ops::task::PathInfo) {
        let mut known = self.known.lock().expect("known files");
        known.insert(info.canonical.clone(), info.clone());
        let opened = match call {
            Call::Open { path, .. } => Some(path.clone()),
            Call::Openat { path, dirfd, .. } => {
                let arg = PathArg {
                    dirfd: Some(*dirfd),
                    path: path.clone(),
                    dir_path: None,
                };
                self.resolve_arg(&arg)
            }
            _ => None,
        };
        if let Some(p) = opened {
            known.insert(if p.starts_with('/') { p } else { join(&self.cwd, &p) }, info.clone());
        }
        drop(known);
        match call {
            Call::Mmap { fd, .. } => self.task.set_file_size(*fd, info.size),
            _ => {
                let mm = self.task.mm().clone();
                let mut files = mm.files();
                if let Some(id) = files.lookup_path(&info.canonical) {
                    files.inode_mut(id).set_size(info.size);
                }
            }
        }
    }

    /// Applies an `unlink` or `rename` that succeeded to this process's
    /// file table: maps lines name files by their current path. (A replay
    /// of several processes applies it to all of theirs: see
    /// [`resolve_path_op`](Self::resolve_path_op).)
    pub fn path_op(&mut self, l: &PathOpLine) {
        if let Some(op) = self.resolve_path_op(l) {
            self.apply_path_op(&op);
        }
    }

    /// The absolute paths of an `unlink` or `rename` line that succeeded,
    /// resolved against this process's working directory and descriptors;
    /// `None` for a failed one, or when the input does not tell a path.
    pub fn resolve_path_op(&self, l: &PathOpLine) -> Option<ResolvedPathOp> {
        if !l.ok {
            return None;
        }
        match &l.op {
            PathOp::Unlink(p) => self.resolve_arg(p).map(ResolvedPathOp::Unlink),
            PathOp::Rename { from, to } => Some(ResolvedPathOp::Rename {
                from: self.resolve_arg(from)?,
                to: self.resolve_arg(to)?,
            }),
        }
    }

    /// Applies a resolved `unlink` or `rename` to this process's file
    /// table. The file system is one for every process: a replay applies
    /// it once to each address space's table.
    pub fn apply_path_op(&mut self, op: &ResolvedPathOp) {
        let mm = self.task.mm().clone();
        let mut files = mm.files();
        match op {
            ResolvedPathOp::Unlink(path) => {
                files.unlink(path);
            }
            ResolvedPathOp::Rename { from, to } => files.rename(from, to),
        }
    }

    /// The absolute path a path argument names, when the input tells.
    pub(super) fn resolve_arg(&self, p: &PathArg) -> Option<String> {
        if p.path.starts_with('/') {
            return Some(p.path.clone());
        }
        let dir = match p.dirfd {
            None => self.cwd.clone(),
            Some(fd) if is_at_fdcwd(fd) => p.dir_path.clone().unwrap_or_else(|| self.cwd.clone()),
            Some(fd) => p
                .dir_path
                .clone()
                .or_else(|| self.fds.path_of(fd).map(str::to_string))?,
        };
        Some(join(&dir, &p.path))
    }

    /// Takes what the line's `-y` annotations tell: the files behind
    /// descriptors the input never opened, and the working directory.
    pub(super) fn take_annotations(&mut self, line: &TraceLine) {
        let fd_arg = match line.call {
            Call::Mmap { flags, fd, .. } if flags & MAP_ANONYMOUS == 0 => Some(fd),
            Call::Close { fd } | Call::Dup { fd } | Call::Ftruncate { fd, .. } => Some(fd),
            Call::Dup2 { oldfd, .. } | Call::Dup3 { oldfd, .. } => Some(oldfd),
            _ => None,
        };
        if let Some(fd) = fd_arg {
            let ok = matches!(
                line.recorded.as_ref().and_then(Recorded::outcome),
                Some(Outcome::Val(_))
            );
            if ok && self.fds.is_closed(fd) {
                self.reopen(fd, line.fd_path.as_deref());
            }
            self.foreign_fd(fd, line.fd_path.as_deref());
        }
        match line.call {
            Call::Dup2 { newfd, .. } | Call::Dup3 { newfd, .. } if line.newfd_path.is_some() => {
                self.foreign_fd(newfd, line.newfd_path.as_deref());
            }
            Call::Openat { dirfd, ref path, .. } => {
                if is_at_fdcwd(dirfd) {
                    if let Some(d) = &line.dirfd_path {
                        self.set_cwd(d);
                    }
                } else if !path.starts_with('/') || line.dirfd_path.is_some() {
                    let ok = matches!(
                        line.recorded.as_ref().and_then(Recorded::outcome),
                        Some(Outcome::Val(_))
                    );
                    if ok && self.fds.is_closed(dirfd) {
                        self.reopen(dirfd, line.dirfd_path.as_deref());
                    }
                    self.foreign_fd(dirfd, line.dirfd_path.as_deref());
                }
            }
            _ => {}
        }
    }

    /// `fd`, which the input closed, was used successfully: a call the
    /// input does not show (socket, creat, fcntl F_DUPFD, …) opened it
    /// again, on `path` if the line annotates it.
    pub(super) fn reopen(&mut self, fd: i64, path: Option<&str>) {
        self.fds.reopen(fd, path);
        let path = path.map_or_else(|| format!("/proc/self/fd/{fd}"), str::to_string);
        self.task.inherit_fd(fd, &path);
    }

    /// Notes a use of `fd`; if no line opened it, it is inherited, and
    /// `path` names its file.
    pub(super) fn foreign_fd(&mut self, fd: i64, path: Option<&str>) {
        if !self.fds.is_foreign(fd) {
            return;
        }
        self.fds.inherit(fd, path);
        if let Some(p) = path {
            self.task.inherited_paths.insert(fd, p.to_string());
        }
    }

    /// `openat(N, "relative", …)` with a known directory behind `N`
    /// becomes an open of the joined path (the model resolves relative
    /// paths against its working directory only).
    pub(super) fn with_dirfd_path<'c>(&self, call: &'c Call) -> Cow<'c, Call> {
        if let Call::Openat {
            dirfd,
            path,
            flags,
            mode,
        } = call
            && !path.starts_with('/')
            && !is_at_fdcwd(*dirfd)
            && let Some(dir) = self.fds.path_of(*dirfd)
        {
            return Cow::Owned(Call::Openat {
                dirfd: *dirfd,
                path: join(dir, path),
                flags: *flags,
                mode: *mode,
            });
        }
        Cow::Borrowed(call)
    }

    pub(super) fn absolute(&self, path: &str) -> String {
        if path.starts_with('/') {
            path.to_string()
        } else {
            join(&self.cwd, path)
        }
    }
}
