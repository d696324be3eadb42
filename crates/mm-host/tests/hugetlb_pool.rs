//! The huge page pool (`mm/hugetlb.c`) against the host, with a pool of
//! a few 2 MiB pages configured for the test (`vm.nr_hugepages`, as root;
//! the old value is put back). Every call runs on the host helper and the
//! model, which starts from the pool's counters; results, maps and smaps
//! `VmFlags` must be identical after each. The expected values follow
//! `hugetlb_reserve_pages` (private: the whole range; shared: what the
//! object has not reserved), `alloc_hugetlb_folio` (a reservation once, or
//! a page nobody reserved) and what unmapping, `MADV_DONTNEED`,
//! `MADV_REMOVE` and truncation give back. `MM_NO_GLOBAL_KNOBS=1` skips
//! them.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

#[allow(dead_code)]
#[path = "scenarios/harness.rs"]
mod harness;

use std::sync::Mutex;

use harness::{P, Sc, at, mmap, run_with_state};
use mm_ops::call::{Access, Call, Outcome, Signal};
use mm_ops::uapi::*;

const H: u64 = 2 << 20;
const RW: u64 = PROT_READ | PROT_WRITE;
const OK: Outcome = Outcome::Val(0);
const BUS: Outcome = Outcome::Signal(Signal::Bus);
const HUGE_ANON: u64 = MAP_ANONYMOUS | MAP_HUGETLB;

/// The tests of this binary take turns: they change a global setting.
static KNOB: Mutex<()> = Mutex::new(());

const NR: &str = "/proc/sys/vm/nr_hugepages";

/// Runs `f` with a pool of `pages` free 2 MiB pages; `false` if the pool
/// could not be set (not root, memory too fragmented).
fn with_pool(name: &'static str, pages: u64, f: impl FnOnce(&mut Sc)) -> bool {
    if std::env::var_os("MM_NO_GLOBAL_KNOBS").is_some() {
        eprintln!("MM_NO_GLOBAL_KNOBS: skipping {name}");
        return false;
    }
    let _g = KNOB.lock().unwrap_or_else(|e| e.into_inner());
    let Ok(old) = std::fs::read_to_string(NR) else {
        eprintln!("no {NR}: skipping {name}");
        return false;
    };
    let free = || {
        std::fs::read_to_string("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let set = std::fs::write(NR, pages.to_string()).is_ok() && free() == Some(pages);
    if !set {
        let _ = std::fs::write(NR, old.trim());
        eprintln!("cannot set a pool of {pages} free huge pages: skipping {name}");
        return false;
    }
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_with_state(name, f)));
    let _ = std::fs::write(NR, old.trim());
    match r {
        Ok(n) => {
            println!("hugetlb_pool {name}: {n} host-compared calls with a pool of {pages}");
            true
        }
        Err(p) => std::panic::resume_unwind(p),
    }
}

fn fault(addr: u64, access: Access) -> Call {
    Call::Fault { addr, access }
}

/// Two private huge pages reserved at `at(0x200)`, the first written.
fn two_private_pages(s: &mut Sc) -> u64 {
    let a = at(0x200);
    s.expect(
        mmap(a, 2 * H, RW, MAP_PRIVATE | MAP_FIXED | HUGE_ANON, -1, 0),
        Outcome::Val(a),
    );
    s.expect(fault(a, Access::Write), OK);
    a
}

/// `MADV_DONTNEED` of the huge page at `addr`.
fn dontneed(addr: u64) -> Call {
    Call::Madvise {
        addr,
        len: H,
        advice: madv::DONTNEED,
    }
}

fn unmap(addr: u64, len: u64) -> Call {
    Call::Munmap { addr, len }
}

#[test]
fn private_mappings_reserve_their_range() {
    with_pool("private_mappings_reserve_their_range", 4, |s| {
        let a = at(0x200);
        s.expect(
            mmap(a, 2 * H, RW, MAP_PRIVATE | MAP_FIXED | HUGE_ANON, -1, 0),
            Outcome::Val(a),
        );
        // 2 reserved of 4: 3 more cannot be.
        s.err(mmap(0, 3 * H, RW, MAP_PRIVATE | HUGE_ANON, -1, 0), Errno::ENOMEM);
        s.expect(fault(a, Access::Write), OK);
        // The second page's reservation goes back with it.
        s.expect(unmap(a + H, H), OK);
        let b = s.ok(mmap(0, 3 * H, PROT_READ, MAP_PRIVATE | HUGE_ANON, -1, 0));
        // 4 pages: one used, three reserved: nothing is left for a
        // mapping without a reservation.
        let c = s.ok(mmap(0, H, RW, MAP_PRIVATE | HUGE_ANON | MAP_NORESERVE, -1, 0));
        s.expect(fault(c, Access::Read), BUS);
        // A page MADV_DONTNEED gives back keeps its reservation for the
        // mapping's next fault (the restored reserve): still nothing for
        // others.
        s.expect(dontneed(a), OK);
        s.expect(fault(c, Access::Write), BUS);
        s.expect(fault(a, Access::Read), OK);
        // The reserved mapping's faults use its reservations.
        for i in 0..3 {
            s.expect(fault(b + i * H, Access::Read), OK);
        }
        // A page of a mapping without reservations goes back for anyone.
        s.expect(unmap(b + 2 * H, H), OK);
        s.expect(fault(c, Access::Write), OK);
        s.expect(dontneed(c), OK);
        s.expect(fault(b + 2 * H, Access::Read), Outcome::Signal(Signal::Segv));
        let d = s.ok(mmap(0, H, RW, MAP_PRIVATE | HUGE_ANON, -1, 0));
        s.err(mmap(0, H, RW, MAP_PRIVATE | HUGE_ANON, -1, 0), Errno::ENOMEM);
        // Everything unmapped, the whole pool is there again.
        for (addr, len) in [(c, H), (b, 2 * H), (a, H), (d, H)] {
            s.expect(unmap(addr, len), OK);
        }
        s.ok(mmap(0, 4 * H, RW, MAP_PRIVATE | HUGE_ANON, -1, 0));
    });
}

#[test]
fn moves_keep_and_populate_takes() {
    with_pool("moves_keep_and_populate_takes", 4, |s| {
        let a = two_private_pages(s);
        // A move keeps the pages and the reservations.
        let b = at(0x800);
        s.expect(
            Call::Mremap {
                old_addr: a,
                old_len: 2 * H,
                new_len: 2 * H,
                flags: 3,
                new_addr: b,
            },
            Outcome::Val(b),
        );
        s.err(mmap(0, 3 * H, RW, MAP_PRIVATE | HUGE_ANON, -1, 0), Errno::ENOMEM);
        s.expect(fault(b + H, Access::Write), OK);
        // MAP_POPULATE without a reservation takes what is left, and the
        // rest of its range faults with SIGBUS.
        let c = s.ok(mmap(
            0,
            3 * H,
            RW,
            MAP_PRIVATE | HUGE_ANON | MAP_NORESERVE | MAP_POPULATE,
            -1,
            0,
        ));
        s.expect(fault(c + 2 * H, Access::Read), BUS);
        s.expect(fault(c + H, Access::Read), OK);
        // mlock cannot fault its range in: ENOMEM, the lock bits set.
        let d = s.ok(mmap(0, H, RW, MAP_PRIVATE | HUGE_ANON | MAP_NORESERVE, -1, 0));
        s.err(Call::Mlock { addr: d, len: H }, Errno::ENOMEM);
        s.expect(unmap(c, 3 * H), OK);
        s.expect(Call::Mlock { addr: d, len: H }, OK);
    });
}

#[test]
fn shared_objects_keep_their_reservations() {
    with_pool("shared_objects_keep_their_reservations", 4, |s| {
        let a = s.ok(mmap(0, 2 * H, RW, MAP_SHARED | HUGE_ANON, -1, 0));
        s.expect(fault(a, Access::Write), OK);
        // Unmapping half of a shared mapping keeps its reservation.
        s.expect(unmap(a + H, H), OK);
        s.err(mmap(0, 3 * H, RW, MAP_PRIVATE | HUGE_ANON, -1, 0), Errno::ENOMEM);
        // Once the object is gone, all of it comes back.
        s.expect(unmap(a, H), OK);
        s.ok(mmap(0, 3 * H, RW, MAP_PRIVATE | HUGE_ANON, -1, 0));
        // A hugetlb memfd: one reservation for all its shared mappings;
        // a punched hole and truncation give pages back.
        let fd = s.ok(Call::MemfdCreate {
            name: "h".into(),
            flags: mfd::HUGETLB,
        }) as i64;
        s.expect(Call::Ftruncate { fd, length: 4 * H }, OK);
        s.err(mmap(0, 2 * H, RW, MAP_SHARED, fd, 0), Errno::ENOMEM);
        let m = s.ok(mmap(0, H, RW, MAP_SHARED, fd, 0));
        s.ok(mmap(0, H, PROT_READ, MAP_SHARED, fd, 0));
        s.expect(fault(m, Access::Write), OK);
        let n = s.ok(mmap(0, 2 * H, RW, MAP_SHARED | MAP_NORESERVE, fd, H));
        s.expect(fault(n, Access::Write), BUS);
        s.expect(
            Call::Madvise {
                addr: m,
                len: H,
                advice: madv::REMOVE,
            },
            OK,
        );
        s.expect(fault(n, Access::Write), OK);
        s.expect(Call::Ftruncate { fd, length: H }, OK);
        s.expect(fault(n, Access::Read), BUS);
        s.expect(fault(m, Access::Read), OK);
    });
}

#[test]
fn fork_children_hold_no_reservations() {
    with_pool("fork_children_hold_no_reservations", 4, |s| {
        let a = two_private_pages(s);
        let _pid = s.twin.host.fork().expect("host").expect("fork");
        let mut child = s.twin.model.fork().expect("model fork");
        s.check_child(&child);
        // The child's copy has no reservations: unmapping it gives the
        // parent's back to nobody.
        s.in_child(&mut child, unmap(a, 2 * H), OK, |s, c| s.check_child(c));
        s.err(mmap(0, 3 * H, RW, MAP_PRIVATE | HUGE_ANON, -1, 0), Errno::ENOMEM);
        let b = s.ok(mmap(0, 2 * H, RW, MAP_PRIVATE | HUGE_ANON, -1, 0));
        // The pool is all promised: the child cannot reserve.
        s.in_child(
            &mut child,
            mmap(0, H, RW, MAP_PRIVATE | HUGE_ANON, -1, 0),
            Outcome::Err(Errno::ENOMEM),
            |s, c| s.check_child(c),
        );
        s.expect(unmap(b, 2 * H), OK);
        s.expect(fault(a + H, Access::Write), OK);
        s.err(mmap(0, 3 * H, RW, MAP_PRIVATE | HUGE_ANON, -1, 0), Errno::ENOMEM);
        s.ok(mmap(0, 2 * H, RW, MAP_PRIVATE | HUGE_ANON, -1, 0));
    });
}

/// `shmget(IPC_PRIVATE, size, IPC_CREAT | SHM_HUGETLB | flags | 0600)`.
fn shmget_huge(size: u64, flags: u64) -> Call {
    Call::Shmget {
        key: 0,
        size,
        flags: 0o1000 | 0o4000 | flags | 0o600,
    }
}

fn shmat(id: u64, addr: u64) -> Call {
    Call::Shmat {
        id: id as i64,
        addr,
        flags: 0,
    }
}

/// `SHM_NORESERVE`.
const SHM_NORESERVE: u64 = 0o10000;

#[test]
fn sysv_hugetlb_segments() {
    with_pool("sysv_hugetlb_segments", 4, |s| {
        // shmget reserves the rounded-up size: 3 MiB takes 2 pages, and 5
        // MiB (3 pages) is then more than the pool has unreserved.
        let a = s.ok(shmget_huge(3 << 20, 0));
        s.err(shmget_huge(5 << 20, 0), Errno::ENOMEM);
        // A huge page size the machine has no pool for (2^25).
        s.err(shmget_huge(H, 25 << 26), Errno::EINVAL);
        // SHM_NORESERVE reserves nothing.
        let b = s.ok(shmget_huge(3 * H, SHM_NORESERVE));
        // An attach maps whole huge pages (4 MiB for 3 MiB), huge-page
        // aligned, and reserves nothing more; its faults use the
        // segment's reservations.
        let a1 = s.ok(shmat(a, 0));
        s.expect(fault(a1 + 8, Access::Write), OK);
        s.expect(fault(a1 + H + 8, Access::Read), OK);
        // b's pages come from what nobody reserved: two are left.
        let b1 = s.ok(shmat(b, 0));
        s.expect(fault(b1 + 8, Access::Write), OK);
        s.expect(fault(b1 + H + 8, Access::Write), OK);
        s.expect(fault(b1 + 2 * H + 8, Access::Write), BUS);
        // A second attach of a shares its pages.
        let a2 = s.ok(shmat(a, 0));
        s.expect(fault(a2 + H + 8, Access::Write), OK);
        // Not at a huge-page boundary: EINVAL.
        s.err(shmat(a, at(0x201)), Errno::EINVAL);
        s.expect(Call::Shmdt { addr: a1 }, OK);
        s.expect(Call::Shmdt { addr: a2 }, OK);
        // Removed with no attach left, a gives its two pages back.
        s.err(shmget_huge(2 * H, 0), Errno::ENOMEM);
        s.expect(Call::ShmctlRmid { id: a as i64 }, OK);
        let c = s.ok(shmget_huge(2 * H, 0));
        s.expect(Call::ShmctlRmid { id: c as i64 }, OK);
        s.expect(Call::ShmctlRmid { id: b as i64 }, OK);
        // b is still attached: its pages stay taken until its detach.
        s.err(shmget_huge(3 * H, 0), Errno::ENOMEM);
        s.expect(Call::Shmdt { addr: b1 }, OK);
        let d = s.ok(shmget_huge(4 * H, 0));
        s.expect(Call::ShmctlRmid { id: d as i64 }, OK);
        // The largest size shmmax allows, in 1 GiB pages: the rounded-up
        // size wraps to 0, so nothing is reserved, and an attach maps
        // nothing (EINVAL). In 2 MiB pages it needs more than the pool.
        let top = u64::MAX - (1 << 24);
        let e = s.ok(shmget_huge(top, 30 << 26));
        s.err(shmat(e, 0), Errno::EINVAL);
        s.expect(Call::ShmctlRmid { id: e as i64 }, OK);
        s.err(shmget_huge(top, 0), Errno::ENOMEM);
    });
}

/// A fixed same-size `mremap` may move several VMAs (`remap_move`); a
/// VMA whose file places its own mappings only alone, but a hugetlb VMA
/// always may (`vma_multi_allowed`), a `SHM_HUGETLB` attach included,
/// though its file has `shm_get_unmapped_area`. Found by the random fork
/// sessions (seed 5915): the host answered `EINVAL` (the start is not
/// huge-page aligned), the model `EFAULT` (not allowed past the VMA).
#[test]
fn sysv_hugetlb_attaches_move_with_others() {
    with_pool("sysv_hugetlb_attaches_move_with_others", 2, |s| {
        let b = s.ok(shmget_huge(H, SHM_NORESERVE));
        let b1 = s.ok(shmat(b, 0));
        let remap = |addr: u64, len: u64, to: u64| Call::Mremap {
            old_addr: addr,
            old_len: len,
            new_len: len,
            flags: MREMAP_MAYMOVE | MREMAP_FIXED,
            new_addr: to,
        };
        let target = at(0x400);
        // Past the end of the attach, from an unaligned start.
        s.err(remap(b1 + 0x4d000, H, target), Errno::EINVAL);
        // From its aligned start, past its end into a hole: it moves.
        let moved = s.ok(remap(b1, H + 2 * P, target));
        if moved != target {
            s.fail(&format!("moved to {moved:#x}"));
        }
        // With an anonymous VMA after it, both move, the gap kept.
        s.anon(0x400 + H / P + 1, 1, RW);
        s.ok(remap(target, H + 2 * P, at(0x800)));
        s.expect(Call::Shmdt { addr: at(0x800) }, OK);
        s.expect(Call::ShmctlRmid { id: b as i64 }, OK);
    });
}

#[test]
fn fork_children_share_private_pages() {
    with_pool("fork_children_share_private_pages", 2, |s| {
        let a = s.ok(mmap(0, 2 * H, RW, MAP_PRIVATE | HUGE_ANON, -1, 0));
        s.expect(fault(a, Access::Write), OK);
        let _pid = s.twin.host.fork().expect("host").expect("fork");
        let mut child = s.twin.model.fork().expect("model fork");
        s.check_child(&child);
        let ck = |s: &mut Sc, c: &mm_ops::task::Task| s.check_child(c);
        // The child reads the parent's page: shared, no page taken.
        s.in_child(&mut child, fault(a, Access::Read), OK, ck);
        // Writing it is a copy, and no page is free for one.
        s.in_child(&mut child, fault(a, Access::Write), BUS, ck);
        // A page the parent never had: the child has no reservation.
        s.in_child(&mut child, fault(a + H, Access::Read), BUS, ck);
        s.expect(fault(a + H, Access::Write), OK);
        // The parent, which owns the reservations, writes the shared page:
        // no page for a copy, so the child loses its mapping of it.
        s.expect(fault(a, Access::Write), OK);
        s.in_child(&mut child, fault(a, Access::Read), BUS, ck);
    });
}

#[test]
fn shared_private_pages_go_back_with_their_last_mapping() {
    with_pool("shared_private_pages_go_back_with_their_last_mapping", 2, |s| {
        let ck = |s: &mut Sc, c: &mm_ops::task::Task| s.check_child(c);
        let a = s.ok(mmap(0, 2 * H, RW, MAP_PRIVATE | HUGE_ANON, -1, 0));
        s.expect(fault(a, Access::Write), OK);
        let _pid = s.twin.host.fork().expect("host").expect("fork");
        let mut child = s.twin.model.fork().expect("model fork");
        // The parent's unmap frees its unused reservation, not the page the
        // child still maps: one page is free, not two.
        s.expect(unmap(a, 2 * H), OK);
        s.err(mmap(0, 2 * H, RW, MAP_PRIVATE | HUGE_ANON, -1, 0), Errno::ENOMEM);
        s.in_child(&mut child, fault(a, Access::Read), OK, ck);
        // The child's exit frees it.
        s.twin.host.child().exit().expect("child exit");
        drop(child);
        // A MADV_DONTFORK mapping's pages stay the parent's alone, also
        // when the child has the object open (a hugetlb memfd).
        let fd = s.ok(Call::MemfdCreate {
            name: "h".into(),
            flags: 4,
        });
        s.expect(
            Call::Ftruncate {
                fd: fd as i64,
                length: 2 * H,
            },
            OK,
        );
        let b = s.ok(mmap(0, 2 * H, RW, MAP_PRIVATE, fd as i64, 0));
        s.expect(fault(b, Access::Write), OK);
        s.expect(
            Call::Madvise {
                addr: b,
                len: 2 * H,
                advice: 10,
            },
            OK,
        );
        let _pid = s.twin.host.fork().expect("host").expect("fork");
        let child = s.twin.model.fork().expect("model fork");
        s.check_child(&child);
        s.expect(unmap(b, 2 * H), OK);
        let c = s.ok(mmap(0, 2 * H, RW, MAP_PRIVATE | HUGE_ANON, -1, 0));
        s.expect(fault(c, Access::Write), OK);
        s.twin.host.child().exit().expect("child exit");
    });
}

#[test]
fn a_child_copies_on_write_from_free_pages() {
    with_pool("a_child_copies_on_write_from_free_pages", 3, |s| {
        let ck = |s: &mut Sc, c: &mm_ops::task::Task| s.check_child(c);
        let a = s.ok(mmap(0, 2 * H, RW, MAP_PRIVATE | HUGE_ANON, -1, 0));
        s.expect(fault(a, Access::Write), OK);
        let _pid = s.twin.host.fork().expect("host").expect("fork");
        let mut child = s.twin.model.fork().expect("model fork");
        // One page nobody reserved: the child's copy takes it.
        s.in_child(&mut child, fault(a, Access::Write), OK, ck);
        s.in_child(&mut child, fault(a + H, Access::Read), BUS, ck);
        // Two pages apart now: the parent's unmap frees its own and its
        // unused reservation.
        s.expect(unmap(a, 2 * H), OK);
        s.ok(mmap(0, 2 * H, RW, MAP_PRIVATE | HUGE_ANON, -1, 0));
        s.err(mmap(0, H, RW, MAP_PRIVATE | HUGE_ANON, -1, 0), Errno::ENOMEM);
        s.in_child(&mut child, fault(a, Access::Read), OK, ck);
        // The child's MADV_DONTNEED frees its copy (a child restores no
        // reservation).
        s.in_child(&mut child, dontneed(a), OK, ck);
        s.ok(mmap(0, H, RW, MAP_PRIVATE | HUGE_ANON, -1, 0));
    });
}
