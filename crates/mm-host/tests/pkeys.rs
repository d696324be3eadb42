//! The protection-key system calls (`pkey_mprotect`, `pkey_alloc`,
//! `pkey_free`: `mm/mprotect.c`, `arch/x86/include/asm/pkeys.h`) against
//! the host. Every call runs on the host helper and the model; results,
//! maps and smaps `VmFlags` must be identical after each, and in fork
//! children, which copy the parent's key map.
//!
//! Each step states the host's answer both ways, measured on a host without
//! protection keys (no `ospke`) and on one with them (AMD EPYC, `pku` and
//! `ospke`, Linux 6.18); the test checks the one that applies here:
//! * Without keys no key is ever allocated, so `pkey_mprotect` with any key
//!   but -1 and every `pkey_free` are `EINVAL`; the first `pkey_alloc` that
//!   passes its argument checks is `EINVAL` and leaves key 0 marked taken,
//!   so every later one, also in a fork child, is `ENOSPC`.
//! * With keys, key 0 is allocated from the start (and `pkey_free(0)`
//!   frees it); `pkey_alloc` hands out the lowest free key; the first
//!   execute-only `mprotect` takes a key of its own (read faults there are
//!   refused), which `pkey_free` can free like any other.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

#[allow(dead_code)]
#[path = "scenarios/harness.rs"]
mod harness;

use harness::{P, Sc, at, host_pkeys, run};
use mm_ops::call::{Access, Call, Outcome, Signal};
use mm_ops::task::Task;
use mm_ops::uapi::*;

const RW: u64 = PROT_READ | PROT_WRITE;
const OK: Outcome = Outcome::Val(0);

fn pm(addr: u64, len: u64, prot: u64, pkey: i64) -> Call {
    Call::PkeyMprotect { addr, len, prot, pkey }
}

fn alloc(flags: u64, init_val: u64) -> Call {
    Call::PkeyAlloc { flags, init_val }
}

/// The host's answer without protection keys and with them.
fn either(nokeys: Outcome, keys: Outcome) -> Outcome {
    if host_pkeys() { keys } else { nokeys }
}

/// Runs `call` on both sides; the host must answer `nokeys` where it has
/// no protection keys, `keys` where it has them.
fn step2(sc: &mut Sc, call: Call, nokeys: Outcome, keys: Outcome) -> Outcome {
    sc.expect(call, either(nokeys, keys));
    either(nokeys, keys)
}

/// [`step2`] of a call whose answer is the same either way.
fn step(sc: &mut Sc, call: Call, want: Outcome) -> Outcome {
    step2(sc, call, want, want)
}

/// Runs `call` in both fork children: the same answer, `nokeys` or `keys`
/// as the host has keys; then the children's maps and `VmFlags` must match.
fn in_child(sc: &mut Sc, child: &mut Task, call: Call, nokeys: Outcome, keys: Outcome) {
    let h = sc.twin.host.child().call(&call).expect("host child");
    let m = child.apply(&call, None);
    sc.calls += 1;
    let want = either(nokeys, keys);
    if h != m || h != want {
        sc.fail(&format!("child: {call:?}: host {h}, model {m}, expected {want}"));
    }
    sc.check_child(child);
}

fn case(name: &'static str, f: harness::Scenario) {
    let n = run(name, f);
    println!(
        "pkeys {name}: {n} host-compared calls (host protection keys: {})",
        host_pkeys()
    );
}

const EINVAL: Outcome = Outcome::Err(Errno::EINVAL);
const SEGV: Outcome = Outcome::Signal(Signal::Segv);

fn fault(page: u64, access: Access) -> Call {
    Call::Fault {
        addr: at(page) + 8,
        access,
    }
}
const ENOSPC: Outcome = Outcome::Err(Errno::ENOSPC);

#[test]
fn pkey_mprotect_checks_the_key_after_the_arguments() {
    case("pkey_mprotect_checks_the_key_after_the_arguments", |sc| {
        sc.anon(0, 8, PROT_READ);
        // -1 is a plain mprotect; so is a 64-bit value whose int is -1.
        step(sc, pm(at(0), 2 * P, RW, -1), OK);
        step(sc, pm(at(6), P, RW, 0x1_ffff_ffff), OK);
        // Key 0 (also as the int of 0x1_0000_0000): allocated only with
        // keys, and then the page merges with its rw-p neighbour.
        step2(sc, pm(at(2), P, RW, 0), EINVAL, OK);
        step2(sc, pm(at(2), P, RW, 0x1_0000_0000), EINVAL, OK);
        // Keys nobody allocated, or out of range.
        for key in [1, 2, 15, 16, -2, i64::from(i32::MAX)] {
            step(sc, pm(at(3), P, RW, key), EINVAL);
        }
        let merged = [
            (0, 3, "rw-p", 0),
            (3, 6, "r--p", 0),
            (6, 7, "rw-p", 0),
            (7, 8, "r--p", 0),
        ];
        let unchanged = [
            (0, 2, "rw-p", 0),
            (2, 6, "r--p", 0),
            (6, 7, "rw-p", 0),
            (7, 8, "r--p", 0),
        ];
        let want: &[_] = if host_pkeys() { &merged } else { &unchanged };
        sc.expect_arena("only the valid keys changed anything", want);
        // The argument checks come first: length 0 succeeds, an unaligned
        // start or unknown prot bits are EINVAL either way; the key is
        // checked before the range (EINVAL, not ENOMEM, over a hole).
        step(sc, pm(at(0), 0, PROT_READ, 5), OK);
        step(sc, pm(at(0) + 1, P, PROT_READ, 5), EINVAL);
        step(sc, pm(at(0), P, 0x100, 5), EINVAL);
        step(sc, pm(at(20), P, PROT_READ, 5), EINVAL);
        step(sc, pm(at(20), P, PROT_READ, -1), Outcome::Err(Errno::ENOMEM));
        step2(sc, pm(at(20), P, PROT_READ, 0), EINVAL, Outcome::Err(Errno::ENOMEM));
        step(
            sc,
            pm(u64::MAX - P + 1, 2 * P, PROT_READ, 5),
            Outcome::Err(Errno::ENOMEM),
        );
        // Execute-only memory: with keys it takes the execute-only key
        // (key 1, the lowest free), which refuses reads.
        step(sc, pm(at(3), 2 * P, PROT_EXEC, -1), OK);
        step2(sc, fault(3, Access::Read), OK, SEGV);
        step(sc, fault(3, Access::Exec), OK);
        // Any other protection gives the range key 0 back.
        step(sc, pm(at(3), 2 * P, PROT_READ, -1), OK);
        step(sc, fault(3, Access::Read), OK);
        // The execute-only key is taken but not "allocated" to the user
        // interfaces: pkey_free and pkey_mprotect refuse it, and pkey_alloc
        // hands out the next one.
        step(sc, Call::PkeyFree { pkey: 1 }, EINVAL);
        step(sc, pm(at(3), P, PROT_READ, 1), EINVAL);
        step2(sc, alloc(0, 0), EINVAL, Outcome::Val(2));
        step2(sc, Call::PkeyFree { pkey: 0x1_0000_0002 }, EINVAL, OK);
        step(sc, Call::PkeyFree { pkey: -1 }, EINVAL);
        step(sc, Call::PkeyFree { pkey: 16 }, EINVAL);
    });
}

#[test]
fn pkey_alloc_checks_flags_then_runs_out() {
    case("pkey_alloc_checks_flags_then_runs_out", |sc| {
        sc.anon(0, 4, RW);
        // Reserved flags and unknown rights come first.
        step(sc, alloc(1, 0), EINVAL);
        step(sc, alloc(1 << 32, 0), EINVAL);
        step(sc, alloc(0, 4), EINVAL);
        step(sc, alloc(0, 1 << 32), EINVAL);
        // The first real attempt: without keys, EINVAL, key 0 kept; with
        // keys, key 1, then 2 and 3.
        step2(sc, alloc(0, 0), EINVAL, Outcome::Val(1));
        step2(sc, alloc(0, PKEY_DW), ENOSPC, Outcome::Val(2));
        step2(sc, alloc(0, 3), ENOSPC, Outcome::Val(3));
        step(sc, alloc(1, 0), EINVAL);
        if host_pkeys() {
            // Key 1 (all rights) on a page: both accesses work there.
            step(sc, pm(at(1), P, RW, 1), OK);
            sc.write(1);
            sc.read(1);
            // Key 2 denies writes only; key 3 denies access.
            step(sc, pm(at(2), P, RW, 2), OK);
            step(sc, fault(2, Access::Write), SEGV);
            sc.read(2);
            step(sc, pm(at(3), P, RW, 3), OK);
            step(sc, fault(3, Access::Read), SEGV);
            step(sc, fault(3, Access::Write), SEGV);
            // A key's VMA does not merge with its neighbours'.
            sc.expect_arena(
                "one VMA per key",
                &[
                    (0, 1, "rw-p", 0),
                    (1, 2, "rw-p", 0),
                    (2, 3, "rw-p", 0),
                    (3, 4, "rw-p", 0),
                ],
            );
            // Freed, the key is EINVAL; its VMA keeps it, and the next
            // pkey_alloc hands it out again, with the new rights.
            step(sc, Call::PkeyFree { pkey: 3 }, OK);
            step(sc, pm(at(0), P, RW, 3), EINVAL);
            step(sc, alloc(0, 0), Outcome::Val(3));
            sc.read(3);
            // Keys run out at 15 (key 0 and 14 more).
            for k in 4..16 {
                step(sc, alloc(0, 0), Outcome::Val(k));
            }
            step(sc, alloc(0, 0), ENOSPC);
        }
        step2(sc, Call::PkeyFree { pkey: 0 }, EINVAL, OK);
    });
}

/// `PKEY_DISABLE_ACCESS`.
const PKEY_DA: u64 = 1;
/// `PKEY_DISABLE_WRITE`.
const PKEY_DW: u64 = 2;

#[test]
fn fork_children_copy_the_key_map() {
    case("fork_children_copy_the_key_map", |sc| {
        sc.anon(0, 4, RW);
        // Key 1 allows everything (a process starts with every key but 0
        // access-disabled), on page 1; key 2 denies access, on page 2.
        step2(sc, alloc(0, 0), EINVAL, Outcome::Val(1));
        step2(sc, pm(at(1), P, RW, 1), EINVAL, OK);
        step2(sc, alloc(0, PKEY_DA), ENOSPC, Outcome::Val(2));
        step2(sc, pm(at(2), P, RW, 2), EINVAL, OK);
        step2(sc, fault(2, Access::Read), OK, SEGV);
        let _pid = sc.twin.host.fork().expect("host").expect("fork");
        let mut child = sc.twin.model.fork().expect("model fork");
        sc.check_child(&child);
        // The child's rights are the parent's, not those a process starts
        // with.
        in_child(sc, &mut child, fault(2, Access::Read), OK, SEGV);
        in_child(sc, &mut child, fault(1, Access::Read), OK, OK);
        // The parent's allocations are the child's too: without keys key 0
        // stays taken; with them keys 1 and 2 are, and 3 comes next.
        in_child(sc, &mut child, alloc(0, 0), ENOSPC, Outcome::Val(3));
        in_child(sc, &mut child, pm(at(0), P, PROT_READ, 1), EINVAL, OK);
        in_child(sc, &mut child, pm(at(0), P, PROT_READ, -1), OK, OK);
        step2(sc, alloc(0, 0), ENOSPC, Outcome::Val(3));
    });
}

#[test]
fn a_fork_child_allocates_on_its_own() {
    case("a_fork_child_allocates_on_its_own", |sc| {
        sc.anon(0, 4, RW);
        let _pid = sc.twin.host.fork().expect("host").expect("fork");
        let mut child = sc.twin.model.fork().expect("model fork");
        in_child(sc, &mut child, alloc(0, 0), EINVAL, Outcome::Val(1));
        in_child(sc, &mut child, alloc(0, 0), ENOSPC, Outcome::Val(2));
        // The parent's map is its own.
        step2(sc, alloc(0, 0), EINVAL, Outcome::Val(1));
        step2(sc, alloc(0, 0), ENOSPC, Outcome::Val(2));
        // An execute-only mapping in the child takes its lowest free key
        // (3), which its pkey_free refuses.
        in_child(sc, &mut child, pm(at(0), P, PROT_EXEC, -1), OK, OK);
        in_child(sc, &mut child, alloc(0, 0), ENOSPC, Outcome::Val(4));
        in_child(sc, &mut child, Call::PkeyFree { pkey: 3 }, EINVAL, EINVAL);
        in_child(sc, &mut child, Call::PkeyFree { pkey: 4 }, EINVAL, OK);
    });
}

fn populate(page: u64, pages: u64, write: bool) -> Call {
    Call::Madvise {
        addr: at(page),
        len: pages * P,
        advice: if write {
            madv::POPULATE_WRITE
        } else {
            madv::POPULATE_READ
        },
    }
}

/// `MADV_POPULATE_READ`/`WRITE` go through gup's `check_vma_flags`, whose
/// `arch_vma_access_permitted` asks the thread's PKRU about the VMA's key:
/// a key that refuses the access is gup's `EFAULT`, which madvise reports
/// as `EINVAL`, before any page is touched (found by the long random
/// sessions, seed 420009 with 2,000 calls each: the model populated).
#[test]
fn populate_asks_the_protection_key() {
    case("populate_asks_the_protection_key", |sc| {
        sc.anon(0, 6, RW);
        // pkey_alloc's init_val sets this thread's rights to the new key:
        // none (1: PKEY_DISABLE_ACCESS), reads only (2: PKEY_DISABLE_WRITE).
        step2(sc, alloc(0, 1), EINVAL, Outcome::Val(1));
        step2(sc, alloc(0, 2), EINVAL, Outcome::Val(2));
        step2(sc, pm(at(0), 2 * P, RW, 1), EINVAL, OK);
        step2(sc, pm(at(2), 2 * P, RW, 2), EINVAL, OK);
        step2(sc, populate(0, 2, false), OK, EINVAL);
        step2(sc, populate(0, 2, true), OK, EINVAL);
        step(sc, populate(2, 2, false), OK);
        step2(sc, populate(2, 2, true), OK, EINVAL);
        // Key 0 still populates; a range that reaches a refused key fails
        // there, having populated what came before.
        step(sc, populate(4, 2, true), OK);
        step2(sc, populate(3, 2, false), OK, OK);
        step2(sc, populate(1, 2, false), OK, EINVAL);
        step(sc, fault(2, Access::Read), OK);
        step2(sc, fault(2, Access::Write), OK, SEGV);
        step2(sc, fault(0, Access::Read), OK, SEGV);
    });
}

/// mprotect that makes a locked private VMA writable populates it
/// (`populate_vma_page_range`) only where PKRU lets writes through: under
/// a key that refuses them no page is faulted and no `anon_vma` is made,
/// so taking write away again drops `VM_ACCOUNT` (smaps `ac`), which a
/// populated VMA keeps (found by the random sessions, seed 510166: the
/// model populated regardless of the key).
#[test]
fn locked_populate_asks_the_protection_key() {
    case("locked_populate_asks_the_protection_key", |sc| {
        let mprotect = |page: u64, pages: u64, prot: u64| Call::Mprotect {
            addr: at(page),
            len: pages * P,
            prot,
        };
        sc.map(0, 4, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
        // Key 1, reads only (2: PKEY_DISABLE_WRITE), on the first half.
        step2(sc, alloc(0, 2), EINVAL, Outcome::Val(1));
        step2(sc, pm(at(0), 2 * P, RW, 1), EINVAL, OK);
        step(sc, mprotect(2, 2, RW), OK);
        step(sc, mprotect(0, 4, PROT_READ), OK);
        step2(sc, fault(0, Access::Read), OK, OK);
    });
}
