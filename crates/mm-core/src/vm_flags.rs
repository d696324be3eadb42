//! `vm_flags_t` and the `VM_*` bits (`include/linux/mm.h`), with the values
//! the kernel uses on x86-64 for the configuration of the host (6.18,
//! `CONFIG_MEM_SOFT_DIRTY` off, protection keys built in).

use core::fmt;
use core::ops::{BitAnd, BitAndAssign, BitOr, BitOrAssign, BitXor, Not};

/// A VMA's flags word.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VmFlags(pub u64);

macro_rules! flags {
    ($($(#[$doc:meta])* $name:ident = $val:expr, $mn:expr;)*) => {
        impl VmFlags {
            $($(#[$doc])* pub const $name: VmFlags = VmFlags($val);)*
            /// `(flag, two-letter smaps mnemonic)` for every named flag.
            pub const NAMED: &'static [(VmFlags, &'static str)] = &[$((VmFlags::$name, $mn)),*];
        }
    };
}

flags! {
    /// No flags.
    NONE = 0, "";
    /// Readable.
    READ = 0x1, "rd";
    /// Writable.
    WRITE = 0x2, "wr";
    /// Executable.
    EXEC = 0x4, "ex";
    /// Shared (writes reach the backing object).
    SHARED = 0x8, "sh";
    /// `VM_READ` may be set by mprotect.
    MAYREAD = 0x10, "mr";
    /// `VM_WRITE` may be set by mprotect.
    MAYWRITE = 0x20, "mw";
    /// `VM_EXEC` may be set by mprotect.
    MAYEXEC = 0x40, "me";
    /// Mapped `MAP_SHARED` (shown as `s` in maps).
    MAYSHARE = 0x80, "ms";
    /// Grows down (a stack).
    GROWSDOWN = 0x100, "gd";
    /// userfaultfd missing-page tracking.
    UFFD_MISSING = 0x200, "um";
    /// Page ranges managed without `struct page`.
    PFNMAP = 0x400, "pf";
    /// The VMA may hold guard markers (`MADV_GUARD_INSTALL`); sticky on
    /// merges (`VM_MAYBE_GUARD`, bit 11, on the host kernel).
    MAYBE_GUARD = 0x800, "gu";
    /// userfaultfd write-protect tracking.
    UFFD_WP = 0x1000, "uw";
    /// Pages are mlocked.
    LOCKED = 0x2000, "lo";
    /// Memory-mapped I/O.
    IO = 0x4000, "io";
    /// `MADV_SEQUENTIAL`.
    SEQ_READ = 0x8000, "sr";
    /// `MADV_RANDOM`.
    RAND_READ = 0x1_0000, "rr";
    /// Do not copy on fork (`MADV_DONTFORK`).
    DONTCOPY = 0x2_0000, "dc";
    /// Cannot be expanded by mremap.
    DONTEXPAND = 0x4_0000, "de";
    /// Lock pages on fault (`mlock2(MLOCK_ONFAULT)`).
    LOCKONFAULT = 0x8_0000, "lf";
    /// Charged to the commit limit.
    ACCOUNT = 0x10_0000, "ac";
    /// Not charged (`MAP_NORESERVE`).
    NORESERVE = 0x20_0000, "nr";
    /// Huge TLB pages.
    HUGETLB = 0x40_0000, "ht";
    /// Synchronous page faults (DAX).
    SYNC = 0x80_0000, "sf";
    /// x86: PAT-tracked (`VM_ARCH_1`).
    PAT = 0x100_0000, "ar";
    /// Zeroed in the child on fork (`MADV_WIPEONFORK`).
    WIPEONFORK = 0x200_0000, "wf";
    /// Excluded from core dumps (`MADV_DONTDUMP`).
    DONTDUMP = 0x400_0000, "dd";
    /// Mixed PFN/page mapping.
    MIXEDMAP = 0x1000_0000, "mm";
    /// `MADV_HUGEPAGE`.
    HUGEPAGE = 0x2000_0000, "hg";
    /// `MADV_NOHUGEPAGE` (also set by `MAP_STACK`).
    NOHUGEPAGE = 0x4000_0000, "nh";
    /// KSM may merge pages (`MADV_MERGEABLE`).
    MERGEABLE = 0x8000_0000, "mg";
    /// Protection key bit 0 (`VM_HIGH_ARCH_0`).
    PKEY_BIT0 = 1 << 32, "";
    /// Protection key bit 1.
    PKEY_BIT1 = 1 << 33, "";
    /// Protection key bit 2.
    PKEY_BIT2 = 1 << 34, "";
    /// Protection key bit 3.
    PKEY_BIT3 = 1 << 35, "";
    /// x86 shadow stack (`VM_HIGH_ARCH_5`).
    SHADOW_STACK = 1 << 37, "ss";
    /// Droppable anonymous memory (`MAP_DROPPABLE`, `VM_HIGH_ARCH_8`).
    DROPPABLE = 1 << 40, "dp";
    /// userfaultfd minor faults (`VM_HIGH_ARCH_9`).
    UFFD_MINOR = 1 << 41, "ui";
    /// Sealed by mseal (`VM_HIGH_ARCH_10`).
    SEALED = 1 << 42, "sl";
}

impl VmFlags {
    /// Soft-dirty tracking bit: `VM_NONE` because the host kernel is built
    /// without `CONFIG_MEM_SOFT_DIRTY` (it never blocks a merge anyway).
    pub const SOFTDIRTY: VmFlags = VmFlags(0);
    /// `VM_STACK` (grows down on x86).
    pub const STACK: VmFlags = VmFlags::GROWSDOWN;
    /// `VM_ACCESS_FLAGS`.
    pub const ACCESS_FLAGS: VmFlags = VmFlags(0x7);
    /// `VM_SPECIAL`: never merged, never expanded by mremap.
    pub const SPECIAL: VmFlags = VmFlags(0x4000 | 0x4_0000 | 0x400 | 0x1000_0000);
    /// `VM_LOCKED_MASK`.
    pub const LOCKED_MASK: VmFlags = VmFlags(0x2000 | 0x8_0000);
    /// `VM_STARTGAP_FLAGS`: VMAs whose start keeps a guard gap.
    pub const STARTGAP_FLAGS: VmFlags = VmFlags(0x100 | (1 << 37));
    /// All protection-key bits (`ARCH_VM_PKEY_FLAGS`).
    pub const PKEY_MASK: VmFlags = VmFlags(0xf << 32);
    /// `VM_DATA_DEFAULT_FLAGS` on x86-64 (`VM_DATA_FLAGS_TSK_EXEC` without
    /// `READ_IMPLIES_EXEC`): read, write and all three MAY bits.
    pub const DATA_DEFAULT: VmFlags = VmFlags(0x1 | 0x2 | 0x10 | 0x20 | 0x40);
    /// `VM_STACK_DEFAULT_FLAGS` on x86-64.
    pub const STACK_DEFAULT: VmFlags = VmFlags::DATA_DEFAULT;
    /// `VM_STICKY`: bits that one VMA of a merge brings to the merged VMA.
    pub const STICKY: VmFlags = VmFlags(VmFlags::SOFTDIRTY.0 | VmFlags::MAYBE_GUARD.0);
    /// `VM_IGNORE_MERGE`: bits that may differ between merged VMAs.
    pub const IGNORE_MERGE: VmFlags = VmFlags(VmFlags::SOFTDIRTY.0 | VmFlags::STICKY.0);

    /// True if all bits of `other` are set.
    #[inline]
    pub fn contains(self, other: VmFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// True if any bit of `other` is set.
    #[inline]
    pub fn intersects(self, other: VmFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// True if no bit is set.
    #[inline]
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// `is_exec_mapping` (`mm/internal.h`): executable, not writable, not a stack.
    pub fn is_exec_mapping(self) -> bool {
        self.0 & (Self::EXEC.0 | Self::WRITE.0 | Self::STACK.0) == Self::EXEC.0
    }

    /// `is_stack_mapping` (`mm/internal.h`).
    pub fn is_stack_mapping(self) -> bool {
        self.contains(Self::STACK)
    }

    /// `is_data_mapping` (`mm/internal.h`): private, writable, not a stack.
    pub fn is_data_mapping(self) -> bool {
        self.0 & (Self::WRITE.0 | Self::SHARED.0 | Self::STACK.0) == Self::WRITE.0
    }

    /// `vma_is_accessible`: any of read, write, exec.
    pub fn is_accessible(self) -> bool {
        self.intersects(Self::ACCESS_FLAGS)
    }

    /// The `rwxp`/`rwxs` column of `/proc/PID/maps` (`show_vma_header_prefix`).
    pub fn perms(self) -> [u8; 4] {
        [
            if self.contains(Self::READ) { b'r' } else { b'-' },
            if self.contains(Self::WRITE) { b'w' } else { b'-' },
            if self.contains(Self::EXEC) { b'x' } else { b'-' },
            if self.contains(Self::MAYSHARE) { b's' } else { b'p' },
        ]
    }
}

impl BitOr for VmFlags {
    type Output = VmFlags;
    fn bitor(self, rhs: VmFlags) -> VmFlags {
        VmFlags(self.0 | rhs.0)
    }
}
impl BitOrAssign for VmFlags {
    fn bitor_assign(&mut self, rhs: VmFlags) {
        self.0 |= rhs.0;
    }
}
impl BitAnd for VmFlags {
    type Output = VmFlags;
    fn bitand(self, rhs: VmFlags) -> VmFlags {
        VmFlags(self.0 & rhs.0)
    }
}
impl BitAndAssign for VmFlags {
    fn bitand_assign(&mut self, rhs: VmFlags) {
        self.0 &= rhs.0;
    }
}
impl BitXor for VmFlags {
    type Output = VmFlags;
    fn bitxor(self, rhs: VmFlags) -> VmFlags {
        VmFlags(self.0 ^ rhs.0)
    }
}
impl Not for VmFlags {
    type Output = VmFlags;
    fn not(self) -> VmFlags {
        VmFlags(!self.0)
    }
}

impl fmt::Debug for VmFlags {
    /// smaps-style mnemonics (`rd wr mr mw me ac`), plus any unnamed bits in hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        let mut first = true;
        for &(flag, mn) in VmFlags::NAMED {
            if flag.0 != 0 && !mn.is_empty() && self.contains(flag) {
                if !first {
                    f.write_str(" ")?;
                }
                f.write_str(mn)?;
                first = false;
                rest &= !flag.0;
            }
        }
        if rest != 0 {
            if !first {
                f.write_str(" ")?;
            }
            write!(f, "{rest:#x}")?;
        }
        Ok(())
    }
}
