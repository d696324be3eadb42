//! `tools/testing/vma/vma.c`, merges of a modified range and the
//! `anon_vma` rules: `test_simple_modify`, `test_merge_existing`,
//! `test_anon_vma_non_mergeable`, `test_dup_anon_vma`.
//!
//! A kernel "unit" is an arena page. The kernel tests give all VMAs one
//! `dummy_anon_vma`; here VMAs share an `anon_vma` when they are pieces of
//! one write-faulted mapping, split by mprotect. Note `mprotect_fixup()`:
//! making unfaulted private anonymous memory read-only drops `VM_ACCOUNT`
//! (faulted memory keeps it), and that flag decides merges between
//! read-only pieces too (see `account_noreserve`).

use mm_ops::uapi::{MAP_NORESERVE, MAP_SHARED, PROT_EXEC, PROT_READ, PROT_WRITE};

use crate::harness::Sc;

const R: u64 = PROT_READ;
const RW: u64 = PROT_READ | PROT_WRITE;

/// A private anonymous read-only VMA with `VM_ACCOUNT` and an `anon_vma`
/// of its own (mapped writable, write-faulted, then write-protected).
fn ro_faulted(sc: &mut Sc, page: u64, pages: u64) {
    sc.anon(page, pages, RW);
    sc.write(page);
    sc.mprotect(page, pages, R);
}

/// One writable mapping `[page, page + pages)`, write-faulted (one
/// `anon_vma`), then the pieces `(page, pages, prot)` of `prot` changed.
fn layout(sc: &mut Sc, page: u64, pages: u64, pieces: &[(u64, u64, u64)]) {
    sc.anon(page, pages, RW);
    sc.write(page);
    for &(p, n, prot) in pieces {
        sc.mprotect(p, n, prot);
    }
}

/// `test_simple_modify`: changing the flags of the middle of `[0,3)`
/// splits it in three with `pgoff` 0, 1, 2; restoring merges it back.
pub fn simple_modify(sc: &mut Sc) {
    let (_, fd) = sc.file("f", 3);
    sc.map(0, 3, RW, MAP_SHARED, fd, 0);
    sc.mprotect(1, 1, R);
    sc.expect_arena(
        "three VMAs with pgoff 0,1,2",
        &[(0, 1, "rw-s", 0), (1, 2, "r--s", 1), (2, 3, "rw-s", 2)],
    );
    sc.mprotect(1, 1, RW);
    sc.expect_arena("restored flags merge both sides", &[(0, 3, "rw-s", 0)]);

    sc.anon(16, 3, RW);
    sc.write(16);
    sc.mprotect(17, 1, R);
    sc.expect_arena(
        "anonymous: three VMAs",
        &[
            (0, 3, "rw-s", 0),
            (16, 17, "rw-p", 0),
            (17, 18, "r--p", 0),
            (18, 19, "rw-p", 0),
        ],
    );
    sc.mprotect(17, 1, RW);
    sc.expect_arena("anonymous: merged back", &[(0, 3, "rw-s", 0), (16, 19, "rw-p", 0)]);
}

/// `test_merge_existing`: mprotect (`vma_modify_flags`) of a range of V
/// that makes it match P and/or N. P, V and N are pieces of one faulted
/// mapping (one `anon_vma`, all `VM_ACCOUNT`), like the kernel test's.
pub fn merge_existing(sc: &mut Sc) {
    // Merge right, partial span: VVVVNNN, <-> over 3..6 -> VNNNNNN.
    layout(sc, 2, 7, &[(6, 3, R)]);
    sc.expect_vmas("V, N", &[(2, 6, "rw-p"), (6, 9, "r--p")]);
    sc.mprotect(3, 3, R);
    sc.expect_vmas(
        "merge right partial: V [2,3), N [3,9)",
        &[(2, 3, "rw-p"), (3, 9, "r--p")],
    );
    sc.munmap(0, 16);

    // Merge right, full span: V deleted, N [2,9).
    layout(sc, 2, 7, &[(6, 3, R)]);
    sc.mprotect(2, 4, R);
    sc.expect_vmas("merge right full: N [2,9)", &[(2, 9, "r--p")]);
    sc.munmap(0, 16);

    // Merge left, partial span: PPPVVVV, <-> over 3..6 -> PPPPPPV.
    layout(sc, 0, 7, &[(0, 3, R)]);
    sc.mprotect(3, 3, R);
    sc.expect_vmas(
        "merge left partial: P [0,6), V [6,7)",
        &[(0, 6, "r--p"), (6, 7, "rw-p")],
    );
    sc.munmap(0, 16);

    // Merge left, full span.
    layout(sc, 0, 7, &[(0, 3, R)]);
    sc.mprotect(3, 4, R);
    sc.expect_vmas("merge left full: P [0,7)", &[(0, 7, "r--p")]);
    sc.munmap(0, 16);

    // Merge both: PPPVVVVNNN -> PPPPPPPPPP.
    layout(sc, 0, 9, &[(0, 3, R), (7, 2, R)]);
    sc.expect_vmas("P, V, N", &[(0, 3, "r--p"), (3, 7, "rw-p"), (7, 9, "r--p")]);
    sc.mprotect(3, 4, R);
    sc.expect_vmas("merge both: one VMA [0,9)", &[(0, 9, "r--p")]);
    sc.munmap(0, 16);

    // Non-merge ranges strictly inside V: P and N untouched, V split
    // (and merged back when the change is undone).
    layout(sc, 0, 10, &[(0, 3, R), (8, 2, R)]);
    for (s, e) in [(4, 5), (5, 6), (6, 7), (4, 7), (4, 6), (5, 6)] {
        sc.mprotect(s, e - s, R);
        sc.expect_vmas(
            &format!("non-merge range [{s},{e}): V split in three"),
            &[
                (0, 3, "r--p"),
                (3, s, "rw-p"),
                (s, e, "r--p"),
                (e, 8, "rw-p"),
                (8, 10, "r--p"),
            ],
        );
        sc.mprotect(s, e - s, RW);
        sc.expect_vmas("undone: P, V, N", &[(0, 3, "r--p"), (3, 8, "rw-p"), (8, 10, "r--p")]);
    }
    sc.munmap(0, 16);

    // Non-mergeable next (different protection): only the left merge.
    layout(sc, 0, 9, &[(0, 3, R), (7, 2, R | PROT_EXEC)]);
    sc.mprotect(3, 4, R);
    sc.expect_vmas("next differs: P [0,7), N [7,9)", &[(0, 7, "r--p"), (7, 9, "r-xp")]);
    sc.munmap(0, 16);

    // Unfaulted (no anon_vma anywhere, nothing accounted when read-only).
    sc.anon(0, 3, R);
    sc.anon(7, 2, R);
    sc.anon(3, 4, RW);
    sc.mprotect(3, 4, R);
    sc.expect_vmas("unfaulted: merge both", &[(0, 9, "r--p")]);
}

/// `test_merge_existing` on a shared file, where pgoffs show: merge right
/// partial moves N's start and pgoff down to 3, merge left partial keeps
/// P's pgoff and moves V's up.
pub fn merge_existing_file(sc: &mut Sc) {
    let (_, fd) = sc.file("f", 16);
    sc.map(6, 3, R, MAP_SHARED, fd, 6);
    sc.map(2, 4, RW, MAP_SHARED, fd, 2);
    sc.expect_arena("V, N", &[(2, 6, "rw-s", 2), (6, 9, "r--s", 6)]);
    sc.mprotect(3, 3, R);
    sc.expect_arena(
        "merge right partial: N at pgoff 3",
        &[(2, 3, "rw-s", 2), (3, 9, "r--s", 3)],
    );
    sc.mprotect(2, 1, R);
    sc.expect_arena("merge right full: N at pgoff 2", &[(2, 9, "r--s", 2)]);
    sc.mprotect(5, 4, RW);
    sc.expect_arena("split again", &[(2, 5, "r--s", 2), (5, 9, "rw-s", 5)]);
    sc.mprotect(5, 2, R);
    sc.expect_arena(
        "merge left partial: V at pgoff 7",
        &[(2, 7, "r--s", 2), (7, 9, "rw-s", 7)],
    );
    sc.mprotect(4, 1, RW);
    sc.mprotect(4, 1, R);
    sc.expect_arena("split and merge both ways", &[(2, 7, "r--s", 2), (7, 9, "rw-s", 7)]);
}

/// `test_anon_vma_non_mergeable`: P and N have different `anon_vma`s, so a
/// merge of both sides degrades to P + V (modified VMA and new VMA cases).
/// The modified-VMA case is built with `MAP_NORESERVE` so that V, which
/// must stay unfaulted, keeps the same flags as P and N when made
/// read-only (no `VM_ACCOUNT` anywhere).
pub fn anon_vma_non_mergeable(sc: &mut Sc) {
    // Modified VMA: PPPVVVVNNN -> PPPPPPPNNN.
    for (p, n) in [(0, 3), (7, 2)] {
        sc.anon_with(p, n, RW, MAP_NORESERVE);
        sc.write(p);
        sc.mprotect(p, n, R);
    }
    sc.anon_with(3, 4, RW, MAP_NORESERVE);
    sc.expect_vmas("P, V, N", &[(0, 3, "r--p"), (3, 7, "rw-p"), (7, 9, "r--p")]);
    sc.mprotect(3, 4, R);
    sc.expect_vmas("modify: merge degrades to prev", &[(0, 7, "r--p"), (7, 9, "r--p")]);

    // New VMA: PPP****NNN -> PPPPPPPNNN.
    sc.anon(16, 3, RW);
    sc.write(16);
    sc.anon(23, 2, RW);
    sc.write(23);
    sc.anon(19, 4, RW);
    sc.expect_window(
        "new: merge degrades to prev",
        16,
        32,
        &[(16, 23, "rw-p"), (23, 25, "rw-p")],
    );

    // Control: P and N share one anon_vma (split of one faulted VMA).
    sc.anon(32, 9, RW);
    sc.write(32);
    sc.munmap(35, 4);
    sc.anon(35, 4, RW);
    sc.expect_window("same anon_vma: merge both", 32, 48, &[(32, 41, "rw-p")]);

    // A later fault reuses a compatible neighbour's anon_vma
    // (find_mergeable_anon_vma): then they merge.
    ro_faulted(sc, 48, 2);
    sc.anon(50, 2, RW);
    sc.write(50);
    sc.mprotect(50, 2, R);
    sc.expect_window("fault reused the neighbour's anon_vma", 48, 64, &[(48, 52, "r--p")]);
}

/// Whether the private writable VMA ending at page `end` has an
/// `anon_vma`: a faulted VMA (its own `anon_vma`) at `end + 1` and a new
/// page at `end` between them merge both sides only if it has none.
fn probe_has_anon_vma(sc: &mut Sc, start: u64, end: u64) -> bool {
    sc.anon(end + 1, 1, RW);
    sc.write(end + 1);
    sc.anon(end, 1, RW);
    let v = sc
        .arena()
        .into_iter()
        .filter(|v| v.0 >= start && v.1 <= end + 2)
        .collect::<Vec<_>>();
    let joined = v.len() == 1 && v[0].0 == start && v[0].1 == end + 2;
    let split = v.len() == 2 && (v[0].0, v[0].1, v[1].0, v[1].1) == (start, end + 1, end + 1, end + 2);
    if !joined && !split {
        sc.fail(&format!(
            "anon_vma probe at [{start:#x},{end:#x}): unexpected arena {v:?}"
        ));
    }
    split
}

/// `test_dup_anon_vma`: when a merge deletes or shrinks the VMA that holds
/// the `anon_vma`, the surviving VMA takes (a clone of) it. Observable
/// through later merges (see [`probe_has_anon_vma`]).
pub fn dup_anon_vma(sc: &mut Sc) {
    // Control: nothing faulted, the probe merges all.
    sc.anon(0, 8, RW);
    let has = probe_has_anon_vma(sc, 0, 8);
    sc.check("probe: an unfaulted VMA has no anon_vma", !has);
    sc.expect_window("probe merged both sides", 0, 0x10, &[(0, 10, "rw-p")]);

    // Expand prev, delete next (new VMA merge): prev takes next's anon_vma.
    let b = 0x10;
    sc.anon(b, 3, RW);
    sc.anon(b + 5, 3, RW);
    sc.write(b + 5);
    sc.anon(b + 3, 2, RW);
    sc.expect_window("new VMA merges both", b, b + 0x10, &[(b, b + 8, "rw-p")]);
    let has = probe_has_anon_vma(sc, b, b + 8);
    sc.check("prev took next's anon_vma", has);

    // prev extend, vma and next deleted; next has the anon_vma.
    let b = 0x20;
    sc.anon(b, 3, RW);
    sc.anon(b + 5, 3, RW);
    sc.write(b + 5);
    sc.anon(b + 3, 2, R);
    sc.mprotect(b + 3, 2, RW);
    sc.expect_window("modified VMA merges both", b, b + 0x10, &[(b, b + 8, "rw-p")]);
    let has = probe_has_anon_vma(sc, b, b + 8);
    sc.check("prev took next's anon_vma", has);

    // prev extend, vma and next deleted; vma has the anon_vma.
    let b = 0x30;
    ro_faulted(sc, b + 3, 2);
    sc.anon(b, 3, RW);
    sc.anon(b + 5, 3, RW);
    sc.mprotect(b + 3, 2, RW);
    sc.expect_window("modified VMA merges both", b, b + 0x10, &[(b, b + 8, "rw-p")]);
    let has = probe_has_anon_vma(sc, b, b + 8);
    sc.check("prev took vma's anon_vma", has);

    // prev extend, vma shrinks; vma has the anon_vma: merging the rest of
    // vma back into prev later works only if prev has the same anon_vma.
    let b = 0x40;
    ro_faulted(sc, b + 3, 5);
    sc.anon(b, 3, RW);
    sc.mprotect(b + 3, 2, RW);
    sc.expect_window(
        "prev [0,5), vma [5,8)",
        b,
        b + 0x10,
        &[(b, b + 5, "rw-p"), (b + 5, b + 8, "r--p")],
    );
    sc.mprotect(b + 5, 3, RW);
    sc.expect_window(
        "prev shares vma's anon_vma: merged back",
        b,
        b + 0x10,
        &[(b, b + 8, "rw-p")],
    );

    // vma shrinks, next extends; next must share vma's anon_vma.
    let b = 0x50;
    ro_faulted(sc, b, 5);
    sc.anon(b + 5, 3, RW);
    sc.mprotect(b + 3, 2, RW);
    sc.expect_window(
        "vma [0,3), next [3,8)",
        b,
        b + 0x10,
        &[(b, b + 3, "r--p"), (b + 3, b + 8, "rw-p")],
    );
    sc.mprotect(b, 3, RW);
    sc.expect_window(
        "next shares vma's anon_vma: merged back",
        b,
        b + 0x10,
        &[(b, b + 8, "rw-p")],
    );
}
