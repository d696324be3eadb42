//! `vm.max_map_count` (65530 on the host) against the host kernel: the
//! model and the kernel must refuse the same calls at the limit —
//! `mprotect` and `munmap` splits, `mmap` past `map_count > max` — and end
//! with the same maps.

use mm_core::VmaView;
use mm_host::Twin;
use mm_ops::call::{Call, Outcome};
use mm_ops::strace::format_call;
use mm_ops::uapi::*;

const BASE: u64 = 0x1_0000_0000;

fn step(twin: &mut Twin, call: Call) -> Outcome {
    let (h, m) = twin.step(&call).expect("host helper");
    assert_eq!(h, m, "{}", format_call(&call));
    h
}

#[test]
fn limits_match_the_host_kernel() {
    let mut twin = Twin::spawn().unwrap();
    let max = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .unwrap()
        .trim()
        .parse::<u64>()
        .unwrap();
    assert_eq!(
        max,
        u64::from(twin.model.mm().read().state().cfg.max_map_count),
        "model configured for this host"
    );
    let pages = 2 * max + 16;
    let map = Call::Mmap {
        addr: BASE,
        len: pages * PAGE_SIZE,
        prot: PROT_READ,
        flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
        fd: -1,
        off: 0,
    };
    assert_eq!(step(&mut twin, map), Outcome::Val(BASE));
    // Make every other page writable until the kernel refuses a split.
    let mut refused_at = None;
    for i in 0..pages / 2 {
        let call = Call::Mprotect {
            addr: BASE + (2 * i + 1) * PAGE_SIZE,
            len: PAGE_SIZE,
            prot: PROT_READ | PROT_WRITE,
        };
        if step(&mut twin, call) != Outcome::Val(0) {
            refused_at = Some(i);
            break;
        }
    }
    let i = refused_at.expect("the limit is reached");
    let count = twin.model.mm().read().state().map_count;
    assert!(u64::from(count) >= max - 1, "refused at map_count {count}");
    // At the limit: punching a hole fails, unmapping a whole VMA works,
    // a new mapping is refused only when map_count exceeds the limit.
    let hole_in = BASE + (2 * i + 4) * PAGE_SIZE;
    let calls = [
        Call::Mprotect {
            addr: hole_in,
            len: PAGE_SIZE,
            prot: PROT_READ | PROT_WRITE,
        },
        Call::Munmap {
            addr: hole_in,
            len: PAGE_SIZE,
        },
        Call::Munmap {
            addr: BASE + PAGE_SIZE,
            len: PAGE_SIZE,
        },
        Call::Mmap {
            addr: 0,
            len: PAGE_SIZE,
            prot: PROT_READ,
            flags: MAP_PRIVATE | MAP_ANONYMOUS,
            fd: -1,
            off: 0,
        },
        Call::Mmap {
            addr: 0,
            len: PAGE_SIZE,
            prot: PROT_WRITE,
            flags: MAP_PRIVATE | MAP_ANONYMOUS,
            fd: -1,
            off: 0,
        },
        Call::Mmap {
            addr: 0,
            len: PAGE_SIZE,
            prot: PROT_EXEC,
            flags: MAP_PRIVATE | MAP_ANONYMOUS,
            fd: -1,
            off: 0,
        },
        Call::Mprotect {
            addr: BASE,
            len: 3 * PAGE_SIZE,
            prot: PROT_READ,
        },
        Call::Munmap {
            addr: hole_in,
            len: PAGE_SIZE,
        },
    ];
    let mut errors = 0;
    for c in calls {
        if matches!(step(&mut twin, c), Outcome::Err(Errno::ENOMEM)) {
            errors += 1;
        }
    }
    assert!(errors >= 2, "the limit refused calls ({errors})");
    if let Some(d) = twin.diff_maps().unwrap() {
        panic!("maps differ at the limit:\n{d}");
    }
    mm_host::summary::report(
        "max_map_count",
        &format!(
            "max_map_count: {max} reached after {} calls; {errors} calls refused at the limit, identical to the host kernel",
            i + 1
        ),
    );
}
