//! What `record` reads about the tracee: `/proc/PID/…` files, descriptor
//! links, and strings in its memory.

use std::io::IoSliceMut;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::sys::ptrace;
use nix::sys::uio::{RemoteIoVec, process_vm_readv};
use nix::unistd::Pid;

use super::calls::FdArg;

fn proc_path(tid: Pid, what: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{tid}/{what}"))
}

/// `/proc/TID/maps`: the address space the thread `tid` sees.
pub(crate) fn maps(tid: Pid) -> std::io::Result<String> {
    std::fs::read_to_string(proc_path(tid, "maps"))
}

/// The target of a `/proc/TID/…` link, as bytes.
fn link(tid: Pid, what: &str) -> Option<Vec<u8>> {
    std::fs::read_link(proc_path(tid, what))
        .ok()
        .map(|p| p.as_os_str().as_bytes().to_vec())
}

/// What `/proc/TID/fd/N` (or `/proc/TID/cwd` for `AT_FDCWD`) names, as
/// strace `-y` reads it.
pub(crate) fn fd_link(tid: Pid, arg: FdArg) -> Option<Vec<u8>> {
    match arg {
        FdArg::Fd(fd) => link(tid, &format!("fd/{fd}")),
        FdArg::Cwd => link(tid, "cwd"),
    }
}

/// The working directory of `tid`.
pub(crate) fn cwd(tid: Pid) -> Option<String> {
    link(tid, "cwd").map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// The thread group (process) `tid` belongs to, from `/proc/TID/status`.
pub(crate) fn tgid(tid: Pid) -> Option<i32> {
    let s = std::fs::read_to_string(proc_path(tid, "status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Fields of `/proc/PID/stat`, numbered as in proc(5) (1 = pid).
pub(crate) struct Stat {
    fields: Vec<String>,
}

impl Stat {
    /// Reads `/proc/TID/stat`.
    pub(crate) fn read(tid: Pid) -> Option<Stat> {
        let s = std::fs::read_to_string(proc_path(tid, "stat")).ok()?;
        Stat::parse(&s)
    }

    /// Splits a stat line; the command name (field 2) may hold spaces and
    /// parentheses, so the fields after it start after the last `)`.
    fn parse(s: &str) -> Option<Stat> {
        let open = s.find('(')?;
        let close = s.rfind(')')?;
        let mut fields = vec![s[..open].trim().to_string(), s[open + 1..close].to_string()];
        fields.extend(s[close + 1..].split_whitespace().map(str::to_string));
        Some(Stat { fields })
    }

    /// Field `n` (1-based) as a number.
    pub(crate) fn field(&self, n: usize) -> Option<u64> {
        self.fields.get(n.checked_sub(1)?)?.parse().ok()
    }
}

/// `start_stack` in `/proc/PID/stat`.
pub(crate) const STAT_START_STACK: usize = 28;
/// `start_brk` in `/proc/PID/stat`.
pub(crate) const STAT_START_BRK: usize = 47;

/// The soft `RLIMIT_STACK` of `tid` in bytes, from `/proc/TID/limits`
/// (`unlimited` is `RLIM_INFINITY`, `u64::MAX`).
pub(crate) fn stack_rlimit(tid: Pid) -> Option<u64> {
    let s = std::fs::read_to_string(proc_path(tid, "limits")).ok()?;
    let rest = s.lines().find_map(|l| l.strip_prefix("Max stack size"))?;
    match rest.split_whitespace().next()? {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    }
}

/// The personality of `tid`, from `/proc/TID/personality` (hex).
pub(crate) fn personality(tid: Pid) -> Option<u64> {
    let s = std::fs::read_to_string(proc_path(tid, "personality")).ok()?;
    u64::from_str_radix(s.trim(), 16).ok()
}

/// The running kernel's release (`uname -r`).
pub(crate) fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

const PAGE: u64 = 4096;

/// Reads up to `buf.len()` bytes at `addr` of the tracee, not crossing a
/// page boundary; returns how many were read (0 when unreadable).
fn read_chunk(tid: Pid, addr: u64, buf: &mut [u8]) -> usize {
    let mut local = [IoSliceMut::new(buf)];
    let remote = [RemoteIoVec {
        base: addr as usize,
        len: local[0].len(),
    }];
    if let Ok(n) = process_vm_readv(tid, &mut local, &remote)
        && n > 0
    {
        return n;
    }
    // process_vm_readv can be refused (e.g. by a security module) where
    // ptrace's PEEKDATA is not: read word by word.
    let buf = &mut *local[0];
    let mut n = 0;
    while n < buf.len() {
        let word_addr = (addr + n as u64) & !7;
        let skip = (addr + n as u64 - word_addr) as usize;
        let Ok(word) = ptrace::read(tid, word_addr as ptrace::AddressType) else {
            break;
        };
        let bytes = word.to_ne_bytes();
        let take = (8 - skip).min(buf.len() - n);
        buf[n..n + take].copy_from_slice(&bytes[skip..skip + take]);
        n += take;
    }
    n
}

/// `len` bytes at `addr` of the tracee; `None` unless all could be read.
pub(crate) fn read_bytes(tid: Pid, addr: u64, len: usize) -> Option<Vec<u8>> {
    let mut out = vec![0u8; len];
    let mut n = 0;
    while n < len {
        let at = addr + n as u64;
        let want = ((PAGE - at % PAGE) as usize).min(len - n);
        let got = read_chunk(tid, at, &mut out[n..n + want]);
        if got == 0 {
            return None;
        }
        n += got;
    }
    Some(out)
}

/// `/proc/PID/cmdline` or `/proc/PID/environ` (`what`) of `pid`, raw.
pub(crate) fn nul_file(pid: Pid, what: &str) -> Option<Vec<u8>> {
    std::fs::read(proc_path(pid, what)).ok()
}

/// The NUL-terminated string at `addr` in the tracee's memory, at most
/// `max` bytes (without the NUL); `None` when nothing can be read there.
pub(crate) fn read_string(tid: Pid, addr: u64, max: usize) -> Option<Vec<u8>> {
    if addr == 0 {
        return None;
    }
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < max {
        let to_page_end = PAGE - (at % PAGE);
        let want = (to_page_end as usize).min(max - out.len()).min(256);
        let mut buf = [0u8; 256];
        let n = read_chunk(tid, at, &mut buf[..want]);
        if n == 0 {
            break;
        }
        if let Some(z) = buf[..n].iter().position(|&b| b == 0) {
            out.extend_from_slice(&buf[..z]);
            return Some(out);
        }
        out.extend_from_slice(&buf[..n]);
        at += n as u64;
    }
    (at != addr).then_some(out)
}

/// What descriptor `fd` of `tid` is: the file behind it, probed through
/// `/proc/TID/fd/FD` (which reaches an unlinked file too), named by its
/// link; `None` for pipes, sockets and anonymous inodes (no path).
pub(crate) fn fd_info(tid: Pid, fd: i64) -> Option<mm_ops::task::PathInfo> {
    let link = std::fs::read_link(format!("/proc/{tid}/fd/{fd}")).ok()?;
    let link = link.to_str()?;
    if !link.starts_with('/') {
        return None;
    }
    let name = link.strip_suffix(" (deleted)").unwrap_or(link).to_string();
    mm_ops::hostfs::probe_at(&format!("/proc/{tid}/fd/{fd}"), name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_an_odd_command_name() {
        let s = "123 (a) b (c) S 1 2 3 4 5";
        let st = Stat::parse(s).unwrap();
        assert_eq!(st.field(1), Some(123));
        assert_eq!(st.field(4), Some(1));
        assert_eq!(st.field(8), Some(5));
        assert_eq!(st.field(9), None);
    }

    #[test]
    fn own_process() {
        let me = Pid::this();
        assert_eq!(tgid(me), Some(me.as_raw()));
        let st = Stat::read(me).unwrap();
        assert!(st.field(STAT_START_BRK).is_some_and(|b| b > 0));
        assert!(stack_rlimit(me).is_some());
        assert!(personality(me).is_some());
        let s = std::ffi::CString::new("hello").unwrap();
        let got = read_string(me, s.as_ptr() as u64, PATH_MAX_TEST);
        assert_eq!(got.as_deref(), Some(&b"hello"[..]));
        assert_eq!(read_string(me, s.as_ptr() as u64, 3).as_deref(), Some(&b"hel"[..]));
        assert_eq!(read_bytes(me, s.as_ptr() as u64, 6).as_deref(), Some(&b"hello\0"[..]));
        assert_eq!(read_bytes(me, 8, 4), None);
    }

    const PATH_MAX_TEST: usize = 4096;
}
