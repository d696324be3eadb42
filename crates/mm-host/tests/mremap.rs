//! `mremap(2)` against the host kernel, rule by rule (`mm/mremap.c`,
//! Linux 6.18): every call runs on the host helper and on the model, and
//! the results, `/proc/PID/maps` and the `VmFlags` of `/proc/PID/smaps`
//! must be identical after each one. What a case expects of the kernel
//! (an errno, a boundary) is also checked against the host's answer, so a
//! harness comparing two wrong things fails too.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

#[allow(dead_code)]
#[path = "scenarios/harness.rs"]
mod harness;

use harness::{P, Sc, at, run, run_with};
use mm_core::VmaView;
use mm_host::HostOptions;
use mm_ops::call::{Access, Call, Outcome};
use mm_ops::uapi::*;

const R: u64 = PROT_READ;
const RW: u64 = PROT_READ | PROT_WRITE;
const MAYMOVE: u64 = MREMAP_MAYMOVE;
const FIXED: u64 = MREMAP_MAYMOVE | MREMAP_FIXED;
const DONTUNMAP: u64 = MREMAP_MAYMOVE | MREMAP_DONTUNMAP;
const SEGV: Outcome = Outcome::Signal(mm_ops::call::Signal::Segv);

/// `mremap(old_addr, old_len, new_len, flags, new_addr)` in bytes.
fn mremap(old_addr: u64, old_len: u64, new_len: u64, flags: u64, new_addr: u64) -> Call {
    Call::Mremap {
        old_addr,
        old_len,
        new_len,
        flags,
        new_addr,
    }
}

/// The same in arena pages.
fn rp(page: u64, old: u64, new: u64, flags: u64, to: u64) -> Call {
    mremap(at(page), old * P, new * P, flags, if to == 0 { 0 } else { at(to) })
}

/// Runs `f` and prints how many calls it compared.
fn case(name: &'static str, f: harness::Scenario) {
    let n = run(name, f);
    println!("mremap {name}: {n} host-compared calls");
}

#[test]
fn argument_errors() {
    case("argument_errors", |sc| {
        sc.anon(0, 4, RW);
        sc.anon(8, 2, R);
        for (call, e) in [
            (rp(0, 1, 1, 8, 0), Errno::EINVAL),
            (mremap(at(0) + 8, P, P, 0, 0), Errno::EINVAL),
            (rp(0, 1, 0, 0, 0), Errno::EINVAL),
            (mremap(at(0), P, 1 << 47, MAYMOVE, 0), Errno::EINVAL),
            (rp(0, 1, 1, MREMAP_FIXED, 0x40), Errno::EINVAL),
            (rp(0, 1, 1, MREMAP_DONTUNMAP, 0x40), Errno::EINVAL),
            (rp(0, 1, 2, DONTUNMAP, 0x40), Errno::EINVAL),
            (mremap(at(0), P, P, FIXED, at(0x40) + 8), Errno::EINVAL),
            (mremap(at(0), P, 2 * P, FIXED, (1 << 47) - P), Errno::EINVAL),
            // Source and target overlap.
            (rp(0, 4, 4, FIXED, 2), Errno::EINVAL),
            // No VMA at the address.
            (rp(5, 1, 2, MAYMOVE, 0), Errno::EFAULT),
            (rp(5, 1, 1, FIXED, 0x40), Errno::EFAULT),
            // Growth of a range that runs past its VMA.
            (rp(0, 5, 6, MAYMOVE, 0), Errno::EFAULT),
            // Duplicating a private mapping (old_len 0).
            (rp(0, 0, 2, MAYMOVE, 0), Errno::EINVAL),
            // No room to grow in place and not allowed to move.
            (rp(0, 4, 9, 0, 0), Errno::ENOMEM),
        ] {
            sc.err(call, e);
        }
        // A bogus new_addr is ignored without FIXED/DONTUNMAP; the same
        // size is a no-op even across VMAs; page rounding of lengths.
        sc.expect(mremap(at(0), P, P, 0, u64::MAX - 4095), Outcome::Val(at(0)));
        sc.expect(rp(0, 10, 10, 0, 0), Outcome::Val(at(0)));
        sc.expect(mremap(at(0), 4 * P - 100, 4 * P - 7, 0, 0), Outcome::Val(at(0)));
        sc.expect_vmas("nothing changed", &[(0, 4, "rw-p"), (8, 10, "r--p")]);
    });
}

#[test]
fn shrink_in_place() {
    case("shrink_in_place", |sc| {
        sc.anon(0, 4, RW);
        sc.anon(4, 2, R);
        sc.anon(8, 2, R);
        // The unmapped tail may cross into the next VMAs.
        sc.expect(rp(0, 9, 2, 0, 0), Outcome::Val(at(0)));
        sc.expect_vmas("tail unmapped across VMAs", &[(0, 2, "rw-p"), (9, 10, "r--p")]);
        // A shrink with MREMAP_FIXED unmaps the tail, then moves the rest,
        // even when the old range crossed VMA boundaries.
        sc.anon(2, 2, R);
        sc.expect(rp(0, 4, 1, FIXED, 0x20), Outcome::Val(at(0x20)));
        sc.expect_vmas("tail gone, head moved", &[(9, 10, "r--p"), (0x20, 0x21, "rw-p")]);
    });
}

#[test]
fn grow_in_place_merges() {
    case("grow_in_place_merges", |sc| {
        sc.anon(0, 2, RW);
        sc.anon(6, 2, RW);
        sc.expect(rp(0, 2, 6, 0, 0), Outcome::Val(at(0)));
        sc.expect_vmas("grown into the gap and merged with the next", &[(0, 8, "rw-p")]);
        // An incompatible neighbour stays apart.
        sc.anon(0x10, 2, RW);
        sc.anon(0x14, 2, R);
        sc.expect(rp(0x10, 2, 4, 0, 0), Outcome::Val(at(0x10)));
        sc.expect_window("not merged", 0x10, 0x20, &[(0x10, 0x14, "rw-p"), (0x14, 0x16, "r--p")]);
        // Only a range that ends at the VMA's end grows in place.
        sc.anon(0x20, 4, RW);
        sc.err(rp(0x20, 2, 3, 0, 0), Errno::ENOMEM);
        let moved = sc.ok(rp(0x20, 2, 3, MAYMOVE, 0));
        sc.check("moved elsewhere", moved != at(0x20));
        // A faulted VMA grows too; its anon_vma stays.
        sc.anon(0x30, 1, RW);
        sc.write(0x30);
        sc.expect(rp(0x30, 1, 3, 0, 0), Outcome::Val(at(0x30)));
        sc.anon(0x33, 1, RW);
        sc.expect_window("faulted VMA grown", 0x30, 0x40, &[(0x30, 0x34, "rw-p")]);
    });
}

#[test]
fn grow_file_mapping() {
    case("grow_file_mapping", |sc| {
        let (_, fd) = sc.file("f", 16);
        sc.map(0, 2, R, MAP_PRIVATE, fd, 4);
        sc.map(4, 2, R, MAP_PRIVATE, fd, 8);
        sc.expect(rp(0, 2, 4, 0, 0), Outcome::Val(at(0)));
        sc.expect_arena("file: grown and merged (pgoff contiguous)", &[(0, 6, "r--p", 4)]);
        sc.map(0x10, 2, RW, MAP_SHARED, fd, 0);
        sc.map(0x13, 1, RW, MAP_SHARED, fd, 5);
        sc.expect(rp(0x10, 2, 3, 0, 0), Outcome::Val(at(0x10)));
        sc.expect_arena(
            "shared file: not merged (pgoff not contiguous)",
            &[(0, 6, "r--p", 4), (0x10, 0x13, "rw-s", 0), (0x13, 0x14, "rw-s", 5)],
        );
    });
}

#[test]
fn maymove_placement() {
    case("maymove_placement", |sc| {
        // Private anonymous memory moved to a 2 MiB multiple is THP aligned.
        sc.anon(0, 4, RW);
        let a = sc.ok(rp(0, 4, 512, MAYMOVE, 0));
        sc.check("THP aligned", a % PMD_SIZE == 0);
        let b = sc.ok(mremap(a, 2 << 20, 1 << 20, MAYMOVE, 0));
        sc.check("shrink stays", a == b);
        let c = sc.ok(mremap(a, 1 << 20, (1 << 20) + P, MAYMOVE, 0));
        sc.check("grown somewhere", c != 0);
        // Shared anonymous memory and files place like their mmap.
        sc.shared_anon(0x10, 2, RW);
        sc.ok(rp(0x10, 2, 512, MAYMOVE, 0));
        let (_, fd) = sc.file("big", 2048);
        sc.map(0x20, 4, R, MAP_PRIVATE, fd, 3);
        let d = sc.ok(rp(0x20, 4, 1024, MAYMOVE, 0));
        sc.check(
            "file offset and address agree modulo 2 MiB",
            (d - 3 * P).is_multiple_of(PMD_SIZE),
        );
        // DONTUNMAP alone takes new_addr as a hint.
        sc.anon(0x30, 2, RW);
        sc.expect(rp(0x30, 2, 2, DONTUNMAP, 0x400), Outcome::Val(at(0x400)));
        sc.anon(0x90, 2, RW);
        let e = sc.ok(rp(0x90, 2, 2, DONTUNMAP, 0x400));
        sc.check("an occupied hint is not taken", e != at(0x400));
    });
}

#[test]
fn fixed_moves_and_merges() {
    case("fixed_moves_and_merges", |sc| {
        // The target is unmapped first; the middle of a VMA moves out.
        sc.anon(0, 6, RW);
        sc.anon(0x20, 4, R);
        sc.expect(rp(2, 2, 2, FIXED, 0x21), Outcome::Val(at(0x21)));
        sc.expect_vmas(
            "split source, hole in the target",
            &[
                (0, 2, "rw-p"),
                (4, 6, "rw-p"),
                (0x20, 0x21, "r--p"),
                (0x21, 0x23, "rw-p"),
                (0x23, 0x24, "r--p"),
            ],
        );
        // Moving back next to its old neighbours: an unfaulted VMA takes
        // the pgoff of its new address and merges on both sides.
        sc.expect(rp(0x21, 2, 2, FIXED, 2), Outcome::Val(at(2)));
        sc.expect_window("merged back", 0, 0x10, &[(0, 6, "rw-p")]);
        // A faulted one keeps its pgoff and stays apart.
        sc.anon(0x40, 2, RW);
        sc.write(0x40);
        sc.anon(0x48, 2, RW);
        sc.expect(rp(0x40, 2, 2, FIXED, 0x46), Outcome::Val(at(0x46)));
        sc.expect_window(
            "faulted: no merge",
            0x40,
            0x50,
            &[(0x46, 0x48, "rw-p"), (0x48, 0x4a, "rw-p")],
        );
        // Moving to a VMA's end merges with it when it shares the anon_vma.
        sc.anon(0x50, 4, RW);
        sc.write(0x50);
        sc.expect(rp(0x52, 2, 2, FIXED, 0x60), Outcome::Val(at(0x60)));
        sc.expect(rp(0x60, 2, 2, FIXED, 0x52), Outcome::Val(at(0x52)));
        sc.expect_window("same anon_vma, same pgoff: merged", 0x50, 0x70, &[(0x50, 0x54, "rw-p")]);
        // Growing while moving.
        sc.anon(0x70, 2, RW);
        sc.expect(rp(0x70, 2, 5, FIXED, 0x80), Outcome::Val(at(0x80)));
        sc.expect_window("grown at the target", 0x70, 0x90, &[(0x80, 0x85, "rw-p")]);
    });
}

#[test]
fn multi_vma_moves() {
    case("multi_vma_moves", |sc| {
        sc.anon(0, 2, RW);
        sc.anon(3, 2, R);
        sc.anon(6, 1, RW);
        // A fixed, same-size move may span VMAs; the gaps are kept.
        sc.expect(rp(1, 6, 6, FIXED, 0x21), Outcome::Val(at(0x21)));
        sc.expect_vmas(
            "moved with the gaps",
            &[
                (0, 1, "rw-p"),
                (0x21, 0x22, "rw-p"),
                (0x23, 0x25, "r--p"),
                (0x26, 0x27, "rw-p"),
            ],
        );
        // A range that starts in a gap is refused; so is one with no VMA.
        sc.err(rp(0x22, 4, 4, FIXED, 0x40), Errno::EFAULT);
        sc.err(rp(0x10, 4, 4, FIXED, 0x40), Errno::EFAULT);
        // Growth across VMAs is refused.
        sc.err(rp(0x21, 4, 5, FIXED, 0x40), Errno::EFAULT);
        // Errors on a later VMA leave the earlier ones moved.
        sc.anon(0x60, 2, RW);
        sc.shared_anon(0x62, 2, RW);
        sc.anon(0x64, 2, RW);
        sc.expect(rp(0x60, 6, 6, FIXED | MREMAP_DONTUNMAP, 0x70), Outcome::Val(at(0x70)));
        sc.expect_window(
            "DONTUNMAP over three VMAs",
            0x60,
            0x80,
            &[
                (0x60, 0x62, "rw-p"),
                (0x62, 0x64, "rw-s"),
                (0x64, 0x66, "rw-p"),
                (0x70, 0x72, "rw-p"),
                (0x72, 0x74, "rw-s"),
                (0x74, 0x76, "rw-p"),
            ],
        );
    });
}

/// `vma_multi_allowed`: a private `/dev/zero` VMA (whose file places its
/// own mappings) moves only alone; a regular file's VMA moves with others.
#[test]
fn multi_vma_moves_and_file_placement() {
    case("multi_vma_moves_and_file_placement", |sc| {
        let zero = sc.open("/dev/zero", oflags::O_RDWR);
        let (_, fd) = sc.file("data", 16);
        // /dev/zero first, more VMAs after it: EFAULT, nothing moved.
        sc.map(0, 2, R, MAP_PRIVATE, zero, 0);
        sc.anon(2, 2, RW);
        sc.err(rp(0, 4, 4, FIXED, 0x40), Errno::EFAULT);
        // After another VMA: EFAULT once the walk reaches it; the VMA
        // before it has moved.
        sc.anon(0x10, 2, RW);
        sc.map(0x12, 2, R, MAP_PRIVATE, zero, 0);
        sc.err(rp(0x10, 4, 4, FIXED, 0x50), Errno::EFAULT);
        sc.expect_window(
            "the first VMA moved",
            0x10,
            0x58,
            &[(0x12, 0x14, "r--p"), (0x50, 0x52, "rw-p")],
        );
        // Alone, it moves.
        sc.expect(rp(0, 2, 2, FIXED, 0x60), Outcome::Val(at(0x60)));
        // A file's VMAs (not contiguous in the file, so two) move together.
        sc.map(0x20, 2, R, MAP_PRIVATE, fd, 0);
        sc.map(0x22, 2, R, MAP_PRIVATE, fd, 8);
        sc.expect(rp(0x20, 4, 4, FIXED, 0x70), Outcome::Val(at(0x70)));
    });
}

#[test]
fn dontunmap_rules() {
    case("dontunmap_rules", |sc| {
        // Private anonymous: the source stays, empty; an accounted source
        // and the copy are both charged.
        sc.anon(0, 4, RW);
        sc.write(0);
        sc.expect(rp(0, 4, 4, FIXED | MREMAP_DONTUNMAP, 0x10), Outcome::Val(at(0x10)));
        sc.expect_vmas("source kept", &[(0, 4, "rw-p"), (0x10, 0x14, "rw-p")]);
        // Part of a VMA.
        sc.expect(rp(0x11, 1, 1, FIXED | MREMAP_DONTUNMAP, 0x20), Outcome::Val(at(0x20)));
        // Shared and file mappings.
        sc.shared_anon(0x30, 2, RW);
        sc.ok(rp(0x30, 2, 2, FIXED | MREMAP_DONTUNMAP, 0x38));
        let (_, fd) = sc.file("f", 8);
        sc.map(0x40, 2, R, MAP_PRIVATE, fd, 0);
        sc.ok(rp(0x40, 2, 2, FIXED | MREMAP_DONTUNMAP, 0x48));
        // Special mappings refuse it.
        for name in ["[vvar]", "[vdso]"] {
            let l = sc.host_maps().into_iter().find(|l| l.name == name);
            let l = l.unwrap_or_else(|| sc.fail(&format!("no {name}")));
            sc.err(mremap(l.start, P, P, DONTUNMAP, 0), Errno::EINVAL);
        }
        // Locked source: the copy is locked, the source no longer.
        sc.anon_with(0x50, 2, RW, MAP_LOCKED);
        sc.ok(rp(0x50, 2, 2, FIXED | MREMAP_DONTUNMAP, 0x58));
    });
}

#[test]
fn dontunmap_copy_merging_with_its_source() {
    case("dontunmap_copy_merging_with_its_source", |sc| {
        // The target cuts the source's own VMA, and the copy merges back
        // with the source: one VMA, and the walk over the source range
        // must not visit it again (found by the random sessions).
        sc.anon(0, 4, PROT_NONE);
        sc.expect(rp(1, 2, 2, FIXED | MREMAP_DONTUNMAP, 3), Outcome::Val(at(3)));
        sc.expect_vmas("copy merged with the source", &[(0, 5, "---p")]);
    });
}

#[test]
fn old_len_zero_duplicates_shared() {
    case("old_len_zero_duplicates_shared", |sc| {
        sc.shared_anon(0, 4, RW);
        let a = sc.ok(rp(0, 0, 4, MAYMOVE, 0));
        sc.check("a second mapping", a != at(0));
        sc.expect(rp(0, 0, 2, FIXED, 0x10), Outcome::Val(at(0x10)));
        sc.err(rp(0, 0, 2, 0, 0), Errno::ENOMEM);
        let (_, fd) = sc.file("f", 4);
        sc.map(0x20, 4, RW, MAP_SHARED, fd, 0);
        sc.expect(rp(0x21, 0, 2, FIXED, 0x30), Outcome::Val(at(0x30)));
        sc.expect_arena(
            "duplicates of shared mappings",
            &[
                (0, 4, "rw-s", 0),
                (0x10, 0x12, "rw-s", 0),
                (0x20, 0x24, "rw-s", 0),
                (0x30, 0x32, "rw-s", 1),
            ],
        );
    });
}

#[test]
fn locked_accounting_and_limits() {
    case("locked_accounting_and_limits", |sc| {
        sc.anon_with(0, 2, RW, MAP_LOCKED);
        sc.expect(rp(0, 2, 4, 0, 0), Outcome::Val(at(0)));
        sc.ok(rp(0, 4, 6, FIXED, 0x10));
        sc.anon_with(0x20, 2, R, MAP_NORESERVE);
        sc.ok(rp(0x20, 2, 3, 0, 0));
        sc.mprotect(0x20, 3, RW);
        sc.ok(rp(0x20, 3, 2, FIXED, 0x30));
    });
    // Without CAP_IPC_LOCK, RLIMIT_MEMLOCK bounds locked growth (EAGAIN).
    let opts = HostOptions {
        drop_capabilities: true,
        ..HostOptions::default()
    };
    let n = run_with("mlock_limit", &opts, |sc| {
        sc.anon_with(0, 1, RW, MAP_LOCKED);
        sc.err(mremap(at(0), P, 64 << 20, MAYMOVE, 0), Errno::EAGAIN);
        sc.ok(rp(0, 1, 2, MAYMOVE, 0));
    });
    println!("mremap mlock_limit: {n} host-compared calls");
}

#[test]
fn special_heap_stack_hugetlb() {
    case("special_heap_stack_hugetlb", |sc| {
        // The vDSO moves (same size), but does not grow.
        let l = sc.host_maps().into_iter().find(|l| l.name == "[vdso]");
        let l = l.unwrap_or_else(|| sc.fail("no [vdso]"));
        let len = l.end - l.start;
        sc.err(mremap(l.start, len, len + P, MAYMOVE, 0), Errno::EFAULT);
        sc.err(mremap(l.start, P, P, FIXED, at(0x100)), Errno::EINVAL);
        sc.expect(mremap(l.start, len, len, FIXED, at(0x100)), Outcome::Val(at(0x100)));
        // The heap grows in place and stays [heap]; moved, it is not.
        let brk = sc.ok(Call::Brk { addr: 0 });
        sc.ok(Call::Brk { addr: brk + 2 * P });
        sc.expect(mremap(brk, 2 * P, 4 * P, 0, 0), Outcome::Val(brk));
        sc.ok(mremap(brk, 4 * P, 4 * P, FIXED, at(0x110)));
        // A grows-down mapping grows and moves like any other.
        sc.anon_with(0x120, 2, RW, MAP_GROWSDOWN);
        sc.expect(rp(0x120, 2, 3, 0, 0), Outcome::Val(at(0x120)));
        sc.ok(rp(0x120, 3, 3, FIXED, 0x130));
        // hugetlb: huge-page alignment, no growth.
        let huge = Call::Mmap {
            addr: at(0x200),
            len: 2 * PMD_SIZE,
            prot: RW,
            flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_NORESERVE | MAP_FIXED,
            fd: -1,
            off: 0,
        };
        if sc.step(huge) == Outcome::Val(at(0x200)) {
            sc.err(mremap(at(0x200) + P, P, P, MAYMOVE, 0), Errno::EINVAL);
            sc.err(mremap(at(0x200), PMD_SIZE, 2 * PMD_SIZE, MAYMOVE, 0), Errno::EINVAL);
            sc.expect(mremap(at(0x200), 2 * PMD_SIZE, P, 0, 0), Outcome::Val(at(0x200)));
            sc.ok(mremap(at(0x200), PMD_SIZE, PMD_SIZE, FIXED, at(0x800)));
        }
    });
}

#[test]
fn guard_markers_move() {
    case("guard_markers_move", |sc| {
        sc.anon(0, 4, RW);
        sc.madvise(1, 1, madv::GUARD_INSTALL);
        sc.expect(rp(0, 4, 4, FIXED, 0x10), Outcome::Val(at(0x10)));
        sc.expect(
            Call::Fault {
                addr: at(0x11),
                access: Access::Read,
            },
            SEGV,
        );
        sc.read(0x10);
        sc.read(0x12);
        // Growth keeps them; DONTUNMAP takes them to the copy.
        sc.expect(rp(0x10, 4, 6, 0, 0), Outcome::Val(at(0x10)));
        sc.ok(rp(0x10, 6, 6, FIXED | MREMAP_DONTUNMAP, 0x20));
        sc.read(0x11);
        sc.expect(
            Call::Fault {
                addr: at(0x21),
                access: Access::Write,
            },
            SEGV,
        );
        // Unmapping drops them.
        sc.munmap(0x20, 6);
        sc.anon(0x20, 6, RW);
        sc.write(0x21);
    });
}

/// One call on both sides without reading maps (the address space is
/// large here); the outcomes must agree.
fn quick(sc: &mut Sc, call: Call) -> Outcome {
    let (h, m) = sc.twin.step(&call).expect("host helper");
    assert_eq!(h, m, "{}", mm_ops::strace::format_call(&call));
    sc.calls += 1;
    h
}

#[test]
fn map_count_limit() {
    case("map_count_limit", |sc| {
        let max = u64::from(sc.twin.model.mm().read().state().cfg.max_map_count);
        let count = |sc: &Sc| u64::from(sc.twin.model.mm().read().state().map_count);
        // Alternate protections page by page until map_count is close to
        // the limit, then step up to it one VMA at a time.
        let pages = 2 * max;
        sc.map(0x1000, pages, R, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        sc.anon(0, 4, RW);
        let mut i = 1;
        while count(sc) + 12 < max {
            quick(
                sc,
                Call::Mprotect {
                    addr: at(0x1000 + i),
                    len: P,
                    prot: RW,
                },
            );
            i += 2;
        }
        let mut seen = Vec::new();
        quick(
            sc,
            Call::Munmap {
                addr: at(0),
                len: 0x20 * P,
            },
        );
        for _ in 0..10 {
            let anon = |page: u64, pages: u64, prot: u64| Call::Mmap {
                addr: at(page),
                len: pages * P,
                prot,
                flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                fd: -1,
                off: 0,
            };
            seen.push((count(sc), quick(sc, anon(0, 4, RW))));
            quick(sc, anon(4, 1, R));
            seen.push((count(sc), quick(sc, rp(0, 4, 4, FIXED, 0x10))));
            quick(sc, rp(0x10, 4, 4, FIXED, 0));
            seen.push((count(sc), quick(sc, rp(0, 4, 8, MAYMOVE, 0))));
            quick(sc, anon(0, 4, RW));
            let advise = Call::Madvise {
                addr: at(1),
                len: P,
                advice: madv::DONTDUMP,
            };
            seen.push((count(sc), quick(sc, advise)));
            seen.push((count(sc), quick(sc, rp(0, 1, 1, FIXED, 0x12))));
            quick(
                sc,
                Call::Munmap {
                    addr: at(0),
                    len: 0x20 * P,
                },
            );
            quick(
                sc,
                Call::Mprotect {
                    addr: at(0x1000 + i),
                    len: P,
                    prot: RW,
                },
            );
            i += 2;
        }
        println!("map_count, outcome: {seen:?}");
        sc.check(
            "ENOMEM near the limit",
            seen.iter().any(|(_, o)| *o == Outcome::Err(Errno::ENOMEM)),
        );
        sc.check(
            "EAGAIN for madvise at the limit",
            seen.iter().any(|(_, o)| *o == Outcome::Err(Errno::EAGAIN)),
        );
        if let Some(d) = sc.twin.diff_maps().unwrap() {
            sc.fail(&format!("maps differ at the end:\n{d}"));
        }
    });
}
