//! The system calls, and starting a model from a snapshot.
//!
//! Every function here returns `0` or a positive errno (the kernel's for a
//! refused call, [`MM_SIM_EINVAL`](crate::MM_SIM_EINVAL) /
//! [`MM_SIM_EFAULT`](crate::MM_SIM_EFAULT) for misuse,
//! [`MM_SIM_EPANIC`](crate::MM_SIM_EPANIC) after a panic), except
//! [`mm_sim_brk`], which returns the break.

use std::ffi::c_char;

use mm_ops::procmaps::parse_maps_snapshot;
use mm_ops::{Access, Signal};

use crate::{Fail, MM_SIM_EINVAL, MmSim, handle, out_arg, run, status, str_arg};

/// A load, for [`mm_sim_fault`].
pub const MM_SIM_ACCESS_READ: u32 = 0;
/// A store, for [`mm_sim_fault`].
pub const MM_SIM_ACCESS_WRITE: u32 = 1;
/// An instruction fetch, for [`mm_sim_fault`].
pub const MM_SIM_ACCESS_EXEC: u32 = 2;

/// Starts the model from a `/proc/PID/maps` snapshot (the text, NUL
/// terminated; `[vsyscall]` is skipped, `[heap]` sets the break, `[stack]`
/// the stack), then takes the mmap area's base from it (where the
/// interpreter `ld-*.so` lies: the base `arch_pick_mmap_layout`,
/// `arch/x86/mm/mmap.c`, chose with randomization), so that calls
/// without `MAP_FIXED` land where the kernel puts them. Meant for an
/// empty model. `EINVAL` for a line that does not parse, lies above
/// `TASK_SIZE` or overlaps (the message names the line); the lines before
/// it are imported.
///
/// # Safety
///
/// `sim` is `NULL` or a live handle; `maps` is `NULL` or a NUL-terminated
/// string valid during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mm_sim_import_maps(sim: *mut MmSim, maps: *const c_char) -> i32 {
    // SAFETY: the caller promises a live handle (or NULL), used by this
    // thread only.
    let sim = unsafe { handle(sim) };
    status(run(sim, "mm_sim_import_maps", |t| {
        // SAFETY: the caller promises `maps` is NULL or a NUL-terminated
        // string valid during the call.
        let text = unsafe { str_arg(maps, "mm_sim_import_maps: maps") }?;
        let lines = parse_maps_snapshot(text, t.mm().task_size())
            .map_err(|e| Fail::new(MM_SIM_EINVAL, format!("mm_sim_import_maps: {e}")))?;
        t.import_maps(&lines)
            .map_err(|e| Fail::new(MM_SIM_EINVAL, format!("mm_sim_import_maps: {e}")))?;
        t.infer_mmap_base(&lines);
        Ok(())
    }))
}

/// Sets `mm->start_brk` and `mm->brk` as `exec` does (`load_elf_binary`,
/// `fs/binfmt_elf.c`): the heap is `[start_brk, brk)`. After importing a
/// snapshot, `/proc/PID/stat` field 47 has the exact `start_brk`.
///
/// # Safety
///
/// `sim` is `NULL` or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mm_sim_set_brk(sim: *mut MmSim, start_brk: u64, brk: u64) -> i32 {
    // SAFETY: the caller promises a live handle (or NULL), used by this
    // thread only.
    let sim = unsafe { handle(sim) };
    status(run(sim, "mm_sim_set_brk", |t| {
        t.set_brk(start_brk, brk);
        Ok(())
    }))
}

/// Sets `mm->start_stack` (`/proc/PID/stat` field 28; set by
/// `setup_arg_pages`, `fs/exec.c`): the VMA containing it is `[stack]`.
///
/// # Safety
///
/// `sim` is `NULL` or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mm_sim_set_start_stack(sim: *mut MmSim, start_stack: u64) -> i32 {
    // SAFETY: the caller promises a live handle (or NULL), used by this
    // thread only.
    let sim = unsafe { handle(sim) };
    status(run(sim, "mm_sim_set_start_stack", |t| {
        t.set_start_stack(start_stack);
        Ok(())
    }))
}

/// Reads `mm->start_brk` and `mm->brk` into the out-pointers.
///
/// # Safety
///
/// `sim` is `NULL` or a live handle; each out-pointer is `NULL` or valid
/// for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mm_sim_brk_range(sim: *mut MmSim, start_brk: *mut u64, brk: *mut u64) -> i32 {
    // SAFETY: the caller promises a live handle (or NULL), used by this
    // thread only.
    let sim = unsafe { handle(sim) };
    status(run(sim, "mm_sim_brk_range", |t| {
        out_arg(start_brk, "mm_sim_brk_range: start_brk")?;
        out_arg(brk, "mm_sim_brk_range: brk")?;
        let (s, b) = t.brk_range();
        // SAFETY: both pointers are not NULL (checked) and the caller
        // promises they are valid for writes.
        unsafe {
            start_brk.write(s);
            brk.write(b);
        }
        Ok(())
    }))
}

/// `mmap(2)` (`sys_mmap` → `ksys_mmap_pgoff` → `vm_mmap_pgoff`,
/// `mm/util.c`): `0` and the mapping's address in `*out_addr`, or the
/// errno. `fd` is a descriptor from [`mm_sim_open`] (ignored with
/// `MAP_ANONYMOUS`); `prot`, `flags` as in `<sys/mman.h>`.
///
/// # Safety
///
/// `sim` is `NULL` or a live handle; `out_addr` is `NULL` or valid for a
/// write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mm_sim_mmap(
    sim: *mut MmSim,
    addr: u64,
    len: u64,
    prot: u64,
    flags: u64,
    fd: i64,
    offset: u64,
    out_addr: *mut u64,
) -> i32 {
    // SAFETY: the caller promises a live handle (or NULL), used by this
    // thread only.
    let sim = unsafe { handle(sim) };
    status(run(sim, "mm_sim_mmap", |t| {
        out_arg(out_addr, "mm_sim_mmap: out_addr")?;
        let a = t
            .mmap(addr, len, prot, flags, fd, offset)
            .map_err(|e| Fail::errno("mmap", e))?;
        // SAFETY: not NULL (checked); the caller promises it is valid.
        unsafe { out_addr.write(a) };
        Ok(())
    }))
}

/// `munmap(2)` (`mm/mmap.c` `vm_munmap`).
///
/// # Safety
///
/// `sim` is `NULL` or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mm_sim_munmap(sim: *mut MmSim, addr: u64, len: u64) -> i32 {
    // SAFETY: the caller promises a live handle (or NULL), used by this
    // thread only.
    let sim = unsafe { handle(sim) };
    status(run(sim, "mm_sim_munmap", |t| {
        t.munmap(addr, len).map_err(|e| Fail::errno("munmap", e))
    }))
}

/// `mprotect(2)` (`mm/mprotect.c` `do_mprotect_pkey`). As in the kernel,
/// a failure part-way (`ENOMEM` at a hole) keeps the changes made before
/// it.
///
/// # Safety
///
/// `sim` is `NULL` or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mm_sim_mprotect(sim: *mut MmSim, addr: u64, len: u64, prot: u64) -> i32 {
    // SAFETY: the caller promises a live handle (or NULL), used by this
    // thread only.
    let sim = unsafe { handle(sim) };
    status(run(sim, "mm_sim_mprotect", |t| {
        t.mprotect(addr, len, prot).map_err(|e| Fail::errno("mprotect", e))
    }))
}

/// `mremap(2)` (`mm/mremap.c` `do_mremap`): `0` and the new address in
/// `*out_addr`, or the errno. `new_addr` counts only with `MREMAP_FIXED`
/// or `MREMAP_DONTUNMAP`.
///
/// # Safety
///
/// `sim` is `NULL` or a live handle; `out_addr` is `NULL` or valid for a
/// write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mm_sim_mremap(
    sim: *mut MmSim,
    old_addr: u64,
    old_len: u64,
    new_len: u64,
    flags: u64,
    new_addr: u64,
    out_addr: *mut u64,
) -> i32 {
    // SAFETY: the caller promises a live handle (or NULL), used by this
    // thread only.
    let sim = unsafe { handle(sim) };
    status(run(sim, "mm_sim_mremap", |t| {
        out_arg(out_addr, "mm_sim_mremap: out_addr")?;
        let a = t
            .mremap(old_addr, old_len, new_len, flags, new_addr)
            .map_err(|e| Fail::errno("mremap", e))?;
        // SAFETY: not NULL (checked); the caller promises it is valid.
        unsafe { out_addr.write(a) };
        Ok(())
    }))
}

/// `madvise(2)` (`mm/madvise.c` `do_madvise`).
///
/// # Safety
///
/// `sim` is `NULL` or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mm_sim_madvise(sim: *mut MmSim, addr: u64, len: u64, advice: u64) -> i32 {
    // SAFETY: the caller promises a live handle (or NULL), used by this
    // thread only.
    let sim = unsafe { handle(sim) };
    status(run(sim, "mm_sim_madvise", |t| {
        t.madvise(addr, len, advice).map_err(|e| Fail::errno("madvise", e))
    }))
}

/// `mlock2(2)` (`mm/mlock.c` `do_mlock`): locks the pages of `[addr,
/// addr + len)`; `flags` is 0 (`mlock(2)`) or `MLOCK_ONFAULT`. `0`, or
/// the errno (`ENOMEM` for a hole or over `RLIMIT_MEMLOCK`, `EPERM`
/// without the right to lock, `EINVAL` for bad flags); the VMAs before a
/// hole stay changed, as in the kernel.
///
/// # Safety
///
/// `sim` is `NULL` or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mm_sim_mlock(sim: *mut MmSim, addr: u64, len: u64, flags: u64) -> i32 {
    // SAFETY: the caller promises a live handle (or NULL), used by this
    // thread only.
    let sim = unsafe { handle(sim) };
    status(run(sim, "mm_sim_mlock", |t| {
        t.mlock2(addr, len, flags).map_err(|e| Fail::errno("mlock2", e))
    }))
}

/// `munlock(2)` (`mm/mlock.c` `sys_munlock`): `0`, or the errno.
///
/// # Safety
///
/// `sim` is `NULL` or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mm_sim_munlock(sim: *mut MmSim, addr: u64, len: u64) -> i32 {
    // SAFETY: the caller promises a live handle (or NULL), used by this
    // thread only.
    let sim = unsafe { handle(sim) };
    status(run(sim, "mm_sim_munlock", |t| {
        t.munlock(addr, len).map_err(|e| Fail::errno("munlock", e))
    }))
}

/// `mlockall(2)` (`mm/mlock.c` `sys_mlockall`) with `MCL_*` flags, or,
/// with `flags` 0, `munlockall(2)`: `0`, or the errno.
///
/// # Safety
///
/// `sim` is `NULL` or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mm_sim_mlockall(sim: *mut MmSim, flags: u64) -> i32 {
    // SAFETY: the caller promises a live handle (or NULL), used by this
    // thread only.
    let sim = unsafe { handle(sim) };
    status(run(sim, "mm_sim_mlockall", |t| {
        if flags == 0 {
            t.munlockall().map_err(|e| Fail::errno("munlockall", e))
        } else {
            t.mlockall(flags).map_err(|e| Fail::errno("mlockall", e))
        }
    }))
}

/// `mseal(2)` (`mm/mseal.c` `do_mseal`): seals the VMAs of a range
/// without holes (`flags` must be 0): `0`, or the errno.
///
/// # Safety
///
/// `sim` is `NULL` or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mm_sim_mseal(sim: *mut MmSim, addr: u64, len: u64, flags: u64) -> i32 {
    // SAFETY: the caller promises a live handle (or NULL), used by this
    // thread only.
    let sim = unsafe { handle(sim) };
    status(run(sim, "mm_sim_mseal", |t| {
        t.mseal(addr, len, flags).map_err(|e| Fail::errno("mseal", e))
    }))
}

/// `shmget(2)` (`ipc/shm.c` `ksys_shmget`): `0` and the System V
/// segment's id in `*out_id`, or the errno. `key` is a C `key_t`
/// (`IPC_PRIVATE` = 0); `flags` as in `<sys/shm.h>`.
///
/// # Safety
///
/// `sim` is `NULL` or a live handle; `out_id` is `NULL` or valid for a
/// write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mm_sim_shmget(sim: *mut MmSim, key: i64, size: u64, flags: u64, out_id: *mut i64) -> i32 {
    // SAFETY: the caller promises a live handle (or NULL), used by this
    // thread only.
    let sim = unsafe { handle(sim) };
    status(run(sim, "mm_sim_shmget", |t| {
        out_arg(out_id, "mm_sim_shmget: out_id")?;
        let id = t.shmget(key, size, flags, None).map_err(|e| Fail::errno("shmget", e))?;
        // SAFETY: not NULL (checked); the caller promises it is valid.
        unsafe { out_id.write(id) };
        Ok(())
    }))
}

/// `shmat(2)` (`ipc/shm.c` `do_shmat`): `0` and the attach address in
/// `*out_addr`, or the errno.
///
/// # Safety
///
/// `sim` is `NULL` or a live handle; `out_addr` is `NULL` or valid for a
/// write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mm_sim_shmat(sim: *mut MmSim, id: i64, addr: u64, flags: u64, out_addr: *mut u64) -> i32 {
    // SAFETY: the caller promises a live handle (or NULL), used by this
    // thread only.
    let sim = unsafe { handle(sim) };
    status(run(sim, "mm_sim_shmat", |t| {
        out_arg(out_addr, "mm_sim_shmat: out_addr")?;
        let a = t.shmat(id, addr, flags).map_err(|e| Fail::errno("shmat", e))?;
        // SAFETY: not NULL (checked); the caller promises it is valid.
        unsafe { out_addr.write(a) };
        Ok(())
    }))
}

/// `shmdt(2)` (`ipc/shm.c` `ksys_shmdt`): `0`, or the errno.
///
/// # Safety
///
/// `sim` is `NULL` or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mm_sim_shmdt(sim: *mut MmSim, addr: u64) -> i32 {
    // SAFETY: the caller promises a live handle (or NULL), used by this
    // thread only.
    let sim = unsafe { handle(sim) };
    status(run(sim, "mm_sim_shmdt", |t| {
        t.shmdt(addr).map_err(|e| Fail::errno("shmdt", e))
    }))
}

/// `shmctl(id, IPC_RMID, NULL)` (`ipc/shm.c` `shmctl_down`): `0`, or the
/// errno.
///
/// # Safety
///
/// `sim` is `NULL` or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mm_sim_shmctl_rmid(sim: *mut MmSim, id: i64) -> i32 {
    // SAFETY: the caller promises a live handle (or NULL), used by this
    // thread only.
    let sim = unsafe { handle(sim) };
    status(run(sim, "mm_sim_shmctl_rmid", |t| {
        t.shmctl_rmid(id).map_err(|e| Fail::errno("shmctl", e))
    }))
}

/// `brk(2)` (`mm/mmap.c` `sys_brk`): the new break, or the old one when
/// the kernel refuses (the system call never fails); `brk(0)` reads it.
/// `0` for a `NULL` or poisoned handle (see `mm_sim_last_error`).
///
/// # Safety
///
/// `sim` is `NULL` or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mm_sim_brk(sim: *mut MmSim, addr: u64) -> u64 {
    // SAFETY: the caller promises a live handle (or NULL), used by this
    // thread only.
    let sim = unsafe { handle(sim) };
    run(sim, "mm_sim_brk", |t| Ok(t.brk(addr))).unwrap_or(0)
}

/// `open(2)` (`fs/open.c` `do_sys_open`): `0` and the lowest free
/// descriptor in `*out_fd`, or the errno. `flags` are `O_*` values
/// (`O_RDONLY`, `O_RDWR`, `O_TRUNC`, `O_PATH`...). Only what mappings
/// need is modelled: the file's identity, size and access mode; with
/// `mm_sim_new_host` they come from the host's file (a path it lacks is
/// an empty file), otherwise the file is new and empty.
///
/// # Safety
///
/// `sim` is `NULL` or a live handle; `path` is `NULL` or a NUL-terminated
/// string valid during the call; `out_fd` is `NULL` or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mm_sim_open(sim: *mut MmSim, path: *const c_char, flags: u64, out_fd: *mut i64) -> i32 {
    // SAFETY: the caller promises a live handle (or NULL), used by this
    // thread only.
    let sim = unsafe { handle(sim) };
    status(run(sim, "mm_sim_open", |t| {
        // SAFETY: the caller promises `path` is NULL or a NUL-terminated
        // string valid during the call.
        let path = unsafe { str_arg(path, "mm_sim_open: path") }?;
        out_arg(out_fd, "mm_sim_open: out_fd")?;
        let fd = t.open(path, flags, None).map_err(|e| Fail::errno("open", e))?;
        // SAFETY: not NULL (checked); the caller promises it is valid.
        unsafe { out_fd.write(fd) };
        Ok(())
    }))
}

/// `close(2)` (`fs/file.c` `close_fd`): mappings of the file stay.
///
/// # Safety
///
/// `sim` is `NULL` or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mm_sim_close(sim: *mut MmSim, fd: i64) -> i32 {
    // SAFETY: the caller promises a live handle (or NULL), used by this
    // thread only.
    let sim = unsafe { handle(sim) };
    status(run(sim, "mm_sim_close", |t| {
        t.close(fd).map_err(|e| Fail::errno("close", e))
    }))
}

/// A user access to `addr` (`arch/x86/mm/fault.c` `do_user_addr_fault` →
/// `handle_mm_fault`): `0`, and in `*out_signal` `0` when the access
/// proceeds (the page is faulted in, the stack grown), or the signal the
/// task gets (`SIGSEGV` 11, `SIGBUS` 7). `access` is one of
/// `MM_SIM_ACCESS_*` (another value is `EINVAL`).
///
/// # Safety
///
/// `sim` is `NULL` or a live handle; `out_signal` is `NULL` or valid for a
/// write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mm_sim_fault(sim: *mut MmSim, addr: u64, access: u32, out_signal: *mut i32) -> i32 {
    // SAFETY: the caller promises a live handle (or NULL), used by this
    // thread only.
    let sim = unsafe { handle(sim) };
    status(run(sim, "mm_sim_fault", |t| {
        out_arg(out_signal, "mm_sim_fault: out_signal")?;
        let access = match access {
            MM_SIM_ACCESS_READ => Access::Read,
            MM_SIM_ACCESS_WRITE => Access::Write,
            MM_SIM_ACCESS_EXEC => Access::Exec,
            _ => {
                return Err(Fail::new(
                    MM_SIM_EINVAL,
                    format!("mm_sim_fault: access {access} is not an MM_SIM_ACCESS_* value"),
                ));
            }
        };
        // The signal numbers on x86-64 Linux.
        const SIGBUS: i32 = 7;
        const SIGSEGV: i32 = 11;
        let sig = match t.fault(addr, access) {
            Ok(()) => 0,
            Err(Signal::Segv) => SIGSEGV,
            Err(Signal::Bus) => SIGBUS,
        };
        // SAFETY: not NULL (checked); the caller promises it is valid.
        unsafe { out_signal.write(sig) };
        Ok(())
    }))
}
