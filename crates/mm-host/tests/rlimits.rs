//! `setrlimit`/`prlimit64` during a process's life (`kernel/sys.c`
//! `do_prlimit`) against the host: the new soft limits of `RLIMIT_AS`,
//! `RLIMIT_DATA`, `RLIMIT_FSIZE` and `RLIMIT_MEMLOCK` decide the next
//! calls at once. The process has no `CAP_SYS_RESOURCE`: a hard limit
//! may be lowered, never raised (`EPERM`), not even back.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

#[allow(dead_code)]
#[path = "scenarios/harness.rs"]
mod harness;

use harness::{P, Sc, mmap, run_with};
use mm_host::HostOptions;
use mm_ops::call::{Call, Outcome};
use mm_ops::uapi::*;

const M: u64 = 1 << 20;
const OK: Outcome = Outcome::Val(0);

fn set(resource: u64, cur: u64, max: u64) -> Call {
    Call::Setrlimit { resource, cur, max }
}

fn anon(len: u64) -> Call {
    mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
}

fn scenario(s: &mut Sc) {
    // Bad requests.
    s.err(set(rlimit::AS, 2 * M, M), Errno::EINVAL);
    s.err(set(16, 0, 0), Errno::EINVAL);
    s.err(set(rlimit::NOFILE, 64, (1 << 20) + 1), Errno::EPERM);
    // Address space: a soft limit below the hard one, then up again.
    s.expect(set(rlimit::AS, 512 * M, 1024 * M), OK);
    s.err(anon(600 * M), Errno::ENOMEM);
    s.ok(anon(64 * M));
    s.expect(set(rlimit::AS, 1024 * M, 1024 * M), OK);
    let big = s.ok(anon(600 * M));
    s.ok(Call::Munmap {
        addr: big,
        len: 600 * M,
    });
    // Hard limits: raising one is refused, lowering one is final; the
    // resource is an `unsigned int` (its upper half is dropped).
    s.err(set(rlimit::AS, 512 * M, u64::MAX), Errno::EPERM);
    s.err(set(rlimit::MEMLOCK, 0, 128 << 10), Errno::EPERM);
    s.expect(set(1 << 32 | rlimit::AS, 1024 * M, 1024 * M), OK);
    s.expect(set(4, 0, M), OK);
    s.err(set(4, 0, 2 * M), Errno::EPERM);
    s.expect(set(4, M / 2, M / 2), OK);
    // Data (private writable mappings and brk).
    s.expect(set(rlimit::DATA, 32 * M, u64::MAX), OK);
    s.err(anon(40 * M), Errno::ENOMEM);
    s.ok(mmap(0, 40 * M, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    // (Already over it: the 64 MiB mapping above counts.)
    s.err(anon(4 * P), Errno::ENOMEM);
    s.expect(set(rlimit::DATA, u64::MAX, u64::MAX), OK);
    // File size.
    let fd = s.ok(Call::MemfdCreate {
        name: "f".into(),
        flags: 0,
    }) as i64;
    s.expect(set(rlimit::FSIZE, 8192, u64::MAX), OK);
    s.err(Call::Ftruncate { fd, length: 4 * P }, Errno::EFBIG);
    s.expect(Call::Ftruncate { fd, length: 2 * P }, OK);
    // Locked memory, without CAP_IPC_LOCK.
    s.expect(set(rlimit::MEMLOCK, 2 * P, 64 << 10), OK);
    let a = s.ok(anon(4 * P));
    s.err(Call::Mlock { addr: a, len: 4 * P }, Errno::ENOMEM);
    s.expect(Call::Mlock { addr: a, len: 2 * P }, OK);
    s.err(
        mmap(0, 4 * P, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0),
        Errno::EAGAIN,
    );
}

#[test]
fn limits_changed_during_the_process() {
    let opts = HostOptions {
        drop_capabilities: true,
        rlimits: vec![(libc::RLIMIT_MEMLOCK, 64 << 10)],
        ..HostOptions::default()
    };
    let n = run_with("setrlimit", &opts, scenario);
    println!("setrlimit: {n} host-compared calls");
}
