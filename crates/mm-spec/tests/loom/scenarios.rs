//! The scenarios: each write section kind the issue names, with the reader
//! that can see it go wrong.

use mm_ops::uapi::*;

use mm_ops::call::Access;

use crate::harness::{A, Op, P, Reader, Scenario, Shape};

const RW: u64 = PROT_READ | PROT_WRITE;
const R: u64 = PROT_READ;
const RX: u64 = PROT_READ | PROT_EXEC;
const N: u64 = PROT_NONE;

const ANON2: &[Op] = &[Op::MmapAnon(A, 2 * P, RW)];
const FILE2: &[Op] = &[Op::MmapShared(0, A, 2 * P, R, 0)];
const FILE3: &[Op] = &[Op::MmapShared(0, A, 3 * P, R, 0)];
const SPLIT: &[&[Op]] = &[&[Op::Mprotect(A + P, P, N)]];
const FILE_AND_ANON: &[Op] = &[Op::MmapShared(0, A, 2 * P, R, 0), Op::MmapAnon(A + 4 * P, P, RW)];
/// Four VMAs with gaps between them: a full root leaf under loom (fanout 4).
const FOUR: &[Op] = &[
    Op::MmapAnon(A, 2 * P, RW),
    Op::MmapAnon(A + 3 * P, P, R),
    Op::MmapAnon(A + 5 * P, P, R),
    Op::MmapAnon(A + 7 * P, P, R),
];
/// Seven VMAs: two levels, the last leaf full.
const SEVEN: &[Op] = &[
    Op::MmapAnon(A, P, R),
    Op::MmapAnon(A + 2 * P, P, R),
    Op::MmapAnon(A + 4 * P, P, R),
    Op::MmapAnon(A + 6 * P, P, R),
    Op::MmapAnon(A + 8 * P, P, R),
    Op::MmapAnon(A + 10 * P, P, R),
    Op::MmapAnon(A + 12 * P, 2 * P, RW),
];

const fn sc(
    name: &'static str,
    about: &'static str,
    setup: &'static [Op],
    writers: &'static [&'static [Op]],
    reader: Reader,
) -> Scenario {
    Scenario {
        name,
        about,
        files: &[],
        setup,
        keep_fds: false,
        other_mm: false,
        killable: false,
        writers,
        reader,
        bound: None,
        shape: None,
    }
}

const fn with_file(mut s: Scenario) -> Scenario {
    s.files = &[77];
    s
}

const fn killable(mut s: Scenario) -> Scenario {
    s.killable = true;
    s
}

const fn with_other_mm(mut s: Scenario) -> Scenario {
    s.other_mm = true;
    s
}

const fn bounded(mut s: Scenario, b: usize) -> Scenario {
    s.bound = Some(b);
    s
}

const fn shaped(mut s: Scenario, f: fn(&Shape)) -> Scenario {
    s.shape = Some(f);
    s
}

fn root_grows(s: &Shape) {
    assert!(
        s.tree_after.0 > s.tree_before.0,
        "the split should grow the root: {s:?}"
    );
}

fn node_splits(s: &Shape) {
    assert_eq!(s.tree_after.0, s.tree_before.0, "height should not change: {s:?}");
    assert!(s.tree_after.1 > s.tree_before.1, "a node should split: {s:?}");
}

fn file_slot_recycled(s: &Shape) {
    assert!(
        s.files_after.iter().any(|f| s.setup_files.contains(f)),
        "the new shmem file should reuse the unmapped file's slot: {s:?}"
    );
}

/// Every scenario, in report order.
pub static SCENARIOS: &[Scenario] = &[
    sc(
        "mprotect-flags",
        "vm_flags rewritten in place (Jann's two cases)",
        ANON2,
        &[&[Op::Mprotect(A, 2 * P, R)]],
        Reader::Spec(A + 8),
    ),
    with_file(sc(
        "split-uprobe",
        "split: vm_start/vm_pgoff moved in place, VMA linked",
        FILE2,
        SPLIT,
        Reader::Uprobe(A + P + 8),
    )),
    with_file(sc(
        "split-lookup",
        "split: never a half-split VMA",
        FILE2,
        SPLIT,
        Reader::Spec(A + P + 8),
    )),
    sc(
        "downgrade",
        "mprotect ended by mmap_write_downgrade",
        ANON2,
        &[&[Op::MprotectDowngrade(A, 2 * P, R)]],
        Reader::Spec(A + 8),
    ),
    sc(
        "read-lock-try-begin",
        "try_begin under mmap_read_lock while a writer waits",
        ANON2,
        &[&[Op::Mprotect(A, 2 * P, R)]],
        Reader::UnderReadLock(A + 8),
    ),
    with_file(sc(
        "munmap-whole",
        "munmap of a whole file VMA: slots freed",
        FILE_AND_ANON,
        &[&[Op::Munmap(A, 2 * P)]],
        Reader::Uprobe(A + 8),
    )),
    shaped(
        bounded(
            with_file(sc(
                "munmap-recycle",
                "munmap, then a section that reuses the VMA slot and the file slot",
                FILE_AND_ANON,
                &[&[Op::Munmap(A, 2 * P), Op::MmapSharedAnon(A, 2 * P)]],
                Reader::Uprobe(A + 8),
            )),
            3,
        ),
        file_slot_recycled,
    ),
    with_file(sc(
        "munmap-tail",
        "munmap of a VMA's tail: vm_end in place",
        FILE3,
        &[&[Op::Munmap(A + 2 * P, P)]],
        Reader::Spec(A + 2 * P + 8),
    )),
    with_file(sc(
        "munmap-head",
        "munmap of a VMA's head: split at the end (the kept tail is a new VMA), head removed",
        FILE3,
        &[&[Op::Munmap(A, P)]],
        Reader::Uprobe(A + P + 8),
    )),
    with_file(sc(
        "merge-boundary",
        "mprotect merges part of a VMA into its neighbour: the boundary moves",
        &[
            Op::MmapShared(0, A, 2 * P, RW, 0),
            Op::MmapShared(0, A + 2 * P, 2 * P, R, 2),
        ],
        &[&[Op::Mprotect(A + P, P, R)]],
        Reader::Spec(A + P + 8),
    )),
    with_file(sc(
        "merge-boundary-uprobe",
        "the same boundary move, read as (inode, offset)",
        &[
            Op::MmapShared(0, A, 2 * P, RW, 0),
            Op::MmapShared(0, A + 2 * P, 2 * P, R, 2),
        ],
        &[&[Op::Mprotect(A + P, P, R)]],
        Reader::Uprobe(A + P + 8),
    )),
    sc(
        "expand",
        "mmap next to a compatible VMA: vma_expand moves vm_end",
        &[Op::MmapAnon(A, P, RW)],
        &[&[Op::MmapAnon(A + P, P, RW)]],
        Reader::Spec(A + P + 8),
    ),
    shaped(
        sc(
            "split-root",
            "a split that fills the root leaf: the root grows",
            FOUR,
            &[&[Op::Mprotect(A + P, P, R)]],
            Reader::Spec(A + 7 * P + 8),
        ),
        root_grows,
    ),
    shaped(
        sc(
            "split-node",
            "a split in a full leaf below the root",
            SEVEN,
            &[&[Op::Mprotect(A + 13 * P, P, R)]],
            Reader::Spec(A + 12 * P + 8),
        ),
        node_splits,
    ),
    with_file(sc(
        "mremap-move",
        "mremap MAYMOVE|FIXED of a file VMA",
        FILE2,
        &[&[Op::Mremap(A, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, A + 8 * P)]],
        Reader::Uprobe(A + 9 * P + 8),
    )),
    sc(
        "mremap-grow",
        "mremap growing a VMA in place: vm_end",
        &[Op::MmapAnon(A, P, RW)],
        &[&[Op::Mremap(A, P, 2 * P, 0, 0)]],
        Reader::Spec(A + P + 8),
    ),
    sc(
        "two-sections",
        "two consecutive write sections",
        ANON2,
        &[&[Op::Mprotect(A, 2 * P, R), Op::Mprotect(A, 2 * P, RX)]],
        Reader::Spec(A + 8),
    ),
    sc(
        "downgrade-then-write",
        "a downgraded section, then another write section",
        ANON2,
        &[&[Op::MprotectDowngrade(A, 2 * P, R), Op::Mprotect(A, 2 * P, RX)]],
        Reader::Spec(A + 8),
    ),
    sc(
        "two-writers",
        "two writer threads on one VMA",
        ANON2,
        &[&[Op::Mprotect(A, 2 * P, R)], &[Op::Mprotect(A, 2 * P, RX)]],
        Reader::Spec(A + 8),
    ),
    sc(
        "trylock",
        "a section opened by mmap_write_trylock",
        ANON2,
        &[&[Op::MprotectTrylock(A, 2 * P, R)]],
        Reader::Spec(A + 8),
    ),
    with_file(sc(
        "file-reuse",
        "munmap frees a file slot; an open outside mmap_lock reuses it",
        FILE2,
        &[&[Op::Munmap(A, 2 * P)], &[Op::Open(88)]],
        Reader::Uprobe(A + 8),
    )),
    bounded(
        with_file(sc(
            "lookup-fallback",
            "vma_lookup with its locked fallback, across a split",
            FILE2,
            SPLIT,
            Reader::Lookup(A + P + 8),
        )),
        3,
    ),
    bounded(
        with_file(sc(
            "resolve-fallback",
            "uprobe resolve with its locked fallback, across munmap and a reused file slot",
            FILE2,
            &[&[Op::Munmap(A, 2 * P)], &[Op::Open(88)]],
            Reader::Resolve(A + 8),
        )),
        3,
    ),
    sc(
        "fault-vs-mprotect",
        "a write fault under the VMA lock racing mprotect of its VMA",
        ANON2,
        &[&[Op::Mprotect(A, 2 * P, R)]],
        Reader::Fault(A + 8, Access::Write),
    ),
    sc(
        "fault-vs-split",
        "a write fault under the VMA lock racing a split of its VMA",
        ANON2,
        &[&[Op::Mprotect(A + P, P, R)]],
        Reader::Fault(A + P + 8, Access::Write),
    ),
    bounded(
        sc(
            "fault-vs-munmap",
            "a read fault racing munmap of its VMA",
            ANON2,
            &[&[Op::Munmap(A, 2 * P)]],
            Reader::Fault(A + 8, Access::Read),
        ),
        3,
    ),
    bounded(
        sc(
            "fault-vs-mremap",
            "a read fault racing mremap (move) of its VMA",
            ANON2,
            &[&[Op::Mremap(A, 2 * P, 2 * P, MREMAP_MAYMOVE | MREMAP_FIXED, A + 8 * P)]],
            Reader::Fault(A + 8, Access::Read),
        ),
        3,
    ),
    sc(
        "fault-other-vma",
        "a write fault on one VMA while a writer changes another",
        &[Op::MmapAnon(A, 2 * P, RW), Op::MmapAnon(A + 4 * P, 2 * P, RW)],
        &[&[Op::Mprotect(A + 4 * P, 2 * P, R)]],
        Reader::Fault(A + 8, Access::Write),
    ),
    sc(
        "lock-vs-mprotect",
        "lock_vma_under_rcu racing mprotect: the locked VMA never changes",
        ANON2,
        &[&[Op::Mprotect(A, 2 * P, R)]],
        Reader::LockVma(A + 8),
    ),
    sc(
        "lock-vs-split",
        "lock_vma_under_rcu racing a split of the VMA",
        ANON2,
        &[&[Op::Mprotect(A + P, P, R)]],
        Reader::LockVma(A + P + 8),
    ),
    bounded(
        sc(
            "maps-vs-boundary",
            "maps under per-VMA locks racing a boundary move between two VMAs (mprotect merging part of one into the other)",
            &[Op::MmapAnon(A, 2 * P, RW), Op::MmapAnon(A + 2 * P, 2 * P, R)],
            &[&[Op::Mprotect(A + P, P, R)]],
            Reader::Maps,
        ),
        2,
    ),
    killable(sc(
        "killable-writer",
        "vma_start_write_killable killed while a reader holds the VMA",
        ANON2,
        &[],
        Reader::Spec(A + 8),
    )),
    bounded(
        sc(
            "maps-vs-split",
            "maps under per-VMA locks racing a split (proc-maps-race: split)",
            ANON2,
            &[&[Op::Mprotect(A + P, P, R)]],
            Reader::Maps,
        ),
        2,
    ),
    bounded(
        sc(
            "maps-vs-resize",
            "maps under per-VMA locks racing a shrink in place (proc-maps-race: resize)",
            ANON2,
            &[&[Op::Mremap(A, 2 * P, P, 0, 0)]],
            Reader::Maps,
        ),
        2,
    ),
    bounded(
        sc(
            "maps-vs-remap",
            "maps under per-VMA locks racing mremap of a VMA next to another (proc-maps-race: remap)",
            &[Op::MmapAnon(A, 2 * P, RW), Op::MmapAnon(A + 4 * P, P, R)],
            &[&[Op::Mremap(A + 4 * P, P, P, MREMAP_MAYMOVE | MREMAP_FIXED, A + 2 * P)]],
            Reader::Maps,
        ),
        1,
    ),
    bounded(
        with_other_mm(sc(
            "lock-vs-reuse",
            "munmap frees a VMA slot that the other address space reuses at the same address",
            ANON2,
            &[&[Op::Munmap(A, 2 * P)], &[Op::MmapAnonOther(A, 2 * P, RW)]],
            Reader::LockVma(A + 8),
        )),
        3,
    ),
    bounded(
        with_other_mm(sc(
            "spec-vs-reuse",
            "the speculative reader across a VMA slot reused by the other address space",
            ANON2,
            &[&[Op::Munmap(A, 2 * P)], &[Op::MmapAnonOther(A, 2 * P, RX)]],
            Reader::Spec(A + 8),
        )),
        3,
    ),
];

/// Scenario by name.
pub fn by_name(name: &str) -> &'static Scenario {
    SCENARIOS
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no scenario {name}"))
}
