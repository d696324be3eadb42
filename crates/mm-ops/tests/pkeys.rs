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
//! `mm/gup.c`), worked by hand: the development host has no protection
//! keys, so the differential tests cannot show them (they do, on a host
//! that has them: `ProcEnv` reads `ospke`).

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
