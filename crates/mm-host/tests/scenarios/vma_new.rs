//! `tools/testing/vma/vma.c`, new-range merges, expansion and shrinking:
//! `test_simple_merge`, `test_simple_expand`, `test_simple_shrink`,
//! `test_merge_new`, `test_mmap_region_basic`, `test_expand_only_mode`.
//!
//! One kernel "unit" is one page of the arena: the kernel test's `0x3000`
//! is arena page 3 here, its `pgoff` is the file offset in pages
//! (anonymous private memory has `pgoff = addr >> PAGE_SHIFT` and shows
//! offset 0 in maps). A kernel `anon_vma` comes from a write fault.

use mm_ops::call::{Call, Outcome};
use mm_ops::uapi::{MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, PROT_READ, PROT_WRITE};

use crate::harness::{P, Sc};

const R: u64 = PROT_READ;
const RW: u64 = PROT_READ | PROT_WRITE;

/// `test_simple_merge`: `[0,1)` and `[2,3)` exist, a new `[1,2)` with
/// contiguous `pgoff` merges both into one `[0,3)` with `pgoff` 0.
pub fn simple_merge(sc: &mut Sc) {
    sc.anon(0, 1, RW);
    sc.anon(2, 1, RW);
    sc.expect_vmas("left and right apart", &[(0, 1, "rw-p"), (2, 3, "rw-p")]);
    sc.anon(1, 1, RW);
    sc.expect_vmas("new middle merges both", &[(0, 3, "rw-p")]);

    // The same with file pages, where pgoff shows in maps.
    let (path, fd) = sc.file("f", 3);
    sc.munmap(0, 3);
    sc.map(0, 1, R, MAP_PRIVATE, fd, 0);
    sc.map(2, 1, R, MAP_PRIVATE, fd, 2);
    sc.map(1, 1, R, MAP_PRIVATE, fd, 1);
    sc.expect_arena("file pages 0,2 then 1: one VMA at pgoff 0", &[(0, 3, "r--p", 0)]);
    sc.expect_names("the file's path", &[&path]);
}

/// `test_simple_expand`: `[0,1)` expands to `[0,3)` (an adjacent new
/// mapping with the same flags and contiguous pgoff extends it).
pub fn simple_expand(sc: &mut Sc) {
    sc.anon(0, 1, RW);
    sc.anon(1, 2, RW);
    sc.expect_vmas("[0,1) expanded to [0,3)", &[(0, 3, "rw-p")]);

    let (_, fd) = sc.file("f", 3);
    sc.map(16, 1, R, MAP_PRIVATE, fd, 0);
    sc.map(17, 2, R, MAP_PRIVATE, fd, 1);
    sc.expect_arena("file: expanded, pgoff 0", &[(0, 3, "rw-p", 0), (16, 19, "r--p", 0)]);
}

/// `test_simple_shrink`: `[0,3)` shrinks to `[0,1)` keeping `pgoff` 0
/// (munmap of the tail); cutting the head moves the start and the pgoff.
pub fn simple_shrink(sc: &mut Sc) {
    sc.anon(0, 3, RW);
    sc.munmap(1, 2);
    sc.expect_vmas("munmap of the tail", &[(0, 1, "rw-p")]);

    let (_, fd) = sc.file("f", 3);
    sc.map(32, 3, R, MAP_PRIVATE, fd, 0);
    sc.munmap(33, 2);
    sc.map(48, 3, R, MAP_PRIVATE, fd, 0);
    sc.munmap(48, 1);
    sc.expect_arena(
        "file: tail cut keeps pgoff 0, head cut gives pgoff 1",
        &[(0, 1, "rw-p", 0), (32, 33, "r--p", 0), (49, 51, "r--p", 1)],
    );
}

/// The `test_merge_new` walk from `base`, mapping with `map(sc, page,
/// pages)`; `perms` of every VMA, `file` when pgoff equals the page
/// (relative to `base`) and shows in maps.
fn merge_new_walk(sc: &mut Sc, base: u64, perms: &str, file: bool, setup: bool, map: &dyn Fn(&mut Sc, u64, u64)) {
    let exp = |sc: &mut Sc, what: &str, v: &[(u64, u64)]| {
        let w: Vec<(u64, u64, &str, u64)> = v
            .iter()
            .map(|&(s, e)| (base + s, base + e, perms, if file { s } else { 0 }))
            .collect();
        sc.expect_arena(what, &w);
    };
    // 0123456789abc
    // AA B   DD  CC  (unless `setup` is false: then they exist)
    if setup {
        map(sc, base, 2);
        map(sc, base + 3, 1);
        map(sc, base + 0xb, 1);
        exp(sc, "A, B, C", &[(0, 2), (3, 4), (0xb, 0xc)]);
        map(sc, base + 7, 2);
        exp(sc, "NO merge: D apart", &[(0, 2), (3, 4), (7, 9), (0xb, 0xc)]);
    }
    map(sc, base + 2, 1);
    exp(sc, "merge BOTH sides: A*B", &[(0, 4), (7, 9), (0xb, 0xc)]);
    map(sc, base + 4, 1);
    exp(sc, "merge to PREVIOUS: AAAA*", &[(0, 5), (7, 9), (0xb, 0xc)]);
    map(sc, base + 6, 1);
    exp(sc, "merge to NEXT: *DD", &[(0, 5), (6, 9), (0xb, 0xc)]);
    map(sc, base + 5, 1);
    exp(sc, "merge BOTH sides: AAAAA*DDD", &[(0, 9), (0xb, 0xc)]);
    map(sc, base + 0xa, 1);
    exp(sc, "merge to NEXT: *CC", &[(0, 9), (0xa, 0xc)]);
    map(sc, base + 9, 1);
    exp(sc, "merge BOTH sides: one VMA AAAAAAAAAAAA", &[(0, 0xc)]);
}

/// `test_merge_new` with unfaulted anonymous memory (no `anon_vma`s).
pub fn merge_new(sc: &mut Sc) {
    merge_new_walk(sc, 0, "rw-p", false, true, &|sc, p, n| sc.anon(p, n, RW));
}

/// `test_merge_new` as the kernel test sets it up: A, B, C and D all share
/// one `anon_vma` (one write-faulted mapping with holes punched in it).
pub fn merge_new_anon_vma(sc: &mut Sc) {
    sc.anon(0, 0xc, RW);
    sc.write(0);
    sc.munmap(2, 1);
    sc.munmap(4, 3);
    sc.munmap(9, 2);
    sc.expect_vmas(
        "A, B, D, C sharing an anon_vma",
        &[(0, 2, "rw-p"), (3, 4, "rw-p"), (7, 9, "rw-p"), (0xb, 0xc, "rw-p")],
    );
    merge_new_walk(sc, 0, "rw-p", false, false, &|sc, p, n| sc.anon(p, n, RW));
}

/// `test_merge_new` with file pages at `pgoff` = page, read-only private.
pub fn merge_new_file(sc: &mut Sc) {
    let (_, fd) = sc.file("f", 0xc);
    merge_new_walk(sc, 0, "r--p", true, true, &move |sc, p, n| {
        sc.map(p, n, R, MAP_PRIVATE, fd, p)
    });
}

/// `test_mmap_region_basic`: four mappings that merge pairwise into two
/// VMAs, `[0x24d,0x253)` and `[0x300,0x306)`, with pgoff 0x24d and 0x300.
pub fn mmap_region_basic(sc: &mut Sc) {
    for p in [0x300, 0x250, 0x303, 0x24d] {
        sc.anon(p, 3, RW);
    }
    sc.expect_vmas("two VMAs", &[(0x24d, 0x253, "rw-p"), (0x300, 0x306, "rw-p")]);
    let (_, fd) = sc.file("f", 0x306);
    let b = 0x1000;
    for p in [0x300, 0x250, 0x303, 0x24d] {
        sc.map(b + p, 3, RW, MAP_SHARED, fd, p);
    }
    sc.expect_arena(
        "file: two VMAs with pgoff 0x24d and 0x300",
        &[
            (0x24d, 0x253, "rw-p", 0),
            (0x300, 0x306, "rw-p", 0),
            (b + 0x24d, b + 0x253, "rw-s", 0x24d),
            (b + 0x300, b + 0x306, "rw-s", 0x300),
        ],
    );
}

/// `test_expand_only_mode` and `test_merge_extend` through brk: the heap
/// VMA is expanded in place; the bss VMA right below `start_brk` is never
/// merged with it. Shrinking the break shrinks the heap.
pub fn expand_only_mode_brk(sc: &mut Sc) {
    let sb = match sc.twin.host.stat() {
        Ok(st) => st.start_brk,
        Err(e) => sc.fail(&format!("cannot read the host's stat: {e}")),
    };
    let heap = |sc: &mut Sc| -> Vec<(u64, u64, String)> {
        sc.host_maps()
            .into_iter()
            .filter(|l| l.end >= sb - P && l.start < sb + 64 * P)
            .map(|l| (l.start, l.end, l.name))
            .collect()
    };
    let bss = heap(sc);
    sc.check("a VMA ends at start_brk", bss.len() == 1 && bss[0].1 == sb);
    sc.expect(Call::Brk { addr: sb + P }, Outcome::Val(sb + P));
    let h = heap(sc);
    sc.check(
        "heap VMA of its own after the bss",
        h.len() == 2 && h[1] == (sb, sb + P, "[heap]".to_string()),
    );
    sc.expect(Call::Brk { addr: sb + 3 * P }, Outcome::Val(sb + 3 * P));
    let h = heap(sc);
    sc.check(
        "heap expanded in place",
        h.len() == 2 && h[1] == (sb, sb + 3 * P, "[heap]".to_string()),
    );
    sc.expect(Call::Brk { addr: sb + 3 * P + 100 }, Outcome::Val(sb + 3 * P + 100));
    let h = heap(sc);
    sc.check(
        "an unaligned break: the heap ends at the next page",
        h.len() == 2 && h[1] == (sb, sb + 4 * P, "[heap]".to_string()),
    );
    sc.expect(Call::Brk { addr: sb + P }, Outcome::Val(sb + P));
    let h = heap(sc);
    sc.check(
        "heap shrunk",
        h.len() == 2 && h[1] == (sb, sb + P, "[heap]".to_string()),
    );
    // A mapping in the way: brk fails and returns the old break.
    sc.ok(Call::Mmap {
        addr: sb + 5 * P,
        len: P,
        prot: RW,
        flags: MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS,
        fd: -1,
        off: 0,
    });
    sc.expect(Call::Brk { addr: sb + 8 * P }, Outcome::Val(sb + P));
    sc.expect(Call::Brk { addr: sb + 5 * P }, Outcome::Val(sb + P));
    sc.expect(Call::Brk { addr: sb + 4 * P }, Outcome::Val(sb + 4 * P));
    let h = heap(sc);
    sc.check(
        "heap grows up to one page below the mapping, not merged with it",
        h.len() == 3 && h[1] == (sb, sb + 4 * P, "[heap]".to_string()) && h[2].0 == sb + 5 * P,
    );
}
