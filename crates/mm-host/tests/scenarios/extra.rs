//! Scenarios that the kernel's VMA tests imply but do not spell out: the
//! merge conditions of `is_mergeable_vma()` (flags, file, pgoff) met or
//! missed through flags a program can set, and partial application of
//! calls that meet a hole.

use mm_ops::call::{Call, Outcome, Signal};
use mm_ops::uapi::{
    Errno, MAP_ANONYMOUS, MAP_FIXED_NOREPLACE, MAP_GROWSDOWN, MAP_LOCKED, MAP_NORESERVE, MAP_POPULATE, MAP_PRIVATE,
    MAP_SHARED, MAP_STACK, PROT_EXEC, PROT_GROWSDOWN, PROT_NONE, PROT_READ, PROT_WRITE, oflags,
};

use crate::harness::{P, Sc, at};

const R: u64 = PROT_READ;
const RW: u64 = PROT_READ | PROT_WRITE;

/// `test_vma_merge_special_flags`, as far as user space reaches: the
/// VM_SPECIAL mappings the kernel installs (`[vvar]`, `[vvar_vclock]`,
/// `[vdso]`: `VM_PFNMAP`/`VM_MIXEDMAP`, `VM_DONTEXPAND`) do not merge,
/// neither with a new neighbour of the same protection nor when modified
/// and changed back (their growth by mremap: `special_flags_mremap`).
pub fn vma_merge_special_flags(sc: &mut Sc) {
    let find = |sc: &mut Sc, name: &str| {
        let l = sc.host_maps().into_iter().find(|l| l.name == name);
        l.unwrap_or_else(|| sc.fail(&format!("no {name} on the host")))
    };
    let specials = |sc: &mut Sc| -> Vec<String> {
        sc.host_maps()
            .into_iter()
            .filter(|l| l.name.starts_with("[v"))
            .map(|l| l.key())
            .collect()
    };
    let before = specials(sc);
    let vdso = find(sc, "[vdso]");
    let vvar = find(sc, "[vvar]");
    // A new mapping with the same protection right after [vdso] and one
    // right before [vvar] stay separate VMAs.
    let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
    let after = Call::Mmap {
        addr: vdso.end,
        len: P,
        prot: R | PROT_EXEC,
        flags,
        fd: -1,
        off: 0,
    };
    sc.expect(after, Outcome::Val(vdso.end));
    let below = Call::Mmap {
        addr: vvar.start - P,
        len: P,
        prot: R,
        flags,
        fd: -1,
        off: 0,
    };
    sc.expect(below, Outcome::Val(vvar.start - P));
    // Modifying [vvar] and [vvar_vclock] (and changing back) does not
    // merge them either (vma_modify_flags() with VM_SPECIAL).
    let span = find(sc, "[vdso]").start - vvar.start;
    for prot in [PROT_NONE, R] {
        sc.ok(Call::Mprotect {
            addr: vvar.start,
            len: span,
            prot,
        });
    }
    let now = specials(sc);
    sc.check("special mappings unchanged", now == before);
    let near: Vec<_> = sc
        .host_maps()
        .into_iter()
        .filter(|l| l.end == vvar.start || l.start == vdso.end)
        .collect();
    sc.check(
        "the new neighbours are VMAs of their own",
        near.len() == 2 && near[0].start == vvar.start - P && near[1].end == vdso.end + P,
    );
}

/// `VM_ACCOUNT` and `VM_NORESERVE` are vm_flags, invisible in maps but
/// deciding merges: private writable memory is accounted, `MAP_NORESERVE`
/// memory never; read-only memory becomes accounted when made writable;
/// made read-only again, anonymous memory without an `anon_vma` drops
/// `VM_ACCOUNT` (`mprotect_fixup()`), faulted or file memory keeps it.
pub fn account_noreserve(sc: &mut Sc) {
    sc.anon(0, 2, RW);
    sc.anon_with(2, 2, RW, MAP_NORESERVE);
    sc.expect_window(
        "MAP_NORESERVE next to accounted memory",
        0,
        8,
        &[(0, 2, "rw-p"), (2, 4, "rw-p")],
    );

    sc.anon(8, 2, R);
    sc.anon(10, 2, RW);
    sc.mprotect(10, 2, R);
    sc.expect_window(
        "unfaulted, made read-only: unaccounted, merged",
        8,
        16,
        &[(8, 12, "r--p")],
    );

    sc.anon(16, 2, R);
    sc.anon(18, 2, RW);
    sc.write(18);
    sc.mprotect(18, 2, R);
    sc.expect_window(
        "faulted, made read-only: still accounted, apart",
        16,
        24,
        &[(16, 18, "r--p"), (18, 20, "r--p")],
    );
    sc.mprotect(16, 2, RW);
    sc.write(16);
    sc.mprotect(16, 2, R);
    sc.expect_window(
        "accounted and faulted (the neighbour's anon_vma): merged",
        16,
        24,
        &[(16, 20, "r--p")],
    );

    sc.anon_with(24, 2, R, MAP_NORESERVE);
    sc.anon_with(26, 2, RW, MAP_NORESERVE);
    sc.mprotect(24, 2, RW);
    sc.anon(28, 2, RW);
    sc.expect_window(
        "NORESERVE made writable is not accounted",
        24,
        32,
        &[(24, 28, "rw-p"), (28, 30, "rw-p")],
    );

    // Private file mappings are accounted when writable and stay so;
    // shared ones never are.
    let (_, fd) = sc.file("f", 4);
    sc.map(32, 1, R, MAP_PRIVATE, fd, 0);
    sc.map(33, 1, RW, MAP_PRIVATE, fd, 1);
    sc.expect_window("private file: r and rw", 32, 36, &[(32, 33, "r--p"), (33, 34, "rw-p")]);
    sc.mprotect(32, 1, RW);
    sc.map(36, 1, R, MAP_PRIVATE, fd, 0);
    sc.map(37, 1, RW, MAP_PRIVATE, fd, 1);
    sc.mprotect(37, 1, R);
    sc.map(40, 1, R, MAP_SHARED, fd, 0);
    sc.map(41, 1, RW, MAP_SHARED, fd, 1);
    sc.mprotect(40, 1, RW);
    sc.expect_window(
        "files: private merged once writable, apart once read-only again; shared merged",
        32,
        48,
        &[(32, 34, "rw-p"), (36, 37, "r--p"), (37, 38, "r--p"), (40, 42, "rw-s")],
    );
}

/// `MAP_STACK` gives `VM_NOHUGEPAGE`: no merge with plain memory, merge
/// with other `MAP_STACK` memory (`MADV_NOHUGEPAGE` on the plain side:
/// `madvise_flags_block_merge`).
pub fn map_stack_nohugepage(sc: &mut Sc) {
    sc.anon(0, 2, RW);
    sc.anon_with(2, 2, RW, MAP_STACK);
    sc.anon_with(4, 2, RW, MAP_STACK);
    sc.anon(6, 2, RW);
    sc.expect_vmas(
        "MAP_STACK apart from plain memory, merged with MAP_STACK memory",
        &[(0, 2, "rw-p"), (2, 6, "rw-p"), (6, 8, "rw-p")],
    );
    sc.mprotect(0, 8, R);
    sc.expect_vmas(
        "still apart after mprotect",
        &[(0, 2, "r--p"), (2, 6, "r--p"), (6, 8, "r--p")],
    );
}

/// `VM_LOCKED` from `MAP_LOCKED` keeps memory apart from plain memory and
/// merges with other locked memory; `MAP_POPULATE` sets no flag.
pub fn map_locked_populate(sc: &mut Sc) {
    sc.anon(0, 2, RW);
    sc.anon_with(2, 2, RW, MAP_LOCKED);
    sc.anon_with(4, 2, RW, MAP_LOCKED);
    sc.anon_with(6, 2, RW, MAP_POPULATE);
    sc.anon(8, 2, RW);
    sc.expect_vmas(
        "locked apart from plain memory, merged with locked memory; populated merges with plain",
        &[(0, 2, "rw-p"), (2, 6, "rw-p"), (6, 10, "rw-p")],
    );
    sc.anon_with(12, 2, R, MAP_LOCKED | MAP_POPULATE);
    sc.anon_with(14, 2, R, MAP_LOCKED);
    sc.expect_window("read-only locked memory merges", 12, 16, &[(12, 16, "r--p")]);
}

/// `MAP_GROWSDOWN`: `VM_GROWSDOWN` keeps it apart from plain memory; it
/// grows on faults below it, down to the stack guard gap of a plain
/// neighbour; `PROT_GROWSDOWN` extends an mprotect to its start.
pub fn growsdown(sc: &mut Sc) {
    sc.anon(0, 2, RW);
    sc.anon_with(2, 2, RW, MAP_GROWSDOWN);
    sc.expect_vmas(
        "MAP_GROWSDOWN apart from plain memory",
        &[(0, 2, "rw-p"), (2, 4, "rw-p")],
    );
    sc.anon_with(4, 2, RW, MAP_GROWSDOWN);
    sc.expect_vmas("two grows-down mappings merge", &[(0, 2, "rw-p"), (2, 6, "rw-p")]);
    sc.mprotect_growsdown(5, R);
    sc.expect_vmas("PROT_GROWSDOWN reaches the start", &[(0, 2, "rw-p"), (2, 6, "r--p")]);
    sc.err(
        Call::Mprotect {
            addr: at(1),
            len: P,
            prot: R | PROT_GROWSDOWN,
        },
        Errno::EINVAL,
    );

    sc.anon_with(0x400, 1, RW, MAP_GROWSDOWN);
    sc.anon(0x280, 1, RW);
    sc.write(0x3ff);
    sc.expect_window(
        "grown by a fault right below",
        0x200,
        0x500,
        &[(0x280, 0x281, "rw-p"), (0x3ff, 0x401, "rw-p")],
    );
    sc.expect(
        Call::Fault {
            addr: at(0x300),
            access: mm_ops::call::Access::Write,
        },
        Outcome::Signal(Signal::Segv),
    );
    sc.expect_window(
        "not into the guard gap",
        0x200,
        0x500,
        &[(0x280, 0x281, "rw-p"), (0x3ff, 0x401, "rw-p")],
    );
    sc.write(0x390);
    sc.expect_window(
        "grown far down",
        0x200,
        0x500,
        &[(0x280, 0x281, "rw-p"), (0x390, 0x401, "rw-p")],
    );
}

/// Different files, the same file opened twice (two `struct file`s),
/// `dup`ed descriptors (one `struct file`), private and shared mappings of
/// one file: only the same `struct file` with the same sharing merges.
pub fn files_and_descriptors(sc: &mut Sc) {
    let (p1, fd1) = sc.file("f1", 4);
    let (p2, fd2) = sc.file("f2", 4);
    sc.map(0, 1, R, MAP_SHARED, fd1, 0);
    sc.map(1, 1, R, MAP_SHARED, fd2, 1);
    sc.expect_arena("different files", &[(0, 1, "r--s", 0), (1, 2, "r--s", 1)]);
    sc.expect_names("different files", &[&p1, &p2]);

    let fd1b = sc.open(&p1, oflags::O_RDWR);
    sc.map(4, 1, R, MAP_SHARED, fd1, 0);
    sc.map(5, 1, R, MAP_SHARED, fd1b, 1);
    let fd1d = sc.ok(Call::Dup { fd: fd1 }) as i64;
    sc.map(8, 1, R, MAP_SHARED, fd1, 0);
    sc.map(9, 1, R, MAP_SHARED, fd1d, 1);
    sc.map(12, 1, R, MAP_SHARED, fd1, 0);
    sc.map(13, 1, R, MAP_SHARED, fd1, 1);
    sc.expect_arena(
        "reopened: apart; dup'ed or same fd: merged",
        &[
            (0, 1, "r--s", 0),
            (1, 2, "r--s", 1),
            (4, 5, "r--s", 0),
            (5, 6, "r--s", 1),
            (8, 10, "r--s", 0),
            (12, 14, "r--s", 0),
        ],
    );
    sc.ok(Call::Close { fd: fd1 });
    sc.map(10, 1, R, MAP_SHARED, fd1d, 2);
    sc.ok(Call::Dup2 {
        oldfd: fd1b,
        newfd: fd1d,
    });
    sc.map(11, 1, R, MAP_SHARED, fd1d, 3);
    sc.expect_window(
        "after close: still merges; after dup2: the other file",
        8,
        12,
        &[(8, 11, "r--s"), (11, 12, "r--s")],
    );

    sc.map(16, 1, R, MAP_PRIVATE, fd2, 0);
    sc.map(17, 1, R, MAP_SHARED, fd2, 1);
    let fd2r = sc.open(&p2, oflags::O_RDONLY);
    sc.map(18, 1, R, MAP_SHARED, fd2r, 2);
    sc.expect_window(
        "private, shared, read-only descriptor",
        16,
        20,
        &[(16, 17, "r--p"), (17, 18, "r--s"), (18, 19, "r--s")],
    );
    sc.err(
        Call::Mprotect {
            addr: at(18),
            len: P,
            prot: RW,
        },
        Errno::EACCES,
    );
}

/// File pgoff must continue across the boundary: non-contiguous offsets,
/// or contiguous ones in the wrong order, do not merge.
pub fn pgoff_noncontiguous(sc: &mut Sc) {
    let (_, fd) = sc.file("f", 8);
    sc.map(0, 1, R, MAP_PRIVATE, fd, 0);
    sc.map(1, 1, R, MAP_PRIVATE, fd, 2);
    sc.expect_arena("pgoff 0 then 2", &[(0, 1, "r--p", 0), (1, 2, "r--p", 2)]);
    sc.map(1, 1, R, MAP_PRIVATE, fd, 1);
    sc.map(2, 1, R, MAP_PRIVATE, fd, 2);
    sc.expect_arena("replaced by pgoff 1, then 2: merged", &[(0, 3, "r--p", 0)]);
    sc.map(8, 1, R, MAP_PRIVATE, fd, 3);
    sc.map(7, 1, R, MAP_PRIVATE, fd, 2);
    sc.map(6, 1, R, MAP_PRIVATE, fd, 0);
    sc.map(12, 1, R, MAP_PRIVATE, fd, 5);
    sc.map(13, 1, R, MAP_PRIVATE, fd, 4);
    sc.expect_arena(
        "merged with next when contiguous; wrong order apart",
        &[
            (0, 3, "r--p", 0),
            (6, 7, "r--p", 0),
            (7, 9, "r--p", 2),
            (12, 13, "r--p", 5),
            (13, 14, "r--p", 4),
        ],
    );
}

/// Shared anonymous memory: every mapping is its own shmem object
/// (`/dev/zero (deleted)`), so neighbours never merge; a split one merges
/// back, with its pgoff showing.
pub fn shared_anonymous(sc: &mut Sc) {
    sc.shared_anon(0, 2, RW);
    sc.shared_anon(2, 2, RW);
    sc.expect_arena("two objects", &[(0, 2, "rw-s", 0), (2, 4, "rw-s", 0)]);
    sc.expect_names("shmem", &["/dev/zero (deleted)", "/dev/zero (deleted)"]);
    sc.mprotect(1, 1, R);
    sc.expect_arena("split", &[(0, 1, "rw-s", 0), (1, 2, "r--s", 1), (2, 4, "rw-s", 0)]);
    sc.mprotect(1, 1, RW);
    sc.expect_arena("merged back", &[(0, 2, "rw-s", 0), (2, 4, "rw-s", 0)]);
    sc.munmap(0, 1);
    sc.shared_anon(0, 1, RW);
    sc.anon(4, 1, RW);
    sc.expect_arena(
        "new object in the hole; private next to shared",
        &[
            (0, 1, "rw-s", 0),
            (1, 2, "rw-s", 1),
            (2, 4, "rw-s", 0),
            (4, 5, "rw-p", 0),
        ],
    );
}

/// mprotect stops at the first hole with ENOMEM but keeps what it changed
/// before it (madvise, which goes on past holes: `madvise_enomem_hole`).
pub fn mprotect_enomem_hole(sc: &mut Sc) {
    sc.anon(0, 2, RW);
    sc.anon(3, 2, RW);
    sc.err(
        Call::Mprotect {
            addr: at(0),
            len: 5 * P,
            prot: R,
        },
        Errno::ENOMEM,
    );
    sc.expect_vmas("applied up to the hole", &[(0, 2, "r--p"), (3, 5, "rw-p")]);
    sc.err(
        Call::Mprotect {
            addr: at(2),
            len: 3 * P,
            prot: R,
        },
        Errno::ENOMEM,
    );
    sc.expect_vmas("starting in the hole: nothing", &[(0, 2, "r--p"), (3, 5, "rw-p")]);
    sc.err(
        Call::Mprotect {
            addr: at(3),
            len: 3 * P,
            prot: R,
        },
        Errno::ENOMEM,
    );
    sc.expect_vmas("running into a hole at the end", &[(0, 2, "r--p"), (3, 5, "r--p")]);
    sc.mprotect(0, 2, RW);
    sc.mprotect(3, 2, RW);
    sc.anon(2, 1, RW);
    sc.expect_vmas("hole filled: one VMA", &[(0, 5, "rw-p")]);
}

/// MAP_FIXED over the middle of a (faulted) VMA, then again with the
/// original protection: the pieces share an `anon_vma` and merge back.
pub fn mmap_fixed_over(sc: &mut Sc) {
    sc.anon(0, 6, RW);
    sc.write(0);
    sc.write(3);
    sc.anon(2, 2, R);
    sc.expect_vmas("replaced middle", &[(0, 2, "rw-p"), (2, 4, "r--p"), (4, 6, "rw-p")]);
    sc.anon(2, 2, RW);
    sc.expect_vmas("merged back", &[(0, 6, "rw-p")]);
    sc.munmap(1, 4);
    sc.anon(1, 4, RW);
    sc.expect_vmas("unmapped and mapped again: merged", &[(0, 6, "rw-p")]);
    sc.read(1);
    sc.write(5);
}

impl Sc {
    /// `mprotect(page, 1 page, prot | PROT_GROWSDOWN)`; must succeed.
    fn mprotect_growsdown(&mut self, page: u64, prot: u64) {
        self.ok(Call::Mprotect {
            addr: at(page),
            len: P,
            prot: prot | PROT_GROWSDOWN,
        });
    }
}

/// A special mapping is not anonymous (`vma_is_anonymous` is false: it has
/// `vm_ops`): made writable it is charged (`VM_ACCOUNT`), and made
/// read-only again it keeps the charge (found by the random sessions; the
/// harness compares smaps `VmFlags` after every call).
pub fn special_mapping_keeps_account(sc: &mut Sc) {
    let l = sc.host_maps().into_iter().find(|l| l.name == "[vdso]");
    let l = l.unwrap_or_else(|| sc.fail("no [vdso]"));
    let len = l.end - l.start;
    sc.ok(Call::Mprotect {
        addr: l.start,
        len,
        prot: PROT_WRITE,
    });
    sc.ok(Call::Mprotect {
        addr: l.start,
        len,
        prot: PROT_READ,
    });
}
