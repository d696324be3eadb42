//! Address-space mutators over [`mm_core`], following the Linux kernel's
//! rules: every result, errno and `/proc/PID/maps` line is meant to match
//! the host kernel (Linux 6.18, x86-64).
//!
//! ## Entry points
//!
//! A tool author needs these:
//!
//! * [`Task`]: a process's address space and descriptor table, with one
//!   method per system call (`mmap`, `munmap`, `mprotect`, `mremap`,
//!   `madvise`, `mlock`, `mlock2`, `munlock`, `mlockall`, `munlockall`, `brk`, `fault`, `open`, `memfd_create`, `close`, `dup`,
//!   `ftruncate`, `fork`, `clone_vm`), `maps()`, and snapshots (`import_maps`, `set_brk`,
//!   `set_start_stack`, `infer_mmap_base`);
//! * [`TaskBuilder`]: a `Task` in one expression: the environment (the
//!   reference host, this host, another process), settings by name, a
//!   maps snapshot, the host's files (typed [`BuildError`]);
//! * [`Errno`]: the kernel's error numbers; [`Call`]/[`Outcome`] and
//!   [`Task::apply`] to drive it from data (or strace text, [`strace`]);
//! * [`env::ProcEnv`] → `MmConfig`: the process's limits, credentials and
//!   sysctls, from the host or set by hand;
//! * [`procmaps`]: reading `/proc/PID/maps` (typed [`procmaps::MapsError`]);
//! * [`invariants::check`]: the model's consistency checker;
//! * `testing` (feature `proptest`): strategies and a reference model.
//!
//! ## Kernel internals
//!
//! The other modules are the kernel's functions under their kernel names,
//! public for kernel developers who want to call `mprotect_fixup` or
//! `vma_merge_existing_range` directly. They take the `MmStruct` (or a
//! write guard) and follow the kernel's locking; they are not the entry
//! points.
//!
//! | module | what | kernel counterpart |
//! |---|---|---|
//! | [`builder`] | [`TaskBuilder`] | — |
//! | [`task`] | [`Task`]: descriptors, syscall entry points (`mmap`, `munmap`, `mprotect`, `mremap`, `madvise`, `brk`, `fault`, `open`, …), snapshots, [`apply`](task::Task::apply) | `task_struct`, `fs/file.c` |
//! | [`fork`](mod@fork) | `fork` and `CLONE_VM` children: copying the address space, `anon_vma_fork`, `exit_mmap` | `kernel/fork.c` `dup_mm`, `mm/mmap.c` `dup_mmap`, `mm/rmap.c` `anon_vma_fork` |
//! | [`mmap`] | `mmap`, `munmap`, `brk`, placement | `mm/mmap.c`, `mm/util.c` |
//! | [`sys_x86_64`] | top-down / bottom-up layout | `arch/x86/kernel/sys_x86_64.c` |
//! | [`vma`] | merge, split, modify | `mm/vma.c` |
//! | [`vma_edge`] | the fast path that moves a boundary between neighbours (`vma_modify` when `prev` or `next` absorbs the range) | `mm/vma.c` `vma_merge_existing_range` |
//! | [`anon_vma`](mod@anon_vma) | `anon_vma` reuse and preparation | `mm/rmap.c`, `mm/vma.c` |
//! | [`vma_region`] | `mmap_region`, `munmap`, `brk` growth, free-area search | `mm/vma.c` |
//! | [`mprotect`] | `mprotect` | `mm/mprotect.c` |
//! | [`mremap`] | `mremap`: resize in place, move, multi-VMA moves | `mm/mremap.c`, `mm/vma.c` (`copy_vma`, `vma_merge_extend`) |
//! | [`madvise`] | `madvise`: flag changes, validation, page advice | `mm/madvise.c`, `mm/ksm.c`, `mm/khugepaged.c` |
//! | [`mlock`](mod@mlock) | `mlock`, `mlock2`, `munlock`, `mlockall`, `munlockall`: lock bits, `locked_vm`, `def_flags` | `mm/mlock.c` |
//! | [`guards`] | guard markers (`MADV_GUARD_INSTALL`) | `mm/madvise.c`, `mm/memory.c` |
//! | [`memory`] | page faults, stack growth, populate | `mm/memory.c`, `arch/x86/mm/fault.c`, `mm/gup.c` |
//! | [`task_mmu`] | `/proc/PID/maps` rendering, under `mmap_lock` or per-VMA locks | `fs/proc/task_mmu.c` |
//! | [`procmap_query`] | `PROCMAP_QUERY` | `fs/proc/task_mmu.c` `do_procmap_query` |
//! | [`procmaps`] | parsing maps, importing a snapshot | — |
//! | [`hostfs`] | path lookups on the host for file mappings (also through `/proc/PID/fd/N`) | — |
//! | [`file_kind`] | what a file is to `mmap`: no mmap (`ENODEV`), a late refusal, `/dev/zero`, hugetlbfs, placement by file system | `mm/mmap.c` `do_mmap`, `drivers/char/mem.c`, `fs/proc`, `fs/kernfs`, `fs/hugetlbfs` |
//! | [`env`](mod@env) | the process's environment: limits, credentials, sysctls, memory size, THP mode, personality → `MmConfig` | `mm/util.c` `vm_commit_limit`, `arch/x86/mm/mmap.c` |
//! | `testing` | reference model, strategies, state machine (feature `proptest`) | — |
//! | [`util`] | accounting and flag helpers | `mm/util.c`, `include/linux/mman.h` |
//! | [`uapi`] | ABI constants and errno | `include/uapi/…` |
//! | [`call`] | the syscall vocabulary shared with the host oracle | — |
//! | [`strace`] | strace syntax: reading and canonical writing | — |

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod anon_vma;
pub mod builder;
pub mod call;
pub mod env;
pub mod file_kind;
pub mod fork;
pub mod guards;
pub mod hostfs;
pub mod invariants;
pub mod madvise;
pub mod memory;
pub mod mlock;
pub mod mmap;
pub mod mprotect;
pub mod mremap;
mod mremap_move;
pub mod procmap_query;
pub mod procmaps;
pub mod strace;
pub mod sys_x86_64;
pub mod task;
mod task_calls;
pub mod task_mmu;
#[cfg(feature = "proptest")]
#[cfg_attr(docsrs, doc(cfg(feature = "proptest")))]
pub mod testing;
pub mod uapi;
pub mod util;
pub mod vma;
pub mod vma_edge;
pub mod vma_region;

pub use builder::{BuildError, TaskBuilder};
pub use call::{Access, Call, Outcome, Signal};
pub use task::Task;
pub use uapi::Errno;
