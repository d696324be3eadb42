//! The kernel's functions under their kernel names: one module per file
//! of the kernel's `mm/` (and `fs/proc/task_mmu.c`, `kernel/fork.c`), for
//! kernel developers who want to call `mprotect_fixup` or
//! `vma_merge_existing_range` directly. They take the `MmStruct` (or a
//! write guard) and follow the kernel's locking. A tool author wants
//! [`Task`](crate::Task) and [`TaskBuilder`](crate::TaskBuilder) instead.
//!
//! | module | what | kernel counterpart |
//! |---|---|---|
//! | [`fork`](mod@fork) | `fork` and `CLONE_VM` children: copying the address space, `anon_vma_fork`, `exit_mmap` | `kernel/fork.c` `dup_mm`, `mm/mmap.c` `dup_mmap`, `mm/rmap.c` `anon_vma_fork` |
//! | [`mmap`] | `mmap`, `munmap`, `brk`, placement | `mm/mmap.c`, `mm/util.c` |
//! | [`fremap`] | `remap_file_pages`, emulated by a fixed shared mapping | `mm/mmap.c` `SYSCALL_DEFINE5(remap_file_pages)` |
//! | [`sys_x86_64`] | top-down / bottom-up layout | `arch/x86/kernel/sys_x86_64.c` |
//! | [`vma`] | merge, split, modify | `mm/vma.c` |
//! | [`vma_copy`] | growing a VMA in place and copying one for `mremap` | `mm/vma.c` `vma_merge_extend`, `copy_vma` |
//! | [`vma_edge`] | the fast path that moves a boundary between neighbours (`vma_modify` when `prev` or `next` absorbs the range) | `mm/vma.c` `vma_merge_existing_range` |
//! | [`anon_vma`](mod@anon_vma) | `anon_vma` reuse and preparation | `mm/rmap.c`, `mm/vma.c` |
//! | [`vma_region`] | `mmap_region`, `munmap`, `brk` growth | `mm/vma.c` |
//! | [`unmapped_area`] | free-area search | `mm/vma.c` `unmapped_area`, `unmapped_area_topdown`; `mm/mmap.c` `vm_unmapped_area` |
//! | [`mprotect`] | `mprotect`, `pkey_mprotect` | `mm/mprotect.c` |
//! | [`pkeys`] | protection keys: `pkey_alloc`, `pkey_free`, the execute-only key, PKRU checks | `arch/x86/include/asm/pkeys.h`, `arch/x86/mm/pkeys.c`, `mm/mprotect.c` |
//! | [`mremap`] | `mremap`: resize in place, move, multi-VMA moves | `mm/mremap.c`, `mm/vma.c` (`copy_vma`, `vma_merge_extend`) |
//! | [`madvise`] | `madvise`: flag changes, validation, page advice | `mm/madvise.c`, `mm/ksm.c`, `mm/khugepaged.c` |
//! | [`mlock`](mod@mlock) | `mlock`, `mlock2`, `munlock`, `mlockall`, `munlockall`: lock bits, `locked_vm`, `def_flags` | `mm/mlock.c` |
//! | [`mseal`](mod@mseal) | `mseal`: `VM_SEALED` on a range without holes | `mm/mseal.c` |
//! | [`shmem`] | placement of shmem objects (huge-page alignment by `huge=` and `shmem_enabled`) | `mm/shmem.c` `shmem_get_unmapped_area` |
//! | [`shm`] | System V shared memory: `shmget`, `shmat`, `shmdt`, `shmctl(IPC_RMID)` | `ipc/shm.c` |
//! | [`hugetlb`] | the huge page pool: reservations, faults, what unmapping and truncation give back | `mm/hugetlb.c`, `fs/hugetlbfs/inode.c` |
//! | [`guards`] | guard markers (`MADV_GUARD_INSTALL`) | `mm/madvise.c`, `mm/memory.c` |
//! | [`memory`] | page faults, stack growth, populate | `mm/memory.c`, `arch/x86/mm/fault.c`, `mm/gup.c` |
//! | [`task_mmu`] | `/proc/PID/maps` rendering, under `mmap_lock` or per-VMA locks | `fs/proc/task_mmu.c` |
//! | [`procmap_query`] | `PROCMAP_QUERY` | `fs/proc/task_mmu.c` `do_procmap_query` |
//! | [`file_kind`] | what a file is to `mmap`: no mmap (`ENODEV`), a late refusal, `/dev/zero`, hugetlbfs, placement by file system | `mm/mmap.c` `do_mmap`, `drivers/char/mem.c`, `fs/proc`, `fs/kernfs`, `fs/hugetlbfs` |
//! | [`namei`] | who may open a file: owner, mode bits, `CAP_DAC_OVERRIDE`, read-only mounts | `fs/namei.c` `may_open`, `generic_permission` |
//! | [`util`] | accounting and flag helpers | `mm/util.c`, `include/linux/mman.h` |

pub mod anon_vma;
pub mod file_kind;
pub mod fork;
pub mod fremap;
pub mod guards;
pub mod hugetlb;
pub mod madvise;
pub mod memory;
pub mod mlock;
pub mod mmap;
pub mod mprotect;
pub mod mremap;
mod mremap_move;
pub mod mseal;
pub mod namei;
pub mod pkeys;
pub mod procmap_query;
pub mod shm;
pub mod shmem;
pub mod sys_x86_64;
pub mod task_mmu;
pub mod unmapped_area;
pub mod util;
pub mod vma;
pub mod vma_copy;
pub mod vma_edge;
pub mod vma_region;
