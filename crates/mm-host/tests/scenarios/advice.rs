//! Scenarios through madvise (`madvise_update_vma()` is a
//! `vma_modify_flags()` user like mprotect): flags a program sets split a
//! VMA although maps shows the same `rw-p`, and block merges until they
//! are cleared; madvise over a hole.

use mm_ops::call::Call;
use mm_ops::uapi::{Errno, MAP_STACK, PROT_READ, PROT_WRITE, madv};

use crate::harness::{P, Sc, at};

const RW: u64 = PROT_READ | PROT_WRITE;

/// `VM_DONTDUMP`, `VM_DONTCOPY`, `VM_WIPEONFORK`, `VM_HUGEPAGE` and
/// `VM_NOHUGEPAGE` (the `MAP_STACK` flag) as merge blockers.
pub fn madvise_flags_block_merge(sc: &mut Sc) {
    let pairs = [
        (madv::DONTDUMP, madv::DODUMP),
        (madv::DONTFORK, madv::DOFORK),
        (madv::WIPEONFORK, madv::KEEPONFORK),
    ];
    for (i, (set, clear)) in pairs.into_iter().enumerate() {
        let b = 0x10 * i as u64;
        sc.anon(b, 4, RW);
        sc.madvise(b + 2, 2, set);
        sc.expect_window(
            "flag set on the upper half: split",
            b,
            b + 0x10,
            &[(b, b + 2, "rw-p"), (b + 2, b + 4, "rw-p")],
        );
        sc.anon(b + 4, 1, RW);
        sc.expect_window(
            "a plain neighbour does not merge",
            b,
            b + 0x10,
            &[(b, b + 2, "rw-p"), (b + 2, b + 4, "rw-p"), (b + 4, b + 5, "rw-p")],
        );
        sc.madvise(b + 2, 2, clear);
        sc.expect_window("flag cleared: merged back", b, b + 0x10, &[(b, b + 5, "rw-p")]);
    }

    // VM_HUGEPAGE: set on one half, then on the other.
    let b = 0x40;
    sc.anon(b, 4, RW);
    sc.madvise(b + 2, 2, madv::HUGEPAGE);
    sc.expect_window(
        "MADV_HUGEPAGE on the upper half: split",
        b,
        b + 0x10,
        &[(b, b + 2, "rw-p"), (b + 2, b + 4, "rw-p")],
    );
    sc.madvise(b, 2, madv::HUGEPAGE);
    sc.expect_window(
        "MADV_HUGEPAGE on the lower half: merged",
        b,
        b + 0x10,
        &[(b, b + 4, "rw-p")],
    );

    // VM_NOHUGEPAGE: MAP_STACK memory merges with plain memory that got
    // MADV_NOHUGEPAGE.
    let b = 0x50;
    sc.anon(b, 2, RW);
    sc.anon_with(b + 2, 2, RW, MAP_STACK);
    sc.expect_window(
        "MAP_STACK apart",
        b,
        b + 0x10,
        &[(b, b + 2, "rw-p"), (b + 2, b + 4, "rw-p")],
    );
    sc.madvise(b, 2, madv::NOHUGEPAGE);
    sc.expect_window(
        "MADV_NOHUGEPAGE on the neighbour: merged",
        b,
        b + 0x10,
        &[(b, b + 4, "rw-p")],
    );

    // Advice that sets no flag does not split.
    let b = 0x60;
    sc.anon(b, 4, RW);
    sc.write(b);
    for advice in [madv::WILLNEED, madv::DONTNEED, madv::FREE, madv::COLD, madv::PAGEOUT] {
        sc.madvise(b + 1, 2, advice);
    }
    sc.expect_window("no flag: no split", b, b + 0x10, &[(b, b + 4, "rw-p")]);
}

/// madvise goes on past a hole (unlike mprotect), applies to both sides
/// and returns ENOMEM; the flag it set shows in the merges that follow.
pub fn madvise_enomem_hole(sc: &mut Sc) {
    sc.anon(0, 2, RW);
    sc.anon(3, 2, RW);
    sc.err(
        Call::Madvise {
            addr: at(0),
            len: 5 * P,
            advice: madv::DONTDUMP,
        },
        Errno::ENOMEM,
    );
    sc.anon(2, 1, RW);
    sc.expect_vmas(
        "applied on both sides of the hole",
        &[(0, 2, "rw-p"), (2, 3, "rw-p"), (3, 5, "rw-p")],
    );
    sc.madvise(0, 5, madv::DODUMP);
    sc.expect_vmas("cleared: one VMA", &[(0, 5, "rw-p")]);
    sc.err(
        Call::Madvise {
            addr: at(5),
            len: P,
            advice: madv::DONTDUMP,
        },
        Errno::ENOMEM,
    );
    sc.err(
        Call::Madvise {
            addr: at(0) + 1,
            len: P,
            advice: madv::DONTDUMP,
        },
        Errno::EINVAL,
    );
}
