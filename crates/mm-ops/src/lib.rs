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
//!   `madvise`, `mlock`, `mlock2`, `munlock`, `mlockall`, `munlockall`, `mseal`, `brk`, `fault`, `open`, `memfd_create`, `close`, `dup`,
//!   `ftruncate`, `memfd_secret`, `setrlimit`, `remap_file_pages`, `shmget`, `shmat`, `shmdt`, `shmctl_rmid`, `fork`, `clone_vm`), `maps()`, and snapshots (`import_maps`, `set_brk`,
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
//! [`kernel`] holds the kernel's functions under their kernel names,
//! public for kernel developers who want to call `mprotect_fixup` or
//! `vma_merge_existing_range` directly (`mm_ops::kernel::mprotect`, …).
//! They take the `MmStruct` (or a write guard) and follow the kernel's
//! locking; they are not the entry points.
//!
//! | module | what | kernel counterpart |
//! |---|---|---|
//! | [`task`] | [`Task`]: descriptors, syscall entry points (`mmap`, `munmap`, `mprotect`, `mremap`, `madvise`, `brk`, `fault`, `open`, …), snapshots, [`apply`](task::Task::apply) | `task_struct`, `fs/file.c` |
//! | [`builder`] | [`TaskBuilder`] | — |
//! | [`procmaps`] | parsing maps, importing a snapshot | — |
//! | [`hostfs`] | path lookups on the host for file mappings (also through `/proc/PID/fd/N`) | — |
//! | [`env`](mod@env) | the process's environment: limits, credentials, sysctls, memory size, THP mode, personality → `MmConfig` | `mm/util.c` `vm_commit_limit`, `arch/x86/mm/mmap.c` |
//! | `testing` | reference model, strategies, state machine (feature `proptest`) | — |
//! | [`uapi`] | ABI constants and errno | `include/uapi/…` |
//! | [`call`] | the syscall vocabulary shared with the host oracle | — |
//! | [`strace`] | strace syntax: reading and canonical writing | — |
//! | [`invariants`] | the model's consistency checker | — |
//! | [`kernel`] | the kernel's functions (table there) | `mm/`, `fs/proc/task_mmu.c`, `kernel/fork.c` |

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod builder;
pub mod call;
pub mod env;
pub mod hostfs;
pub mod invariants;
pub mod kernel;
pub mod procmaps;
pub mod strace;
pub mod task;
mod task_calls;
#[cfg(feature = "proptest")]
#[cfg_attr(docsrs, doc(cfg(feature = "proptest")))]
pub mod testing;
pub mod uapi;

// The kernel's modules under the paths they had before `kernel` grouped
// them: kept for code written against those paths (and used by this
// crate's own code), hidden from the documentation.
#[doc(hidden)]
pub use kernel::{
    anon_vma, file_kind, fork, fremap, guards, hugetlb, madvise, memory, mlock, mmap, mprotect, mremap, pkeys,
    procmap_query, shmem, sys_x86_64, task_mmu, unmapped_area, util, vma, vma_copy, vma_edge, vma_region,
};

pub use builder::{BuildError, TaskBuilder};
pub use call::{Access, Call, Outcome, Signal};
pub use task::Task;
pub use uapi::Errno;
