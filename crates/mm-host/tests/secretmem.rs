//! `memfd_secret(2)` (`mm/secretmem.c`, Linux 6.18) against the host: its
//! mappings are shared only, locked (`VM_LOCKED`, `VM_DONTDUMP`), within
//! `RLIMIT_MEMLOCK`, refused after the target range was cleared, on a
//! `noexec` mount, and their pages cannot be pinned (`mlock` `ENOMEM`,
//! `MADV_POPULATE_*` `EINVAL`, `MAP_POPULATE` and `mlockall` quietly
//! skip them). Every call runs on the host helper and the model; results,
//! maps and smaps `VmFlags` must be identical after each.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

#[allow(dead_code)]
#[path = "scenarios/harness.rs"]
mod harness;

use harness::{P, Sc, at, mmap, run_with};
use mm_host::HostOptions;
use mm_ops::call::{Call, Outcome};
use mm_ops::uapi::*;

const RW: u64 = PROT_READ | PROT_WRITE;
const OK: Outcome = Outcome::Val(0);

/// A secret memory object of `pages` pages; `None` when the host has
/// none (`ENOSYS`: booted with `secretmem.enable=0`).
fn secret(s: &mut Sc, pages: u64) -> Option<i64> {
    match s.step(Call::MemfdSecret {
        flags: oflags::O_CLOEXEC,
    }) {
        Outcome::Val(fd) => {
            let fd = fd as i64;
            s.expect(Call::Ftruncate { fd, length: pages * P }, OK);
            Some(fd)
        }
        Outcome::Err(Errno::ENOSYS) => None,
        other => s.fail(&format!("memfd_secret: {other}")),
    }
}

fn scenario(s: &mut Sc) {
    s.err(Call::MemfdSecret { flags: 1 }, Errno::EINVAL);
    let Some(fd) = secret(s, 8) else {
        eprintln!("no secretmem on this host; skipping");
        return;
    };
    // The size is set once.
    s.err(Call::Ftruncate { fd, length: 16 * P }, Errno::EINVAL);
    // Shared: locked and not dumped; private: EINVAL after the target
    // range was cleared (a hole is left).
    s.map(0, 8, RW, MAP_SHARED, fd, 0);
    s.anon(16, 4, PROT_READ);
    s.err(
        mmap(at(16), P, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0),
        Errno::EINVAL,
    );
    s.expect_window("the refused mapping left a hole", 16, 20, &[(17, 20, "r--p")]);
    // Its mount is noexec; MAP_SYNC is refused up front.
    s.err(mmap(0, P, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0), Errno::EPERM);
    s.err(
        mmap(0, P, PROT_READ, MAP_SHARED_VALIDATE | MAP_SYNC, fd, 0),
        Errno::EOPNOTSUPP,
    );
    s.err(
        Call::Mprotect {
            addr: at(0),
            len: P,
            prot: PROT_READ | PROT_EXEC,
        },
        Errno::EACCES,
    );
    // Pages cannot be pinned.
    s.err(Call::Mlock { addr: at(0), len: P }, Errno::ENOMEM);
    s.err(
        Call::Mlock2 {
            addr: at(0),
            len: P,
            flags: 1,
        },
        Errno::ENOMEM,
    );
    for advice in [madv::POPULATE_READ, madv::POPULATE_WRITE, madv::DONTNEED, madv::REMOVE] {
        s.err(
            Call::Madvise {
                addr: at(0),
                len: P,
                advice,
            },
            Errno::EINVAL,
        );
    }
    // munlock leaves it locked; mlockall and MAP_POPULATE skip it.
    s.expect(
        Call::Munlock {
            addr: at(0),
            len: 2 * P,
        },
        OK,
    );
    s.ok(mmap(0, P, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0));
    s.expect(Call::Mlockall { flags: MCL_CURRENT }, OK);
    s.expect(Call::Munlockall, OK);
    // Reads and writes fault in; past the end, SIGBUS.
    s.expect(
        Call::Fault {
            addr: at(1),
            access: mm_ops::call::Access::Write,
        },
        OK,
    );
    s.map(40, 4, PROT_READ, MAP_SHARED, fd, 6);
    s.expect(
        Call::Fault {
            addr: at(41),
            access: mm_ops::call::Access::Read,
        },
        OK,
    );
    s.expect(
        Call::Fault {
            addr: at(42),
            access: mm_ops::call::Access::Read,
        },
        Outcome::Signal(mm_ops::call::Signal::Bus),
    );
    // mremap: shrink, move; a grow is limited as locked memory.
    s.ok(Call::Mremap {
        old_addr: at(0),
        old_len: 8 * P,
        new_len: 4 * P,
        flags: 0,
        new_addr: 0,
    });
    s.ok(Call::Mremap {
        old_addr: at(0),
        old_len: 4 * P,
        new_len: 4 * P,
        flags: MREMAP_MAYMOVE | MREMAP_FIXED,
        new_addr: at(32),
    });
    s.ok(Call::Munmap {
        addr: at(32),
        len: 4 * P,
    });
    s.ok(Call::Close { fd });
}

/// Locked memory within RLIMIT_MEMLOCK: as an unprivileged user with
/// 16 KiB, a 32 KiB secret mapping is EAGAIN (after clearing its range).
fn limited(s: &mut Sc) {
    let Some(fd) = secret(s, 8) else {
        eprintln!("no secretmem on this host; skipping");
        return;
    };
    s.map(0, 2, RW, MAP_SHARED, fd, 0);
    s.anon(8, 8, PROT_READ);
    s.err(mmap(at(8), 8 * P, RW, MAP_SHARED | MAP_FIXED, fd, 0), Errno::EAGAIN);
    s.err(
        Call::Mremap {
            old_addr: at(0),
            old_len: 2 * P,
            new_len: 8 * P,
            flags: MREMAP_MAYMOVE,
            new_addr: 0,
        },
        Errno::EAGAIN,
    );
    s.ok(Call::Close { fd });
}

#[test]
fn secretmem_semantics() {
    let n = run_with("secretmem", &HostOptions::default(), scenario);
    println!("secretmem: {n} host-compared calls");
}

#[test]
fn secretmem_within_memlock() {
    let opts = HostOptions {
        rlimits: vec![(libc::RLIMIT_MEMLOCK, 16 << 10)],
        drop_capabilities: true,
        ..HostOptions::default()
    };
    let n = run_with("secretmem_memlock", &opts, limited);
    println!("secretmem within RLIMIT_MEMLOCK: {n} host-compared calls");
}
