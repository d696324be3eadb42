//! Reading the address space: looking an address up, rendering
//! `/proc/PID/maps`.

use std::ffi::{CString, c_char};

use mm_core::VmFlags;
use mm_spec::lookup::{Spec, VmaInfo, vma_lookup_locked, vma_lookup_speculative};

use crate::{Fail, MM_SIM_EINVAL, MmSim, handle, no_handle, out_arg, run};

/// `PROT_READ`, `PROT_WRITE`, `PROT_EXEC` (`<sys/mman.h>`).
const PROT_BITS: [(VmFlags, u32); 3] = [(VmFlags::READ, 1), (VmFlags::WRITE, 2), (VmFlags::EXEC, 4)];

/// `EAGAIN`: a speculative lookup that did not validate.
const EAGAIN: i32 = 11;

/// The VMA containing an address, as a lookup finds it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmSimVma {
    /// `vm_start`: the first address.
    pub start: u64,
    /// `vm_end`: one past the last address.
    pub end: u64,
    /// `vm_pgoff`: the offset in pages (into the file; for anonymous
    /// memory, the start page as the kernel keeps it).
    pub pgoff: u64,
    /// `vm_flags`: the kernel's `VM_*` bits (`include/linux/mm.h`,
    /// x86-64: `VM_READ` 0x1, `VM_WRITE` 0x2, `VM_EXEC` 0x4, `VM_SHARED`
    /// 0x8, `VM_MAYREAD` 0x10...).
    pub vm_flags: u64,
    /// The protection as `PROT_READ | PROT_WRITE | PROT_EXEC` bits.
    pub prot: u32,
    /// `1` for a file-backed VMA, else `0`.
    pub file_backed: u32,
    /// The inode number of `vm_file`, `0` for anonymous memory.
    pub inode: u64,
}

impl From<VmaInfo> for MmSimVma {
    fn from(v: VmaInfo) -> MmSimVma {
        let prot = PROT_BITS
            .iter()
            .filter(|(f, _)| v.flags.contains(*f))
            .fold(0, |p, (_, b)| p | b);
        MmSimVma {
            start: v.start,
            end: v.end,
            pgoff: v.pgoff,
            vm_flags: v.flags.0,
            prot,
            file_backed: v.ino.is_some() as u32,
            inode: v.ino.unwrap_or(0),
        }
    }
}

/// `1` and `*out` filled, `0` (not found, `*out` untouched), or a negative
/// errno.
fn found(r: Result<Option<VmaInfo>, i32>, out: *mut MmSimVma) -> i32 {
    match r {
        Ok(Some(v)) => {
            // SAFETY: `run` returned `Ok` only after `out_arg` checked it
            // is not NULL; the caller promises it is valid for a write.
            unsafe { out.write(v.into()) };
            1
        }
        Ok(None) => 0,
        Err(e) => -e,
    }
}

/// `vma_lookup` (`include/linux/mm.h`) under `mmap_read_lock`: `1` and the
/// VMA containing `addr` in `*out`, `0` if no VMA contains it, or a
/// negative errno (`-EFAULT` for a `NULL` `out`, `-EINVAL` for a `NULL`
/// handle).
///
/// # Safety
///
/// `sim` is `NULL` or a live handle; `out` is `NULL` or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mm_sim_lookup(sim: *mut MmSim, addr: u64, out: *mut MmSimVma) -> i32 {
    // SAFETY: the caller promises a live handle (or NULL), used by this
    // thread only.
    let sim = unsafe { handle(sim) };
    let r = run(sim, "mm_sim_lookup", |t| {
        out_arg(out, "mm_sim_lookup: out")?;
        Ok(vma_lookup_locked(t.mm(), addr))
    });
    found(r, out)
}

/// `vma_lookup` the lock-free way, as `lock_vma_under_rcu` and the 6.17+
/// `/proc/PID/maps` reader do (`mmap_lock_speculate_try_begin`, the
/// walk, `mmap_lock_speculate_retry`): the same answers as
/// [`mm_sim_lookup`], or `-EAGAIN` when the attempt did not validate (a
/// writer held or took `mmap_lock`; it cannot happen while calls on the
/// handle are serialized).
///
/// # Safety
///
/// `sim` is `NULL` or a live handle; `out` is `NULL` or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mm_sim_lookup_speculative(sim: *mut MmSim, addr: u64, out: *mut MmSimVma) -> i32 {
    // SAFETY: the caller promises a live handle (or NULL), used by this
    // thread only.
    let sim = unsafe { handle(sim) };
    let r = run(sim, "mm_sim_lookup_speculative", |t| {
        out_arg(out, "mm_sim_lookup_speculative: out")?;
        match vma_lookup_speculative(t.mm(), addr) {
            Spec::Valid { value, .. } => Ok(value),
            Spec::Busy | Spec::Retry => Err(Fail::new(
                EAGAIN,
                "mm_sim_lookup_speculative: the attempt did not validate",
            )),
        }
    });
    found(r, out)
}

/// `/proc/PID/maps` (`fs/proc/task_mmu.c` `show_map`), `[vsyscall]` line
/// included: a new NUL-terminated string the caller frees with
/// [`mm_sim_string_free`], or `NULL` on failure (see `mm_sim_last_error`).
///
/// # Safety
///
/// `sim` is `NULL` or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mm_sim_maps(sim: *mut MmSim) -> *mut c_char {
    // SAFETY: the caller promises a live handle (or NULL), used by this
    // thread only.
    let sim = unsafe { handle(sim) };
    run(sim, "mm_sim_maps", |t| {
        CString::new(t.maps()).map_err(|e| Fail::new(MM_SIM_EINVAL, format!("mm_sim_maps: {e}")))
    })
    .map_or(std::ptr::null_mut(), CString::into_raw)
}

/// Frees a string from [`mm_sim_maps`]. `NULL` is ignored.
///
/// # Safety
///
/// `s` is `NULL` or a string returned by `mm_sim_maps` and not yet freed;
/// it must not be used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mm_sim_string_free(s: *mut c_char) {
    if s.is_null() {
        return;
    }
    // SAFETY: the caller hands back a pointer made by `CString::into_raw`
    // in `mm_sim_maps`, exactly once.
    let c = unsafe { CString::from_raw(s) };
    let _ = no_handle(move || drop(c));
}
