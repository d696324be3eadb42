//! `mseal(2)` against the host kernel (`mm/mseal.c`, Linux 6.18), and what
//! a seal then refuses in the other calls: every call runs on the host
//! helper and on the model; the results, the maps and the smaps `VmFlags`
//! (`sl`) must be identical after each one. What a case expects of the
//! kernel (a split, an error, which VMAs are sealed) is also checked
//! against the host's answer.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

#[allow(dead_code)]
#[path = "scenarios/harness.rs"]
mod harness;

use harness::{ARENA, P, Sc, at, mmap, run};
use mm_host::twin::parse_smaps_flags;
use mm_ops::call::{Access, Call, Outcome};
use mm_ops::task::Task;
use mm_ops::uapi::*;

const RW: u64 = PROT_READ | PROT_WRITE;
const OK: Outcome = Outcome::Val(0);

/// `mseal(addr, len, flags)` in bytes.
fn ms(addr: u64, len: u64, flags: u64) -> Call {
    Call::Mseal { addr, len, flags }
}

/// `mseal` of arena pages.
fn seal(page: u64, pages: u64) -> Call {
    ms(at(page), pages * P, 0)
}

/// The arena VMAs the host shows sealed (`sl` in `VmFlags`), in pages.
fn host_sealed(sc: &mut Sc) -> Vec<(u64, u64)> {
    let smaps = sc.twin.host.smaps().expect("smaps");
    parse_smaps_flags(&smaps)
        .into_iter()
        .filter(|(s, _, f)| *s >= ARENA && *s < ARENA + (1 << 30) && f.split(' ').any(|m| m == "sl"))
        .map(|(s, e, _)| ((s - ARENA) / P, (e - ARENA) / P))
        .collect()
}

/// The host's sealed arena VMAs must be `want`.
fn expect_sealed(sc: &mut Sc, what: &str, want: &[(u64, u64)]) {
    let got = host_sealed(sc);
    if got != want {
        sc.fail(&format!(
            "kernel expectation `{what}`: sealed {got:?}, expected {want:?}"
        ));
    }
}

fn ok(sc: &mut Sc, call: Call) {
    sc.expect(call, OK);
}

fn err(sc: &mut Sc, call: Call, e: Errno) {
    sc.expect(call, Outcome::Err(e));
}

/// Runs a scenario and prints how many calls it compared.
fn case(name: &'static str, f: harness::Scenario) {
    let n = run(name, f);
    println!("mseal {name}: {n} host-compared calls");
}

#[test]
fn arguments_and_holes() {
    case("arguments_and_holes", |sc| {
        sc.anon(0, 4, RW);
        sc.anon(6, 2, RW);
        // The flags are reserved; the start must be page aligned.
        err(sc, ms(at(0), P, 1), Errno::EINVAL);
        err(sc, ms(at(0), P, 1 << 32), Errno::EINVAL);
        err(sc, ms(at(0) + 1, P, 0), Errno::EINVAL);
        // A length that rounds up to zero, and a range that wraps.
        err(sc, ms(at(0), u64::MAX, 0), Errno::EINVAL);
        err(sc, ms(at(0), u64::MAX - 2 * P, 0), Errno::EINVAL);
        // An empty range is sealed at once, even in a hole.
        ok(sc, ms(at(4), 0, 0));
        // A hole before, inside or after the range: ENOMEM, nothing sealed.
        err(sc, seal(4, 3), Errno::ENOMEM);
        err(sc, seal(2, 6), Errno::ENOMEM);
        err(sc, seal(6, 3), Errno::ENOMEM);
        err(sc, seal(3, 1 << 20), Errno::ENOMEM);
        expect_sealed(sc, "a failed mseal seals nothing", &[]);
        // An unaligned length covers its last page.
        ok(sc, ms(at(1), P + 1, 0));
        expect_sealed(sc, "pages 1-2 sealed", &[(1, 3)]);
        sc.expect_vmas(
            "split around the seal",
            &[(0, 1, "rw-p"), (1, 3, "rw-p"), (3, 4, "rw-p"), (6, 8, "rw-p")],
        );
    });
}

#[test]
fn splits_and_merges() {
    case("splits_and_merges", |sc| {
        sc.anon(0, 8, RW);
        ok(sc, seal(2, 2));
        // The neighbours on either side merge with the sealed VMA.
        ok(sc, seal(4, 1));
        ok(sc, seal(1, 1));
        expect_sealed(sc, "one sealed VMA", &[(1, 5)]);
        sc.expect_vmas("merged", &[(0, 1, "rw-p"), (1, 5, "rw-p"), (5, 8, "rw-p")]);
        // Sealing it again changes nothing; a range across sealed and
        // unsealed VMAs seals the rest, and what it touches merges.
        ok(sc, seal(1, 4));
        ok(sc, seal(0, 8));
        expect_sealed(sc, "all sealed", &[(0, 8)]);
        // VMAs that cannot merge (other protections) are sealed one by one.
        sc.anon(10, 2, PROT_READ);
        sc.anon(12, 2, RW);
        sc.anon(14, 2, PROT_READ);
        ok(sc, seal(11, 4));
        expect_sealed(sc, "three sealed parts", &[(0, 8), (11, 12), (12, 14), (14, 15)]);
        // A new mapping next to a sealed one with the same flags does not
        // merge (it is not sealed); sealing it does.
        sc.anon(8, 1, RW);
        expect_sealed(sc, "new mapping unsealed", &[(0, 8), (11, 12), (12, 14), (14, 15)]);
        ok(sc, seal(8, 1));
        expect_sealed(
            sc,
            "merged into the sealed VMA",
            &[(0, 9), (11, 12), (12, 14), (14, 15)],
        );
    });
}

#[test]
fn file_and_shared_mappings() {
    case("file_and_shared_mappings", |sc| {
        let (_, fd) = sc.file("f", 8);
        sc.map(0, 8, PROT_READ, MAP_PRIVATE, fd, 0);
        ok(sc, seal(3, 2));
        sc.expect_arena(
            "file offsets follow the split",
            &[(0, 3, "r--p", 0), (3, 5, "r--p", 3), (5, 8, "r--p", 5)],
        );
        sc.shared_anon(10, 4, RW);
        ok(sc, seal(10, 1));
        expect_sealed(sc, "file and shmem parts", &[(3, 5), (10, 11)]);
        // A sealed mapping still faults in.
        sc.read(3);
        sc.write(10);
        sc.step(Call::Fault {
            addr: at(4),
            access: Access::Write,
        });
    });
}

#[test]
fn sealed_vmas_refuse_changes() {
    case("sealed_vmas_refuse_changes", |sc| {
        sc.anon(0, 4, RW);
        sc.anon(4, 4, PROT_READ);
        ok(sc, seal(2, 4));
        // munmap and MAP_FIXED over any sealed page: EPERM, nothing unmapped.
        err(
            sc,
            Call::Munmap {
                addr: at(0),
                len: 3 * P,
            },
            Errno::EPERM,
        );
        err(sc, Call::Munmap { addr: at(5), len: P }, Errno::EPERM);
        // A range that starts inside an unsealed VMA: the kernel splits it
        // before it meets the seal, and the split stays.
        err(
            sc,
            Call::Munmap {
                addr: at(1),
                len: 2 * P,
            },
            Errno::EPERM,
        );
        sc.expect_vmas(
            "the split before the seal stays",
            &[
                (0, 1, "rw-p"),
                (1, 2, "rw-p"),
                (2, 4, "rw-p"),
                (4, 6, "r--p"),
                (6, 8, "r--p"),
            ],
        );
        err(
            sc,
            mmap(at(1), 2 * P, RW, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            Errno::EPERM,
        );
        // mprotect changes the VMAs before the sealed one, then fails.
        err(
            sc,
            Call::Mprotect {
                addr: at(0),
                len: 4 * P,
                prot: PROT_READ,
            },
            Errno::EPERM,
        );
        sc.expect_vmas(
            "mprotect's partial effect",
            &[(0, 2, "r--p"), (2, 4, "rw-p"), (4, 6, "r--p"), (6, 8, "r--p")],
        );
        // Even giving a sealed VMA the flags it has is refused.
        err(
            sc,
            Call::Mprotect {
                addr: at(2),
                len: 2 * P,
                prot: RW,
            },
            Errno::EPERM,
        );
        // mremap: shrinking, growing and moving a sealed VMA; moving
        // another one onto it.
        let remap = |old: u64, old_pages: u64, new_pages: u64, flags: u64, new: u64| Call::Mremap {
            old_addr: at(old),
            old_len: old_pages * P,
            new_len: new_pages * P,
            flags,
            new_addr: at(new),
        };
        err(sc, remap(2, 2, 1, 0, 0), Errno::EPERM);
        // Even a remap to the same size, and a DONTUNMAP move.
        err(sc, remap(2, 2, 2, 0, 0), Errno::EPERM);
        err(sc, remap(2, 2, 2, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, 0), Errno::EPERM);
        err(sc, remap(4, 2, 3, MREMAP_MAYMOVE, 0), Errno::EPERM);
        err(sc, remap(2, 2, 2, MREMAP_MAYMOVE | MREMAP_FIXED, 20), Errno::EPERM);
        sc.anon(10, 2, RW);
        err(sc, remap(10, 2, 2, MREMAP_MAYMOVE | MREMAP_FIXED, 2), Errno::EPERM);
        // Discarding advice on sealed read-only anonymous memory: EPERM;
        // on sealed writable memory it is allowed, as are other advice.
        let advise = |page: u64, pages: u64, advice: u64| Call::Madvise {
            addr: at(page),
            len: pages * P,
            advice,
        };
        err(sc, advise(4, 2, madv::DONTNEED), Errno::EPERM);
        err(sc, advise(4, 2, madv::FREE), Errno::EPERM);
        ok(sc, advise(2, 2, madv::DONTNEED));
        ok(sc, advise(4, 2, madv::WILLNEED));
        // mlock and munlock still split and merge sealed VMAs.
        ok(sc, Call::Mlock { addr: at(2), len: P });
        ok(sc, Call::Munlock { addr: at(2), len: P });
        expect_sealed(sc, "still sealed", &[(2, 4), (4, 6)]);
    });
}

#[test]
fn sealed_heap_does_not_shrink() {
    case("sealed_heap_does_not_shrink", |sc| {
        let brk = sc.ok(Call::Brk { addr: 0 });
        let top = sc.ok(Call::Brk { addr: brk + 4 * P });
        sc.check("brk grew", top == brk + 4 * P);
        // Fault the heap in, then seal its last page.
        sc.step(Call::Fault {
            addr: top - P,
            access: Access::Write,
        });
        sc.expect(ms(top - P, P, 0), OK);
        // Shrinking over the sealed page leaves the break where it was.
        let r = sc.ok(Call::Brk { addr: top - 2 * P });
        sc.check("brk unchanged", r == top);
        // Shrinking above it still works; growing too.
        let r = sc.ok(Call::Brk { addr: top + 2 * P });
        sc.check("brk grew again", r == top + 2 * P);
        let r = sc.ok(Call::Brk { addr: top });
        sc.check("brk shrank to the seal", r == top);
    });
}

#[test]
fn discard_advice_on_sealed_dev_zero() {
    case("discard_advice_on_sealed_dev_zero", |sc| {
        // Private /dev/zero is anonymous memory (no vm_ops), and so is a
        // MAP_SHARED mapping of a read-only /dev/zero descriptor (no
        // VM_SHARED): sealed and read-only, it refuses discarding advice.
        // Shared anonymous memory is shmem, which it permits.
        let rw = sc.open("/dev/zero", oflags::O_RDWR);
        let ro = sc.open("/dev/zero", oflags::O_RDONLY);
        sc.map(0, 2, PROT_READ, MAP_PRIVATE, rw, 0);
        sc.map(4, 2, PROT_READ, MAP_SHARED, ro, 0);
        sc.shared_anon(8, 2, PROT_READ);
        ok(sc, seal(0, 2));
        ok(sc, seal(4, 2));
        ok(sc, seal(8, 2));
        let dontneed = |page: u64| Call::Madvise {
            addr: at(page),
            len: P,
            advice: madv::DONTNEED,
        };
        err(sc, dontneed(0), Errno::EPERM);
        err(sc, dontneed(4), Errno::EPERM);
        ok(sc, dontneed(8));
    });
}

/// Runs `call` in the children on both sides; the host must answer `want`.
fn in_child(sc: &mut Sc, child: &mut Task, call: Call, want: Outcome) {
    sc.in_child(child, call, want, Sc::check_child);
}

#[test]
fn fork_keeps_seals() {
    case("fork_keeps_seals", |sc| {
        sc.anon(0, 8, RW);
        sc.write(0);
        ok(sc, seal(2, 2));
        let pid = sc.twin.host.fork().expect("host").expect("fork");
        assert!(pid > 0);
        let mut child = sc.twin.model.fork().expect("model fork");
        // The child's copy is sealed where the parent's is.
        sc.check_child(&child);
        in_child(
            sc,
            &mut child,
            Call::Munmap { addr: at(2), len: P },
            Outcome::Err(Errno::EPERM),
        );
        in_child(sc, &mut child, seal(4, 1), OK);
        in_child(
            sc,
            &mut child,
            Call::Munmap {
                addr: at(6),
                len: 2 * P,
            },
            OK,
        );
        // The parent's own VMAs did not change.
        ok(sc, Call::Munmap { addr: at(4), len: P });
    });
}

#[test]
fn sealed_grows_down_vma_still_grows() {
    case("sealed_grows_down_vma_still_grows", |sc| {
        sc.anon_with(40, 4, RW, MAP_GROWSDOWN);
        ok(sc, seal(40, 4));
        // A fault in the page below grows the sealed VMA (stack growth is
        // not a change mseal forbids), or not: the host decides.
        sc.step(Call::Fault {
            addr: at(39) + 8,
            access: Access::Write,
        });
        sc.step(Call::Fault {
            addr: at(30),
            access: Access::Write,
        });
        sc.step(Call::Munmap { addr: at(38), len: P });
    });
}
