//! Symbolic constants as strace 6.1 prints them on x86-64, in strace's own
//! order (`src/xlat/*.in`), and the two printing schemes strace uses:
//! flag sets (`printflags`) and single values (`printxval`).
//!
//! Each table has the entries strace 6.1 prints (`print`) and extra names
//! that are only accepted when reading (newer strace versions, C library
//! aliases, `MAP_HUGE_2MB`-style size names).

use std::fmt::Write as _;

/// A table of names: printed entries first, in strace's order.
pub(super) struct Xlat {
    /// What the values are called in error messages (`"PROT"`).
    pub kind: &'static str,
    /// Entries strace 6.1 prints, in its order.
    pub print: &'static [(&'static str, u64)],
    /// Names accepted when reading but never printed.
    pub extra: &'static [(&'static str, u64)],
    /// `NAME` in `N<<NAME`, for tables with an encoded huge page size.
    pub shift: Option<(&'static str, u32)>,
}

impl Xlat {
    /// The value of a name, printed or extra.
    pub fn lookup(&self, name: &str) -> Option<u64> {
        self.print
            .iter()
            .chain(self.extra)
            .find(|&&(n, _)| n == name)
            .map(|&(_, v)| v)
    }

    /// The first printed name with exactly this value.
    pub fn name_of(&self, val: u64) -> Option<&'static str> {
        self.print.iter().find(|&&(_, v)| v == val).map(|&(n, _)| n)
    }
}

/// Huge page sizes (`HUGETLB_FLAG_ENCODE_*`): name suffix and log2 of the size.
const HUGE_SIZES: &[(&str, u64)] = &[
    ("16KB", 14),
    ("64KB", 16),
    ("512KB", 19),
    ("1MB", 20),
    ("2MB", 21),
    ("8MB", 23),
    ("16MB", 24),
    ("32MB", 25),
    ("256MB", 28),
    ("512MB", 29),
    ("1GB", 30),
    ("2GB", 31),
    ("16GB", 34),
];

/// Shift of the encoded huge page size (`MAP_HUGE_SHIFT`, `MFD_HUGE_SHIFT`).
pub(super) const HUGE_SHIFT: u32 = 26;
/// The encoded huge page size bits.
pub(super) const HUGE_MASK: u64 = 0x3f << HUGE_SHIFT;

/// Looks up `MAP_HUGE_2MB`-style names (`prefix` = `"MAP_HUGE_"`).
pub(super) fn huge_size(prefix: &str, name: &str) -> Option<u64> {
    let size = name.strip_prefix(prefix)?;
    HUGE_SIZES
        .iter()
        .find(|&&(s, _)| s == size)
        .map(|&(_, log)| log << HUGE_SHIFT)
}

/// `mmap_prot.in`.
pub(super) static PROT: Xlat = Xlat {
    kind: "PROT",
    print: &[
        ("PROT_NONE", 0),
        ("PROT_READ", 0x1),
        ("PROT_WRITE", 0x2),
        ("PROT_EXEC", 0x4),
        ("PROT_SEM", 0x8),
        ("PROT_GROWSDOWN", 0x0100_0000),
        ("PROT_GROWSUP", 0x0200_0000),
    ],
    extra: &[],
    shift: None,
};

/// `mmap_flags.in` as strace 6.1 has it (no `MAP_DROPPABLE`, no `MAP_ABOVE4G`).
pub(super) static MAP: Xlat = Xlat {
    kind: "MAP",
    print: &[
        ("MAP_SHARED", 0x1),
        ("MAP_PRIVATE", 0x2),
        ("MAP_SHARED_VALIDATE", 0x3),
        ("MAP_FIXED", 0x10),
        ("MAP_ANONYMOUS", 0x20),
        ("MAP_32BIT", 0x40),
        ("MAP_NORESERVE", 0x4000),
        ("MAP_POPULATE", 0x8000),
        ("MAP_NONBLOCK", 0x1_0000),
        ("MAP_GROWSDOWN", 0x100),
        ("MAP_DENYWRITE", 0x800),
        ("MAP_EXECUTABLE", 0x1000),
        ("MAP_FILE", 0),
        ("MAP_LOCKED", 0x2000),
        ("MAP_STACK", 0x2_0000),
        ("MAP_HUGETLB", 0x4_0000),
        ("MAP_SYNC", 0x8_0000),
        ("MAP_UNINITIALIZED", 0x400_0000),
        ("MAP_FIXED_NOREPLACE", 0x10_0000),
    ],
    extra: &[("MAP_DROPPABLE", 0x8), ("MAP_ABOVE4G", 0x80), ("MAP_ANON", 0x20)],
    shift: Some(("MAP_HUGE_SHIFT", HUGE_SHIFT)),
};

/// `mremap_flags.in`.
pub(super) static MREMAP: Xlat = Xlat {
    kind: "MREMAP",
    print: &[("MREMAP_MAYMOVE", 1), ("MREMAP_FIXED", 2), ("MREMAP_DONTUNMAP", 4)],
    extra: &[],
    shift: None,
};

/// `madvise_cmds.in` + `madvise_hppa_generic_cmds.in` as strace 6.1 has them
/// (no `MADV_GUARD_*`).
pub(super) static MADV: Xlat = Xlat {
    kind: "MADV",
    print: &[
        ("MADV_NORMAL", 0),
        ("MADV_RANDOM", 1),
        ("MADV_SEQUENTIAL", 2),
        ("MADV_WILLNEED", 3),
        ("MADV_DONTNEED", 4),
        ("MADV_FREE", 8),
        ("MADV_REMOVE", 9),
        ("MADV_DONTFORK", 10),
        ("MADV_DOFORK", 11),
        ("MADV_MERGEABLE", 12),
        ("MADV_UNMERGEABLE", 13),
        ("MADV_HUGEPAGE", 14),
        ("MADV_NOHUGEPAGE", 15),
        ("MADV_DONTDUMP", 16),
        ("MADV_DODUMP", 17),
        ("MADV_WIPEONFORK", 18),
        ("MADV_KEEPONFORK", 19),
        ("MADV_COLD", 20),
        ("MADV_PAGEOUT", 21),
        ("MADV_POPULATE_READ", 22),
        ("MADV_POPULATE_WRITE", 23),
        ("MADV_DONTNEED_LOCKED", 24),
        ("MADV_COLLAPSE", 25),
        ("MADV_HWPOISON", 100),
        ("MADV_SOFT_OFFLINE", 101),
    ],
    extra: &[("MADV_GUARD_INSTALL", 102), ("MADV_GUARD_REMOVE", 103)],
    shift: None,
};

/// `open_access_modes.in`: the low two bits of the open flags.
pub(super) static O_ACCESS: Xlat = Xlat {
    kind: "O",
    print: &[("O_RDONLY", 0), ("O_WRONLY", 1), ("O_RDWR", 2), ("O_ACCMODE", 3)],
    extra: &[],
    shift: None,
};

/// `open_mode_flags.in` (x86-64 values), also used for `dup3` flags.
pub(super) static O_FLAGS: Xlat = Xlat {
    kind: "O",
    print: &[
        ("O_CREAT", 0o100),
        ("O_EXCL", 0o200),
        ("O_NOCTTY", 0o400),
        ("O_TRUNC", 0o1000),
        ("O_APPEND", 0o2000),
        ("O_NONBLOCK", 0o4000),
        ("O_SYNC", 0o4010000),
        ("__O_SYNC", 0o4000000),
        ("O_DSYNC", 0o10000),
        ("O_DIRECT", 0o40000),
        ("O_LARGEFILE", 0o100000),
        ("O_NOFOLLOW", 0o400000),
        ("O_NOATIME", 0o1000000),
        ("O_CLOEXEC", 0o2000000),
        ("O_PATH", 0o10000000),
        ("O_TMPFILE", 0o20200000),
        ("__O_TMPFILE", 0o20000000),
        ("O_DIRECTORY", 0o200000),
        ("FASYNC", 0o20000),
    ],
    extra: &[
        ("O_RDONLY", 0),
        ("O_WRONLY", 1),
        ("O_RDWR", 2),
        ("O_ACCMODE", 3),
        ("O_ASYNC", 0o20000),
        ("O_NDELAY", 0o4000),
        ("O_RSYNC", 0o4010000),
        ("O_FSYNC", 0o4010000),
    ],
    shift: None,
};

/// `mlock_flags.in`.
pub(super) static MLOCK: Xlat = Xlat {
    kind: "MLOCK",
    print: &[("MLOCK_ONFAULT", 1)],
    extra: &[],
    shift: None,
};

/// `resources.in`: `RLIMIT_*`.
pub(super) static RLIMIT: Xlat = Xlat {
    kind: "RLIMIT",
    print: &[
        ("RLIMIT_CPU", 0),
        ("RLIMIT_FSIZE", 1),
        ("RLIMIT_DATA", 2),
        ("RLIMIT_STACK", 3),
        ("RLIMIT_CORE", 4),
        ("RLIMIT_RSS", 5),
        ("RLIMIT_NPROC", 6),
        ("RLIMIT_NOFILE", 7),
        ("RLIMIT_MEMLOCK", 8),
        ("RLIMIT_AS", 9),
        ("RLIMIT_LOCKS", 10),
        ("RLIMIT_SIGPENDING", 11),
        ("RLIMIT_MSGQUEUE", 12),
        ("RLIMIT_NICE", 13),
        ("RLIMIT_RTPRIO", 14),
        ("RLIMIT_RTTIME", 15),
    ],
    extra: &[],
    shift: None,
};

/// `memfd_secret`'s flags (strace decodes only `O_CLOEXEC`).
/// `pkey_alloc`'s access rights (strace's `pkey_access`).
pub(super) static PKEY: Xlat = Xlat {
    kind: "PKEY",
    print: &[
        ("PKEY_DISABLE_ACCESS", 0x1),
        ("PKEY_DISABLE_WRITE", 0x2),
        ("PKEY_DISABLE_EXECUTE", 0x4),
    ],
    extra: &[],
    shift: None,
};

pub(super) static SECRET: Xlat = Xlat {
    kind: "O",
    print: &[("O_CLOEXEC", 0o2000000)],
    extra: &[],
    shift: None,
};

/// `shm_resource_flags.in` (`shmget`'s flags above the mode bits).
pub(super) static SHMGET: Xlat = Xlat {
    kind: "IPC",
    print: &[
        ("IPC_CREAT", 0o1000),
        ("IPC_EXCL", 0o2000),
        ("SHM_HUGETLB", 0o4000),
        ("SHM_NORESERVE", 0o10000),
    ],
    extra: &[],
    shift: Some(("SHM_HUGE_SHIFT", HUGE_SHIFT)),
};

/// `shm_flags.in` (`shmat`'s flags).
pub(super) static SHMAT: Xlat = Xlat {
    kind: "SHM",
    print: &[
        ("SHM_RDONLY", 0o10000),
        ("SHM_RND", 0o20000),
        ("SHM_REMAP", 0o40000),
        ("SHM_EXEC", 0o100000),
    ],
    extra: &[],
    shift: None,
};

/// `mlockall_flags.in`.
pub(super) static MCL: Xlat = Xlat {
    kind: "MCL",
    print: &[("MCL_CURRENT", 1), ("MCL_FUTURE", 2), ("MCL_ONFAULT", 4)],
    extra: &[],
    shift: None,
};

/// `memfd_create_flags.in` as strace 6.1 has it (no `MFD_NOEXEC_SEAL`, `MFD_EXEC`).
pub(super) static MFD: Xlat = Xlat {
    kind: "MFD",
    print: &[("MFD_CLOEXEC", 1), ("MFD_ALLOW_SEALING", 2), ("MFD_HUGETLB", 4)],
    extra: &[("MFD_NOEXEC_SEAL", 8), ("MFD_EXEC", 0x10)],
    shift: Some(("MFD_HUGE_SHIFT", HUGE_SHIFT)),
};

/// strace's `printflags_ex`: the names of the set bits in table order, then
/// the remaining bits in hex.  With nothing named, the hex value followed by
/// `/* DFLT */` (or just the value without `dflt`); zero without a zero entry
/// prints `0`.
pub(super) fn print_flags(out: &mut String, mut flags: u64, x: &Xlat, dflt: Option<&str>) {
    let mut n = 0;
    for &(name, v) in x.print {
        if flags == v || (v != 0 && flags & v == v) {
            if n > 0 {
                out.push('|');
            }
            out.push_str(name);
            n += 1;
            flags &= !v;
        }
        if flags == 0 {
            break;
        }
    }
    if n > 0 {
        if flags != 0 {
            let _ = write!(out, "|{flags:#x}");
        }
    } else if flags != 0 {
        let _ = write!(out, "{flags:#x}");
        if let Some(d) = dflt {
            let _ = write!(out, " /* {d} */");
        }
    } else if dflt.is_some() {
        out.push('0');
    }
}

/// strace's `printxval`: the name of the value, or `0x5 /* DFLT */`.
pub(super) fn print_xval(out: &mut String, val: u64, x: &Xlat, dflt: &str) {
    match x.name_of(val) {
        Some(name) => out.push_str(name),
        None => {
            let _ = write!(out, "{val:#x} /* {dflt} */");
        }
    }
}
