//! `struct vm_area_struct` (`include/linux/mm_types.h`).
//!
//! A VMA has two representations:
//! * [`Vma`], the writer's authoritative copy (plain fields, behind
//!   `mmap_lock`), which also holds what lockless readers never touch
//!   (`anon_vma`);
//! * [`VmaSlot`], the published copy in type-stable memory, whose fields are
//!   atomics that the writer updates in place (`WRITE_ONCE`) wherever the
//!   kernel updates the VMA in place: `vma_set_range` on split, shrink and
//!   expand, `vm_flags_reset` on mprotect. Speculative readers load them with
//!   `READ_ONCE` and must validate against `mm_lock_seq`.

use crate::file::FileId;
use crate::mutation::{self, Mutation};
use crate::ordering::{read_once, read_once_u32, write_once, write_once_u32};
use crate::sync::{AtomicU32, AtomicU64, RaceCheck};
use crate::vm_flags::VmFlags;

/// Index of a VMA slot.
pub type VmaId = u32;

/// Identity of an `anon_vma` (assigned on the first write fault).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AnonVmaId(pub u32);

impl AnonVmaId {
    /// The bit that marks an `anon_vma` made by `anon_vma_fork`
    /// (`mm/rmap.c`) for a fork child's VMA. Every VMA that uses such an
    /// `anon_vma` has an `anon_vma_chain` of more than one entry (its own
    /// `anon_vma` and its parent's), and no VMA using any other has: a
    /// chain only grows by `anon_vma_fork`, and the VMAs that share an
    /// `anon_vma` share its chain (`anon_vma_clone`). So the bit stands for
    /// `!list_is_singular(&vma->anon_vma_chain)`, which the merge rules
    /// test (`vma_is_fork_child` in `mm/vma.c`, `reusable_anon_vma` in
    /// `mm/rmap.c`).
    pub const FORK_CHILD: u32 = 1 << 31;

    /// `vma_is_fork_child` for a VMA using this `anon_vma`: its chain has
    /// more than one entry ([`FORK_CHILD`](Self::FORK_CHILD)).
    #[inline]
    pub fn is_fork_child(self) -> bool {
        self.0 & Self::FORK_CHILD != 0
    }
}

/// The writer's copy of a VMA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Vma {
    /// `vm_start`.
    pub start: u64,
    /// `vm_end` (exclusive).
    pub end: u64,
    /// `vm_pgoff`: file offset in pages, or `start >> PAGE_SHIFT` for
    /// private anonymous memory.
    pub pgoff: u64,
    /// `vm_flags`.
    pub flags: VmFlags,
    /// `vm_file`: the open file description, or `None` for anonymous memory.
    pub file: Option<FileId>,
    /// `anon_vma`.
    pub anon_vma: Option<AnonVmaId>,
    /// Name of a special mapping (`vm_ops->name`: `[vdso]`, `[vvar]`, …).
    /// Special mappings refuse to be split (`special_mapping_split`).
    pub special: Option<&'static str>,
}

impl Vma {
    /// `vma_pages`.
    #[inline]
    pub fn pages(&self) -> u64 {
        (self.end - self.start) >> 12
    }

    /// No file and not a special mapping (`[vdso]`, `[vvar]`, … have
    /// `special_mapping_vmops`; shared anonymous memory has a shmem file).
    /// Not quite `vma_is_anonymous` (`include/linux/mm.h`: no `vm_ops`): a
    /// private `/dev/zero` mapping is anonymous but keeps its file, which
    /// only the file table tells (`mm_ops::util::vma_is_anonymous`).
    #[inline]
    pub fn is_anonymous(&self) -> bool {
        self.file.is_none() && self.special.is_none()
    }
}

/// The names of special mappings the model knows (`vm_ops->name`).
pub const SPECIAL_NAMES: [&str; 5] = ["[vdso]", "[vvar]", "[vvar_vclock]", "[uprobes]", "[vsyscall]"];

/// `name`'s index in [`SPECIAL_NAMES`] plus one (an unknown name gets one
/// past the table, and reads back as `[special]`).
fn special_index(name: &str) -> u32 {
    SPECIAL_NAMES
        .iter()
        .position(|&n| n == name)
        .map_or(SPECIAL_NAMES.len() as u32 + 1, |i| i as u32 + 1)
}

/// The published copy of a VMA, read by speculative readers and by
/// holders of its per-VMA lock: one cache line.
#[repr(C, align(64))]
pub struct VmaSlot {
    start: AtomicU64,
    end: AtomicU64,
    pgoff: AtomicU64,
    flags: AtomicU64,
    /// `FileId + 1`, or 0 for none.
    file: AtomicU32,
    /// `vma->vm_refcnt`: 0 detached, 1 attached, +1 per reader, plus
    /// `VMA_LOCK_OFFSET` while a writer excludes readers
    /// ([`crate::vma_lock`]).
    pub(crate) refcnt: AtomicU32,
    /// `vma->vm_lock_seq`: the `mm_lock_seq` of the write section that
    /// write-locked it last.
    pub(crate) lock_seq: AtomicU32,
    /// `vma->anon_vma` (0: none). Faults assign it under the *read*
    /// lock (`__anon_vma_prepare`, serialized by `page_table_lock`) or
    /// under the VMA's read lock with a read trylock of `mmap_lock`.
    pub(crate) anon_vma: AtomicU32,
    /// Which special mapping it is ([`SPECIAL_NAMES`] index + 1; 0: none):
    /// `vm_ops` of `[vdso]`, `[vvar]`, ….
    special: AtomicU32,
    /// `vma->vm_mm`: the id of the owning [`crate::MmStruct`] (0: none).
    /// The slot may be another address space's VMA by the time a reader
    /// looks ([`crate::vma_cache`]).
    pub(crate) mm: AtomicU32,
    /// What the per-VMA lock protects, for loom's race detection.
    pub(crate) guarded: RaceCheck,
}

// SAFETY: every field is an atomic integer or the empty `RaceCheck`, valid
// when zeroed (under loom, where `RaceCheck` has contents, the slab builds
// slots with `Default` instead).
unsafe impl crate::slab::ZeroSlot for VmaSlot {}

impl Default for VmaSlot {
    fn default() -> Self {
        VmaSlot {
            start: AtomicU64::new(0),
            end: AtomicU64::new(0),
            pgoff: AtomicU64::new(0),
            flags: AtomicU64::new(0),
            file: AtomicU32::new(0),
            refcnt: AtomicU32::new(0),
            lock_seq: AtomicU32::new(0),
            anon_vma: AtomicU32::new(0),
            special: AtomicU32::new(0),
            mm: AtomicU32::new(0),
            guarded: RaceCheck::default(),
        }
    }
}

impl VmaSlot {
    /// `READ_ONCE(vma->vm_start)`.
    #[inline]
    pub fn start(&self) -> u64 {
        read_once(&self.start)
    }
    /// `READ_ONCE(vma->vm_end)`.
    #[inline]
    pub fn end(&self) -> u64 {
        read_once(&self.end)
    }
    /// `READ_ONCE(vma->vm_pgoff)`.
    #[inline]
    pub fn pgoff(&self) -> u64 {
        read_once(&self.pgoff)
    }
    /// `READ_ONCE(vma->vm_flags)`.
    #[inline]
    pub fn flags(&self) -> VmFlags {
        VmFlags(read_once(&self.flags))
    }
    /// `READ_ONCE(vma->vm_file)`.
    #[inline]
    pub fn file(&self) -> Option<FileId> {
        match read_once_u32(&self.file) {
            0 => None,
            f => Some(FileId(f - 1)),
        }
    }

    /// Publishes all fields of `v` (a new VMA, before it becomes reachable).
    pub(crate) fn publish(&self, v: &Vma) {
        self.publish_range(v.start, v.end, v.pgoff);
        self.publish_flags(v.flags);
        write_once_u32(&self.file, v.file.map_or(0, |f| f.0 + 1));
        write_once_u32(&self.anon_vma, v.anon_vma.map_or(0, |a| a.0));
        write_once_u32(&self.special, v.special.map_or(0, special_index));
    }

    /// `READ_ONCE(vma->anon_vma)`.
    #[inline]
    pub fn anon_vma(&self) -> Option<AnonVmaId> {
        match read_once_u32(&self.anon_vma) {
            0 => None,
            a => Some(AnonVmaId(a)),
        }
    }

    /// The special mapping's name (`vm_ops->name`), if it is one.
    #[inline]
    pub fn special(&self) -> Option<&'static str> {
        match read_once_u32(&self.special) {
            0 => None,
            i => Some(SPECIAL_NAMES.get(i as usize - 1).copied().unwrap_or("[special]")),
        }
    }

    /// `vma_set_range` for a new VMA.
    pub(crate) fn publish_range(&self, start: u64, end: u64, pgoff: u64) {
        write_once(&self.start, start);
        write_once(&self.end, end);
        write_once(&self.pgoff, pgoff);
    }

    /// `vma_set_range` in place: stores only the fields that change.
    /// `old` is the VMA's `(start, end, pgoff)` before the change.
    #[inline]
    pub(crate) fn publish_changed_range(&self, old: (u64, u64, u64), start: u64, end: u64, pgoff: u64) {
        if old.0 != start && !mutation::active(Mutation::NoPublishStart) {
            write_once(&self.start, start);
        }
        if old.1 != end && !mutation::active(Mutation::NoPublishEnd) {
            write_once(&self.end, end);
        }
        if old.2 != pgoff && !mutation::active(Mutation::NoPublishPgoff) {
            write_once(&self.pgoff, pgoff);
        }
    }

    /// `vm_flags_reset` in place.
    pub(crate) fn publish_flags(&self, flags: VmFlags) {
        write_once(&self.flags, flags.0);
    }

    /// `vm_flags_reset` of a linked VMA (an in-place change).
    #[inline]
    pub(crate) fn publish_changed_flags(&self, flags: VmFlags) {
        if !mutation::active(Mutation::NoPublishFlags) {
            self.publish_flags(flags);
        }
    }
}
