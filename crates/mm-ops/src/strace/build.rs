//! From a call name and its argument texts to a [`Call`].

use super::ParseError;
use super::value::{addr, fd, flags, int, number, string};
use super::xlat::{MADV, MAP, MCL, MFD, MLOCK, MREMAP, O_FLAGS, PKEY, PROT, RLIMIT, SECRET, SHMAT, SHMGET};
use crate::call::{Access, Call};

/// `open`'s and `openat`'s mode as the kernel takes it and strace shows
/// it: only with `O_CREAT` or `O_TMPFILE` (0 if the trace has none), as a
/// `umode_t` (16 bits); `None` otherwise, whatever the trace passed.
fn open_mode(n: &str, flags_arg: &str, mode: Option<&&str>) -> Result<Option<u64>, ParseError> {
    const CREATES: u64 = 0o100 | 0o20_000_000;
    if ctx(n, "flags", flags(flags_arg, &O_FLAGS))? & CREATES == 0 {
        return Ok(None);
    }
    let m = match mode {
        Some(x) => ctx(n, "mode", number(x))?,
        None => 0,
    };
    Ok(Some(m & 0xffff))
}

/// The bits of an `int` argument (madvise's advice, open's, dup3's,
/// memfd_create's, mlock2's and mlockall's flags): the kernel sees only these, and strace shows
/// only these.
const INT_BITS: u64 = 0xffff_ffff;

/// The calls this module reads; any other name is skipped.
pub(super) const NAMES: &[&str] = &[
    "mmap",
    "munmap",
    "mprotect",
    "brk",
    "mremap",
    "madvise",
    "mlock",
    "mlock2",
    "munlock",
    "mlockall",
    "munlockall",
    "mseal",
    // What strace before 6.10 prints for mseal (x86-64 number 462).
    "syscall_0x1ce",
    "shmget",
    "shmat",
    "shmdt",
    "shmctl",
    "fault",
    "open",
    "openat",
    "close",
    "dup",
    "dup2",
    "dup3",
    "memfd_create",
    "memfd_secret",
    "pkey_mprotect",
    "pkey_alloc",
    "pkey_free",
    "prlimit64",
    "remap_file_pages",
    "setrlimit",
    "ftruncate",
];

/// Whether a line of a modeled call is one the model takes: of `shmctl`,
/// only `IPC_RMID` changes an address space (`IPC_STAT`, `IPC_SET`,
/// `SHM_LOCK`, … are skipped).
pub(super) fn is_modeled_line(name: &str, args: &[&str]) -> bool {
    // Of prlimit64 and setrlimit, a new limit for the calling process
    // (pid 0); reading a limit, or another process's, is skipped.
    let new_limit = |i: usize| args.get(i).is_some_and(|a| a.trim_start().starts_with('{'));
    match name {
        "shmctl" => args.get(1).is_some_and(|c| c.trim() == "IPC_RMID"),
        "prlimit64" => args.first().is_some_and(|p| p.trim() == "0") && new_limit(2),
        "setrlimit" => new_limit(1),
        _ => true,
    }
}

/// A `struct rlimit` as strace prints it: `{rlim_cur=8192*1024,
/// rlim_max=RLIM64_INFINITY}`; returns `(cur, max)`.
fn rlimit_struct(arg: &str) -> Result<(u64, u64), ParseError> {
    let bad = || ParseError::new(format!("invalid struct rlimit `{arg}`"));
    let inner = arg
        .trim()
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .ok_or_else(bad)?;
    let value = |v: &str| -> Result<u64, ParseError> {
        let v = v.trim();
        if v == "RLIM64_INFINITY" || v == "RLIM_INFINITY" {
            return Ok(u64::MAX);
        }
        match v.strip_suffix("*1024") {
            Some(k) => number(k)?.checked_mul(1024).ok_or_else(bad),
            None => number(v),
        }
    };
    let (mut cur, mut max) = (None, None);
    for field in inner.split(',') {
        let (k, v) = field.split_once('=').ok_or_else(bad)?;
        match k.trim() {
            "rlim_cur" => cur = Some(value(v)?),
            "rlim_max" => max = Some(value(v)?),
            _ => return Err(bad()),
        }
    }
    Ok((cur.ok_or_else(bad)?, max.ok_or_else(bad)?))
}

/// Paths from `-y` annotations of the descriptor arguments.
#[derive(Default)]
pub(super) struct Paths {
    pub fd: Option<String>,
    pub newfd: Option<String>,
    pub dirfd: Option<String>,
}

fn arity(name: &str, args: &[&str], min: usize, max: usize) -> Result<(), ParseError> {
    let n = args.len();
    if (min..=max).contains(&n) {
        return Ok(());
    }
    let want = if min == max {
        format!("{min}")
    } else {
        format!("{min} or {max}")
    };
    let s = if max == 1 { "" } else { "s" };
    Err(ParseError::new(format!("{name} takes {want} argument{s}, found {n}")))
}

/// Prefixes an argument error with the call and argument name.
fn ctx<T>(name: &str, what: &str, r: Result<T, ParseError>) -> Result<T, ParseError> {
    r.map_err(|e| ParseError::new(format!("{name}: {what}: {}", e.message())))
}

/// Builds the call `name(args…)`; `name` is one of [`NAMES`].
pub(super) fn build(name: &str, a: &[&str]) -> Result<(Call, Paths), ParseError> {
    let mut p = Paths::default();
    let n = name;
    let call = match name {
        "mmap" => {
            arity(n, a, 6, 6)?;
            let (fd, path) = ctx(n, "fd", fd(a[4], false))?;
            p.fd = path;
            Call::Mmap {
                addr: ctx(n, "addr", addr(a[0]))?,
                len: ctx(n, "length", number(a[1]))?,
                prot: ctx(n, "prot", flags(a[2], &PROT))?,
                flags: ctx(n, "flags", flags(a[3], &MAP))?,
                fd,
                off: ctx(n, "offset", number(a[5]))?,
            }
        }
        "munmap" => {
            arity(n, a, 2, 2)?;
            Call::Munmap {
                addr: ctx(n, "addr", addr(a[0]))?,
                len: ctx(n, "length", number(a[1]))?,
            }
        }
        "mprotect" => {
            arity(n, a, 3, 3)?;
            Call::Mprotect {
                addr: ctx(n, "addr", addr(a[0]))?,
                len: ctx(n, "length", number(a[1]))?,
                prot: ctx(n, "prot", flags(a[2], &PROT))?,
            }
        }
        "brk" => {
            arity(n, a, 1, 1)?;
            Call::Brk {
                addr: ctx(n, "addr", addr(a[0]))?,
            }
        }
        "mremap" => {
            arity(n, a, 4, 5)?;
            let flags = ctx(n, "flags", flags(a[3], &MREMAP))?;
            Call::Mremap {
                old_addr: ctx(n, "old_address", addr(a[0]))?,
                old_len: ctx(n, "old_size", number(a[1]))?,
                new_len: ctx(n, "new_size", number(a[2]))?,
                flags,
                // strace shows new_address only with MREMAP_MAYMOVE and
                // MREMAP_FIXED (the writer does the same); otherwise a
                // fifth argument is not one the trace can carry.
                new_addr: match a.get(4) {
                    Some(x) if flags & 3 == 3 => ctx(n, "new_address", addr(x))?,
                    _ => 0,
                },
            }
        }
        "madvise" => {
            arity(n, a, 3, 3)?;
            Call::Madvise {
                addr: ctx(n, "addr", addr(a[0]))?,
                len: ctx(n, "length", number(a[1]))?,
                advice: ctx(n, "advice", flags(a[2], &MADV))? & INT_BITS,
            }
        }
        "mlock" | "munlock" => {
            arity(n, a, 2, 2)?;
            let addr = ctx(n, "addr", addr(a[0]))?;
            let len = ctx(n, "len", number(a[1]))?;
            if name == "mlock" {
                Call::Mlock { addr, len }
            } else {
                Call::Munlock { addr, len }
            }
        }
        "mlock2" => {
            arity(n, a, 3, 3)?;
            Call::Mlock2 {
                addr: ctx(n, "addr", addr(a[0]))?,
                len: ctx(n, "len", number(a[1]))?,
                flags: ctx(n, "flags", flags(a[2], &MLOCK))? & INT_BITS,
            }
        }
        "mlockall" => {
            arity(n, a, 1, 1)?;
            Call::Mlockall {
                flags: ctx(n, "flags", flags(a[0], &MCL))? & INT_BITS,
            }
        }
        "munlockall" => {
            arity(n, a, 0, 0)?;
            Call::Munlockall
        }
        "mseal" | "syscall_0x1ce" => {
            // An strace that does not know the call prints six raw words.
            let max = if name == "mseal" { 3 } else { 6 };
            arity(n, a, 3, max)?;
            Call::Mseal {
                addr: ctx(n, "addr", addr(a[0]))?,
                len: ctx(n, "len", number(a[1]))?,
                flags: ctx(n, "flags", number(a[2]))?,
            }
        }
        "remap_file_pages" => {
            arity(n, a, 5, 5)?;
            Call::RemapFilePages {
                start: ctx(n, "start", addr(a[0]))?,
                size: ctx(n, "size", number(a[1]))?,
                prot: ctx(n, "prot", flags(a[2], &PROT))?,
                pgoff: ctx(n, "pgoff", number(a[3]))?,
                flags: ctx(n, "flags", flags(a[4], &MAP))?,
            }
        }
        "prlimit64" | "setrlimit" => {
            // Only a new limit of the calling process reaches here
            // (is_modeled_line).
            let (first, want) = if name == "setrlimit" { (0, 2) } else { (1, 4) };
            arity(n, a, want, want)?;
            let (cur, max) = ctx(n, "new_limit", rlimit_struct(a[first + 1]))?;
            Call::Setrlimit {
                resource: ctx(n, "resource", flags(a[first], &RLIMIT))? & INT_BITS,
                cur,
                max,
            }
        }
        "pkey_mprotect" => {
            arity(n, a, 4, 4)?;
            Call::PkeyMprotect {
                addr: ctx(n, "addr", addr(a[0]))?,
                len: ctx(n, "len", number(a[1]))?,
                prot: ctx(n, "prot", flags(a[2], &PROT))?,
                pkey: ctx(n, "pkey", int(a[3]))? as i64,
            }
        }
        "pkey_alloc" => {
            arity(n, a, 2, 2)?;
            Call::PkeyAlloc {
                flags: ctx(n, "flags", number(a[0]))?,
                init_val: ctx(n, "access_rights", flags(a[1], &PKEY))?,
            }
        }
        "pkey_free" => {
            arity(n, a, 1, 1)?;
            Call::PkeyFree {
                pkey: ctx(n, "pkey", int(a[0]))? as i64,
            }
        }
        "memfd_secret" => {
            arity(n, a, 1, 1)?;
            Call::MemfdSecret {
                flags: ctx(n, "flags", flags(a[0], &SECRET))? & INT_BITS,
            }
        }
        "shmget" => {
            arity(n, a, 3, 3)?;
            let key = match a[0].trim() {
                "IPC_PRIVATE" => 0,
                k => i64::from(ctx(n, "key", number(k))? as i32),
            };
            Call::Shmget {
                key,
                size: ctx(n, "size", number(a[1]))?,
                flags: ctx(n, "shmflg", flags(a[2], &SHMGET))? & INT_BITS,
            }
        }
        "shmat" => {
            arity(n, a, 3, 3)?;
            Call::Shmat {
                id: i64::from(ctx(n, "shmid", number(a[0]))? as i32),
                addr: ctx(n, "shmaddr", addr(a[1]))?,
                flags: ctx(n, "shmflg", flags(a[2], &SHMAT))? & INT_BITS,
            }
        }
        "shmdt" => {
            arity(n, a, 1, 1)?;
            Call::Shmdt {
                addr: ctx(n, "shmaddr", addr(a[0]))?,
            }
        }
        "shmctl" => {
            // Only IPC_RMID reaches here (is_modeled_line).
            arity(n, a, 3, 3)?;
            Call::ShmctlRmid {
                id: i64::from(ctx(n, "shmid", number(a[0]))? as i32),
            }
        }
        "fault" => {
            arity(n, a, 2, 2)?;
            let access = match a[1].to_ascii_uppercase().as_str() {
                "READ" => Access::Read,
                "WRITE" => Access::Write,
                "EXEC" => Access::Exec,
                other => {
                    return Err(ParseError::new(format!(
                        "fault: access must be READ, WRITE or EXEC, found `{other}`"
                    )));
                }
            };
            Call::Fault {
                addr: ctx(n, "addr", addr(a[0]))?,
                access,
            }
        }
        "open" => {
            arity(n, a, 2, 3)?;
            Call::Open {
                path: ctx(n, "pathname", string(a[0]))?,
                flags: ctx(n, "flags", flags(a[1], &O_FLAGS))? & INT_BITS,
                mode: open_mode(n, a[1], a.get(2))?,
            }
        }
        "openat" => {
            arity(n, a, 3, 4)?;
            let (dirfd, path) = ctx(n, "dirfd", fd(a[0], true))?;
            p.dirfd = path;
            Call::Openat {
                dirfd,
                path: ctx(n, "pathname", string(a[1]))?,
                flags: ctx(n, "flags", flags(a[2], &O_FLAGS))? & INT_BITS,
                mode: open_mode(n, a[2], a.get(3))?,
            }
        }
        "close" | "dup" => {
            arity(n, a, 1, 1)?;
            let (fd, path) = ctx(n, "fd", fd(a[0], false))?;
            p.fd = path;
            if name == "close" {
                Call::Close { fd }
            } else {
                Call::Dup { fd }
            }
        }
        "dup2" | "dup3" => {
            let three = name == "dup3";
            let k = if three { 3 } else { 2 };
            arity(n, a, k, k)?;
            let (oldfd, path) = ctx(n, "oldfd", fd(a[0], false))?;
            p.fd = path;
            let (newfd, path) = ctx(n, "newfd", fd(a[1], false))?;
            p.newfd = path;
            if three {
                Call::Dup3 {
                    oldfd,
                    newfd,
                    flags: ctx(n, "flags", flags(a[2], &O_FLAGS))? & INT_BITS,
                }
            } else {
                Call::Dup2 { oldfd, newfd }
            }
        }
        "memfd_create" => {
            arity(n, a, 2, 2)?;
            Call::MemfdCreate {
                name: ctx(n, "name", string(a[0]))?,
                flags: ctx(n, "flags", flags(a[1], &MFD))? & INT_BITS,
            }
        }
        "ftruncate" => {
            arity(n, a, 2, 2)?;
            let (fd, path) = ctx(n, "fd", fd(a[0], false))?;
            p.fd = path;
            Call::Ftruncate {
                fd,
                length: ctx(n, "length", number(a[1]))?,
            }
        }
        other => return Err(ParseError::new(format!("`{other}` is not a modeled call"))),
    };
    Ok((call, p))
}
