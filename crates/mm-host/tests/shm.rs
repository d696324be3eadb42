//! System V shared memory (`ipc/shm.c`, Linux 6.18) against the host
//! kernel: every call runs on the host helper (in an IPC namespace of its
//! own, so that ids start at 0 and nothing outlives it) and on the model;
//! results, maps and smaps `VmFlags` must be identical after each one.
//! What a case expects of the kernel (an error, a name, which fragments
//! `shmdt` removes) is also checked against the host's answer.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

#[allow(dead_code)]
#[path = "scenarios/harness.rs"]
mod harness;

use harness::{P, Sc, at, run};
use mm_ops::call::{Call, Outcome};
use mm_ops::kernel::shm::*;
use mm_ops::uapi::*;

const RW: u64 = PROT_READ | PROT_WRITE;
const OK: Outcome = Outcome::Val(0);

fn get(key: i64, size: u64, flags: u64) -> Call {
    Call::Shmget { key, size, flags }
}

fn attach(id: i64, addr: u64, flags: u64) -> Call {
    Call::Shmat { id, addr, flags }
}

fn dt(addr: u64) -> Call {
    Call::Shmdt { addr }
}

fn rmid(id: i64) -> Call {
    Call::ShmctlRmid { id }
}

/// The names of the host's arena VMAs (`/SYSV… (deleted)`).
fn names(sc: &mut Sc) -> Vec<String> {
    sc.arena_lines().into_iter().map(|l| l.name).collect()
}

/// Runs a scenario and prints how many calls it compared.
fn case(name: &'static str, f: harness::Scenario) {
    let n = run(name, f);
    println!("shm {name}: {n} host-compared calls");
}

#[test]
fn ids_keys_and_sizes() {
    case("ids_keys_and_sizes", |sc| {
        // A fresh namespace: ids are handed out from 0.
        sc.expect(get(IPC_PRIVATE, 5000, IPC_CREAT | 0o600), Outcome::Val(0));
        sc.expect(get(0x1234, 8192, IPC_CREAT | 0o644), Outcome::Val(1));
        // The key finds it, for any size up to its own.
        sc.expect(get(0x1234, 4096, 0), Outcome::Val(1));
        sc.expect(get(0x1234, 8192, IPC_CREAT), Outcome::Val(1));
        sc.err(get(0x1234, 8193, 0), Errno::EINVAL);
        sc.err(get(0x1234, 4096, IPC_CREAT | IPC_EXCL), Errno::EEXIST);
        sc.err(get(0x4321, 4096, 0), Errno::ENOENT);
        // Sizes: zero, and beyond shmmax.
        sc.err(get(IPC_PRIVATE, 0, IPC_CREAT), Errno::EINVAL);
        sc.err(get(IPC_PRIVATE, u64::MAX, IPC_CREAT), Errno::EINVAL);
        // A key is a C int: 0x1_0000_1234 is 0x1234.
        sc.expect(get(0x1_0000_1234, 4096, 0), Outcome::Val(1));
        // Removed: the key is free at once, and the next id is new.
        sc.expect(rmid(1), OK);
        sc.err(get(0x1234, 4096, 0), Errno::ENOENT);
        sc.expect(get(0x1234, 4096, IPC_CREAT | 0o600), Outcome::Val(2));
        sc.err(rmid(1), Errno::EINVAL);
        sc.err(rmid(-1), Errno::EINVAL);
        sc.err(rmid(7), Errno::EINVAL);
        sc.expect(rmid(0), OK);
        sc.expect(rmid(2), OK);
        // An id is reused only when the indices come round again.
        sc.expect(get(IPC_PRIVATE, 4096, IPC_CREAT), Outcome::Val(3));
        sc.expect(rmid(3), OK);
        if harness::hugetlb_pool() == 0 {
            sc.err(get(IPC_PRIVATE, 2 << 20, IPC_CREAT | SHM_HUGETLB), Errno::ENOMEM);
        }
    });
}

#[test]
fn attach_where_and_how() {
    case("attach_where_and_how", |sc| {
        let id = sc.ok(get(IPC_PRIVATE, 5000, IPC_CREAT | 0o600)) as i64;
        // Anywhere: the top-down search, two pages for 5000 bytes.
        let a = sc.ok(attach(id, 0, 0));
        let b = sc.ok(attach(id, 0, SHM_RDONLY));
        sc.check("two pages each", a - b == 2 * P);
        // Fixed, at an arena page; SHM_RND rounds an unaligned address
        // down; without it, EINVAL.
        sc.expect(attach(id, at(0), 0), Outcome::Val(at(0)));
        sc.expect(attach(id, at(2) + 7, SHM_RND | SHM_EXEC), Outcome::Val(at(2)));
        let n = names(sc);
        sc.check(
            "each attach a VMA of its own, named by the key",
            n == ["/SYSV00000000 (deleted)", "/SYSV00000000 (deleted)"],
        );
        sc.err(attach(id, at(4) + 7, 0), Errno::EINVAL);
        // SHM_REMAP needs an address; without it, an occupied range
        // (even one byte of it: 5000 is not a page multiple) is EINVAL.
        sc.err(attach(id, 0, SHM_REMAP), Errno::EINVAL);
        sc.anon(5, 1, RW);
        sc.err(attach(id, at(4), 0), Errno::EINVAL);
        sc.expect(attach(id, at(4), SHM_REMAP), Outcome::Val(at(4)));
        // A read-only attach cannot become writable.
        sc.err(
            Call::Mprotect {
                addr: b,
                len: P,
                prot: RW,
            },
            Errno::EACCES,
        );
        sc.ok(Call::Mprotect {
            addr: a,
            len: P,
            prot: PROT_READ,
        });
        // Bad ids.
        sc.err(attach(-1, 0, 0), Errno::EINVAL);
        sc.err(attach(id + 1, 0, 0), Errno::EINVAL);
        sc.err(attach(id + (1 << 15), 0, 0), Errno::EINVAL);
        sc.expect(rmid(id), OK);
        sc.ok(dt(a));
        sc.ok(dt(b));
    });
}

#[test]
fn detach_finds_the_fragments() {
    case("detach_finds_the_fragments", |sc| {
        let id = sc.ok(get(IPC_PRIVATE, 4 * P, IPC_CREAT | 0o600)) as i64;
        let other = sc.ok(get(IPC_PRIVATE, 2 * P, IPC_CREAT | 0o600)) as i64;
        sc.expect(attach(id, at(0), 0), Outcome::Val(at(0)));
        // Fragments: mprotect splits, munmap leaves a hole.
        sc.mprotect(1, 1, PROT_READ);
        sc.munmap(2, 1);
        // Another segment right after, at its own offsets.
        sc.expect(attach(other, at(4), 0), Outcome::Val(at(4)));
        // Not at a page boundary, or where no attach starts.
        sc.err(dt(at(0) + 1), Errno::EINVAL);
        sc.err(dt(at(8)), Errno::EINVAL);
        // The first fragment gone: the next one at its offset is found.
        sc.munmap(0, 1);
        sc.expect(dt(at(0)), OK);
        sc.expect_names("the other segment stays", &["/SYSV00000000 (deleted)"]);
        sc.expect_vmas("only the other segment", &[(4, 6, "rw-s")]);
        sc.expect(dt(at(4)), OK);
        sc.err(dt(at(4)), Errno::EINVAL);
        // A fragment moved by mremap is no longer at its offset.
        sc.expect(attach(id, at(0), 0), Outcome::Val(at(0)));
        sc.ok(Call::Mremap {
            old_addr: at(3),
            old_len: P,
            new_len: P,
            flags: MREMAP_MAYMOVE | MREMAP_FIXED,
            new_addr: at(20),
        });
        sc.expect(dt(at(0)), OK);
        sc.expect_arena("the moved page stays, at its offset 3", &[(20, 21, "rw-s", 3)]);
        sc.expect(rmid(id), OK);
        sc.expect(rmid(other), OK);
        sc.err(dt(at(20)), Errno::EINVAL);
        sc.munmap(20, 1);
    });
}

#[test]
fn removed_while_attached() {
    case("removed_while_attached", |sc| {
        let id = sc.ok(get(0x77, 3 * P, IPC_CREAT | 0o600)) as i64;
        sc.expect(attach(id, at(0), 0), Outcome::Val(at(0)));
        sc.expect(rmid(id), OK);
        // Still attached: the id still attaches (Linux allows it), the
        // name keeps the key, and the key is free for a new segment.
        sc.expect(attach(id, at(8), SHM_RDONLY), Outcome::Val(at(8)));
        sc.expect_names(
            "named by the old key",
            &["/SYSV00000077 (deleted)", "/SYSV00000077 (deleted)"],
        );
        let new = sc.ok(get(0x77, P, IPC_CREAT | 0o600)) as i64;
        sc.check("a new id", new != id);
        // A split counts as two attaches: removing one piece keeps it.
        sc.mprotect(8, 1, PROT_NONE);
        sc.munmap(0, 3);
        sc.munmap(8, 1);
        sc.expect(attach(id, at(16), 0), Outcome::Val(at(16)));
        sc.munmap(9, 2);
        sc.munmap(16, 3);
        // The last detach destroyed it.
        sc.err(attach(id, 0, 0), Errno::EINVAL);
        sc.expect(rmid(new), OK);
    });
}

#[test]
fn fork_children_count_as_attached() {
    case("fork_children_count_as_attached", |sc| {
        let id = sc.ok(get(IPC_PRIVATE, 2 * P, IPC_CREAT | 0o600)) as i64;
        sc.expect(attach(id, at(0), 0), Outcome::Val(at(0)));
        let _pid = sc.twin.host.fork().expect("host").expect("fork");
        let mut child = sc.twin.model.fork().expect("model fork");
        sc.check_child(&child);
        sc.expect(dt(at(0)), OK);
        sc.expect(rmid(id), OK);
        // The child's copy keeps the segment alive.
        sc.expect(attach(id, at(4), 0), Outcome::Val(at(4)));
        sc.expect(dt(at(4)), OK);
        sc.in_child(&mut child, dt(at(0)), OK, |sc, c| sc.check_child(c));
        sc.err(attach(id, 0, 0), Errno::EINVAL);
    });
}

#[test]
fn fragments_stay_apart_and_move_alone() {
    case("fragments_stay_apart_and_move_alone", |sc| {
        let id = sc.ok(get(IPC_PRIVATE, 4 * P, IPC_CREAT | 0o600)) as i64;
        sc.expect(attach(id, at(0), 0), Outcome::Val(at(0)));
        // Split, then the same protection again: a merge would delete a
        // VMA whose vm_ops has close (shm_close), so none happens.
        sc.mprotect(0, 3, PROT_READ);
        sc.mprotect(0, 3, RW);
        sc.expect_arena("no merge back", &[(0, 3, "rw-s", 0), (3, 4, "rw-s", 3)]);
        // A middle piece back to its neighbours' protection: it would be
        // deleted by either merge, so it stays.
        sc.mprotect(1, 1, PROT_READ);
        sc.mprotect(1, 1, RW);
        sc.expect_arena(
            "the middle stays",
            &[
                (0, 1, "rw-s", 0),
                (1, 2, "rw-s", 1),
                (2, 3, "rw-s", 2),
                (3, 4, "rw-s", 3),
            ],
        );
        // Several fragments move only one at a time (vma_multi_allowed).
        sc.err(
            Call::Mremap {
                old_addr: at(0),
                old_len: 4 * P,
                new_len: 4 * P,
                flags: MREMAP_MAYMOVE | MREMAP_FIXED,
                new_addr: at(16),
            },
            Errno::EFAULT,
        );
        sc.ok(Call::Mremap {
            old_addr: at(2),
            old_len: P,
            new_len: P,
            flags: MREMAP_MAYMOVE | MREMAP_FIXED,
            new_addr: at(16),
        });
        // Moved back between its old neighbours: the new range extends
        // the previous one, which deletes nothing; joining the next one
        // too would delete it, so that side stays apart.
        sc.ok(Call::Mremap {
            old_addr: at(16),
            old_len: P,
            new_len: P,
            flags: MREMAP_MAYMOVE | MREMAP_FIXED,
            new_addr: at(2),
        });
        sc.expect_arena(
            "prev extended, next apart",
            &[(0, 1, "rw-s", 0), (1, 3, "rw-s", 1), (3, 4, "rw-s", 3)],
        );
        sc.expect(dt(at(0)), OK);
        sc.expect(rmid(id), OK);
    });
}

/// `remap_file_pages` maps an attach's file again (`do_mmap` → `shm_mmap`
/// → `__shm_open`). Of a removed segment, it works while another attach
/// stays; when the range was the last one, the unmap that clears it
/// destroys the segment, the mapping fails with `EINVAL`, and the range
/// stays unmapped (found by the random sessions, seed 510190).
#[test]
fn remapped_after_removal() {
    case("remapped_after_removal", |sc| {
        let rfp = |page: u64, pages: u64, pgoff: u64| Call::RemapFilePages {
            start: at(page),
            size: pages * P,
            prot: 0,
            pgoff,
            flags: 0,
        };
        let id = sc.ok(get(IPC_PRIVATE, 4 * P, IPC_CREAT | 0o600)) as i64;
        sc.expect(attach(id, at(0), 0), Outcome::Val(at(0)));
        sc.expect(rmid(id), OK);
        // Pages 1-3 stay attached.
        sc.expect(rfp(0, 1, 3), OK);
        sc.expect_arena("remapped", &[(0, 1, "rw-s", 3), (1, 4, "rw-s", 1)]);
        sc.munmap(1, 3);
        // The last attach: unmapped, then the mapping fails.
        sc.err(rfp(0, 1, 0), Errno::EINVAL);
        sc.expect_arena("nothing left", &[]);
        sc.err(attach(id, 0, 0), Errno::EINVAL);
        // Not removed: the same call simply works.
        let id = sc.ok(get(IPC_PRIVATE, P, IPC_CREAT | 0o600)) as i64;
        sc.expect(attach(id, at(8), 0), Outcome::Val(at(8)));
        sc.expect(rfp(8, 1, 2), OK);
        sc.expect(rmid(id), OK);
    });
}
