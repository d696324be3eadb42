//! Memory protection keys on x86 (PKU): the key allocator of
//! `arch/x86/include/asm/pkeys.h`, the execute-only key and the `mprotect`
//! override of `arch/x86/mm/pkeys.c`, `arch_set_user_pkey_access`
//! (`arch/x86/kernel/fpu/xstate.c`), the PKRU check of
//! `arch_vma_access_permitted` (`arch/x86/include/asm/mmu_context.h`) and
//! the `pkey_alloc`/`pkey_free` system calls (`mm/mprotect.c`;
//! `pkey_mprotect` is [`do_mprotect_pkey`](crate::mprotect::do_mprotect_pkey)).
//!
//! Whether the machine has them is [`MmConfig::pkeys`](mm_core::MmConfig)
//! (`ProcEnv` key `pkeys`, from `ospke` in `/proc/cpuinfo`).
//!
//! * **With keys** (`X86_FEATURE_OSPKE`): 16 keys; key 0 is allocated at
//!   creation. A VMA's key is in `VM_PKEY_BIT0..3`, so VMAs with different
//!   keys do not merge. The first mapping whose only permission is
//!   `PROT_EXEC` takes a key of its own, the execute-only key, whose
//!   access-disable bit goes into PKRU; data reads of it fault and `gup`
//!   cannot read it. That key is taken but not "allocated" to the user
//!   interfaces (`pkey_free` and `pkey_mprotect` refuse it). `pkey_free(0)`
//!   frees key 0, which the next `pkey_alloc` or execute-only mapping
//!   takes again. A process starts with every key but 0 access-disabled
//!   (`init_pkru_value`); a fork child starts with its parent's PKRU.
//!   Compared with a host that has keys (AMD EPYC, `ospke`, Linux 6.18):
//!   `mm-host/tests/pkeys.rs` and the random sessions.
//! * **Without keys** (an earlier development host): one key, and the map starts
//!   empty with `execute_only_pkey` 0, so that no key is ever "allocated":
//!   `pkey_mprotect` with any key but -1 and every `pkey_free` are
//!   `EINVAL`. The first `pkey_alloc` that passes its argument checks takes
//!   key 0, fails to set PKRU (`EINVAL`) and cannot free the key again, so
//!   every later one is `ENOSPC` (also in fork children, which copy the
//!   map). Measured on a host without `ospke` (Linux 6.18).
//!
//! PKRU is per thread. The address space's register
//! ([`MmStruct::pkru`](mm_core::MmStruct::pkru)) is the running thread's;
//! [`MmStruct::switch_thread`](mm_core::MmStruct::switch_thread) saves it
//! and loads another's, [`MmStruct::new_thread`](mm_core::MmStruct::new_thread)
//! gives a new thread its creator's (`mmsim replay` does both, line by
//! line). A program's own `WRPKRU` (`pkey_set`) makes no system call: it
//! reaches the model only through `set_pkru`.

use mm_core::{BarrierPolicy, MmState, MmStruct, MmWrite, VmFlags};

use crate::uapi::{Errno, PROT_EXEC};

/// `PKEY_DISABLE_ACCESS` (`pkey_alloc`'s `init_val`).
pub const PKEY_DISABLE_ACCESS: u64 = 0x1;
/// `PKEY_DISABLE_WRITE`.
pub const PKEY_DISABLE_WRITE: u64 = 0x2;
/// `PKEY_ACCESS_MASK`: the `init_val` bits x86 accepts.
pub const PKEY_ACCESS_MASK: u64 = PKEY_DISABLE_ACCESS | PKEY_DISABLE_WRITE;
/// `PKRU_AD_BIT`: access disable, the low bit of a key's pair.
const PKRU_AD_BIT: u32 = 0x1;
/// `PKRU_WD_BIT`: write disable.
const PKRU_WD_BIT: u32 = 0x2;
/// `VM_PKEY_SHIFT`: the first of the four key bits of `vm_flags`.
const VM_PKEY_SHIFT: u32 = 32;

/// `arch_max_pkey`: 16 keys with PKU, else 1.
fn arch_max_pkey(st: &MmState) -> i32 {
    if st.cfg.pkeys { 16 } else { 1 }
}

/// `vma_pkey`: the key in a VMA's flags.
pub fn vma_pkey(flags: VmFlags) -> i32 {
    ((flags.0 & VmFlags::PKEY_MASK.0) >> VM_PKEY_SHIFT) as i32
}

/// `arch_calc_vm_prot_bits`: the flag bits of key `pkey` (0-15).
pub fn pkey_flags(pkey: i32) -> VmFlags {
    VmFlags(((pkey as u64) & 0xf) << VM_PKEY_SHIFT)
}

/// `mm_pkey_is_allocated`: returned by `pkey_alloc` (or key 0 with PKU),
/// and not the execute-only key.
pub fn mm_pkey_is_allocated(st: &MmState, pkey: i32) -> bool {
    if pkey < 0 || pkey >= arch_max_pkey(st) || pkey == st.execute_only_pkey {
        return false;
    }
    st.pkey_allocation_map & (1 << pkey) != 0
}

/// `mm_pkey_alloc`: the lowest free key, marked allocated, or -1.
pub fn mm_pkey_alloc(st: &mut MmState) -> i32 {
    let all = ((1u32 << arch_max_pkey(st)) - 1) as u16;
    if st.pkey_allocation_map == all {
        return -1;
    }
    let k = st.pkey_allocation_map.trailing_ones() as i32;
    st.pkey_allocation_map |= 1 << k;
    k
}

/// `mm_pkey_free`.
pub fn mm_pkey_free(st: &mut MmState, pkey: i32) -> Result<(), Errno> {
    if !mm_pkey_is_allocated(st, pkey) {
        return Err(Errno::EINVAL);
    }
    st.pkey_allocation_map &= !(1 << pkey);
    Ok(())
}

/// `arch_set_user_pkey_access`: sets `pkey`'s two PKRU bits from
/// `init_val` (`EINVAL` without PKU).
pub fn arch_set_user_pkey_access<P: BarrierPolicy>(
    w: &mut MmWrite<'_, P>,
    pkey: i32,
    init_val: u64,
) -> Result<(), Errno> {
    if !w.st().cfg.pkeys || pkey >= arch_max_pkey(w.st()) {
        return Err(Errno::EINVAL);
    }
    let mut bits = 0;
    if init_val & PKEY_DISABLE_ACCESS != 0 {
        bits |= PKRU_AD_BIT;
    }
    if init_val & PKEY_DISABLE_WRITE != 0 {
        bits |= PKRU_WD_BIT;
    }
    let shift = 2 * pkey as u32;
    let old = w.pkru() & !((PKRU_AD_BIT | PKRU_WD_BIT) << shift);
    w.set_pkru(old | (bits << shift));
    Ok(())
}

/// `__pkru_allows_pkey`: whether PKRU lets a data access (a write if
/// `write`) through key `pkey`.
pub fn pkru_allows(pkru: u32, pkey: i32, write: bool) -> bool {
    let shift = 2 * pkey as u32;
    let deny = if write { PKRU_AD_BIT | PKRU_WD_BIT } else { PKRU_AD_BIT };
    pkru & (deny << shift) == 0
}

/// PKRU with the rights a data access (a write if `write`) through key
/// `pkey` needs, the other keys' as they are: what a program's own
/// `WRPKRU` (`pkey_set`) must have done before an access the trace shows
/// succeeding. No system call shows that instruction, so a replay learns
/// it from the access ([`pkru_allows`] was false in the model).
pub fn pkru_granting(pkru: u32, pkey: i32, write: bool) -> u32 {
    let shift = 2 * pkey as u32;
    let deny = if write { PKRU_AD_BIT | PKRU_WD_BIT } else { PKRU_AD_BIT };
    pkru & !(deny << shift)
}

/// `arch_vma_access_permitted` for a data access of this process's own
/// memory (instruction fetches are never refused): PKRU against the
/// VMA's key. `pkru` is 0 without PKU, which refuses nothing.
pub fn access_permitted(flags: VmFlags, pkru: u32, write: bool) -> bool {
    pkru_allows(pkru, vma_pkey(flags), write)
}

/// `execute_only_pkey` (`__execute_only_pkey`): the key of execute-only
/// memory, allocated at its first use, its access-disable bit set in PKRU
/// (again, if the program cleared it); -1 when no key is left; 0 without
/// PKU.
pub fn execute_only_pkey<P: BarrierPolicy>(w: &mut MmWrite<'_, P>) -> i32 {
    if !w.st().cfg.pkeys {
        return 0;
    }
    let mut key = w.st().execute_only_pkey;
    let fresh = key == -1;
    if fresh {
        key = mm_pkey_alloc(w.st());
        if key < 0 {
            return -1;
        }
    }
    if !fresh && !pkru_allows(w.pkru(), key, false) {
        return key;
    }
    if arch_set_user_pkey_access(w, key, PKEY_DISABLE_ACCESS).is_err() {
        let st = w.st();
        st.pkey_allocation_map &= !(1 << key);
        return -1;
    }
    if fresh {
        w.st().execute_only_pkey = key;
    }
    key
}

/// `do_mmap`'s key for a mapping whose only permission is `PROT_EXEC`:
/// the execute-only key's flag bits, or none (no key left, or no PKU).
#[cold]
#[inline(never)]
pub fn execute_only_flags<P: BarrierPolicy>(w: &mut MmWrite<'_, P>) -> VmFlags {
    pkey_flags(execute_only_pkey(w).max(0))
}

/// `arch_override_mprotect_pkey`: the key `mprotect` gives a VMA with
/// flags `flags` for `prot`. `pkey_mprotect`'s key stands; a plain
/// `mprotect` (`pkey` -1) to `PROT_EXEC` alone takes the execute-only key
/// (if one can be had), one from execute-only to anything else goes back
/// to key 0, and any other keeps the VMA's key. Always 0 without PKU.
pub fn arch_override_mprotect_pkey<P: BarrierPolicy>(
    w: &mut MmWrite<'_, P>,
    flags: VmFlags,
    prot: u64,
    pkey: i32,
) -> i32 {
    if !w.st().cfg.pkeys {
        return 0;
    }
    if pkey != -1 {
        return pkey;
    }
    if prot == PROT_EXEC {
        let k = execute_only_pkey(w);
        if k > 0 {
            return k;
        }
    } else if flags.0 & VmFlags::ACCESS_FLAGS.0 == VmFlags::EXEC.0 && vma_pkey(flags) == w.st().execute_only_pkey {
        // vma_is_pkey_exec_only.
        return 0;
    }
    vma_pkey(flags)
}

/// `SYSCALL_DEFINE2(pkey_alloc)`: a new key, its PKRU rights set from
/// `init_val` (`PKEY_DISABLE_ACCESS`, `PKEY_DISABLE_WRITE`).
pub fn sys_pkey_alloc<P: BarrierPolicy>(mm: &MmStruct<P>, flags: u64, init_val: u64) -> Result<u64, Errno> {
    if flags != 0 || init_val & !PKEY_ACCESS_MASK != 0 {
        return Err(Errno::EINVAL);
    }
    let mut w = mm.write();
    let pkey = mm_pkey_alloc(w.st());
    if pkey == -1 {
        return Err(Errno::ENOSPC);
    }
    if let Err(e) = arch_set_user_pkey_access(&mut w, pkey, init_val) {
        // Without PKU this cannot free the key (it is not "allocated").
        let _ = mm_pkey_free(w.st(), pkey);
        return Err(e);
    }
    Ok(pkey as u64)
}

/// `SYSCALL_DEFINE1(pkey_free)`. `pkey` is a C `int`: the low 32 bits of
/// the argument.
pub fn sys_pkey_free<P: BarrierPolicy>(mm: &MmStruct<P>, pkey: u64) -> Result<(), Errno> {
    let mut w = mm.write();
    mm_pkey_free(w.st(), pkey as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkru_pairs_of_bits() {
        let init = mm_core::INIT_PKRU;
        assert!(pkru_allows(init, 0, true));
        for k in 1..16 {
            assert!(!pkru_allows(init, k, false), "key {k}");
        }
        // Write-disable alone lets reads through.
        assert!(pkru_allows(0b1000, 1, false));
        assert!(!pkru_allows(0b1000, 1, true));
        // Granting a write clears both bits of the key, a read its
        // access-disable bit only; other keys keep theirs.
        let all = 0xffff_fffc;
        assert_eq!(pkru_granting(all, 1, true), all & !0b1100);
        assert_eq!(pkru_granting(all, 1, false), all & !0b0100);
        assert!(pkru_allows(pkru_granting(all, 3, true), 3, true));
        assert!(!pkru_allows(pkru_granting(all, 3, true), 2, false));
        assert_eq!(vma_pkey(pkey_flags(13) | VmFlags::READ), 13);
    }
}
