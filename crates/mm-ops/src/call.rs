//! The system-call vocabulary shared by the model, the host-kernel oracle
//! (`mm-host`) and the strace reader/writer ([`crate::strace`]).
//!
//! A [`Call`] is one system call with its raw arguments, exactly as a program
//! passes them; an [`Outcome`] is what the kernel (or the model) answered.

use crate::uapi::Errno;

/// The kind of memory access of a page fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// A load.
    Read,
    /// A store.
    Write,
    /// An instruction fetch.
    Exec,
}

impl Access {
    /// The name used in `fault(ADDR, READ|WRITE|EXEC)` lines.
    pub fn name(self) -> &'static str {
        match self {
            Access::Read => "READ",
            Access::Write => "WRITE",
            Access::Exec => "EXEC",
        }
    }
}

/// A signal delivered by a page fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Signal {
    /// No VMA, or the VMA forbids the access.
    Segv,
    /// The page lies beyond the end of the backing object.
    Bus,
}

impl Signal {
    /// `"SIGSEGV"` or `"SIGBUS"`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Segv => "SIGSEGV",
            Signal::Bus => "SIGBUS",
        }
    }
}

/// One system call (or the model's own `fault`), with raw argument values.
///
/// Addresses, lengths and flag words are `u64` as the kernel sees them;
/// descriptors are `i64` so that `-1` and `AT_FDCWD` (-100) are representable.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Call {
    /// `mmap(addr, len, prot, flags, fd, off)`.
    Mmap {
        /// Hint or fixed address (0 = `NULL`).
        addr: u64,
        /// Length in bytes.
        len: u64,
        /// `PROT_*` bits.
        prot: u64,
        /// `MAP_*` bits.
        flags: u64,
        /// File descriptor (`-1` for anonymous memory).
        fd: i64,
        /// File offset in bytes.
        off: u64,
    },
    /// `munmap(addr, len)`.
    Munmap {
        /// Start address.
        addr: u64,
        /// Length in bytes.
        len: u64,
    },
    /// `mprotect(addr, len, prot)`.
    Mprotect {
        /// Start address.
        addr: u64,
        /// Length in bytes.
        len: u64,
        /// `PROT_*` bits, including `PROT_GROWSDOWN`/`PROT_GROWSUP`.
        prot: u64,
    },
    /// `brk(addr)` (0 = `NULL`, a query).
    Brk {
        /// Requested break.
        addr: u64,
    },
    /// `mremap(old_addr, old_len, new_len, flags, new_addr)`.
    Mremap {
        /// Start of the old range.
        old_addr: u64,
        /// Length of the old range.
        old_len: u64,
        /// Requested new length.
        new_len: u64,
        /// `MREMAP_*` bits.
        flags: u64,
        /// Target address (with `MREMAP_FIXED`).
        new_addr: u64,
    },
    /// `madvise(addr, len, advice)`.
    Madvise {
        /// Start address.
        addr: u64,
        /// Length in bytes.
        len: u64,
        /// `MADV_*` value.
        advice: u64,
    },
    /// `mlock(addr, len)`.
    Mlock {
        /// Start address (rounded down to a page by the kernel).
        addr: u64,
        /// Length in bytes.
        len: u64,
    },
    /// `mlock2(addr, len, flags)`.
    Mlock2 {
        /// Start address.
        addr: u64,
        /// Length in bytes.
        len: u64,
        /// `MLOCK_ONFAULT` or 0 (a C `int`).
        flags: u64,
    },
    /// `munlock(addr, len)`.
    Munlock {
        /// Start address.
        addr: u64,
        /// Length in bytes.
        len: u64,
    },
    /// `mseal(addr, len, flags)` (Linux 6.10+, x86-64 number 462).
    Mseal {
        /// Start address (must be page aligned).
        addr: u64,
        /// Length in bytes (rounded up to pages).
        len: u64,
        /// Reserved: must be 0.
        flags: u64,
    },
    /// `remap_file_pages(start, size, prot, pgoff, flags)` (deprecated).
    RemapFilePages {
        /// Start address.
        start: u64,
        /// Length in bytes.
        size: u64,
        /// Must be 0.
        prot: u64,
        /// File offset in pages.
        pgoff: u64,
        /// Only `MAP_NONBLOCK` counts.
        flags: u64,
    },
    /// `prlimit64(0, resource, {cur, max}, …)` or `setrlimit(resource,
    /// {cur, max})`: the calling process's new limit (the calls that only
    /// read a limit, or set another process's, are not modeled).
    Setrlimit {
        /// `RLIMIT_*` number.
        resource: u64,
        /// New soft limit (`u64::MAX`: `RLIM_INFINITY`).
        cur: u64,
        /// New hard limit.
        max: u64,
    },
    /// `pkey_mprotect(addr, len, prot, pkey)` (x86-64 number 329):
    /// `mprotect` that also gives the VMAs protection key `pkey` (a C
    /// `int`; -1: as `mprotect`).
    PkeyMprotect {
        /// Start address.
        addr: u64,
        /// Length in bytes.
        len: u64,
        /// `PROT_*` bits.
        prot: u64,
        /// The key, or -1.
        pkey: i64,
    },
    /// `pkey_alloc(flags, access_rights)` (330): a new protection key.
    PkeyAlloc {
        /// Reserved: must be 0.
        flags: u64,
        /// `PKEY_DISABLE_ACCESS`, `PKEY_DISABLE_WRITE`.
        init_val: u64,
    },
    /// `pkey_free(pkey)` (331).
    PkeyFree {
        /// The key (a C `int`).
        pkey: i64,
    },
    /// `memfd_secret(flags)` (x86-64 number 447): a secret memory object.
    MemfdSecret {
        /// `O_CLOEXEC` or 0 (a C `unsigned int`).
        flags: u64,
    },
    /// `shmget(key, size, shmflg)`: a System V segment's id.
    Shmget {
        /// The key (a C `key_t`); `IPC_PRIVATE` (0) makes a new segment.
        key: i64,
        /// Size in bytes.
        size: u64,
        /// `IPC_CREAT`, `IPC_EXCL`, `SHM_HUGETLB`, `SHM_NORESERVE` and the
        /// permission bits.
        flags: u64,
    },
    /// `shmat(shmid, addr, shmflg)`: maps a segment.
    Shmat {
        /// The segment's id.
        id: i64,
        /// Where (0: anywhere).
        addr: u64,
        /// `SHM_RDONLY`, `SHM_RND`, `SHM_REMAP`, `SHM_EXEC`.
        flags: u64,
    },
    /// `shmdt(addr)`: unmaps the segment attached at `addr`.
    Shmdt {
        /// The address `shmat` returned.
        addr: u64,
    },
    /// `shmctl(shmid, IPC_RMID, …)`: removes a segment (the other
    /// commands leave the address space alone and are not modeled).
    ShmctlRmid {
        /// The segment's id.
        id: i64,
    },
    /// `mlockall(flags)`.
    Mlockall {
        /// `MCL_*` bits (a C `int`).
        flags: u64,
    },
    /// `munlockall()`.
    Munlockall,
    /// The model's own `fault(addr, READ|WRITE|EXEC)`: one user access to `addr`.
    Fault {
        /// Faulting address.
        addr: u64,
        /// Kind of access.
        access: Access,
    },
    /// `open(path, flags[, mode])`.
    Open {
        /// Path as passed.
        path: String,
        /// `O_*` bits.
        flags: u64,
        /// Creation mode, when given.
        mode: Option<u64>,
    },
    /// `openat(dirfd, path, flags[, mode])`.
    Openat {
        /// Directory descriptor (`AT_FDCWD` = -100).
        dirfd: i64,
        /// Path as passed.
        path: String,
        /// `O_*` bits.
        flags: u64,
        /// Creation mode, when given.
        mode: Option<u64>,
    },
    /// `close(fd)`.
    Close {
        /// Descriptor.
        fd: i64,
    },
    /// `dup(fd)`.
    Dup {
        /// Descriptor to duplicate.
        fd: i64,
    },
    /// `dup2(oldfd, newfd)`.
    Dup2 {
        /// Descriptor to duplicate.
        oldfd: i64,
        /// Target descriptor.
        newfd: i64,
    },
    /// `dup3(oldfd, newfd, flags)`.
    Dup3 {
        /// Descriptor to duplicate.
        oldfd: i64,
        /// Target descriptor.
        newfd: i64,
        /// `O_CLOEXEC` or 0.
        flags: u64,
    },
    /// `memfd_create(name, flags)`.
    MemfdCreate {
        /// Name shown as `/memfd:NAME (deleted)`.
        name: String,
        /// `MFD_*` bits.
        flags: u64,
    },
    /// `ftruncate(fd, length)`: sets the size of the file behind `fd`.
    Ftruncate {
        /// Descriptor.
        fd: i64,
        /// New size in bytes.
        length: u64,
    },
}

impl Call {
    /// The system call's name as strace prints it (`"fault"` for faults).
    pub fn name(&self) -> &'static str {
        match self {
            Call::Mmap { .. } => "mmap",
            Call::Munmap { .. } => "munmap",
            Call::Mprotect { .. } => "mprotect",
            Call::Brk { .. } => "brk",
            Call::Mremap { .. } => "mremap",
            Call::Madvise { .. } => "madvise",
            Call::Mlock { .. } => "mlock",
            Call::Mlock2 { .. } => "mlock2",
            Call::Munlock { .. } => "munlock",
            Call::Mseal { .. } => "mseal",
            Call::Shmget { .. } => "shmget",
            Call::Shmat { .. } => "shmat",
            Call::Shmdt { .. } => "shmdt",
            Call::ShmctlRmid { .. } => "shmctl",
            Call::Mlockall { .. } => "mlockall",
            Call::Munlockall => "munlockall",
            Call::Fault { .. } => "fault",
            Call::Open { .. } => "open",
            Call::Openat { .. } => "openat",
            Call::Close { .. } => "close",
            Call::Dup { .. } => "dup",
            Call::Dup2 { .. } => "dup2",
            Call::Dup3 { .. } => "dup3",
            Call::MemfdCreate { .. } => "memfd_create",
            Call::MemfdSecret { .. } => "memfd_secret",
            Call::PkeyMprotect { .. } => "pkey_mprotect",
            Call::PkeyAlloc { .. } => "pkey_alloc",
            Call::PkeyFree { .. } => "pkey_free",
            Call::Setrlimit { .. } => "prlimit64",
            Call::RemapFilePages { .. } => "remap_file_pages",
            Call::Ftruncate { .. } => "ftruncate",
        }
    }

    /// True for the calls whose success value is an address (strace prints
    /// it in hex): `mmap`, `mremap`, `brk` and `shmat`.
    pub fn returns_address(&self) -> bool {
        matches!(
            self,
            Call::Mmap { .. } | Call::Mremap { .. } | Call::Brk { .. } | Call::Shmat { .. }
        )
    }

    /// True for the calls that create a file descriptor.
    pub fn creates_fd(&self) -> bool {
        matches!(
            self,
            Call::Open { .. }
                | Call::Openat { .. }
                | Call::Dup { .. }
                | Call::Dup2 { .. }
                | Call::Dup3 { .. }
                | Call::MemfdCreate { .. }
                | Call::MemfdSecret { .. }
        )
    }
}

/// What a call returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Success with a value: an address (mmap, mremap, brk), 0, or a descriptor.
    Val(u64),
    /// Failure with an errno (`-1 ENOMEM (Cannot allocate memory)`).
    Err(Errno),
    /// A fault that delivered a signal.
    Signal(Signal),
}

impl Outcome {
    /// Renders the result as strace does: `0x7f…` for addresses (`hex`),
    /// decimal otherwise, `-1 ERRNO (message)` for errors and the signal name
    /// for faults.
    pub fn render(&self, hex: bool) -> String {
        match *self {
            Outcome::Val(v) if hex && v != 0 => format!("{v:#x}"),
            Outcome::Val(v) => format!("{v}"),
            Outcome::Err(e) => format!("-1 {e}"),
            Outcome::Signal(s) => s.name().to_string(),
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render(false))
    }
}
