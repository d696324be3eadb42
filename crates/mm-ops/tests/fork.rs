//! `Task::fork` and `Task::clone_vm` in the model alone: the commit
//! charge and its `ENOMEM` (which the host tests cannot provoke without
//! changing `vm.overcommit_memory`), allocation failures, what the child's
//! counters are, and that nothing leaks (`mm_ops::invariants::check`, the
//! shared VMA cache's use, the file table). The rules that the host shows
//! are compared with it in `crates/mm-host/tests/fork.rs`.

use mm_core::failslab::AllocSite;
use mm_core::{MmConfig, Overcommit, VmFlags, VmaView};
use mm_ops::invariants::check;
use mm_ops::uapi::oflags::{O_CREAT, O_RDWR};
use mm_ops::uapi::*;
use mm_ops::{Access, Errno, Task};

const P: u64 = PAGE_SIZE;
const RW: u64 = PROT_READ | PROT_WRITE;
const ANON: u64 = MAP_PRIVATE | MAP_ANONYMOUS;

/// What a failed fork must leave exactly as it was.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    maps: String,
    counters: [u64; 8],
    cache_in_use: usize,
    live_files: usize,
}

fn snapshot(t: &Task) -> Snapshot {
    let r = t.mm().read();
    let st = r.state();
    Snapshot {
        maps: t.maps(),
        counters: [
            u64::from(st.map_count),
            st.total_vm,
            st.locked_vm,
            st.data_vm,
            st.exec_vm,
            st.stack_vm,
            st.committed,
            st.brk,
        ],
        cache_in_use: t.mm().vma_cache().in_use(),
        live_files: r.files().live_files(),
    }
}

/// Overcommit never with a commit limit of `pages`.
fn strict(pages: u64) -> MmConfig {
    MmConfig {
        overcommit: Overcommit::Never,
        overcommit_kbytes: pages * 4,
        total_swap_pages: 0,
        ..MmConfig::default()
    }
}

/// A parent with two accounted anonymous VMAs of `pages` each, a shared
/// file mapping (not accounted) and a descriptor.
fn parent(cfg: MmConfig, pages: u64) -> Task {
    let mut t: Task = Task::new(cfg);
    let a = t.mmap(0, pages * P, RW, ANON, -1, 0).expect("mmap");
    t.fault(a, Access::Write).expect("write");
    let b = a - (pages + 16) * P;
    t.mmap(b, pages * P, RW, ANON | MAP_FIXED, -1, 0).expect("mmap");
    let fd = t.open("/data", O_RDWR | O_CREAT, None).expect("open");
    t.ftruncate(fd, 4 * P).expect("ftruncate");
    t.mmap(0, 4 * P, RW, MAP_SHARED, fd, 0).expect("file");
    check(t.mm()).expect("parent");
    t
}

/// `security_vm_enough_memory_mm` fails for the second accounted VMA:
/// `ENOMEM`, and the parent, the VMA cache and the file table are as they
/// were; with less to copy the same fork succeeds, charging the child.
#[test]
fn fork_fails_with_enomem_at_the_commit_limit() {
    let mut t = parent(strict(1000), 300);
    assert_eq!(t.mm().read().state().committed, 600);
    let before = snapshot(&t);
    // 600 (parent) + 300 + 300 (child) reaches the limit of 1000.
    assert_eq!(t.fork().err(), Some(Errno::ENOMEM));
    assert_eq!(snapshot(&t), before);
    check(t.mm()).expect("parent after ENOMEM");
    // Under it, the fork goes through.
    let mut t = parent(strict(1201), 300);
    let child = t.fork().expect("fork");
    check(child.mm()).expect("child");
    assert_eq!(child.mm().read().state().committed, 600);
    assert_eq!(t.mm().read().state().committed, 600);
}

/// Every allocation of the fork failing in turn: `ENOMEM` each time, with
/// nothing left behind; then the fork that fails nowhere.
#[test]
fn allocation_failures_leave_nothing() {
    let mut t = parent(MmConfig::default(), 8);
    let before = snapshot(&t);
    let mut sites = Vec::new();
    for n in 1.. {
        t.mm().fail_nth().set(n);
        match t.fork() {
            Err(e) => {
                assert_eq!(e, Errno::ENOMEM);
                sites.push(t.mm().fail_nth().last_failed());
                assert_eq!(snapshot(&t), before, "after failure {n}");
            }
            Ok(child) => {
                check(child.mm()).expect("child");
                t.mm().fail_nth().set(0);
                break;
            }
        }
    }
    assert!(sites.contains(&Some(AllocSite::VmAreaAlloc)));
    assert!(sites.contains(&Some(AllocSite::AnonVmaClone)));
    // The child is gone: its VMAs went back to the cache.
    assert_eq!(snapshot(&t), before);
}

/// The child's counters: the parent's less `VM_DONTCOPY` VMAs, no
/// `locked_vm`, `VM_LOCKED` cleared; `brk` and the heap carry over.
#[test]
fn child_counters_and_flags() {
    let mut t: Task = Task::new(MmConfig::default());
    let start = t.brk_range().0;
    t.apply(&mm_ops::Call::Brk { addr: start + 4 * P }, None);
    let locked = t.mmap(0, 4 * P, RW, ANON | MAP_LOCKED, -1, 0).expect("locked");
    let gone = t.mmap(0, 2 * P, RW, ANON, -1, 0).expect("mmap");
    t.madvise(gone, 2 * P, madv::DONTFORK).expect("dontfork");
    let wiped = t.mmap(0, 2 * P, RW, ANON, -1, 0).expect("mmap");
    t.fault(wiped, Access::Write).expect("write");
    t.madvise(wiped, 2 * P, madv::WIPEONFORK).expect("wipeonfork");
    let mut c = t.fork().expect("fork");
    check(c.mm()).expect("child");
    {
        let (p, r) = (t.mm().read(), c.mm().read());
        let (ps, cs) = (p.state(), r.state());
        assert_eq!(ps.locked_vm, 4);
        assert_eq!(cs.locked_vm, 0);
        assert_eq!(cs.total_vm, ps.total_vm - 2);
        assert_eq!(cs.map_count, ps.map_count - 1);
        assert_eq!((cs.start_brk, cs.brk), (ps.start_brk, ps.brk));
        let v = r.vma(r.vma_lookup(locked).expect("copied"));
        assert!(!v.flags.contains(VmFlags::LOCKED));
        assert!(r.vma_lookup(gone).is_none());
        let w = r.vma(r.vma_lookup(wiped).expect("copied"));
        assert!(w.flags.contains(VmFlags::WIPEONFORK) && w.anon_vma.is_none());
        let heap = r.vma(r.vma_lookup(start).expect("heap"));
        assert!(heap.anon_vma.is_none_or(|a| a.is_fork_child()));
    }
    // Both go on independently.
    c.apply(&mm_ops::Call::Brk { addr: start + 8 * P }, None);
    assert_eq!(c.brk_range().1, start + 8 * P);
    assert_eq!(t.brk_range().1, start + 4 * P);
    c.munmap(locked, 4 * P).expect("munmap");
    assert!(t.mm().read().vma_lookup(locked).is_some());
    check(c.mm()).expect("child");
    check(t.mm()).expect("parent");
}

/// A fork child's descriptors name the parent's files: a mapping of the
/// next page of an inherited descriptor merges with the inherited VMA;
/// closing it in the child leaves the parent's open.
#[test]
fn descriptors_are_copied() {
    let mut t: Task = Task::new(MmConfig::default());
    let fd = t.open("/f", O_RDWR | O_CREAT, None).expect("open");
    t.ftruncate(fd, 8 * P).expect("ftruncate");
    let a = t.mmap(0, P, RW, MAP_SHARED, fd, 0).expect("mmap");
    let mut c = t.fork().expect("fork");
    c.mmap(a + P, P, RW, MAP_SHARED | MAP_FIXED, fd, P).expect("mmap");
    assert_eq!(c.mm().read().vma_count(), 1);
    c.close(fd).expect("close");
    assert_eq!(c.mmap(0, P, RW, MAP_SHARED, fd, 0), Err(Errno::EBADF));
    t.mmap(0, P, RW, MAP_SHARED, fd, 0).expect("still open in the parent");
    check(c.mm()).expect("child");
    drop(c);
    check(t.mm()).expect("parent");
}

/// A grandchild: the child's fork-child VMAs fork again, and a VMA the
/// child faulted on its own becomes a fork child's in the grandchild.
#[test]
fn fork_of_a_fork() {
    let mut t: Task = Task::new(MmConfig::default());
    let a = t.mmap(0, 2 * P, RW, ANON, -1, 0).expect("mmap");
    t.fault(a, Access::Write).expect("write");
    let mut c = t.fork().expect("fork");
    let b = c.mmap(0, 2 * P, RW, ANON, -1, 0).expect("mmap");
    c.fault(b, Access::Write).expect("write");
    let g = c.fork().expect("fork");
    let r = g.mm().read();
    for addr in [a, b] {
        let v = r.vma(r.vma_lookup(addr).expect("copied"));
        assert!(v.anon_vma.expect("forked").is_fork_child());
    }
    let (cr, tr) = (c.mm().read(), t.mm().read());
    assert!(
        !cr.vma(cr.vma_lookup(b).expect("b"))
            .anon_vma
            .expect("b")
            .is_fork_child()
    );
    assert!(
        !tr.vma(tr.vma_lookup(a).expect("a"))
            .anon_vma
            .expect("a")
            .is_fork_child()
    );
}

/// `clone_vm`: one address space, two descriptor tables.
#[test]
fn clone_vm_shares_the_address_space() {
    let mut t: Task = Task::new(MmConfig::default());
    let fd = t.open("/f", O_RDWR | O_CREAT, None).expect("open");
    let mut c = t.clone_vm();
    assert!(std::sync::Arc::ptr_eq(t.mm(), c.mm()));
    let a = c.mmap(0, P, RW, ANON, -1, 0).expect("mmap");
    assert!(t.mm().read().vma_lookup(a).is_some());
    c.close(fd).expect("close");
    t.ftruncate(fd, P).expect("still open in the parent");
    drop(c);
    t.munmap(a, P).expect("munmap");
    check(t.mm()).expect("consistent");
}

/// A parent with more VMAs than its (bounded) VMA cache has room for
/// twice still forks, as the kernel's does: the child gets a cache of its
/// own.
#[test]
fn a_large_parent_forks() {
    let cfg = MmConfig {
        vma_capacity: 64,
        ..MmConfig::default()
    };
    let mut t: Task = Task::new(cfg);
    let base = 0x1000_0000;
    for i in 0..40 {
        let prot = if i % 2 == 0 { PROT_READ } else { RW };
        t.mmap(base + i * P, P, prot, ANON | MAP_FIXED, -1, 0).expect("mmap");
    }
    let c = t.fork().expect("fork");
    assert!(!std::sync::Arc::ptr_eq(t.mm().vma_cache(), c.mm().vma_cache()));
    assert_eq!(c.maps(), t.maps());
    check(c.mm()).expect("child");
    // A small one shares the parent's cache.
    let mut s: Task = Task::new(MmConfig::default());
    s.mmap(0, P, RW, ANON, -1, 0).expect("mmap");
    let c = s.fork().expect("fork");
    assert!(std::sync::Arc::ptr_eq(s.mm().vma_cache(), c.mm().vma_cache()));
}
