//! The x86-64 user ABI of the modeled system calls: `PROT_*`, `MAP_*`,
//! `MREMAP_*`, `MADV_*`, `O_*`, `MFD_*` and errno values.
//!
//! Values are those of the Linux UAPI headers (`include/uapi/asm-generic/mman-common.h`,
//! `arch/x86/include/uapi/asm/mman.h`, `include/uapi/linux/mman.h`,
//! `include/uapi/asm-generic/errno-base.h`).

/// Page size on x86-64.
pub const PAGE_SIZE: u64 = 4096;
/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: u32 = 12;
/// Mask of the page-number bits of an address.
pub const PAGE_MASK: u64 = !(PAGE_SIZE - 1);
/// Size of a PMD-mapped transparent huge page.
pub const PMD_SIZE: u64 = 2 << 20;

/// Pages may be read.
pub const PROT_READ: u64 = 0x1;
/// Pages may be written.
pub const PROT_WRITE: u64 = 0x2;
/// Pages may be executed.
pub const PROT_EXEC: u64 = 0x4;
/// Pages may be used for atomic operations (accepted and ignored on x86-64).
pub const PROT_SEM: u64 = 0x8;
/// No access.
pub const PROT_NONE: u64 = 0x0;
/// mprotect: extend the change down to the start of a grows-down mapping.
pub const PROT_GROWSDOWN: u64 = 0x0100_0000;
/// mprotect: extend the change up to the end of a grows-up mapping.
pub const PROT_GROWSUP: u64 = 0x0200_0000;

/// Mask of the mapping type.
pub const MAP_TYPE: u64 = 0x0f;
/// Shared mapping.
pub const MAP_SHARED: u64 = 0x01;
/// Private copy-on-write mapping.
pub const MAP_PRIVATE: u64 = 0x02;
/// Shared mapping that rejects unknown flags with `EOPNOTSUPP`.
pub const MAP_SHARED_VALIDATE: u64 = 0x03;
/// Droppable anonymous mapping (Linux 6.11+).
pub const MAP_DROPPABLE: u64 = 0x08;
/// Place the mapping exactly at `addr`, replacing what is there.
pub const MAP_FIXED: u64 = 0x10;
/// Anonymous memory; `fd` is ignored.
pub const MAP_ANONYMOUS: u64 = 0x20;
/// x86-64: place the mapping in the first 2 GiB.
pub const MAP_32BIT: u64 = 0x40;
/// x86-64: place the mapping above 4 GiB.
pub const MAP_ABOVE4G: u64 = 0x80;
/// Stack-like segment that grows down.
pub const MAP_GROWSDOWN: u64 = 0x0100;
/// Ignored (historical).
pub const MAP_DENYWRITE: u64 = 0x0800;
/// Ignored (historical).
pub const MAP_EXECUTABLE: u64 = 0x1000;
/// Lock the pages (`VM_LOCKED`).
pub const MAP_LOCKED: u64 = 0x2000;
/// Do not reserve swap space.
pub const MAP_NORESERVE: u64 = 0x4000;
/// Prefault the pages.
pub const MAP_POPULATE: u64 = 0x8000;
/// With `MAP_POPULATE`: do not prefault.
pub const MAP_NONBLOCK: u64 = 0x1_0000;
/// Stack allocation (`VM_NOHUGEPAGE`).
pub const MAP_STACK: u64 = 0x2_0000;
/// Huge TLB pages.
pub const MAP_HUGETLB: u64 = 0x4_0000;
/// Synchronous page faults for DAX files (`MAP_SHARED_VALIDATE` only).
pub const MAP_SYNC: u64 = 0x8_0000;
/// Like `MAP_FIXED`, but fail with `EEXIST` instead of replacing.
pub const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
/// Do not clear anonymous pages (no-MMU only; ignored).
pub const MAP_UNINITIALIZED: u64 = 0x400_0000;
/// Shift of the huge page size encoded in `MAP_HUGETLB` flags.
pub const MAP_HUGE_SHIFT: u32 = 26;
/// Mask (after shifting) of the encoded huge page size.
pub const MAP_HUGE_MASK: u64 = 0x3f;

/// The flags `do_mmap` accepts with plain `MAP_SHARED` (`LEGACY_MAP_MASK`).
pub const LEGACY_MAP_MASK: u64 = MAP_SHARED
    | MAP_PRIVATE
    | MAP_FIXED
    | MAP_ANONYMOUS
    | MAP_DENYWRITE
    | MAP_EXECUTABLE
    | MAP_UNINITIALIZED
    | MAP_GROWSDOWN
    | MAP_LOCKED
    | MAP_NORESERVE
    | MAP_POPULATE
    | MAP_NONBLOCK
    | MAP_STACK
    | MAP_HUGETLB
    | MAP_32BIT
    | MAP_ABOVE4G
    | (21 << MAP_HUGE_SHIFT)
    | (30 << MAP_HUGE_SHIFT);

/// mremap: the mapping may move.
pub const MREMAP_MAYMOVE: u64 = 1;
/// mremap: move to `new_addr`.
pub const MREMAP_FIXED: u64 = 2;
/// mremap: leave the old range mapped (and empty).
pub const MREMAP_DONTUNMAP: u64 = 4;

/// mlock2: lock pages as they are faulted in (`VM_LOCKONFAULT`).
pub const MLOCK_ONFAULT: u64 = 0x01;
/// mlockall: lock the pages mapped now.
pub const MCL_CURRENT: u64 = 1;
/// mlockall: lock what is mapped later (`mm->def_flags`).
pub const MCL_FUTURE: u64 = 2;
/// mlockall: with `MCL_CURRENT`/`MCL_FUTURE`, lock on fault.
pub const MCL_ONFAULT: u64 = 4;

/// madvise advice values (`include/uapi/asm-generic/mman-common.h`).
pub mod madv {
    /// No special treatment.
    pub const NORMAL: u64 = 0;
    /// Expect random page references.
    pub const RANDOM: u64 = 1;
    /// Expect sequential page references.
    pub const SEQUENTIAL: u64 = 2;
    /// Will need these pages.
    pub const WILLNEED: u64 = 3;
    /// Don't need these pages.
    pub const DONTNEED: u64 = 4;
    /// Free pages only if memory pressure.
    pub const FREE: u64 = 8;
    /// Remove these pages and resources.
    pub const REMOVE: u64 = 9;
    /// Don't inherit across fork.
    pub const DONTFORK: u64 = 10;
    /// Do inherit across fork.
    pub const DOFORK: u64 = 11;
    /// KSM may merge identical pages.
    pub const MERGEABLE: u64 = 12;
    /// KSM may not merge identical pages.
    pub const UNMERGEABLE: u64 = 13;
    /// Worth backing with hugepages.
    pub const HUGEPAGE: u64 = 14;
    /// Not worth backing with hugepages.
    pub const NOHUGEPAGE: u64 = 15;
    /// Explicitly exclude from core dump.
    pub const DONTDUMP: u64 = 16;
    /// Clear the `DONTDUMP` flag.
    pub const DODUMP: u64 = 17;
    /// Zero memory on fork, child only.
    pub const WIPEONFORK: u64 = 18;
    /// Undo `WIPEONFORK`.
    pub const KEEPONFORK: u64 = 19;
    /// Deactivate these pages.
    pub const COLD: u64 = 20;
    /// Reclaim these pages.
    pub const PAGEOUT: u64 = 21;
    /// Populate (prefault) page tables readable.
    pub const POPULATE_READ: u64 = 22;
    /// Populate (prefault) page tables writable.
    pub const POPULATE_WRITE: u64 = 23;
    /// Like `DONTNEED`, but drop locked pages too.
    pub const DONTNEED_LOCKED: u64 = 24;
    /// Synchronous hugepage collapse.
    pub const COLLAPSE: u64 = 25;
    /// Poison a page (needs `CAP_SYS_ADMIN`).
    pub const HWPOISON: u64 = 100;
    /// Soft offline a page (needs `CAP_SYS_ADMIN`).
    pub const SOFT_OFFLINE: u64 = 101;
    /// Install guard regions.
    pub const GUARD_INSTALL: u64 = 102;
    /// Remove guard regions.
    pub const GUARD_REMOVE: u64 = 103;
}

/// open(2) flags used to decide file access (`include/uapi/asm-generic/fcntl.h`).
pub mod oflags {
    /// Access mode mask.
    pub const O_ACCMODE: u64 = 0o3;
    /// Read only.
    pub const O_RDONLY: u64 = 0o0;
    /// Write only.
    pub const O_WRONLY: u64 = 0o1;
    /// Read and write.
    pub const O_RDWR: u64 = 0o2;
    /// Create if missing.
    pub const O_CREAT: u64 = 0o100;
    /// Fail if it exists (with `O_CREAT`).
    pub const O_EXCL: u64 = 0o200;
    /// Do not make it the controlling terminal.
    pub const O_NOCTTY: u64 = 0o400;
    /// Truncate to length 0.
    pub const O_TRUNC: u64 = 0o1000;
    /// Append mode.
    pub const O_APPEND: u64 = 0o2000;
    /// Non-blocking.
    pub const O_NONBLOCK: u64 = 0o4000;
    /// Synchronous data writes.
    pub const O_DSYNC: u64 = 0o10000;
    /// Signal-driven I/O.
    pub const O_ASYNC: u64 = 0o20000;
    /// Direct I/O.
    pub const O_DIRECT: u64 = 0o40000;
    /// Large file (always on for 64-bit).
    pub const O_LARGEFILE: u64 = 0o100000;
    /// Must be a directory.
    pub const O_DIRECTORY: u64 = 0o200000;
    /// Do not follow a final symlink.
    pub const O_NOFOLLOW: u64 = 0o400000;
    /// Do not update the access time.
    pub const O_NOATIME: u64 = 0o1000000;
    /// Close on exec.
    pub const O_CLOEXEC: u64 = 0o2000000;
    /// Synchronous writes.
    pub const O_SYNC: u64 = 0o4010000;
    /// Path-only descriptor.
    pub const O_PATH: u64 = 0o10000000;
    /// Unnamed temporary file.
    pub const O_TMPFILE: u64 = 0o20200000;
}

/// memfd_create(2) flags (`include/uapi/linux/memfd.h`).
pub mod mfd {
    /// Close on exec.
    pub const CLOEXEC: u64 = 0x1;
    /// Allow sealing.
    pub const ALLOW_SEALING: u64 = 0x2;
    /// Back with huge pages.
    pub const HUGETLB: u64 = 0x4;
    /// Not executable, sealed.
    pub const NOEXEC_SEAL: u64 = 0x8;
    /// Executable.
    pub const EXEC: u64 = 0x10;
}

/// `AT_FDCWD`: resolve relative paths against the working directory.
pub const AT_FDCWD: i64 = -100;

/// An errno value, as the kernel returns it (positive here).
///
/// `Debug` shows the name (`ENOMEM`), or `Errno(N)` for a value without
/// one; `Display` adds the C library's message (`ENOMEM (Cannot allocate
/// memory)`), as strace prints it. It implements `std::error::Error`.
///
/// ```
/// use mm_ops::Errno;
/// assert_eq!(format!("{:?}", Errno::ENOMEM), "ENOMEM");
/// assert_eq!(format!("{:?}", Errno(4095)), "Errno(4095)");
/// assert_eq!(Errno::ENOMEM.to_string(), "ENOMEM (Cannot allocate memory)");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Errno(pub i32);

impl std::fmt::Debug for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "Errno({})", self.0),
        }
    }
}

macro_rules! errnos {
    ($($name:ident = $val:expr, $msg:expr;)*) => {
        impl Errno {
            $(
                #[doc = $msg]
                pub const $name: Errno = Errno($val);
            )*

            /// The symbolic name (`"ENOMEM"`), or `None` for an unknown value.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($val => Some(stringify!($name)),)*
                    _ => None,
                }
            }

            /// The C library's message (`"Cannot allocate memory"`), as strace prints it.
            pub fn message(self) -> Option<&'static str> {
                match self.0 {
                    $($val => Some($msg),)*
                    _ => None,
                }
            }

            /// Looks an errno up by its symbolic name.
            pub fn from_name(name: &str) -> Option<Errno> {
                match name {
                    $(stringify!($name) => Some(Errno::$name),)*
                    _ => None,
                }
            }
        }
    };
}

errnos! {
    EPERM = 1, "Operation not permitted";
    ENOENT = 2, "No such file or directory";
    ESRCH = 3, "No such process";
    EINTR = 4, "Interrupted system call";
    EIO = 5, "Input/output error";
    ENXIO = 6, "No such device or address";
    E2BIG = 7, "Argument list too long";
    ENOEXEC = 8, "Exec format error";
    EBADF = 9, "Bad file descriptor";
    ECHILD = 10, "No child processes";
    EAGAIN = 11, "Resource temporarily unavailable";
    ENOMEM = 12, "Cannot allocate memory";
    EACCES = 13, "Permission denied";
    EFAULT = 14, "Bad address";
    ENOTBLK = 15, "Block device required";
    EBUSY = 16, "Device or resource busy";
    EEXIST = 17, "File exists";
    EXDEV = 18, "Invalid cross-device link";
    ENODEV = 19, "No such device";
    ENOTDIR = 20, "Not a directory";
    EISDIR = 21, "Is a directory";
    EINVAL = 22, "Invalid argument";
    ENFILE = 23, "Too many open files in system";
    EMFILE = 24, "Too many open files";
    ENOTTY = 25, "Inappropriate ioctl for device";
    ETXTBSY = 26, "Text file busy";
    EFBIG = 27, "File too large";
    ENOSPC = 28, "No space left on device";
    ESPIPE = 29, "Illegal seek";
    EROFS = 30, "Read-only file system";
    EMLINK = 31, "Too many links";
    EPIPE = 32, "Broken pipe";
    EDOM = 33, "Numerical argument out of domain";
    ERANGE = 34, "Numerical result out of range";
    ENOSYS = 38, "Function not implemented";
    ELOOP = 40, "Too many levels of symbolic links";
    ENAMETOOLONG = 36, "File name too long";
    EOVERFLOW = 75, "Value too large for defined data type";
    EOPNOTSUPP = 95, "Operation not supported";
    EHWPOISON = 133, "Memory page has hardware error";
    ENOTSUPP = 524, "Unknown error 524";
}

impl std::fmt::Display for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.name(), self.message()) {
            (Some(n), Some(m)) => write!(f, "{n} ({m})"),
            _ => write!(f, "{} (Unknown error {})", self.0, self.0),
        }
    }
}

impl std::error::Error for Errno {}

/// `RLIMIT_*` resource numbers (`include/uapi/asm-generic/resource.h`).
pub mod rlimit {
    /// `RLIMIT_FSIZE`.
    pub const FSIZE: u64 = 1;
    /// `RLIMIT_DATA`.
    pub const DATA: u64 = 2;
    /// `RLIMIT_STACK`.
    pub const STACK: u64 = 3;
    /// `RLIMIT_NOFILE`.
    pub const NOFILE: u64 = 7;
    /// `RLIMIT_MEMLOCK`.
    pub const MEMLOCK: u64 = 8;
    /// `RLIMIT_AS`.
    pub const AS: u64 = 9;
}
