//! The address space of a Linux process, as data: `mm_struct`, VMAs and
//! `vm_flags`; `mmap_lock`, `mm_lock_seq` and the barrier policies that
//! speculative readers rely on.
//!
//! | module | what | kernel counterpart |
//! |---|---|---|
//! | [`mm`] | [`MmStruct`], its configuration, writer/reader views | `include/linux/mm_types.h`, `mm/vma.h` |
//! | [`vma`] | [`Vma`] and its published [`VmaSlot`] | `struct vm_area_struct` |
//! | [`vma_cache`] | the VMA slab, shareable between address spaces | `vm_area_cachep` |
//! | [`vma_iter`] | the write section's VMA primitives and the tree position it carries | `struct vma_iterator`, `vma_iter_*` in `mm/vma.h` |
//! | [`vma_lock`] | per-VMA locks: `vm_refcnt`, `vm_lock_seq`, `lock_vma_under_rcu` | `include/linux/mmap_lock.h`, `mm/mmap_lock.c` |
//! | [`vm_flags`] | [`VmFlags`] and the `VM_*` bits | `include/linux/mm.h` |
//! | [`failslab`] | allocation-failure injection (`fail-nth`) at every fallible allocation of an operation | `failslab`, `/proc/self/fail-nth` |
//! | [`file`](mod@file) | open file descriptions and inodes | `struct file`, `struct inode` |
//! | [`tree`] | the VMA tree with lockless lookups and gap search | `lib/maple_tree.c` |
//! | [`mmap_lock`] | [`MmapLock`](mmap_lock::MmapLock): rwsem + `mm_lock_seq` | `include/linux/mmap_lock.h` |
//! | [`mutation`] | one-site mutations for the checkers (`cargo xtask loom`) | — |
//! | [`ordering`] | all memory orderings; the barrier policies | `include/linux/seqlock.h`, the seed thread |
//! | [`slab`] | type-stable memory for lockless readers | `SLAB_TYPESAFE_BY_RCU` |
//! | [`sync`] | the `cfg(loom)` facade | — |

pub mod failslab;
pub mod file;
pub mod hugetlb;
pub mod mm;
pub mod mmap_lock;
pub mod mutation;
pub mod ordering;
pub mod slab;
pub mod sync;
pub mod tree;
pub mod vm_flags;
pub mod vma;
pub mod vma_cache;
pub mod vma_iter;
pub mod vma_lock;

pub use mm::{
    DEFAULT_RLIMIT_MAX, DEFAULT_START_BRK, FaultView, FsCred, INIT_PKRU, MmConfig, MmRead, MmState, MmStruct, MmWrite,
    Overcommit, RLIM_NLIMITS, ShmemHuge, ThpMode, VmaView, Vsyscall,
};
pub use ordering::{BarrierPolicy, Full, MbBegin, PolicyKind, PolicyVisitor, SeedFixed, SeedV1, Upstream};
pub use vm_flags::VmFlags;
pub use vma::{AnonVmaId, Vma, VmaId, VmaSlot};
