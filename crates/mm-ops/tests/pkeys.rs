//! Execute-only memory with protection keys (x86 PKU, `ospke`): the
//! kernel gives every mapping whose only permission is `PROT_EXEC` the
//! execute-only key (`do_mmap` → `execute_only_pkey`, `mprotect` →
//! `arch_override_mprotect_pkey`), whose access-disable bit is set in
//! PKRU. Data reads then fault (`access_error` →
//! `arch_vma_access_permitted`: `SIGSEGV`), instruction fetches do not, and
//! `gup` cannot read it (`check_vma_flags`: `mlock`'s prefault fails, so
//! `mlock` answers `ENOMEM` with the lock bits already set; `MAP_POPULATE`
//! ignores the failure). The expected values are those rules from the
//! kernel's sources (`arch/x86/mm/pkeys.c`, `arch/x86/mm/fault.c`,
//! `mm/gup.c`), worked by hand; the differential tests compare them with
//! a host that has protection keys (`ProcEnv` reads `ospke`).

use mm_core::VmaView;
use mm_ops::uapi::*;
use mm_ops::{Access, Errno, Signal, Task, TaskBuilder};

const P: u64 = PAGE_SIZE;

fn task(pkeys: bool) -> Task {
    TaskBuilder::new()
        .set("pkeys", if pkeys { "1" } else { "0" })
        .unwrap()
        .build()
        .unwrap()
}

fn map(t: &mut Task, prot: u64) -> u64 {
    t.mmap(0, 4 * P, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0).unwrap()
}

#[test]
fn data_reads_of_execute_only_memory_fault() {
    let mut t = task(true);
    let a = map(&mut t, PROT_EXEC);
    assert_eq!(t.fault(a, Access::Read), Err(Signal::Segv));
    assert_eq!(t.fault(a, Access::Exec), Ok(()));
    assert_eq!(t.fault(a, Access::Write), Err(Signal::Segv));
    // Any other permission takes the key back.
    t.mprotect(a, P, PROT_READ | PROT_EXEC).unwrap();
    assert_eq!(t.fault(a, Access::Read), Ok(()));
    // And PROT_EXEC alone gives it again.
    t.mprotect(a, 4 * P, PROT_EXEC).unwrap();
    assert_eq!(t.fault(a + P, Access::Read), Err(Signal::Segv));
    // Without protection keys, x86 reads what it may execute.
    let mut t = task(false);
    let a = map(&mut t, PROT_EXEC);
    assert_eq!(t.fault(a, Access::Read), Ok(()));
}

#[test]
fn mlock_cannot_prefault_execute_only_memory() {
    let mut t = task(true);
    let a = map(&mut t, PROT_EXEC);
    // The lock bits are set, then the prefault fails: EFAULT -> ENOMEM.
    assert_eq!(t.mlock(a, 4 * P), Err(Errno::ENOMEM));
    let locked = t.mm().read().state().locked_vm;
    assert_eq!(locked, 4);
    // Readable memory prefaults.
    let b = map(&mut t, PROT_READ | PROT_EXEC);
    assert_eq!(t.mlock(b, 4 * P), Ok(()));
    let mut t = task(false);
    let a = map(&mut t, PROT_EXEC);
    assert_eq!(t.mlock(a, 4 * P), Ok(()));
}

#[test]
fn the_setting_round_trips_through_the_environment() {
    let env = mm_ops::env::ProcEnv::from_lines("pkeys: 1\n").unwrap();
    assert!(env.pkeys && env.config().pkeys);
    assert!(env.to_lines().contains("pkeys: 1\n"));
    assert!(!mm_ops::env::ProcEnv::default().config().pkeys);
}

/// `PKEY_DISABLE_ACCESS` and `PKEY_DISABLE_WRITE`.
const DA: u64 = 1;
const DW: u64 = 2;

/// VMAs in `[a, a + len)`.
fn vmas_in(t: &Task, a: u64, len: u64) -> usize {
    let r = t.mm().read();
    let mut n = 0;
    r.for_each_vma(|v| n += usize::from(v.start < a + len && v.end > a));
    n
}

// With keys (worked from `arch/x86/include/asm/pkeys.h` and
// `arch/x86/mm/pkeys.c`): key 0 is taken at creation, the execute-only
// key is the next free one when the first execute-only mapping is made,
// and `pkey_alloc` gives the lowest free key after that.
#[test]
fn keys_are_handed_out_around_the_execute_only_key() {
    let mut t = task(true);
    let a = map(&mut t, PROT_EXEC);
    assert_eq!(t.pkey_alloc(0, 0), Ok(2), "key 1 went to execute-only memory");
    // The execute-only key is not the user's to use or free.
    assert_eq!(t.pkey_free(1), Err(Errno::EINVAL));
    assert_eq!(t.pkey_mprotect(a, P, PROT_READ, 1), Err(Errno::EINVAL));
    assert_eq!(t.pkey_free(2), Ok(()));
    assert_eq!(t.pkey_free(2), Err(Errno::EINVAL));
    assert_eq!(t.pkey_alloc(0, DW), Ok(2));
    // Key 0 is allocated at creation, and x86's mm_pkey_free has no rule
    // against freeing it: pkey_mprotect with 0 then fails, until a
    // pkey_alloc hands 0 out again (the lowest free key).
    assert_eq!(t.pkey_mprotect(a, P, PROT_READ, 0), Ok(()));
    assert_eq!(t.pkey_free(0), Ok(()));
    assert_eq!(t.pkey_mprotect(a, P, PROT_READ, 0), Err(Errno::EINVAL));
    assert_eq!(t.pkey_alloc(0, 0), Ok(0));
    // Argument checks come before the allocator.
    assert_eq!(t.pkey_alloc(1, 0), Err(Errno::EINVAL));
    assert_eq!(t.pkey_alloc(0, 4), Err(Errno::EINVAL));
}

#[test]
fn keyed_ranges_split_and_take_their_rights_from_pkru() {
    let mut t = task(true);
    let b = map(&mut t, PROT_READ | PROT_WRITE);
    let k = t.pkey_alloc(0, DW).unwrap() as i32;
    assert_eq!(k, 1);
    t.pkey_mprotect(b + P, P, PROT_READ | PROT_WRITE, k).unwrap();
    assert_eq!(vmas_in(&t, b, 4 * P), 3, "a key of its own splits the range");
    // VM_PKEY_BIT* have no VmFlags mnemonic.
    let f = t.mm().read().vma(t.mm().read().vma_lookup(b + P).unwrap()).flags;
    assert_eq!(mm_ops::pkeys::vma_pkey(f), 1);
    assert!(!mm_ops::kernel::task_mmu::smaps_vm_flags(f).contains("  "));
    assert_eq!(t.fault(b + P, Access::Read), Ok(()));
    assert_eq!(
        t.fault(b + P, Access::Write),
        Err(Signal::Segv),
        "PKRU write-disables key 1"
    );
    assert_eq!(t.fault(b, Access::Write), Ok(()));
    // A plain mprotect keeps the key: no merge.
    t.mprotect(b + P, P, PROT_READ | PROT_WRITE).unwrap();
    assert_eq!(vmas_in(&t, b, 4 * P), 3);
    // The program lifts the restriction (WRPKRU): writes pass.
    t.mm().set_pkru(mm_core::INIT_PKRU & !(0b11 << 2));
    assert_eq!(t.fault(b + P, Access::Write), Ok(()));
    // Back to key 0: the untouched tail merges again; the first page,
    // written while its neighbour had another key (anon_vma_compatible
    // compares the key bits), has an anon_vma of its own and stays apart.
    t.pkey_mprotect(b + P, P, PROT_READ | PROT_WRITE, 0).unwrap();
    assert_eq!(vmas_in(&t, b, 4 * P), 2);
    assert_eq!(vmas_in(&t, b + P, 3 * P), 1);
    // Without keys, only -1 passes.
    let mut t = task(false);
    let b = map(&mut t, PROT_READ);
    assert_eq!(t.pkey_mprotect(b, P, PROT_READ, 0), Err(Errno::EINVAL));
    assert_eq!(t.pkey_mprotect(b, P, PROT_READ | PROT_WRITE, -1), Ok(()));
    assert_eq!(t.pkey_alloc(0, 0), Err(Errno::EINVAL));
    assert_eq!(t.pkey_alloc(0, 0), Err(Errno::ENOSPC));
}

#[test]
fn execute_only_memory_stays_readable_when_no_key_is_left() {
    let mut t = task(true);
    for k in 1..16 {
        assert_eq!(t.pkey_alloc(0, 0), Ok(k));
    }
    assert_eq!(t.pkey_alloc(0, 0), Err(Errno::ENOSPC));
    let a = map(&mut t, PROT_EXEC);
    assert_eq!(t.fault(a, Access::Read), Ok(()), "no execute-only key: key 0");
    // A key comes free: the next PROT_EXEC mprotect takes it.
    t.pkey_free(5).unwrap();
    t.mprotect(a, 4 * P, PROT_EXEC).unwrap();
    assert_eq!(t.fault(a, Access::Read), Err(Signal::Segv));
    assert_eq!(t.pkey_alloc(0, 0), Err(Errno::ENOSPC));
    // Leaving execute-only goes back to key 0.
    t.mprotect(a, 4 * P, PROT_READ | PROT_EXEC).unwrap();
    let f = t.mm().read().vma(t.mm().read().vma_lookup(a).unwrap()).flags;
    assert_eq!(mm_ops::pkeys::vma_pkey(f), 0);
}

#[test]
fn pinning_fails_where_the_key_denies_access() {
    let mut t = task(true);
    let b = map(&mut t, PROT_READ | PROT_WRITE);
    let k = t.pkey_alloc(0, DA).unwrap() as i32;
    t.pkey_mprotect(b, 2 * P, PROT_READ | PROT_WRITE | PROT_EXEC, k)
        .unwrap();
    assert_eq!(t.mlock(b, 2 * P), Err(Errno::ENOMEM));
    assert_eq!(t.fault(b, Access::Read), Err(Signal::Segv));
    assert_eq!(t.fault(b, Access::Exec), Ok(()), "fetches ignore keys");
    // A fork child has the parent's keys and PKRU.
    let mut c = t.fork().unwrap();
    assert_eq!(c.fault(b, Access::Read), Err(Signal::Segv));
    assert_eq!(c.pkey_alloc(0, 0), Ok(2));
    assert_eq!(t.pkey_alloc(0, 0), Ok(2));
}

/// PKRU is a per-thread register (`switch_fpu`; `copy_thread` copies it
/// to a new thread): `pkey_alloc`'s rights go to the calling thread's, a
/// thread made before keeps the rights a process starts with (every key
/// but 0 access-disabled), one made after starts with its creator's.
#[test]
fn pkru_is_per_thread() {
    let mut t = task(true);
    let a = t
        .mmap(0, 2 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        .unwrap();
    let mm = t.mm().clone();
    mm.switch_thread(10);
    mm.new_thread(10, 11);
    let k = t.pkey_alloc(0, 0).unwrap();
    t.pkey_mprotect(a, 2 * P, PROT_READ | PROT_WRITE, k as i32).unwrap();
    mm.new_thread(10, 12);
    assert_eq!(t.fault(a, Access::Read), Ok(()), "the allocating thread");
    mm.switch_thread(11);
    assert_eq!(t.fault(a, Access::Read), Err(Signal::Segv), "a thread made before");
    // A thread's own pkey_alloc changes its own rights only.
    let k2 = t.pkey_alloc(0, 0).unwrap();
    mm.switch_thread(12);
    assert_eq!(t.fault(a + P, Access::Write), Ok(()), "a thread made after");
    mm.switch_thread(10);
    assert_eq!(t.fault(a, Access::Write), Ok(()), "back to the first thread");
    t.pkey_mprotect(a, P, PROT_READ | PROT_WRITE, k2 as i32).unwrap();
    assert_eq!(t.fault(a, Access::Read), Err(Signal::Segv), "k2 is allowed in 11 only");
    mm.switch_thread(11);
    assert_eq!(t.fault(a, Access::Read), Ok(()), "k2 in 11");
    // A fork child starts with the forking thread's register.
    mm.switch_thread(12);
    let mut child = t.fork().unwrap();
    assert_eq!(child.fault(a + P, Access::Read), Ok(()));
    mm.exit_thread(11);
    mm.switch_thread(11);
    assert_eq!(
        t.fault(a + P, Access::Read),
        Ok(()),
        "an exited thread's rights are gone"
    );
}
