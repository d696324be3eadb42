//! `tools/testing/vma/vma.c` through mremap: `test_simple_shrink` (mremap
//! to a smaller size), `test_merge_extend` (growth in place,
//! `vma_merge_extend()`), `test_copy_vma` (moves, `copy_vma()`), and the
//! `VM_DONTEXPAND` half of `test_vma_merge_special_flags`.

use mm_ops::call::{Call, Outcome};
use mm_ops::uapi::{Errno, MAP_PRIVATE, MREMAP_FIXED, MREMAP_MAYMOVE, PROT_READ, PROT_WRITE};

use crate::harness::{P, Sc, at};

const R: u64 = PROT_READ;
const RW: u64 = PROT_READ | PROT_WRITE;

/// `mremap(at(page), old pages, new pages, 0)`: resize in place.
fn resize(page: u64, old: u64, new: u64) -> Call {
    Call::Mremap {
        old_addr: at(page),
        old_len: old * P,
        new_len: new * P,
        flags: 0,
        new_addr: 0,
    }
}

/// `test_simple_shrink` by mremap: `[0,3)` becomes `[0,1)` in place,
/// keeping pgoff 0.
pub fn simple_shrink_mremap(sc: &mut Sc) {
    sc.anon(0, 3, RW);
    sc.expect(resize(0, 3, 1), Outcome::Val(at(0)));
    sc.expect_vmas("mremap to one page", &[(0, 1, "rw-p")]);

    let (_, fd) = sc.file("f", 3);
    sc.map(32, 3, R, MAP_PRIVATE, fd, 0);
    sc.expect(resize(32, 3, 1), Outcome::Val(at(32)));
    sc.expect_arena("file: pgoff 0", &[(0, 1, "rw-p", 0), (32, 33, "r--p", 0)]);
}

/// `test_merge_extend`: mremap growing `[0,1)` in place up to `[3,4)`
/// merges with it; for files only when pgoff is contiguous; without room
/// (and without `MREMAP_MAYMOVE`) it fails with ENOMEM.
pub fn merge_extend(sc: &mut Sc) {
    sc.anon(0, 1, RW);
    sc.anon(3, 1, RW);
    sc.expect(resize(0, 1, 3), Outcome::Val(at(0)));
    sc.expect_vmas("extended into the gap and merged: [0,4)", &[(0, 4, "rw-p")]);

    let (_, fd) = sc.file("f", 8);
    sc.map(16, 1, R, MAP_PRIVATE, fd, 0);
    sc.map(19, 1, R, MAP_PRIVATE, fd, 3);
    sc.expect(resize(16, 1, 3), Outcome::Val(at(16)));
    sc.map(32, 1, R, MAP_PRIVATE, fd, 0);
    sc.map(35, 1, R, MAP_PRIVATE, fd, 5);
    sc.expect(resize(32, 1, 3), Outcome::Val(at(32)));
    sc.expect_arena(
        "file: merged when pgoff is contiguous, not otherwise",
        &[
            (0, 4, "rw-p", 0),
            (16, 20, "r--p", 0),
            (32, 35, "r--p", 0),
            (35, 36, "r--p", 5),
        ],
    );
    sc.err(resize(32, 3, 4), Errno::ENOMEM);
}

/// `test_copy_vma`: mremap moves, backwards without merge, and next to
/// another VMA, merging when pgoff fits. An unfaulted anonymous VMA takes
/// the pgoff of its new address; a faulted one keeps its old pgoff and
/// then does not merge.
pub fn copy_vma(sc: &mut Sc) {
    let mv = |sc: &mut Sc, from: u64, pages: u64, to: u64| {
        let c = Call::Mremap {
            old_addr: at(from),
            old_len: pages * P,
            new_len: pages * P,
            flags: MREMAP_MAYMOVE | MREMAP_FIXED,
            new_addr: at(to),
        };
        sc.expect(c, Outcome::Val(at(to)));
    };
    sc.anon(3, 2, RW);
    mv(sc, 3, 2, 0);
    sc.expect_vmas("moved backwards, no merge", &[(0, 2, "rw-p")]);

    sc.anon(0x10, 2, RW);
    sc.anon(0x16, 2, RW);
    mv(sc, 0x10, 2, 0x14);
    sc.expect_window(
        "unfaulted: moved next to N and merged",
        0x10,
        0x20,
        &[(0x14, 0x18, "rw-p")],
    );

    sc.anon(0x20, 2, RW);
    sc.write(0x20);
    sc.anon(0x26, 2, RW);
    mv(sc, 0x20, 2, 0x24);
    sc.expect_window(
        "faulted: keeps its pgoff, no merge",
        0x20,
        0x30,
        &[(0x24, 0x26, "rw-p"), (0x26, 0x28, "rw-p")],
    );

    let (_, fd) = sc.file("f", 4);
    sc.map(0x30, 2, R, MAP_PRIVATE, fd, 0);
    sc.map(0x36, 2, R, MAP_PRIVATE, fd, 2);
    mv(sc, 0x30, 2, 0x34);
    sc.map(0x40, 2, R, MAP_PRIVATE, fd, 0);
    sc.map(0x46, 2, R, MAP_PRIVATE, fd, 3);
    mv(sc, 0x40, 2, 0x44);
    sc.expect_arena(
        "file: merged with N when pgoff fits",
        &[
            (0, 2, "rw-p", 0),
            (0x14, 0x18, "rw-p", 0),
            (0x24, 0x26, "rw-p", 0),
            (0x26, 0x28, "rw-p", 0),
            (0x34, 0x38, "r--p", 0),
            (0x44, 0x46, "r--p", 0),
            (0x46, 0x48, "r--p", 3),
        ],
    );
}

/// `test_vma_merge_special_flags`, `VM_DONTEXPAND`/`VM_PFNMAP` half: the
/// kernel's special mappings cannot be grown by mremap (EFAULT).
pub fn special_flags_mremap(sc: &mut Sc) {
    for name in ["[vdso]", "[vvar]"] {
        let l = sc.host_maps().into_iter().find(|l| l.name == name);
        let l = l.unwrap_or_else(|| sc.fail(&format!("no {name} on the host")));
        let len = l.end - l.start;
        let grow = Call::Mremap {
            old_addr: l.start,
            old_len: len,
            new_len: len + P,
            flags: 0,
            new_addr: 0,
        };
        sc.err(grow, Errno::EFAULT);
        let grow = Call::Mremap {
            old_addr: l.start,
            old_len: len,
            new_len: len + P,
            flags: MREMAP_MAYMOVE,
            new_addr: 0,
        };
        sc.err(grow, Errno::EFAULT);
    }
}
