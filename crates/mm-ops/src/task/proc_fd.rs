//! Opening a descriptor's link in `/proc/self/fd` (`fs/proc/fd.c`:
//! `proc_lookupfd`, `proc_fd_link`), which reaches the file behind the
//! descriptor rather than a path: the same inode, opened again.

use mm_core::BarrierPolicy;
use mm_core::failslab::AllocSite;
use mm_core::file::{FileId, InodeKind};

use super::Task;
use crate::file_kind::{FileType, is_pseudo_name};
use crate::uapi::{oflags::*, *};

impl<P: BarrierPolicy> Task<P> {
    /// `open` of `/proc/self/fd/N` (or `/proc/thread-self/fd/N`,
    /// `/dev/fd/N`): `proc_fd_link` jumps to the file behind descriptor
    /// `N`, and the open makes a new description of that same inode (a
    /// `memfd` reopened this way still maps as `/memfd:NAME (deleted)`).
    /// `tail`: what follows the link after a `/` (a path below it, if
    /// the target is a directory).
    ///
    /// The checks come in `do_open`'s order: `O_CREAT | O_EXCL` does not
    /// follow the link (`EEXIST`); `O_DIRECTORY` of a file (`ENOTDIR`);
    /// `O_NOFOLLOW` opens the link itself, which `may_open` refuses
    /// (`ELOOP`; with `O_PATH` the link is opened, here as a path-only
    /// description of the target, which nothing can map either); then the
    /// target's permissions, and its `open` operation: sockets, anonymous
    /// inodes and `memfd_secret` objects have none (`no_open`: `ENXIO`).
    pub(super) fn open_fd_link(&mut self, n: i64, tail: Option<&str>, flags: u64) -> Result<FileId, Errno> {
        let flags = crate::kernel::namei::open_flags(flags)?;
        if self.mm.fail_nth().should_fail(AllocSite::File) {
            return Err(Errno::ENOMEM);
        }
        // proc_lookupfd: a descriptor that is not open has no entry.
        if !self.is_open(n) {
            return Err(Errno::ENOENT);
        }
        let target = self.file_of(n)?;
        let mm = self.mm.clone();
        let inode = mm.files().file(target).inode;
        let (path, deleted, kind) = {
            let files = mm.files();
            let i = files.inode(inode);
            (i.path.clone(), i.deleted(), i.kind)
        };
        // What the file system says of the target, when it has a name.
        let info = if deleted || is_pseudo_name(&path) {
            None
        } else {
            self.probe_path(&path)
        };
        let is_dir = info.as_ref().is_some_and(|i| i.file_type == FileType::Directory);
        if let Some(rest) = tail {
            return match &info {
                // The walk goes on below the directory.
                Some(i) if is_dir => {
                    let below = format!("{}/{rest}", i.canonical.trim_end_matches('/'));
                    self.open_file(&below, flags, 0, true)
                }
                _ => Err(Errno::ENOTDIR),
            };
        }
        let nofollow = flags & O_NOFOLLOW != 0 || flags & (O_CREAT | O_EXCL) == O_CREAT | O_EXCL;
        if nofollow {
            if flags & O_CREAT != 0 && flags & O_EXCL != 0 {
                return Err(Errno::EEXIST);
            }
            if flags & O_DIRECTORY != 0 {
                return Err(Errno::ENOTDIR);
            }
            if flags & O_PATH == 0 {
                return Err(Errno::ELOOP);
            }
        } else {
            if flags & O_CREAT != 0 && is_dir {
                return Err(Errno::EISDIR);
            }
            if flags & O_DIRECTORY != 0 && !is_dir {
                return Err(Errno::ENOTDIR);
            }
            if flags & O_PATH == 0 {
                if is_dir && flags & O_ACCMODE != O_RDONLY {
                    return Err(Errno::EISDIR);
                }
                if self.live_files
                    && let Some(i) = &info
                {
                    crate::kernel::namei::may_open(self.mm.fs_cred(), i, flags)?;
                }
                let no_open =
                    kind == InodeKind::Secretmem || path.starts_with("socket:[") || path.starts_with("anon_inode:");
                if no_open {
                    return Err(Errno::ENXIO);
                }
            }
        }
        self.open_description(inode, flags)
    }
}

/// The descriptor a path names through `/proc/self/fd` (`proc_fd_link`):
/// `None` for any other path, `Some(Ok((N, tail)))` for
/// `/proc/self/fd/N`, `/proc/thread-self/fd/N` or `/dev/fd/N` (`tail`:
/// what follows a `/` after it), `Some(Err(ENOENT))` for a name there that
/// is not a descriptor number as `/proc` spells it (`name_to_int`: digits
/// with no leading zero, below 2^31).
pub(super) fn proc_fd_link(path: &str) -> Option<Result<(i64, Option<&str>), Errno>> {
    let rest = ["/proc/self/fd/", "/proc/thread-self/fd/", "/dev/fd/"]
        .iter()
        .find_map(|p| path.strip_prefix(p))?;
    let (name, tail) = match rest.split_once('/') {
        Some((n, t)) => (n, Some(t)),
        None => (rest, None),
    };
    if name.is_empty() {
        // The directory itself.
        return None;
    }
    let number = name.bytes().all(|b| b.is_ascii_digit()) && (name == "0" || !name.starts_with('0'));
    match name.parse::<i64>() {
        Ok(n) if number && n < i64::from(i32::MAX) => Some(Ok((n, tail))),
        _ => Some(Err(Errno::ENOENT)),
    }
}
