//! Canonical strace syntax: what strace 6.1 prints by default (no `-y`, no
//! `-X`, `-s 32`) for a call and its result.

use std::fmt::Write as _;

use super::errno;
use super::xlat::{
    HUGE_MASK, HUGE_SHIFT, MADV, MAP, MCL, MFD, MLOCK, MREMAP, O_ACCESS, O_FLAGS, PKEY, PROT, RLIMIT, SECRET, SHMAT,
    SHMGET, print_flags, print_xval,
};
use crate::call::{Call, Outcome};

/// strace's default `-s`: string arguments longer than this are cut and
/// followed by `...` (paths are never cut).
const STRING_LIMIT: usize = 32;

/// `printaddr`: `NULL` or hex.
fn addr(out: &mut String, a: u64) {
    if a == 0 {
        out.push_str("NULL");
    } else {
        let _ = write!(out, "{a:#x}");
    }
}

/// `PRINT_VAL_X`: `0` or hex.
fn hex(out: &mut String, v: u64) {
    if v == 0 {
        out.push('0');
    } else {
        let _ = write!(out, "{v:#x}");
    }
}

/// A descriptor is an `int` to strace.
fn fd(out: &mut String, fd: i64) {
    let _ = write!(out, "{}", fd as i32);
}

/// `print_mmap_flags`: the mapping type, the other flags, then the huge page
/// size as `N<<MAP_HUGE_SHIFT`.  strace masks the size bits with a 32-bit
/// mask, which also drops bits 32..63 of the flags from the output.
fn mmap_flags(out: &mut String, flags: u64) {
    print_xval(out, flags & 0xf, &MAP, "MAP_???");
    let huge = flags & HUGE_MASK;
    let rest = flags & !0xf & u64::from(!(HUGE_MASK as u32));
    if rest != 0 {
        out.push('|');
        print_flags(out, rest, &MAP, None);
    }
    if huge != 0 {
        let _ = write!(out, "|{}<<MAP_HUGE_SHIFT", huge >> HUGE_SHIFT);
    }
}

/// `memfd_create` flags (an `unsigned int`).
fn memfd_flags(out: &mut String, flags: u64) {
    let flags = flags as u32 as u64;
    if flags == 0 {
        out.push('0');
        return;
    }
    let huge = flags & HUGE_MASK;
    let rest = flags & !HUGE_MASK;
    if rest != 0 || huge == 0 {
        print_flags(out, rest, &MFD, Some("MFD_???"));
    }
    if huge != 0 {
        if rest != 0 {
            out.push('|');
        }
        let _ = write!(out, "{}<<MFD_HUGE_SHIFT", huge >> HUGE_SHIFT);
    }
}

/// open(2) flags (an `unsigned int`): the access mode, then the other flags.
fn open_flags(out: &mut String, flags: u64) {
    let flags = flags as u32 as u64;
    print_xval(out, flags & 3, &O_ACCESS, "O_???");
    let rest = flags & !3;
    if rest != 0 {
        out.push('|');
        print_flags(out, rest, &O_FLAGS, None);
    }
}

/// The mode argument, printed when the flags create a file
/// (`O_CREAT` or `__O_TMPFILE`), as `%#03o` of a 16-bit `umode_t`.
fn open_mode(out: &mut String, flags: u64, mode: Option<u64>) {
    if flags & (0o100 | 0o20000000) != 0 {
        let m = mode.unwrap_or(0) as u16;
        let s = if m == 0 { "0".to_string() } else { format!("0{m:o}") };
        let _ = write!(out, ", {s:0>3}");
    }
}

/// `s` quoted as strace prints a string argument (`string_quote` without
/// `-x`, whole, never cut): `"…"` with `\"`, `\\`, `\f`, `\n`, `\r`, `\t`,
/// `\v` and octal escapes. The recorder writes paths and argv with it, so
/// that they read back byte for byte.
pub fn quote_string(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    quote(&mut out, s, None);
    out
}

/// strace's `string_quote` (without `-x`): `"…"` with `\"`, `\\`, `\f`, `\n`,
/// `\r`, `\t`, `\v` and octal escapes (three digits when an octal digit
/// follows), then `...` when cut at `limit` bytes.
pub(super) fn quote(out: &mut String, s: &[u8], limit: Option<usize>) {
    let (s, cut) = match limit {
        Some(l) if s.len() > l => (&s[..l], true),
        _ => (s, false),
    };
    out.push('"');
    for (i, &c) in s.iter().enumerate() {
        match c {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x0c => out.push_str("\\f"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x0b => out.push_str("\\v"),
            0x20..=0x7e => out.push(c as char),
            _ => {
                let digit_follows = s.get(i + 1).is_some_and(|d| (b'0'..=b'7').contains(d));
                if digit_follows {
                    let _ = write!(out, "\\{c:03o}");
                } else {
                    let _ = write!(out, "\\{c:o}");
                }
            }
        }
    }
    out.push('"');
    if cut {
        out.push_str("...");
    }
}

/// The call in canonical strace syntax, without ` = result`: exactly what
/// strace 6.1 prints by default for the same system call on x86-64.
///
/// As strace does, this drops what strace does not show: bits 32..63 of the
/// mmap flags, the upper halves of `int` arguments (descriptors, open and
/// dup3 flags, madvise advice, memfd, mlock2 and mlockall flags), mode bits above 16, the mode
/// of an open without `O_CREAT`/`__O_TMPFILE`, and mremap's new address
/// unless both `MREMAP_MAYMOVE` and `MREMAP_FIXED` are set.  A memfd name is
/// cut at 32 bytes and followed by `...`.
pub fn format_call(call: &Call) -> String {
    let mut o = String::with_capacity(64);
    o.push_str(call.name());
    o.push('(');
    match *call {
        Call::Mmap {
            addr: a,
            len,
            prot,
            flags,
            fd: f,
            off,
        } => {
            addr(&mut o, a);
            let _ = write!(o, ", {len}, ");
            print_flags(&mut o, prot, &PROT, Some("PROT_???"));
            o.push_str(", ");
            mmap_flags(&mut o, flags);
            o.push_str(", ");
            fd(&mut o, f);
            o.push_str(", ");
            hex(&mut o, off);
        }
        Call::Munmap { addr: a, len } => {
            addr(&mut o, a);
            let _ = write!(o, ", {len}");
        }
        Call::Mprotect { addr: a, len, prot } => {
            addr(&mut o, a);
            let _ = write!(o, ", {len}, ");
            print_flags(&mut o, prot, &PROT, Some("PROT_???"));
        }
        Call::Brk { addr: a } => addr(&mut o, a),
        Call::Mremap {
            old_addr,
            old_len,
            new_len,
            flags,
            new_addr,
        } => {
            addr(&mut o, old_addr);
            let _ = write!(o, ", {old_len}, {new_len}, ");
            print_flags(&mut o, flags, &MREMAP, Some("MREMAP_???"));
            if flags & 3 == 3 {
                o.push_str(", ");
                addr(&mut o, new_addr);
            }
        }
        Call::Madvise { addr: a, len, advice } => {
            addr(&mut o, a);
            let _ = write!(o, ", {len}, ");
            print_xval(&mut o, advice as u32 as u64, &MADV, "MADV_???");
        }
        Call::Mlock { addr: a, len } | Call::Munlock { addr: a, len } => {
            addr(&mut o, a);
            let _ = write!(o, ", {len}");
        }
        Call::Mlock2 { addr: a, len, flags } => {
            addr(&mut o, a);
            let _ = write!(o, ", {len}, ");
            print_flags(&mut o, flags as u32 as u64, &MLOCK, Some("MLOCK_???"));
        }
        Call::Mlockall { flags } => print_flags(&mut o, flags as u32 as u64, &MCL, Some("MCL_???")),
        Call::Munlockall => {}
        Call::Mseal { addr: a, len, flags } => {
            // As strace 6.10 and later print it (6.1 does not know it).
            addr(&mut o, a);
            let _ = write!(o, ", {len}, ");
            hex(&mut o, flags);
        }
        Call::Shmget { key, size, flags } => {
            if key as i32 == 0 {
                o.push_str("IPC_PRIVATE");
            } else {
                let _ = write!(o, "{:#x}", key as u32);
            }
            let _ = write!(o, ", {size}, ");
            // The flags, then the huge page size as N<<SHM_HUGE_SHIFT,
            // then the mode.
            let high = flags as u32 as u64 & !0o777;
            let (huge, rest) = (high & HUGE_MASK, high & !HUGE_MASK);
            if rest != 0 || huge == 0 {
                print_flags(&mut o, rest, &SHMGET, None);
            }
            if huge != 0 {
                if rest != 0 {
                    o.push('|');
                }
                let _ = write!(o, "{}<<SHM_HUGE_SHIFT", huge >> HUGE_SHIFT);
            }
            if high != 0 {
                o.push('|');
            }
            // strace's "%#03o".
            let mode = flags & 0o777;
            let m = if mode == 0 {
                "0".to_string()
            } else {
                format!("0{mode:o}")
            };
            let _ = write!(o, "{m:0>3}");
        }
        Call::Shmat { id, addr: a, flags } => {
            let _ = write!(o, "{}, ", id as i32);
            addr(&mut o, a);
            o.push_str(", ");
            print_flags(&mut o, flags as u32 as u64, &SHMAT, Some("SHM_???"));
        }
        Call::Shmdt { addr: a } => addr(&mut o, a),
        Call::RemapFilePages {
            start,
            size,
            prot,
            pgoff,
            flags,
        } => {
            addr(&mut o, start);
            let _ = write!(o, ", {size}, ");
            print_flags(&mut o, prot, &PROT, Some("PROT_???"));
            let _ = write!(o, ", {pgoff}, ");
            mmap_flags(&mut o, flags);
        }
        Call::Setrlimit { resource, cur, max } => {
            o.push_str("0, ");
            print_xval(&mut o, resource as u32 as u64, &RLIMIT, "RLIMIT_???");
            o.push_str(", {rlim_cur=");
            rlim(&mut o, cur);
            o.push_str(", rlim_max=");
            rlim(&mut o, max);
            o.push_str("}, NULL");
        }
        Call::PkeyMprotect {
            addr: a,
            len,
            prot,
            pkey,
        } => {
            addr(&mut o, a);
            let _ = write!(o, ", {len}, ");
            print_flags(&mut o, prot, &PROT, Some("PROT_???"));
            let _ = write!(o, ", {}", pkey as i32);
        }
        Call::PkeyAlloc { flags, init_val } => {
            if flags == 0 {
                o.push('0');
            } else {
                let _ = write!(o, "{flags:#x}");
            }
            o.push_str(", ");
            print_flags(&mut o, init_val, &PKEY, Some("PKEY_???"));
        }
        Call::PkeyFree { pkey } => {
            let _ = write!(o, "{}", pkey as i32);
        }
        Call::MemfdSecret { flags } => {
            // strace 6.1: `O_CLOEXEC`, `0x1`, `O_CLOEXEC|0x1`, `0`.
            let f = flags as u32 as u64;
            if f == 0 {
                o.push('0');
            } else {
                print_flags(&mut o, f, &SECRET, None);
            }
        }
        Call::ShmctlRmid { id } => {
            let _ = write!(o, "{}, IPC_RMID, NULL", id as i32);
        }
        Call::Fault { addr: a, access } => {
            addr(&mut o, a);
            let _ = write!(o, ", {}", access.name());
        }
        Call::Open { ref path, flags, mode } => {
            quote(&mut o, path.as_bytes(), None);
            o.push_str(", ");
            open_flags(&mut o, flags);
            open_mode(&mut o, flags, mode);
        }
        Call::Openat {
            dirfd,
            ref path,
            flags,
            mode,
        } => {
            if dirfd as i32 == crate::uapi::AT_FDCWD as i32 {
                o.push_str("AT_FDCWD");
            } else {
                fd(&mut o, dirfd);
            }
            o.push_str(", ");
            quote(&mut o, path.as_bytes(), None);
            o.push_str(", ");
            open_flags(&mut o, flags);
            open_mode(&mut o, flags, mode);
        }
        Call::Close { fd: f } | Call::Dup { fd: f } => fd(&mut o, f),
        Call::Dup2 { oldfd, newfd } => {
            fd(&mut o, oldfd);
            o.push_str(", ");
            fd(&mut o, newfd);
        }
        Call::Dup3 { oldfd, newfd, flags } => {
            fd(&mut o, oldfd);
            o.push_str(", ");
            fd(&mut o, newfd);
            o.push_str(", ");
            print_flags(&mut o, flags as u32 as u64, &O_FLAGS, Some("O_???"));
        }
        Call::MemfdCreate { ref name, flags } => {
            // A name read as `"…"...` holds the 32 bytes strace showed and
            // then `...`, so cutting it again reproduces the same text.
            quote(&mut o, name.as_bytes(), Some(STRING_LIMIT));
            o.push_str(", ");
            memfd_flags(&mut o, flags);
        }
        Call::Ftruncate { fd: f, length } => {
            fd(&mut o, f);
            let _ = write!(o, ", {length}");
        }
    }
    o.push(')');
    o
}

/// strace's `print_rlim64_t`: `RLIM64_INFINITY`, `N*1024` for multiples
/// of 1 KiB above it, else decimal.
fn rlim(o: &mut String, v: u64) {
    if v == u64::MAX {
        o.push_str("RLIM64_INFINITY");
    } else if v > 1024 && v.is_multiple_of(1024) {
        let _ = write!(o, "{}*1024", v / 1024);
    } else {
        let _ = write!(o, "{v}");
    }
}

/// What strace shows of `c`: the call that reading [`format_call`]'s text
/// gives back. It differs from `c` only where `format_call` drops what
/// strace does not show (listed there); a memfd name longer than 32 bytes,
/// for instance, comes back as its first 32 bytes and `...`.
pub fn visible(c: &Call) -> Call {
    let fd = |f: &mut i64| *f = i64::from(*f as i32);
    let int = |v: &mut u64| *v = u64::from(*v as u32);
    let mode = |flags: u64, m: &mut Option<u64>| {
        *m = (flags & (0o100 | 0o20000000) != 0).then(|| u64::from(m.unwrap_or(0) as u16));
    };
    let mut c = c.clone();
    match &mut c {
        Call::Mmap { flags, fd: f, .. } => {
            int(flags);
            fd(f);
        }
        Call::Mremap { flags, new_addr, .. } if *flags & 3 != 3 => *new_addr = 0,
        Call::Madvise { advice, .. } => int(advice),
        Call::Mlock2 { flags, .. } | Call::Mlockall { flags } => int(flags),
        Call::Shmget { key, flags, .. } => {
            fd(key);
            int(flags);
        }
        Call::Shmat { id, flags, .. } => {
            fd(id);
            int(flags);
        }
        Call::ShmctlRmid { id } => fd(id),
        Call::MemfdSecret { flags } => int(flags),
        Call::PkeyMprotect { pkey, .. } | Call::PkeyFree { pkey } => fd(pkey),
        Call::Setrlimit { resource, .. } => int(resource),
        // Printed by the same function as mmap's flags.
        Call::RemapFilePages { flags, .. } => int(flags),
        Call::Open { flags, mode: m, .. } => {
            mode(*flags, m);
            int(flags);
        }
        Call::Openat {
            dirfd, flags, mode: m, ..
        } => {
            fd(dirfd);
            mode(*flags, m);
            int(flags);
        }
        Call::Close { fd: f } | Call::Dup { fd: f } | Call::Ftruncate { fd: f, .. } => fd(f),
        Call::Dup2 { oldfd, newfd } => {
            fd(oldfd);
            fd(newfd);
        }
        Call::Dup3 { oldfd, newfd, flags } => {
            fd(oldfd);
            fd(newfd);
            int(flags);
        }
        Call::MemfdCreate { name, flags } => {
            // Cut as bytes (a character may be split), read back lossily.
            if name.len() > STRING_LIMIT {
                *name = format!("{}...", String::from_utf8_lossy(&name.as_bytes()[..STRING_LIMIT]));
            }
            int(flags);
        }
        _ => {}
    }
    c
}

/// The result as strace 6.1 prints it after ` = `: hex for the addresses
/// mmap, mremap and brk return (`0` for zero), signed decimal otherwise,
/// `-1 ENOMEM (Cannot allocate memory)` for errors (`-1 (errno 200)` for an
/// errno strace has no name for, `? ERESTARTSYS (…)` for the restart
/// errnos), and `SIGSEGV`/`SIGBUS` for faults.
pub fn format_result(call: &Call, outcome: &Outcome) -> String {
    let mut o = String::new();
    match *outcome {
        Outcome::Val(v) => {
            if call.returns_address() {
                hex(&mut o, v);
            } else {
                let _ = write!(o, "{}", v as i64);
            }
        }
        Outcome::Err(e) => match errno::describe(e) {
            Some((name, msg)) if errno::is_restart(e) => {
                let _ = write!(o, "? {name} ({msg})");
            }
            Some((name, msg)) => {
                let _ = write!(o, "-1 {name} ({msg})");
            }
            None => {
                let _ = write!(o, "-1 (errno {})", e.0);
            }
        },
        Outcome::Signal(s) => o.push_str(s.name()),
    }
    o
}
