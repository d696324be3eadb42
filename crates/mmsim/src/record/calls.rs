//! From the registers of a syscall-entry stop to a [`Call`], and from a
//! completed call to its line in `trace.txt`.
//!
//! A line is what `strace -f -y -o FILE` prints for the call: the thread id,
//! the call in canonical strace syntax ([`format_call`]) with `-y`
//! annotations on its descriptor arguments, ` = `, and the result
//! ([`format_result`]), annotated with the file when the call returned a
//! new descriptor (`= 3</usr/lib/libc.so.6>`).

use std::fmt::Write as _;

use mm_ops::call::{Call, Outcome};
use mm_ops::strace::{format_call, format_result};
use mm_ops::uapi::{AT_FDCWD, Errno};

/// x86-64 system call numbers of the calls `record` looks at.
pub(crate) mod nr {
    /// `open`.
    pub const OPEN: u64 = 2;
    /// `ptrace`.
    pub const PTRACE: u64 = 101;
    /// `close`.
    pub const CLOSE: u64 = 3;
    /// `mmap`.
    pub const MMAP: u64 = 9;
    /// `mprotect`.
    pub const MPROTECT: u64 = 10;
    /// `munmap`.
    pub const MUNMAP: u64 = 11;
    /// `brk`.
    pub const BRK: u64 = 12;
    /// `mremap`.
    pub const MREMAP: u64 = 25;
    /// `madvise`.
    pub const MADVISE: u64 = 28;
    /// `dup`.
    pub const DUP: u64 = 32;
    /// `dup2`.
    pub const DUP2: u64 = 33;
    /// `ftruncate`.
    pub const FTRUNCATE: u64 = 77;
    /// `mlock`.
    pub const MLOCK: u64 = 149;
    /// `munlock`.
    pub const MUNLOCK: u64 = 150;
    /// `mlockall`.
    pub const MLOCKALL: u64 = 151;
    /// `munlockall`.
    pub const MUNLOCKALL: u64 = 152;
    /// `mlock2`.
    pub const MLOCK2: u64 = 325;
    /// `mseal` (Linux 6.10+).
    pub const MSEAL: u64 = 462;
    /// `prlimit64`.
    pub const PRLIMIT64: u64 = 302;
    /// `remap_file_pages`.
    pub const REMAP_FILE_PAGES: u64 = 216;
    /// `setrlimit`.
    pub const SETRLIMIT: u64 = 160;
    /// `memfd_secret` (Linux 5.14+).
    pub const MEMFD_SECRET: u64 = 447;
    /// `pkey_mprotect`.
    pub const PKEY_MPROTECT: u64 = 329;
    /// `pkey_alloc`.
    pub const PKEY_ALLOC: u64 = 330;
    /// `pkey_free`.
    pub const PKEY_FREE: u64 = 331;
    /// `shmget`.
    pub const SHMGET: u64 = 29;
    /// `shmat`.
    pub const SHMAT: u64 = 30;
    /// `shmctl`.
    pub const SHMCTL: u64 = 31;
    /// `shmdt`.
    pub const SHMDT: u64 = 67;
    /// `exit_group`.
    pub const EXIT_GROUP: u64 = 231;
    /// `openat`.
    pub const OPENAT: u64 = 257;
    /// `dup3`.
    pub const DUP3: u64 = 292;
    /// `memfd_create`.
    pub const MEMFD_CREATE: u64 = 319;
    /// `rename`.
    pub const RENAME: u64 = 82;
    /// `unlink`.
    pub const UNLINK: u64 = 87;
    /// `unlinkat`.
    pub const UNLINKAT: u64 = 263;
    /// `renameat`.
    pub const RENAMEAT: u64 = 264;
    /// `renameat2`.
    pub const RENAMEAT2: u64 = 316;
    /// `fcntl`.
    pub const FCNTL: u64 = 72;
    /// `creat`.
    pub const CREAT: u64 = 85;
    /// `clone`.
    pub const CLONE: u64 = 56;
    /// `fork`.
    pub const FORK: u64 = 57;
    /// `vfork`.
    pub const VFORK: u64 = 58;
    /// `execve`.
    pub const EXECVE: u64 = 59;
    /// `execveat`.
    pub const EXECVEAT: u64 = 322;
    /// `clone3`.
    pub const CLONE3: u64 = 435;
}

/// A path as strace prints a string argument
/// ([`mm_ops::strace::quote_string`]).
fn quote_path(p: &[u8]) -> String {
    mm_ops::strace::quote_string(p)
}

/// The text of a side call the replay needs although it is not an
/// address-space call: `unlink`, `unlinkat`, `rename`, `renameat`,
/// `renameat2` (they change the names maps lines show), `fcntl` with
/// `F_DUPFD`/`F_DUPFD_CLOEXEC` and `creat` (they make descriptors), with
/// `-y` annotations on descriptor arguments; `None` for other calls.
/// `read` reads a path from the tracee, `link` annotates a descriptor.
pub(crate) fn path_op_text(
    e: &Entry,
    read: impl Fn(u64) -> Option<Vec<u8>>,
    link: impl Fn(FdArg) -> Option<String>,
) -> Option<String> {
    let a = e.args;
    let path = |i: usize| quote_path(&read(a[i]).unwrap_or_default());
    let dir = |i: usize| {
        let fd = fd_arg(a[i]);
        let (name, arg) = if fd as i32 == AT_FDCWD as i32 {
            ("AT_FDCWD".to_string(), FdArg::Cwd)
        } else {
            (fd.to_string(), FdArg::Fd(fd))
        };
        format!("{name}{}", link(arg).unwrap_or_default())
    };
    Some(match e.nr {
        nr::FCNTL => {
            let cmd = match int_arg(a[1]) {
                0 => "F_DUPFD",
                1030 => "F_DUPFD_CLOEXEC",
                _ => return None,
            };
            let fd = fd_arg(a[0]);
            let ann = if fd >= 0 {
                link(FdArg::Fd(fd)).unwrap_or_default()
            } else {
                String::new()
            };
            format!("fcntl({fd}{ann}, {cmd}, {})", fd_arg(a[2]))
        }
        nr::CREAT => {
            // strace's `%#03o`.
            let mode = a[1] & 0o7777;
            let mode = if mode == 0 {
                "000".to_string()
            } else {
                format!("0{mode:o}")
            };
            format!("creat({}, {mode})", path(0))
        }
        nr::UNLINK => format!("unlink({})", path(0)),
        nr::UNLINKAT => {
            let flags = if int_arg(a[2]) == 0x200 {
                "AT_REMOVEDIR".to_string()
            } else {
                format!("{:#x}", int_arg(a[2]))
            };
            let flags = if int_arg(a[2]) == 0 { "0".to_string() } else { flags };
            format!("unlinkat({}, {}, {flags})", dir(0), path(1))
        }
        nr::RENAME => format!("rename({}, {})", path(0), path(1)),
        nr::RENAMEAT => format!("renameat({}, {}, {}, {})", dir(0), path(1), dir(2), path(3)),
        nr::RENAMEAT2 => {
            let f = int_arg(a[4]);
            let flags = match f {
                0 => "0".to_string(),
                1 => "RENAME_NOREPLACE".to_string(),
                2 => "RENAME_EXCHANGE".to_string(),
                4 => "RENAME_WHITEOUT".to_string(),
                _ => format!("{f:#x}"),
            };
            format!("renameat2({}, {}, {}, {}, {flags})", dir(0), path(1), dir(2), path(3))
        }
        _ => return None,
    })
}

/// True when the side call `nr` (see [`path_op_text`]) returns a
/// descriptor (`fcntl F_DUPFD*`, `creat`).
pub(crate) fn side_call_returns_fd(nr: u64) -> bool {
    matches!(nr, nr::FCNTL | nr::CREAT)
}

/// The line of a side call: its result is an `int` (a descriptor for
/// `fcntl F_DUPFD*` and `creat`, annotated with `result_ann`).
pub(crate) fn path_op_line(tid: i32, text: &str, outcome: &Outcome, result_ann: Option<&str>) -> String {
    // close(2) has the same result type: 0, or -1 and an errno.
    let mut l = format!("{tid} {text} = {}", format_result(&Call::Close { fd: 0 }, outcome));
    if let (Outcome::Val(_), Some(a)) = (outcome, result_ann) {
        l.push_str(a);
    }
    l
}

/// `O_CREAT` and `__O_TMPFILE`: the open flags that make the kernel (and
/// strace) look at the mode argument.
const TAKES_MODE: u64 = 0o100 | 0o20000000;

/// `PATH_MAX`: the kernel reads at most this many bytes of a path.
pub(crate) const PATH_MAX: usize = 4096;

/// `MFD_NAME_MAX_LEN` plus room for the terminating NUL.
pub(crate) const MEMFD_NAME_MAX: usize = 250;

/// A system call at its entry stop: the number and the six argument
/// registers (`rdi`, `rsi`, `rdx`, `r10`, `r8`, `r9`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// `orig_rax`.
    pub nr: u64,
    /// The arguments.
    pub args: [u64; 6],
}

/// Which string argument a call needs read from the tracee's memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StringArg {
    /// No string.
    None,
    /// A path: argument `index`, at most [`PATH_MAX`] bytes.
    Path(usize),
    /// A `memfd_create` name (argument 0).
    MemfdName,
    /// A `struct rlimit` (16 bytes) at argument `index`.
    Rlimit(usize),
}

/// The string argument the call `nr` takes, if it is a recorded call.
pub(crate) fn string_arg(nr: u64) -> Option<StringArg> {
    Some(match nr {
        nr::OPEN => StringArg::Path(0),
        nr::OPENAT => StringArg::Path(1),
        nr::MEMFD_CREATE => StringArg::MemfdName,
        nr::PRLIMIT64 => StringArg::Rlimit(2),
        nr::SETRLIMIT => StringArg::Rlimit(1),
        nr::MMAP
        | nr::MUNMAP
        | nr::MPROTECT
        | nr::BRK
        | nr::MREMAP
        | nr::MADVISE
        | nr::CLOSE
        | nr::DUP
        | nr::DUP2
        | nr::DUP3
        | nr::FTRUNCATE
        | nr::MLOCK
        | nr::MLOCK2
        | nr::MUNLOCK
        | nr::MLOCKALL
        | nr::MUNLOCKALL
        | nr::MSEAL
        | nr::SHMGET
        | nr::SHMAT
        | nr::SHMCTL
        | nr::SHMDT
        | nr::MEMFD_SECRET
        | nr::PKEY_MPROTECT
        | nr::PKEY_ALLOC
        | nr::PKEY_FREE
        | nr::REMAP_FILE_PAGES => StringArg::None,
        _ => return None,
    })
}

/// A descriptor as the kernel reads an `int` or `unsigned int` argument,
/// widened the way strace prints it (as an `int`).
fn fd_arg(v: u64) -> i64 {
    i64::from(v as i32)
}

/// An `int` flag word as the kernel reads it.
fn int_arg(v: u64) -> u64 {
    u64::from(v as u32)
}

/// The mode of an open: kept only when the flags make the kernel use it
/// (that is also when strace prints it), as the 16-bit `umode_t`.
fn open_mode(flags: u64, mode: u64) -> Option<u64> {
    (flags & TAKES_MODE != 0).then_some(mode & 0xffff)
}

/// Builds the call for `e`, or `None` when `e` is not a recorded call.
/// `string` is the string argument (see [`string_arg`]) as read from the
/// tracee; bytes that are not UTF-8 become U+FFFD, as the strace reader
/// does.
///
/// Arguments are narrowed to the C types the kernel reads (descriptors and
/// `int` flags to 32 bits, modes to 16 bits, `mremap`'s new address to 0
/// unless `MREMAP_MAYMOVE|MREMAP_FIXED`), so that the call equals what the
/// strace reader makes of its own line.
pub(crate) fn decode(e: &Entry, string: Option<&[u8]>) -> Option<Call> {
    let a = e.args;
    let text = || String::from_utf8_lossy(string.unwrap_or_default()).into_owned();
    Some(match e.nr {
        nr::MMAP => Call::Mmap {
            addr: a[0],
            len: a[1],
            prot: a[2],
            flags: a[3],
            fd: fd_arg(a[4]),
            off: a[5],
        },
        nr::MUNMAP => Call::Munmap { addr: a[0], len: a[1] },
        nr::MPROTECT => Call::Mprotect {
            addr: a[0],
            len: a[1],
            prot: a[2],
        },
        nr::BRK => Call::Brk { addr: a[0] },
        nr::MREMAP => Call::Mremap {
            old_addr: a[0],
            old_len: a[1],
            new_len: a[2],
            flags: a[3],
            new_addr: if a[3] & 3 == 3 { a[4] } else { 0 },
        },
        nr::MADVISE => Call::Madvise {
            addr: a[0],
            len: a[1],
            advice: int_arg(a[2]),
        },
        nr::MLOCK => Call::Mlock { addr: a[0], len: a[1] },
        nr::MLOCK2 => Call::Mlock2 {
            addr: a[0],
            len: a[1],
            flags: int_arg(a[2]),
        },
        nr::MUNLOCK => Call::Munlock { addr: a[0], len: a[1] },
        nr::MLOCKALL => Call::Mlockall { flags: int_arg(a[0]) },
        nr::MUNLOCKALL => Call::Munlockall,
        nr::MSEAL => Call::Mseal {
            addr: a[0],
            len: a[1],
            flags: a[2],
        },
        nr::SHMGET => Call::Shmget {
            key: fd_arg(a[0]),
            size: a[1],
            flags: int_arg(a[2]),
        },
        nr::SHMAT => Call::Shmat {
            id: fd_arg(a[0]),
            addr: a[1],
            flags: int_arg(a[2]),
        },
        nr::SHMDT => Call::Shmdt { addr: a[0] },
        nr::MEMFD_SECRET => Call::MemfdSecret { flags: int_arg(a[0]) },
        nr::PKEY_MPROTECT => Call::PkeyMprotect {
            addr: a[0],
            len: a[1],
            prot: a[2],
            pkey: fd_arg(a[3]),
        },
        nr::PKEY_ALLOC => Call::PkeyAlloc {
            flags: a[0],
            init_val: a[1],
        },
        nr::PKEY_FREE => Call::PkeyFree { pkey: fd_arg(a[0]) },
        nr::REMAP_FILE_PAGES => Call::RemapFilePages {
            start: a[0],
            size: a[1],
            prot: a[2],
            pgoff: a[3],
            flags: a[4],
        },
        // A new limit of the calling process (pid 0); `string` holds the
        // struct rlimit read at entry.
        nr::PRLIMIT64 | nr::SETRLIMIT => {
            let (res, new) = if e.nr == nr::PRLIMIT64 {
                if a[0] as i32 != 0 {
                    return None;
                }
                (a[1], a[2])
            } else {
                (a[0], a[1])
            };
            let s = string.filter(|s| s.len() == 16 && new != 0)?;
            let word = |i: usize| u64::from_le_bytes(s[i..i + 8].try_into().expect("8 bytes"));
            Call::Setrlimit {
                resource: int_arg(res),
                cur: word(0),
                max: word(8),
            }
        }
        // Only IPC_RMID changes an address space; the other commands are
        // not recorded.
        nr::SHMCTL if a[1] as i32 == 0 => Call::ShmctlRmid { id: fd_arg(a[0]) },
        nr::OPEN => {
            let flags = int_arg(a[1]);
            Call::Open {
                path: text(),
                flags,
                mode: open_mode(flags, a[2]),
            }
        }
        nr::OPENAT => {
            let flags = int_arg(a[2]);
            Call::Openat {
                dirfd: fd_arg(a[0]),
                path: text(),
                flags,
                mode: open_mode(flags, a[3]),
            }
        }
        nr::CLOSE => Call::Close { fd: fd_arg(a[0]) },
        nr::DUP => Call::Dup { fd: fd_arg(a[0]) },
        nr::DUP2 => Call::Dup2 {
            oldfd: fd_arg(a[0]),
            newfd: fd_arg(a[1]),
        },
        nr::DUP3 => Call::Dup3 {
            oldfd: fd_arg(a[0]),
            newfd: fd_arg(a[1]),
            flags: int_arg(a[2]),
        },
        nr::MEMFD_CREATE => Call::MemfdCreate {
            name: text(),
            flags: int_arg(a[1]),
        },
        nr::FTRUNCATE => Call::Ftruncate {
            fd: fd_arg(a[0]),
            length: a[1],
        },
        _ => return None,
    })
}

/// A descriptor argument that gets a `-y` annotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FdArg {
    /// A descriptor: the file `/proc/PID/fd/N` names.
    Fd(i64),
    /// `AT_FDCWD`: the working directory.
    Cwd,
}

/// The descriptor arguments of `call` that strace `-y` annotates, as
/// `(argument index, descriptor)`.  `mmap`'s `-1` and other negative
/// descriptors are left out (they name no file).
pub(crate) fn fd_args(call: &Call) -> Vec<(usize, FdArg)> {
    let fd = |i: usize, f: i64| (f >= 0).then_some((i, FdArg::Fd(f)));
    let v = match *call {
        Call::Mmap { fd: f, .. } => vec![fd(4, f)],
        Call::Close { fd: f } | Call::Dup { fd: f } | Call::Ftruncate { fd: f, .. } => vec![fd(0, f)],
        Call::Dup2 { oldfd, newfd } | Call::Dup3 { oldfd, newfd, .. } => vec![fd(0, oldfd), fd(1, newfd)],
        Call::Openat { dirfd, .. } if dirfd as i32 == AT_FDCWD as i32 => vec![Some((0, FdArg::Cwd))],
        Call::Openat { dirfd, .. } => vec![fd(0, dirfd)],
        _ => vec![],
    };
    v.into_iter().flatten().collect()
}

/// True for the calls whose successful result is a new descriptor, which
/// strace `-y` annotates with its file.
pub(crate) fn returns_fd(call: &Call) -> bool {
    call.creates_fd()
}

/// The outcome the exit value `rax` stands for: `-4095..=-1` is an errno.
pub(crate) fn outcome(rax: u64) -> Outcome {
    let v = rax as i64;
    if (-4095..0).contains(&v) {
        Outcome::Err(Errno(-v as i32))
    } else {
        Outcome::Val(rax)
    }
}

/// The `-y` annotation of a file as `readlink` on `/proc/PID/fd/N` gives
/// it: `<path>` with strace's escapes (`<` and `>` as `\74` and `\76`,
/// `"` and `\` backslashed, control and non-ASCII bytes in octal), and a
/// ` (deleted)` suffix moved after the `>` as `(deleted)`, as strace 6.1
/// prints it (`3</memfd:x>(deleted)`).
pub fn annotation(link: &[u8]) -> String {
    let (path, deleted) = match link.strip_suffix(b" (deleted)") {
        Some(p) => (p, true),
        None => (link, false),
    };
    let mut o = String::with_capacity(path.len() + 12);
    o.push('<');
    for (i, &c) in path.iter().enumerate() {
        match c {
            b'"' => o.push_str("\\\""),
            b'\\' => o.push_str("\\\\"),
            0x0c => o.push_str("\\f"),
            b'\n' => o.push_str("\\n"),
            b'\r' => o.push_str("\\r"),
            b'\t' => o.push_str("\\t"),
            0x0b => o.push_str("\\v"),
            b'<' | b'>' => octal(&mut o, c, path.get(i + 1)),
            0x20..=0x7e => o.push(c as char),
            _ => octal(&mut o, c, path.get(i + 1)),
        }
    }
    o.push('>');
    if deleted {
        o.push_str("(deleted)");
    }
    o
}

/// strace's octal escape: three digits when an octal digit follows, so
/// that the next character is not read as part of the escape.
fn octal(o: &mut String, c: u8, next: Option<&u8>) {
    if next.is_some_and(|d| (b'0'..=b'7').contains(d)) {
        let _ = write!(o, "\\{c:03o}");
    } else {
        let _ = write!(o, "\\{c:o}");
    }
}

/// `text` (a call as [`format_call`] prints it) with `ann` inserted after
/// argument `index`.  Only for arguments that no string argument precedes
/// (true of every argument [`fd_args`] names), so that `, ` separates
/// arguments.
fn insert_after_arg(text: &mut String, index: usize, ann: &str) {
    let Some(open) = text.find('(') else {
        return;
    };
    let mut pos = open + 1;
    for _ in 0..index {
        match text[pos..].find(", ") {
            Some(i) => pos += i + 2,
            None => return,
        }
    }
    let end = match text[pos..].find(", ") {
        Some(i) => pos + i,
        None => text.len() - 1, // before the closing parenthesis
    };
    text.insert_str(end, ann);
}

/// The call in strace syntax with its `-y` annotations: `anns` holds
/// `(argument index, annotation)` pairs as [`annotation`] renders them.
pub fn call_text(call: &Call, anns: &[(usize, String)]) -> String {
    let mut text = format_call(call);
    // From the last argument back, so that earlier positions stay valid.
    let mut sorted: Vec<&(usize, String)> = anns.iter().collect();
    sorted.sort_by_key(|(i, _)| std::cmp::Reverse(*i));
    for (i, ann) in sorted {
        insert_after_arg(&mut text, *i, ann);
    }
    text
}

/// One line of `trace.txt`: `TID CALL = RESULT`, the result followed by
/// `result_ann` (the annotation of a returned descriptor) when given.
pub fn line(tid: i32, call_text: &str, call: &Call, outcome: &Outcome, result_ann: Option<&str>) -> String {
    let mut l = format!("{tid} {call_text} = {}", format_result(call, outcome));
    if let (Outcome::Val(_), Some(a)) = (outcome, result_ann) {
        l.push_str(a);
    }
    l
}

#[cfg(test)]
#[path = "calls_tests.rs"]
mod tests;
