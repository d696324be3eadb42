//! `madvise(2)` against the host kernel, rule by rule (`mm/madvise.c`,
//! Linux 6.18): every call runs on the host helper and on the model, and
//! the results, `/proc/PID/maps` and the `VmFlags` of `/proc/PID/smaps`
//! (where the advice that changes `vm_flags` shows) must be identical
//! after each one. What a case expects of the kernel is also checked
//! against the host's answer.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

#[allow(dead_code)]
#[path = "scenarios/harness.rs"]
mod harness;

use harness::{P, Sc, at, run, run_with};
use mm_host::HostOptions;
use mm_ops::call::{Access, Call, Outcome, Signal};
use mm_ops::uapi::madv::*;
use mm_ops::uapi::*;

const R: u64 = PROT_READ;
const RW: u64 = PROT_READ | PROT_WRITE;
const SEGV: Outcome = Outcome::Signal(Signal::Segv);
const BUS: Outcome = Outcome::Signal(Signal::Bus);

/// `madvise(at(page), pages, advice)`.
fn adv(page: u64, pages: u64, advice: u64) -> Call {
    Call::Madvise {
        addr: at(page),
        len: pages * P,
        advice,
    }
}

fn fault(page: u64, access: Access) -> Call {
    Call::Fault {
        addr: at(page) + 16,
        access,
    }
}

/// Runs `f` and prints how many calls it compared.
fn case(name: &'static str, f: harness::Scenario) {
    let n = run(name, f);
    println!("madvise {name}: {n} host-compared calls");
}

/// The special mapping `name` of the helper: `(start, end)`.
fn special(sc: &mut Sc, name: &str) -> (u64, u64) {
    let l = sc.host_maps().into_iter().find(|l| l.name == name);
    let l = l.unwrap_or_else(|| sc.fail(&format!("no {name}")));
    (l.start, l.end)
}

#[test]
fn argument_validation() {
    case("argument_validation", |sc| {
        sc.anon(0, 4, RW);
        // Unknown advice, including values this kernel was built without
        // (MADV_HWPOISON and MADV_SOFT_OFFLINE are tested below).
        for advice in [5, 6, 7, 26, 99, 104, 0x7fff_ffff, 0xffff_ffff] {
            sc.err(adv(0, 1, advice), Errno::EINVAL);
        }
        // advice is a C int: the upper half of the register is ignored.
        sc.ok(adv(0, 1, (1 << 32) | DONTDUMP));
        sc.ok(adv(0, 1, (7 << 32) | DODUMP));
        // Unaligned start, lengths that round to zero or wrap.
        sc.err(
            Call::Madvise {
                addr: at(0) + 1,
                len: P,
                advice: DONTNEED,
            },
            Errno::EINVAL,
        );
        for len in [u64::MAX, u64::MAX - 4000, u64::MAX - 2 * P + 1] {
            sc.err(
                Call::Madvise {
                    addr: at(0),
                    len,
                    advice: WILLNEED,
                },
                Errno::EINVAL,
            );
        }
        // A zero length succeeds even where nothing is mapped; unaligned
        // lengths round up.
        sc.ok(adv(0x100, 0, DONTNEED));
        sc.ok(Call::Madvise {
            addr: at(0),
            len: 1,
            advice: DONTDUMP,
        });
        sc.ok(Call::Madvise {
            addr: at(0),
            len: P + 1,
            advice: DODUMP,
        });
        // Nothing mapped at all, and beyond TASK_SIZE.
        sc.err(adv(0x100, 2, WILLNEED), Errno::ENOMEM);
        sc.err(
            Call::Madvise {
                addr: 1 << 47,
                len: P,
                advice: DONTNEED,
            },
            Errno::ENOMEM,
        );
        sc.expect_vmas("no change", &[(0, 4, "rw-p")]);
    });
    // MADV_HWPOISON and MADV_SOFT_OFFLINE, only where the host kernel has
    // no CONFIG_MEMORY_FAILURE (they touch real pages otherwise), and
    // from an unprivileged helper anyway.
    let config = std::process::Command::new("sh")
        .args([
            "-c",
            "zcat /proc/config.gz 2>/dev/null | grep -c '^CONFIG_MEMORY_FAILURE=y'",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if config == "0" {
        let opts = HostOptions {
            drop_capabilities: true,
            allow_hwpoison: true,
            ..HostOptions::default()
        };
        let n = run_with("memory_failure_advice", &opts, |sc| {
            sc.anon(0, 1, RW);
            sc.write(0);
            sc.err(adv(0, 1, HWPOISON), Errno::EINVAL);
            sc.err(adv(0, 1, SOFT_OFFLINE), Errno::EINVAL);
        });
        println!("madvise memory_failure_advice: {n} host-compared calls");
    }
}

#[test]
fn flag_advice_split_and_merge() {
    case("flag_advice_split_and_merge", |sc| {
        let pairs = [
            (SEQUENTIAL, NORMAL),
            (RANDOM, NORMAL),
            (DONTFORK, DOFORK),
            (DONTDUMP, DODUMP),
            (WIPEONFORK, KEEPONFORK),
            (MERGEABLE, UNMERGEABLE),
            (HUGEPAGE, NOHUGEPAGE),
        ];
        for (i, (set, clear)) in pairs.into_iter().enumerate() {
            let b = 0x10 * i as u64;
            sc.anon(b, 6, RW);
            sc.madvise(b + 2, 2, set);
            sc.expect_window(
                "set in the middle: split in three",
                b,
                b + 0x10,
                &[(b, b + 2, "rw-p"), (b + 2, b + 4, "rw-p"), (b + 4, b + 6, "rw-p")],
            );
            sc.madvise(b + 2, 2, set);
            sc.madvise(b, 2, set);
            sc.madvise(b + 2, 4, clear);
        }
        // SEQUENTIAL and RANDOM replace each other.
        sc.anon(0x80, 2, RW);
        sc.madvise(0x80, 2, SEQUENTIAL);
        sc.madvise(0x80, 2, RANDOM);
        sc.madvise(0x80, 1, NORMAL);
    });
}

#[test]
fn flag_advice_refusals() {
    case("flag_advice_refusals", |sc| {
        let (_, fd) = sc.file("f", 8);
        sc.map(0, 2, R, MAP_PRIVATE, fd, 0);
        sc.shared_anon(4, 2, RW);
        sc.map(8, 2, RW, MAP_SHARED, fd, 2);
        sc.anon(12, 2, RW);
        // WIPEONFORK: private anonymous memory only.
        sc.err(adv(0, 2, WIPEONFORK), Errno::EINVAL);
        sc.err(adv(4, 2, WIPEONFORK), Errno::EINVAL);
        sc.ok(adv(12, 2, WIPEONFORK));
        // KSM ignores shared mappings (no flag, no split) but takes files.
        sc.ok(adv(4, 1, MERGEABLE));
        sc.ok(adv(8, 1, MERGEABLE));
        sc.ok(adv(0, 1, MERGEABLE));
        sc.ok(adv(0, 2, UNMERGEABLE));
        // Droppable memory: no KEEPONFORK, no DODUMP.
        sc.map(0x20, 2, RW, MAP_DROPPABLE | MAP_ANONYMOUS, -1, 0);
        sc.err(adv(0x20, 2, KEEPONFORK), Errno::EINVAL);
        sc.err(adv(0x20, 2, DODUMP), Errno::EINVAL);
        sc.ok(adv(0x20, 2, MERGEABLE));
        // Special mappings: [vvar] is VM_IO|VM_PFNMAP.
        let (vs, ve) = special(sc, "[vvar]");
        let on = |start: u64, len: u64, advice: u64| Call::Madvise {
            addr: start,
            len,
            advice,
        };
        sc.err(on(vs, ve - vs, DOFORK), Errno::EINVAL);
        sc.err(on(vs, ve - vs, DODUMP), Errno::EINVAL);
        sc.ok(on(vs, ve - vs, DONTFORK));
        sc.ok(on(vs, ve - vs, MERGEABLE));
        // A special mapping cannot be split.
        let (ds, de) = special(sc, "[vdso]");
        sc.err(on(ds, P, DONTDUMP), Errno::EINVAL);
        sc.ok(on(ds, de - ds, DONTDUMP));
        sc.err(on(ds, de - ds, DODUMP), Errno::EINVAL);
        // An error stops the walk: the VMAs before it changed, those after not.
        sc.anon(0x30, 2, RW);
        sc.map(0x32, 2, R, MAP_PRIVATE, fd, 0);
        sc.anon(0x34, 2, RW);
        sc.err(adv(0x30, 6, WIPEONFORK), Errno::EINVAL);
    });
}

#[test]
fn holes_give_enomem_after_applying() {
    case("holes_give_enomem_after_applying", |sc| {
        sc.anon(2, 2, RW);
        sc.anon(6, 2, RW);
        // A hole at the start, in the middle and at the end.
        sc.err(adv(0, 10, DONTDUMP), Errno::ENOMEM);
        sc.err(adv(0, 2, DONTDUMP), Errno::ENOMEM);
        sc.err(adv(2, 8, DODUMP), Errno::ENOMEM);
        sc.err(adv(0, 10, HUGEPAGE), Errno::ENOMEM);
        sc.err(adv(0, 10, DONTNEED), Errno::ENOMEM);
        sc.err(adv(1, 4, WILLNEED), Errno::ENOMEM);
        sc.anon(4, 2, RW);
        sc.anon(0, 2, RW);
        sc.expect_window(
            "advised on both sides of the holes, not in them",
            0,
            0x10,
            &[(0, 2, "rw-p"), (2, 4, "rw-p"), (4, 6, "rw-p"), (6, 8, "rw-p")],
        );
    });
}

#[test]
fn page_advice_checks() {
    case("page_advice_checks", |sc| {
        sc.anon_with(0, 2, RW, MAP_LOCKED);
        sc.anon(4, 2, RW);
        let (_, fd) = sc.file("f", 8);
        sc.map(8, 2, R, MAP_PRIVATE, fd, 0);
        sc.shared_anon(12, 2, RW);
        sc.write(4);
        // DONTNEED and FREE refuse locked memory; DONTNEED_LOCKED does not.
        sc.err(adv(0, 2, DONTNEED), Errno::EINVAL);
        sc.err(adv(0, 2, FREE), Errno::EINVAL);
        sc.ok(adv(0, 2, DONTNEED_LOCKED));
        sc.ok(adv(4, 2, DONTNEED));
        sc.ok(adv(4, 2, FREE));
        // FREE: anonymous memory only (shared anonymous memory has a file).
        sc.ok(adv(8, 2, DONTNEED));
        sc.err(adv(8, 2, FREE), Errno::EINVAL);
        sc.err(adv(12, 2, FREE), Errno::EINVAL);
        // COLD and PAGEOUT refuse locked memory.
        sc.err(adv(0, 2, COLD), Errno::EINVAL);
        sc.err(adv(0, 2, PAGEOUT), Errno::EINVAL);
        for advice in [COLD, PAGEOUT, WILLNEED] {
            sc.ok(adv(4, 2, advice));
            sc.ok(adv(8, 2, advice));
            sc.ok(adv(12, 2, advice));
        }
        // [vvar] (VM_PFNMAP): no DONTNEED, COLD or PAGEOUT.
        let (vs, _) = special(sc, "[vvar]");
        for advice in [DONTNEED, DONTNEED_LOCKED, COLD, PAGEOUT] {
            sc.err(
                Call::Madvise {
                    addr: vs,
                    len: P,
                    advice,
                },
                Errno::EINVAL,
            );
        }
        // No flag was set, nothing was split.
        sc.expect_vmas(
            "unchanged",
            &[(0, 2, "rw-p"), (4, 6, "rw-p"), (8, 10, "r--p"), (12, 14, "rw-s")],
        );
        // A locked VMA fails after earlier VMAs were done.
        sc.err(adv(4, 6, DONTNEED), Errno::ENOMEM);
        sc.err(adv(0, 6, DONTNEED), Errno::EINVAL);
    });
}

#[test]
fn remove_rules() {
    case("remove_rules", |sc| {
        let (path, fd) = sc.file("f", 8);
        let ro = sc.open(&path, oflags::O_RDONLY);
        sc.anon(0, 2, RW);
        sc.shared_anon(4, 2, RW);
        sc.map(8, 2, RW, MAP_PRIVATE, fd, 0);
        sc.map(12, 2, RW, MAP_SHARED, fd, 2);
        sc.map(16, 2, R, MAP_SHARED, ro, 0);
        let memfd = sc.ok(Call::MemfdCreate {
            name: "m".into(),
            flags: 0,
        }) as i64;
        sc.ok(Call::Ftruncate {
            fd: memfd,
            length: 4 * P,
        });
        sc.map(20, 2, RW, MAP_SHARED, memfd, 0);
        sc.err(adv(0, 2, REMOVE), Errno::EINVAL);
        sc.ok(adv(4, 2, REMOVE));
        sc.err(adv(8, 2, REMOVE), Errno::EACCES);
        sc.ok(adv(12, 2, REMOVE));
        sc.err(adv(16, 2, REMOVE), Errno::EACCES);
        sc.ok(adv(20, 2, REMOVE));
        sc.map(24, 2, RW, MAP_SHARED | MAP_LOCKED, memfd, 0);
        sc.err(adv(24, 2, REMOVE), Errno::EINVAL);
        // Pages read back after the hole: still there (size kept).
        sc.read(12);
        sc.read(20);
        // The hole must fit in the file system's largest file: ext4's
        // s_maxbytes is 2^44 - 4096 (EFBIG beyond); tmpfs/memfd take any
        // offset (found by the random sessions).
        let last = ((1u64 << 32) - 1) - 1; // the page below the limit
        sc.map(28, 2, RW, MAP_SHARED, fd, last);
        sc.ok(adv(28, 1, REMOVE));
        sc.err(adv(28, 2, REMOVE), Errno::EFBIG);
        sc.map(32, 1, RW, MAP_SHARED, fd, 1 << 50);
        sc.err(adv(32, 1, REMOVE), Errno::EFBIG);
        sc.map(36, 1, RW, MAP_SHARED, memfd, 1 << 50);
        sc.ok(adv(36, 1, REMOVE));
    });
}

#[test]
fn populate() {
    case("populate", |sc| {
        // A write populate gives each private VMA its own anon_vma: once
        // their flags agree again, they no longer merge.
        sc.anon(0, 2, RW);
        sc.anon(2, 2, RW);
        sc.madvise(2, 2, DONTDUMP);
        sc.ok(adv(0, 2, POPULATE_WRITE));
        sc.ok(adv(2, 2, POPULATE_WRITE));
        sc.madvise(2, 2, DODUMP);
        sc.expect_vmas("two anon_vmas: still two VMAs", &[(0, 2, "rw-p"), (2, 4, "rw-p")]);
        // A read populate does not: these two merge again.
        sc.anon(0x24, 2, RW);
        sc.anon(0x26, 2, R);
        sc.ok(adv(0x26, 2, POPULATE_READ));
        sc.err(adv(0x26, 2, POPULATE_WRITE), Errno::EINVAL);
        sc.mprotect(0x26, 2, RW);
        sc.expect_window("merged", 0x24, 0x28, &[(0x24, 0x28, "rw-p")]);
        // PROT_NONE and write-only refuse a read populate.
        sc.anon(8, 1, PROT_NONE);
        sc.anon(10, 1, PROT_WRITE);
        sc.err(adv(8, 1, POPULATE_READ), Errno::EINVAL);
        sc.err(adv(10, 1, POPULATE_READ), Errno::EINVAL);
        sc.ok(adv(10, 1, POPULATE_WRITE));
        // A hole stops it with ENOMEM at once.
        sc.err(adv(6, 4, POPULATE_READ), Errno::ENOMEM);
        sc.err(adv(3, 4, POPULATE_READ), Errno::ENOMEM);
        // Beyond the end of a file: EFAULT (SIGBUS), after the pages before.
        let (_, fd) = sc.file("f", 2);
        sc.map(0x10, 4, RW, MAP_PRIVATE, fd, 0);
        sc.err(adv(0x10, 4, POPULATE_READ), Errno::EFAULT);
        sc.err(adv(0x10, 4, POPULATE_WRITE), Errno::EFAULT);
        sc.expect(fault(0x13, Access::Read), BUS);
        sc.map(0x18, 2, RW, MAP_PRIVATE, fd, 4);
        sc.err(adv(0x18, 2, POPULATE_WRITE), Errno::EFAULT);
        sc.map(0x1a, 2, RW, MAP_PRIVATE, fd, 6);
        // [vvar]: VM_IO|VM_PFNMAP.
        let (vs, _) = special(sc, "[vvar]");
        sc.err(
            Call::Madvise {
                addr: vs,
                len: P,
                advice: POPULATE_READ,
            },
            Errno::EINVAL,
        );
        let (ds, _) = special(sc, "[vdso]");
        sc.ok(Call::Madvise {
            addr: ds,
            len: P,
            advice: POPULATE_READ,
        });
        sc.err(
            Call::Madvise {
                addr: ds,
                len: P,
                advice: POPULATE_WRITE,
            },
            Errno::EINVAL,
        );
    });
}

#[test]
fn guard_regions() {
    case("guard_regions", |sc| {
        sc.anon(0, 6, RW);
        sc.ok(adv(1, 2, GUARD_INSTALL));
        sc.expect_vmas("no split", &[(0, 6, "rw-p")]);
        for (page, want) in [(0, Outcome::Val(0)), (1, SEGV), (2, SEGV), (3, Outcome::Val(0))] {
            sc.expect(fault(page, Access::Read), want);
        }
        sc.expect(fault(1, Access::Write), SEGV);
        sc.expect(fault(2, Access::Exec), SEGV);
        // Kept by DONTNEED, FREE and mprotect; POPULATE stops on them.
        sc.ok(adv(0, 6, DONTNEED));
        sc.ok(adv(0, 6, FREE));
        sc.mprotect(0, 6, R);
        sc.mprotect(0, 6, RW);
        sc.expect(fault(2, Access::Read), SEGV);
        sc.err(adv(0, 6, POPULATE_READ), Errno::EFAULT);
        sc.err(adv(1, 2, POPULATE_WRITE), Errno::EFAULT);
        // Removed where asked.
        sc.ok(adv(2, 1, GUARD_REMOVE));
        sc.expect(fault(2, Access::Write), Outcome::Val(0));
        sc.expect(fault(1, Access::Read), SEGV);
        // The flag is sticky: a plain neighbour merges into it.
        sc.anon(6, 2, RW);
        sc.expect_vmas("merged with the guarded VMA", &[(0, 8, "rw-p")]);
        // Refused on locked memory, hugetlb and special mappings; removal
        // on locked memory is fine.
        sc.anon_with(0x10, 2, RW, MAP_LOCKED);
        sc.err(adv(0x10, 2, GUARD_INSTALL), Errno::EINVAL);
        sc.ok(adv(0x10, 2, GUARD_REMOVE));
        let (ds, _) = special(sc, "[vdso]");
        sc.err(
            Call::Madvise {
                addr: ds,
                len: P,
                advice: GUARD_INSTALL,
            },
            Errno::EINVAL,
        );
        // File mappings take guards too (no anon_vma).
        let (_, fd) = sc.file("f", 4);
        sc.map(0x20, 4, R, MAP_SHARED, fd, 0);
        sc.ok(adv(0x21, 1, GUARD_INSTALL));
        sc.expect(fault(0x21, Access::Read), SEGV);
        sc.expect(fault(0x22, Access::Read), Outcome::Val(0));
        // Unmapping drops them.
        sc.munmap(0, 8);
        sc.anon(0, 8, RW);
        sc.expect(fault(1, Access::Read), Outcome::Val(0));
    });
}

#[test]
fn collapse() {
    case("collapse", |sc| {
        // 4 MiB of private anonymous memory, 2 MiB aligned.
        sc.anon(0x200, 1024, RW);
        // No anon_vma yet.
        sc.err(adv(0x200, 1, COLLAPSE), Errno::EINVAL);
        sc.write(0x200);
        sc.ok(adv(0x200, 1, COLLAPSE));
        // Inside one 2 MiB block without its start: the kernel's count of
        // blocks wraps.
        sc.err(adv(0x201, 2, COLLAPSE), Errno::EINVAL);
        // Across a block boundary, less than a block: nothing to do.
        sc.ok(adv(0x3ff, 2, COLLAPSE));
        // A VMA without a whole aligned block, NOHUGEPAGE, a regular file.
        sc.anon(0, 4, RW);
        sc.write(0);
        sc.err(adv(0, 1, COLLAPSE), Errno::EINVAL);
        sc.madvise(0x400, 512, NOHUGEPAGE);
        sc.err(adv(0x400, 1, COLLAPSE), Errno::EINVAL);
        let (_, fd) = sc.file("f", 1024);
        sc.map(0x800, 1024, R, MAP_PRIVATE, fd, 0);
        sc.err(adv(0x800, 1, COLLAPSE), Errno::EINVAL);
        // shmem is eligible with an aligned offset.
        sc.shared_anon(0xc00, 1024, RW);
        sc.ok(adv(0xc00, 1, COLLAPSE));
        let memfd = sc.ok(Call::MemfdCreate {
            name: "m".into(),
            flags: 0,
        }) as i64;
        sc.ok(Call::Ftruncate {
            fd: memfd,
            length: 8 << 20,
        });
        sc.map(0x1000, 1024, RW, MAP_SHARED, memfd, 1);
        sc.err(adv(0x1000, 1, COLLAPSE), Errno::EINVAL);
        sc.map(0x1400, 1024, RW, MAP_PRIVATE, memfd, 0);
        sc.ok(adv(0x1400, 1, COLLAPSE));
    });
}

/// A private `/dev/zero` mapping is anonymous memory (`vma_is_anonymous`:
/// `mmap_zero` leaves it without `vm_ops`, with `/dev/zero` as its file):
/// `MADV_FREE` takes it, `mlock` populates it (no end of file), and so
/// does a `MAP_SHARED` mapping of a read-only descriptor (no `VM_SHARED`,
/// so no shmem object). A shared writable one is shmem: `MADV_FREE` is
/// `EINVAL`.
#[test]
fn dev_zero_private_is_anonymous() {
    case("dev_zero_private_is_anonymous", |sc| {
        let rw = sc.open("/dev/zero", oflags::O_RDWR);
        let ro = sc.open("/dev/zero", oflags::O_RDONLY);
        sc.map(0, 4, RW, MAP_PRIVATE, rw, 7);
        sc.ok(adv(1, 2, FREE));
        sc.ok(Call::Mlock {
            addr: at(0),
            len: 3 * P,
        });
        sc.map(8, 4, R, MAP_SHARED, ro, 0);
        sc.ok(adv(8, 4, FREE));
        sc.map(16, 4, RW, MAP_SHARED, rw, 0);
        sc.err(adv(16, 4, FREE), Errno::EINVAL);
        // MADV_COLLAPSE treats it as anonymous memory too: eligible once
        // written (an anon_vma), whatever its file offset (found by the
        // random sessions, seed 30463: host 0, model EINVAL).
        sc.map(0x400, 1024, RW, MAP_PRIVATE, rw, 3);
        sc.err(adv(0x400, 1, COLLAPSE), Errno::EINVAL);
        sc.write(0x401);
        sc.ok(adv(0x400, 1, COLLAPSE));
        sc.ok(adv(0x5ff, 2, COLLAPSE));
    });
}
