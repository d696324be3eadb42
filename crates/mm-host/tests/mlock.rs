//! `mlock(2)`, `mlock2(2)`, `munlock(2)`, `mlockall(2)` and
//! `munlockall(2)` against the host kernel (`mm/mlock.c`, Linux 6.18):
//! every call runs on the host helper and on the model; the results, the
//! maps, the smaps `VmFlags` (`lo`, `lf`) and `VmLck` of
//! `/proc/PID/status` (the model's `locked_vm`) must be identical after
//! each one. What a case expects of the kernel (a split, an error) is also
//! checked against the host's answer.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

#[allow(dead_code)]
#[path = "scenarios/harness.rs"]
mod harness;

use harness::{P, Sc, at, run_with};
use mm_core::VmaView;
use mm_host::HostOptions;
use mm_ops::call::{Access, Call, Outcome};
use mm_ops::task::Task;
use mm_ops::uapi::madv::GUARD_INSTALL;
use mm_ops::uapi::*;

const RW: u64 = PROT_READ | PROT_WRITE;
const OK: Outcome = Outcome::Val(0);
const NOBODY: u32 = 65534;

/// `mlock(addr, len)` in bytes.
fn ml(addr: u64, len: u64) -> Call {
    Call::Mlock { addr, len }
}

/// `munlock(addr, len)` in bytes.
fn mu(addr: u64, len: u64) -> Call {
    Call::Munlock { addr, len }
}

/// `mlockall(flags)`.
fn lockall(flags: u64) -> Call {
    Call::Mlockall { flags }
}

/// `mlock` of arena pages.
fn mlock(page: u64, pages: u64) -> Call {
    ml(at(page), pages * P)
}

/// `mlock2` of arena pages.
fn mlock2(page: u64, pages: u64, flags: u64) -> Call {
    Call::Mlock2 {
        addr: at(page),
        len: pages * P,
        flags,
    }
}

/// `munlock` of arena pages.
fn munlock(page: u64, pages: u64) -> Call {
    mu(at(page), pages * P)
}

/// `VmLck` of `/proc/PID/status`, in kB.
fn vmlck(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = s.lines().find_map(|l| l.strip_prefix("VmLck:")).expect("VmLck");
    line.trim().trim_end_matches("kB").trim().parse().expect("kB")
}

/// The host's `VmLck` must be the model's `locked_vm`, and the model
/// consistent.
fn check_locked(sc: &mut Sc) {
    let host = vmlck(sc.twin.host.pid());
    let model = sc.twin.model.mm().read().state().locked_vm * (P >> 10);
    if host != model {
        sc.fail(&format!("VmLck: host {host} kB, model {model} kB"));
    }
    if let Err(e) = mm_ops::invariants::check(sc.twin.model.mm()) {
        sc.fail(&format!("model invariants: {e}"));
    }
}

/// Runs `call` on both sides; the host must answer `want`; then `VmLck`.
fn ex(sc: &mut Sc, call: Call, want: Outcome) {
    sc.expect(call, want);
    check_locked(sc);
}

fn ok(sc: &mut Sc, call: Call) {
    ex(sc, call, OK);
}

fn err(sc: &mut Sc, call: Call, e: Errno) {
    ex(sc, call, Outcome::Err(e));
}

/// Runs a scenario and prints how many calls it compared.
fn case(name: &'static str, opts: &HostOptions, f: harness::Scenario) {
    let n = run_with(name, opts, f);
    println!("mlock {name}: {n} host-compared calls");
}

fn root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn split_merge_and_munlock() {
    case("split_merge_and_munlock", &HostOptions::default(), |sc| {
        sc.anon(0, 8, RW);
        ok(sc, mlock(2, 2));
        sc.expect_vmas(
            "mlock of the middle splits",
            &[(0, 2, "rw-p"), (2, 4, "rw-p"), (4, 8, "rw-p")],
        );
        // Adjacent ranges merge with the locked VMA.
        ok(sc, mlock(4, 2));
        sc.expect_vmas(
            "adjacent mlock merges",
            &[(0, 2, "rw-p"), (2, 6, "rw-p"), (6, 8, "rw-p")],
        );
        ok(sc, mlock(1, 1));
        ok(sc, mlock(6, 2));
        sc.expect_vmas("tail locked", &[(0, 1, "rw-p"), (1, 8, "rw-p")]);
        // Locking locked pages again changes and counts nothing.
        ok(sc, mlock(0, 8));
        sc.expect_vmas("all locked, one VMA", &[(0, 8, "rw-p")]);
        ok(sc, munlock(3, 2));
        sc.expect_vmas("munlock splits", &[(0, 3, "rw-p"), (3, 5, "rw-p"), (5, 8, "rw-p")]);
        // munlock of unlocked memory changes nothing.
        ok(sc, munlock(3, 2));
        ok(sc, munlock(0, 8));
        sc.expect_vmas("all unlocked, one VMA", &[(0, 8, "rw-p")]);
        // A locked range across VMAs of different protections.
        sc.mprotect(4, 4, PROT_READ);
        ok(sc, mlock(2, 4));
        sc.expect_vmas(
            "two VMAs locked in part",
            &[(0, 2, "rw-p"), (2, 4, "rw-p"), (4, 6, "r--p"), (6, 8, "r--p")],
        );
        // munmap and mprotect of locked memory keep locked_vm right.
        sc.munmap(3, 2);
        sc.mprotect(0, 3, RW);
        sc.mprotect(5, 3, RW);
        ok(sc, munlock(0, 3));
        sc.munmap(0, 8);
        check_locked(sc);
    });
}

#[test]
fn mlock2_onfault() {
    case("mlock2_onfault", &HostOptions::default(), |sc| {
        sc.anon(0, 8, RW);
        ok(sc, mlock2(2, 2, MLOCK_ONFAULT));
        sc.expect_vmas("onfault splits", &[(0, 2, "rw-p"), (2, 4, "rw-p"), (4, 8, "rw-p")]);
        // mlock2(0) is mlock; over an ONFAULT range it clears VM_LOCKONFAULT.
        ok(sc, mlock2(4, 2, 0));
        sc.expect_vmas(
            "lo next to lo|lf",
            &[(0, 2, "rw-p"), (2, 4, "rw-p"), (4, 6, "rw-p"), (6, 8, "rw-p")],
        );
        ok(sc, mlock(2, 2));
        sc.expect_vmas("lo merges", &[(0, 2, "rw-p"), (2, 6, "rw-p"), (6, 8, "rw-p")]);
        ok(sc, mlock2(0, 8, MLOCK_ONFAULT));
        sc.expect_vmas("all lo|lf", &[(0, 8, "rw-p")]);
        // Flags other than MLOCK_ONFAULT; the upper half of the int is
        // not read.
        for flags in [2, 3, 0x8000_0000, 0xffff_ffff] {
            err(sc, mlock2(0, 1, flags), Errno::EINVAL);
        }
        ok(sc, mlock2(0, 1, (1 << 32) | MLOCK_ONFAULT));
        ok(sc, mlock2(0, 1, 1 << 40));
        // ONFAULT populates nothing, so PROT_NONE is fine.
        sc.anon(16, 2, PROT_NONE);
        ok(sc, mlock2(16, 1, MLOCK_ONFAULT));
        // A hole: the range before it is unlocked.
        err(sc, munlock(0, 32), Errno::ENOMEM);
        ok(sc, munlock(16, 2));
        check_locked(sc);
    });
}

#[test]
fn unaligned_empty_and_wrapping_ranges() {
    case("unaligned_empty_and_wrapping_ranges", &HostOptions::default(), |sc| {
        sc.anon(0, 8, RW);
        // The start rounds down, the length up from there.
        ok(sc, ml(at(1) + 100, 10));
        sc.expect_vmas("one page", &[(0, 1, "rw-p"), (1, 2, "rw-p"), (2, 8, "rw-p")]);
        ok(sc, ml(at(3) + P - 1, 2));
        sc.expect_vmas(
            "two pages from one byte each",
            &[
                (0, 1, "rw-p"),
                (1, 2, "rw-p"),
                (2, 3, "rw-p"),
                (3, 5, "rw-p"),
                (5, 8, "rw-p"),
            ],
        );
        ok(sc, mu(at(3) + 1, P));
        // Zero length: nothing, even where nothing is mapped; but an
        // unaligned start makes it a page.
        ok(sc, ml(at(0x100), 0));
        ok(sc, ml(0, 0));
        ok(sc, mu(at(0x100), 0));
        err(sc, ml(at(0x100) + 5, 0), Errno::ENOMEM);
        err(sc, mu(at(0x100) + 5, 0), Errno::ENOMEM);
        ok(sc, ml(at(6) + 5, 0));
        // Ranges that wrap (root: no limit applies first).
        err(sc, ml(at(0), u64::MAX - 2 * P + 1), Errno::EINVAL);
        err(sc, mu(at(0), u64::MAX - P), Errno::EINVAL);
        // A length that rounds up to zero is empty.
        ok(sc, ml(at(0), u64::MAX));
        ok(sc, ml(at(0), u64::MAX - 4000));
        // Beyond TASK_SIZE.
        err(sc, ml(1 << 47, P), Errno::ENOMEM);
        ok(sc, munlock(0, 8));
        // The prefaults gave the locked pages anon_vmas of their own, so
        // unlocking does not bring back one VMA.
        sc.expect_vmas("two VMAs", &[(0, 2, "rw-p"), (2, 8, "rw-p")]);
    });
}

#[test]
fn holes() {
    case("holes", &HostOptions::default(), |sc| {
        sc.anon(0, 4, RW);
        sc.anon(5, 4, PROT_READ);
        sc.anon(10, 2, RW);
        // A hole inside: the part before it is locked, then ENOMEM.
        err(sc, mlock(1, 6), Errno::ENOMEM);
        sc.expect_vmas(
            "locked up to the hole",
            &[(0, 1, "rw-p"), (1, 4, "rw-p"), (5, 9, "r--p"), (10, 12, "rw-p")],
        );
        // Starting in a hole: nothing changes.
        err(sc, mlock(4, 3), Errno::ENOMEM);
        sc.expect_vmas(
            "nothing changed",
            &[(0, 1, "rw-p"), (1, 4, "rw-p"), (5, 9, "r--p"), (10, 12, "rw-p")],
        );
        // A hole at the end: everything up to it changes.
        err(sc, mlock(6, 4), Errno::ENOMEM);
        sc.expect_vmas(
            "locked to the end of the VMA",
            &[
                (0, 1, "rw-p"),
                (1, 4, "rw-p"),
                (5, 6, "r--p"),
                (6, 9, "r--p"),
                (10, 12, "rw-p"),
            ],
        );
        err(sc, mlock(0, 12), Errno::ENOMEM);
        // munlock: the same partial effect; nothing after the hole.
        err(sc, munlock(2, 8), Errno::ENOMEM);
        sc.expect_vmas(
            "unlocked up to the hole",
            &[
                (0, 2, "rw-p"),
                (2, 4, "rw-p"),
                (5, 6, "r--p"),
                (6, 9, "r--p"),
                (10, 12, "rw-p"),
            ],
        );
        err(sc, munlock(0, 12), Errno::ENOMEM);
        ok(sc, munlock(5, 4));
        sc.expect_vmas("all unlocked", &[(0, 4, "rw-p"), (5, 9, "r--p"), (10, 12, "rw-p")]);
    });
}

#[test]
fn prefault_failures_and_anon_vma() {
    case("prefault_failures_and_anon_vma", &HostOptions::default(), |sc| {
        // PROT_NONE cannot be faulted in: the lock stays, the call fails.
        sc.anon(0, 4, PROT_NONE);
        err(sc, mlock(1, 1), Errno::ENOMEM);
        sc.expect_vmas("locked anyway", &[(0, 1, "---p"), (1, 2, "---p"), (2, 4, "---p")]);
        // Write-only memory can, and exec-only memory where there are no
        // protection keys; with them its execute-only key refuses the
        // prefault's reads.
        sc.anon(8, 2, PROT_WRITE);
        ok(sc, mlock(8, 2));
        sc.anon(12, 2, PROT_EXEC);
        if harness::host_pkeys() {
            err(sc, mlock(12, 2), Errno::ENOMEM);
        } else {
            ok(sc, mlock(12, 2));
        }
        // A file mapping beyond the end of its file.
        let (_, fd) = sc.file("one-page", 1);
        sc.map(16, 4, RW, MAP_PRIVATE, fd, 0);
        err(sc, mlock(16, 3), Errno::ENOMEM);
        sc.map(24, 4, RW, MAP_SHARED, fd, 0);
        err(sc, mlock(25, 1), Errno::ENOMEM);
        ok(sc, mlock2(24, 4, MLOCK_ONFAULT));
        ok(sc, mlock(24, 1));
        // A guard page.
        sc.anon(32, 4, RW);
        sc.madvise(33, 1, GUARD_INSTALL);
        err(sc, mlock(32, 4), Errno::ENOMEM);
        // Prefaulting a private writable range gives it an anon_vma: the
        // VMA no longer merges with a neighbour that has another one.
        sc.anon(40, 4, RW);
        sc.anon(45, 4, RW);
        sc.write(45);
        ok(sc, mlock(40, 4));
        ok(sc, munlock(40, 4));
        sc.anon(44, 1, RW);
        sc.expect_window("anon_vmas differ", 40, 49, &[(40, 45, "rw-p"), (45, 49, "rw-p")]);
        // Read-only memory is read: no anon_vma, and the hole's filling
        // merges all three.
        sc.anon(50, 4, PROT_READ);
        sc.anon(55, 4, PROT_READ);
        ok(sc, mlock(50, 4));
        ok(sc, munlock(50, 4));
        sc.anon(54, 1, PROT_READ);
        sc.expect_window("one VMA", 50, 59, &[(50, 59, "r--p")]);
    });
}

#[test]
fn special_and_unlockable_vmas() {
    case("special_and_unlockable_vmas", &HostOptions::default(), |sc| {
        let lines = sc.host_maps();
        let find = |name: &str| lines.iter().find(|l| l.name == name).map(|l| (l.start, l.end));
        let (vvar, _) = find("[vvar]").unwrap_or_else(|| sc.fail("no [vvar]"));
        let (_, vdso_end) = find("[vdso]").unwrap_or_else(|| sc.fail("no [vdso]"));
        // VM_IO/VM_PFNMAP and VM_DONTEXPAND mappings are left alone.
        let len = vdso_end - vvar;
        ok(sc, ml(vvar, len));
        ok(sc, mu(vvar, len));
        // Droppable memory is never locked.
        sc.map(0, 4, RW, MAP_DROPPABLE | MAP_ANONYMOUS, -1, 0);
        ok(sc, mlock(1, 2));
        sc.expect_vmas("no split", &[(0, 4, "rw-p")]);
        ok(sc, lockall(MCL_CURRENT));
        ok(sc, Call::Munlockall);
    });
}

#[test]
fn mlockall_current_and_future() {
    case("mlockall_current_and_future", &HostOptions::default(), |sc| {
        // Invalid flag words (the upper half of the int is not read).
        for flags in [0, MCL_ONFAULT, 8, 0x8000_0000, MCL_CURRENT | 0x10, 1 << 32] {
            err(sc, lockall(flags), Errno::EINVAL);
        }
        sc.anon(0, 8, RW);
        ok(sc, mlock(2, 2));
        // MCL_FUTURE alone leaves the current VMAs as they are.
        ok(sc, lockall(MCL_FUTURE));
        sc.expect_vmas("unchanged", &[(0, 2, "rw-p"), (2, 4, "rw-p"), (4, 8, "rw-p")]);
        // Later mappings and heap growth are locked (and prefaulted).
        sc.anon(8, 2, RW);
        sc.expect_vmas(
            "new mapping locked",
            &[(0, 2, "rw-p"), (2, 4, "rw-p"), (4, 8, "rw-p"), (8, 10, "rw-p")],
        );
        sc.anon(12, 2, PROT_READ);
        let brk = sc.ok(Call::Brk { addr: 0 });
        ex(sc, Call::Brk { addr: brk + 3 * P }, Outcome::Val(brk + 3 * P));
        ex(sc, Call::Brk { addr: brk + 5 * P }, Outcome::Val(brk + 5 * P));
        ex(sc, Call::Brk { addr: brk + P }, Outcome::Val(brk + P));
        let any = sc.ok(harness::mmap(0, 3 * P, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        ok(sc, Call::Munmap { addr: any, len: 3 * P });
        // MCL_ONFAULT with MCL_FUTURE: later mappings are lo|lf.
        ok(sc, lockall(MCL_FUTURE | MCL_ONFAULT));
        sc.anon(16, 2, RW);
        sc.anon(18, 2, PROT_NONE);
        // munlockall: def_flags and every VMA lose the lock bits.
        ok(sc, Call::Munlockall);
        sc.anon(20, 2, RW);
        ex(sc, Call::Brk { addr: brk + 2 * P }, Outcome::Val(brk + 2 * P));
        // MCL_CURRENT: every VMA (text, bss, stack too), in place.
        ok(sc, lockall(MCL_CURRENT));
        sc.anon(24, 2, RW);
        ok(sc, lockall(MCL_CURRENT | MCL_ONFAULT));
        ok(sc, lockall(MCL_CURRENT | MCL_FUTURE));
        sc.anon(26, 2, RW);
        err(sc, munlock(0, 30), Errno::ENOMEM);
        ok(sc, Call::Munlockall);
        ok(sc, Call::Munlockall);
        // A fault that grows the stack of a locked stack VMA.
        ok(sc, lockall(MCL_CURRENT));
        let stack = sc.twin.model.start_stack();
        let grow = (stack & PAGE_MASK) - 200 * P;
        ex(
            sc,
            Call::Fault {
                addr: grow,
                access: Access::Write,
            },
            OK,
        );
        ok(sc, Call::Munlockall);
    });
}

/// RLIMIT_MEMLOCK 64 KiB (16 pages) and no capabilities.
fn small_limit(sc: &mut Sc) {
    sc.anon(0, 32, RW);
    ok(sc, mlock(0, 8));
    ok(sc, mlock(8, 8));
    err(sc, mlock(16, 1), Errno::ENOMEM);
    // Pages already locked count once: re-locking them, or a range that
    // adds no more than the limit allows, passes.
    ok(sc, mlock(0, 16));
    ok(sc, mlock2(4, 12, MLOCK_ONFAULT));
    err(sc, mlock(15, 2), Errno::ENOMEM);
    ok(sc, munlock(12, 4));
    // 12 locked + 6 new - 2 already locked = 16.
    ok(sc, mlock(10, 6));
    err(sc, mlock(10, 7), Errno::ENOMEM);
    err(sc, mlock(0, 32), Errno::ENOMEM);
    // mlockall(MCL_CURRENT) compares total_vm with the limit.
    err(sc, lockall(MCL_CURRENT), Errno::ENOMEM);
    err(sc, lockall(MCL_CURRENT | MCL_FUTURE), Errno::ENOMEM);
    ok(sc, munlock(0, 32));
    // MCL_FUTURE alone is allowed; later mappings count against the
    // limit (mmap: EAGAIN; brk: the break stays).
    ok(sc, lockall(MCL_FUTURE));
    sc.anon(40, 8, RW);
    err(
        sc,
        harness::mmap(at(48), 9 * P, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
        Errno::EAGAIN,
    );
    let brk = sc.ok(Call::Brk { addr: 0 });
    ex(sc, Call::Brk { addr: brk + 16 * P }, Outcome::Val(brk));
    ex(sc, Call::Brk { addr: brk + 4 * P }, Outcome::Val(brk + 4 * P));
    ok(sc, Call::Munlockall);
    ex(sc, Call::Brk { addr: brk + 16 * P }, Outcome::Val(brk + 16 * P));
    // MAP_LOCKED too.
    err(
        sc,
        harness::mmap(
            at(60),
            17 * P,
            RW,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_LOCKED,
            -1,
            0,
        ),
        Errno::EAGAIN,
    );
    sc.anon_with(60, 16, RW, MAP_LOCKED);
    err(sc, mlock(0, 1), Errno::ENOMEM);
    ok(sc, munlock(60, 16));
    ok(sc, mlock(0, 16));
}

#[test]
fn memlock_limit_without_capabilities() {
    let opts = HostOptions {
        drop_capabilities: true,
        rlimits: vec![(libc::RLIMIT_MEMLOCK, 64 << 10)],
        ..HostOptions::default()
    };
    case("memlock_limit_without_capabilities", &opts, small_limit);
}

#[test]
fn memlock_limit_unprivileged_user() {
    if !root() {
        eprintln!("not root: cannot switch to an unprivileged user; skipping");
        return;
    }
    let opts = HostOptions {
        user: Some(NOBODY),
        rlimits: vec![(libc::RLIMIT_MEMLOCK, 64 << 10)],
        ..HostOptions::default()
    };
    case("memlock_limit_unprivileged_user", &opts, small_limit);
}

/// RLIMIT_MEMLOCK 0: no locking at all without CAP_IPC_LOCK.
fn zero_limit(sc: &mut Sc) {
    sc.anon(0, 4, RW);
    err(sc, mlock(0, 1), Errno::EPERM);
    err(sc, mlock2(0, 1, MLOCK_ONFAULT), Errno::EPERM);
    err(sc, ml(0, 0), Errno::EPERM);
    // Flags are checked first.
    err(sc, mlock2(0, 1, 2), Errno::EINVAL);
    err(sc, lockall(0), Errno::EINVAL);
    err(sc, lockall(MCL_FUTURE), Errno::EPERM);
    err(sc, lockall(MCL_CURRENT), Errno::EPERM);
    err(
        sc,
        harness::mmap(
            at(8),
            P,
            RW,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_LOCKED,
            -1,
            0,
        ),
        Errno::EPERM,
    );
    // Unlocking needs no permission.
    ok(sc, munlock(0, 4));
    err(sc, munlock(0, 8), Errno::ENOMEM);
    ok(sc, Call::Munlockall);
}

#[test]
fn memlock_zero_unprivileged() {
    let opts = HostOptions {
        drop_capabilities: true,
        rlimits: vec![(libc::RLIMIT_MEMLOCK, 0)],
        ..HostOptions::default()
    };
    case("memlock_zero_unprivileged", &opts, zero_limit);
    if root() {
        let opts = HostOptions {
            user: Some(NOBODY),
            rlimits: vec![(libc::RLIMIT_MEMLOCK, 0)],
            ..HostOptions::default()
        };
        case("memlock_zero_nobody", &opts, zero_limit);
    }
}

#[test]
fn memlock_limits_do_not_bind_cap_ipc_lock() {
    if !root() {
        eprintln!("not root: no CAP_IPC_LOCK; skipping");
        return;
    }
    let opts = HostOptions {
        rlimits: vec![(libc::RLIMIT_MEMLOCK, 0)],
        ..HostOptions::default()
    };
    case("memlock_limits_do_not_bind_cap_ipc_lock", &opts, |sc| {
        sc.anon(0, 32, RW);
        ok(sc, mlock(0, 32));
        ok(sc, lockall(MCL_CURRENT | MCL_FUTURE));
        sc.anon(40, 8, RW);
        ok(sc, Call::Munlockall);
    });
}

/// The model's child and the host's after a fork: maps, `VmFlags` and
/// `VmLck` must match.
fn check_child(sc: &mut Sc, child: &Task) {
    sc.check_child(child);
    let pid = sc.twin.host.child().pid().expect("child alive");
    let model = child.mm().read().state().locked_vm * (P >> 10);
    if vmlck(pid) != model {
        sc.fail(&format!("child VmLck: host {} kB, model {model} kB", vmlck(pid)));
    }
}

/// Runs `call` in the children on both sides; the host must answer `want`.
fn in_child(sc: &mut Sc, child: &mut Task, call: Call, want: Outcome) {
    sc.in_child(child, call, want, check_child);
}

#[test]
fn fork_after_mlock() {
    case("fork_after_mlock", &HostOptions::default(), |sc| {
        sc.anon(0, 8, RW);
        sc.write(0);
        ok(sc, mlock(2, 2));
        ok(sc, lockall(MCL_FUTURE));
        sc.anon(10, 2, RW);
        let pid = sc.twin.host.fork().expect("host").expect("fork");
        assert!(pid > 0);
        let mut child = sc.twin.model.fork().expect("model fork");
        // The child's VMAs lose VM_LOCKED but stay split; its locked_vm
        // and def_flags start empty.
        check_child(sc, &child);
        // Unlocked neighbours with equal flags merge in the child as soon
        // as a change touches them.
        in_child(sc, &mut child, munlock(2, 2), OK);
        in_child(sc, &mut child, mlock(3, 1), OK);
        in_child(sc, &mut child, munlock(0, 8), OK);
        in_child(
            sc,
            &mut child,
            Call::Mprotect {
                addr: at(2),
                len: 2 * P,
                prot: RW,
            },
            OK,
        );
        in_child(
            sc,
            &mut child,
            harness::mmap(at(12), 2 * P, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
            Outcome::Val(at(12)),
        );
        // The parent keeps its locks and its MCL_FUTURE.
        sc.anon(14, 2, RW);
        ok(sc, Call::Munlockall);
        sc.twin.host.child().exit().expect("child exit");
    });
}
