//! The write path's steady state does not touch the heap: munmap of up to
//! eight VMAs (the gather list is inline), a mapping placed in a hole and
//! unmapped, an mprotect that splits and merges back, brk up and down.
//! A counting global allocator measures it: the first round of each
//! operation may grow the model's tables (slab free lists, the tree's
//! per-VMA index), the second must allocate nothing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use mm_core::MmConfig;
use mm_ops::Task;
use mm_ops::uapi::*;

struct Counting;

static ON: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; it only
// counts allocations while counting is on.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if ON.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` came from `System.alloc` with layout `l`.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if ON.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: as for `alloc` and `dealloc`.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Heap allocations made by `f` (this test binary runs one test, so no
/// other thread allocates meanwhile).
fn allocations(f: impl FnOnce()) -> u64 {
    ALLOCS.store(0, Ordering::Relaxed);
    ON.store(true, Ordering::Relaxed);
    f();
    ON.store(false, Ordering::Relaxed);
    ALLOCS.load(Ordering::Relaxed)
}

const P: u64 = 4096;
const ANON: u64 = MAP_PRIVATE | MAP_ANONYMOUS;

/// Maps `n` adjacent one-page VMAs at `base` that cannot merge (their
/// protections alternate).
fn map_run(t: &mut Task, base: u64, n: u64) {
    for i in 0..n {
        let prot = if i % 2 == 0 { PROT_READ } else { PROT_READ | PROT_WRITE };
        let a = t.mmap(base + i * P, P, prot, ANON | MAP_FIXED, -1, 0).expect("mmap");
        assert_eq!(a, base + i * P);
    }
}

#[test]
fn the_write_path_does_not_allocate_in_steady_state() {
    let mut t: Task = Task::new(MmConfig::default());
    // Neighbours around the places used below.
    let base = 0x7f00_0000_0000u64;
    t.mmap(base - 16 * P, P, PROT_READ, ANON | MAP_FIXED, -1, 0).unwrap();
    t.mmap(base + 64 * P, P, PROT_READ, ANON | MAP_FIXED, -1, 0).unwrap();
    let before = t_count(&t);
    let mut rounds = vec![];
    for _ in 0..2 {
        map_run(&mut t, base, 8);
        assert_eq!(t_count(&t), before + 8);
        let n = allocations(|| t.munmap(base, 8 * P).expect("munmap of 8 VMAs"));
        assert_eq!(t_count(&t), before);
        let m = allocations(|| {
            let a = t.mmap(base + 4 * P, P, PROT_READ, ANON, -1, 0).expect("mmap in a hole");
            assert_eq!(a, base + 4 * P);
            t.munmap(a, P).expect("munmap");
        });
        // mprotect of a page inside a VMA splits it in three, back merges.
        t.mmap(base, 8 * P, PROT_READ, ANON | MAP_FIXED, -1, 0).unwrap();
        let p = allocations(|| {
            t.mprotect(base + 2 * P, P, PROT_READ | PROT_WRITE).expect("mprotect");
            t.mprotect(base + 2 * P, P, PROT_READ).expect("mprotect");
        });
        t.munmap(base, 8 * P).unwrap();
        let cur = t.brk(0);
        let b = allocations(|| {
            assert_eq!(t.brk(cur + P), cur + P);
            assert_eq!(t.brk(cur), cur);
        });
        rounds.push([n, m, p, b]);
    }
    assert_eq!(
        rounds[1],
        [0, 0, 0, 0],
        "allocations in the second round (munmap of 8, mmap+munmap in a hole, mprotect split+merge, brk ±1); first round {:?}",
        rounds[0]
    );
}

fn t_count(t: &Task) -> usize {
    use mm_core::VmaView;
    t.mm().read().vma_count()
}
