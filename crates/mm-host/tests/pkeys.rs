//! The protection-key system calls (`pkey_mprotect`, `pkey_alloc`,
//! `pkey_free`: `mm/mprotect.c`, `arch/x86/include/asm/pkeys.h`) against
//! the host. Every call runs on the host helper and the model; results,
//! maps and smaps `VmFlags` must be identical after each, and in fork
//! children, which copy the parent's key map.
//!
//! On a host without protection keys (no `ospke`, as this development
//! host) the expected values are checked too: no key is ever allocated,
//! so `pkey_mprotect` with any key but -1 and every `pkey_free` are
//! `EINVAL`; the first `pkey_alloc` that passes its argument checks is
//! `EINVAL` and leaves key 0 marked taken, so every later one, also in a
//! fork child, is `ENOSPC`. On a host with keys only the comparison runs.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

#[allow(dead_code)]
#[path = "scenarios/harness.rs"]
mod harness;

use harness::{P, Sc, at, run};
use mm_ops::call::{Call, Outcome};
use mm_ops::task::Task;
use mm_ops::uapi::*;

const RW: u64 = PROT_READ | PROT_WRITE;
const OK: Outcome = Outcome::Val(0);

/// Whether this host has protection keys.
fn host_pkeys() -> bool {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|w| w == "ospke"))
}

fn pm(addr: u64, len: u64, prot: u64, pkey: i64) -> Call {
    Call::PkeyMprotect { addr, len, prot, pkey }
}

fn alloc(flags: u64, init_val: u64) -> Call {
    Call::PkeyAlloc { flags, init_val }
}

/// Runs `call` on both sides; where the host has no keys, its answer must
/// be `nokeys`.
fn step(sc: &mut Sc, call: Call, nokeys: Outcome) -> Outcome {
    let text = mm_ops::strace::format_call(&call);
    let got = sc.step(call);
    if !host_pkeys() && got != nokeys {
        sc.fail(&format!(
            "`{text}`: host answered {got}, expected {nokeys} without keys"
        ));
    }
    got
}

/// Runs `call` in both fork children: same answer, and `nokeys` where the
/// host has no keys; then the children's maps and `VmFlags` must match.
fn in_child(sc: &mut Sc, child: &mut Task, call: Call, nokeys: Outcome) {
    let h = sc.twin.host.child().call(&call).expect("host child");
    let m = child.apply(&call, None);
    sc.calls += 1;
    if h != m || (!host_pkeys() && h != nokeys) {
        sc.fail(&format!("child: {call:?}: host {h}, model {m}, without keys {nokeys}"));
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
const ENOSPC: Outcome = Outcome::Err(Errno::ENOSPC);

#[test]
fn pkey_mprotect_checks_the_key_after_the_arguments() {
    case("pkey_mprotect_checks_the_key_after_the_arguments", |sc| {
        sc.anon(0, 8, PROT_READ);
        // -1 is a plain mprotect; so is a 64-bit value whose int is -1.
        step(sc, pm(at(0), 2 * P, RW, -1), OK);
        step(sc, pm(at(6), P, RW, 0x1_ffff_ffff), OK);
        // Keys nobody allocated (0 included: without keys the map is empty).
        for key in [0, 1, 2, 15, 16, -2, 0x1_0000_0000, i64::from(i32::MAX)] {
            step(sc, pm(at(2), P, RW, key), EINVAL);
        }
        sc.expect_arena(
            "only the -1 calls changed anything",
            &[
                (0, 2, "rw-p", 0),
                (2, 6, "r--p", 0),
                (6, 7, "rw-p", 0),
                (7, 8, "r--p", 0),
            ],
        );
        // The argument checks come first: length 0 succeeds, an unaligned
        // start or unknown prot bits are EINVAL either way; the key is
        // checked before the range (EINVAL, not ENOMEM, over a hole).
        step(sc, pm(at(0), 0, PROT_READ, 5), OK);
        step(sc, pm(at(0) + 1, P, PROT_READ, 5), EINVAL);
        step(sc, pm(at(0), P, 0x100, 5), EINVAL);
        step(sc, pm(at(20), P, PROT_READ, 5), EINVAL);
        step(sc, pm(at(20), P, PROT_READ, -1), Outcome::Err(Errno::ENOMEM));
        step(
            sc,
            pm(u64::MAX - P + 1, 2 * P, PROT_READ, 5),
            Outcome::Err(Errno::ENOMEM),
        );
        // Execute-only memory: with keys it takes the execute-only key.
        step(sc, pm(at(2), 2 * P, PROT_EXEC, -1), OK);
        sc.read(2);
        step(sc, pm(at(2), 2 * P, PROT_READ, -1), OK);
        for key in [0, 1, -1, 0x1_0000_0001] {
            step(sc, Call::PkeyFree { pkey: key }, EINVAL);
        }
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
        // The first real attempt: without keys, EINVAL, key 0 kept.
        let first = step(sc, alloc(0, 0), EINVAL);
        step(sc, alloc(0, PKEY_DW), ENOSPC);
        step(sc, alloc(0, 3), ENOSPC);
        step(sc, alloc(1, 0), EINVAL);
        // With keys, the allocated key works on the range.
        if let Outcome::Val(k) = first {
            step(sc, pm(at(1), P, RW, k as i64), OK);
            sc.write(0);
            sc.read(1);
            step(sc, Call::PkeyFree { pkey: k as i64 }, OK);
            step(sc, pm(at(1), P, RW, k as i64), EINVAL);
        }
        step(sc, Call::PkeyFree { pkey: 0 }, EINVAL);
    });
}

/// `PKEY_DISABLE_WRITE`.
const PKEY_DW: u64 = 2;

#[test]
fn fork_children_copy_the_key_map() {
    case("fork_children_copy_the_key_map", |sc| {
        sc.anon(0, 4, RW);
        step(sc, alloc(0, 0), EINVAL);
        let _pid = sc.twin.host.fork().expect("host").expect("fork");
        let mut child = sc.twin.model.fork().expect("model fork");
        sc.check_child(&child);
        // The parent's failed allocation left key 0 taken in the child too.
        in_child(sc, &mut child, alloc(0, 0), ENOSPC);
        in_child(sc, &mut child, pm(at(0), P, PROT_READ, 0), EINVAL);
        in_child(sc, &mut child, pm(at(0), P, PROT_READ, -1), OK);
        step(sc, alloc(0, 0), ENOSPC);
    });
}

#[test]
fn a_fork_child_allocates_on_its_own() {
    case("a_fork_child_allocates_on_its_own", |sc| {
        sc.anon(0, 4, RW);
        let _pid = sc.twin.host.fork().expect("host").expect("fork");
        let mut child = sc.twin.model.fork().expect("model fork");
        in_child(sc, &mut child, alloc(0, 0), EINVAL);
        in_child(sc, &mut child, alloc(0, 0), ENOSPC);
        // The parent's map is its own.
        step(sc, alloc(0, 0), EINVAL);
        step(sc, alloc(0, 0), ENOSPC);
        in_child(sc, &mut child, Call::PkeyFree { pkey: 0 }, EINVAL);
    });
}
