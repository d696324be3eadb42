//! Privileges, refused calls and a helper that dies.

mod common;

use common::ok;
use mm_host::{HostOptions, HostProcess};
use mm_ops::call::{Call, Outcome};
use mm_ops::uapi::{Errno, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PAGE_SIZE, PROT_READ, madv};

fn map_page_zero() -> Call {
    Call::Mmap {
        addr: 0,
        len: PAGE_SIZE,
        prot: PROT_READ,
        flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
        fd: -1,
        off: 0,
    }
}

#[test]
fn without_capabilities_page_zero_is_refused() {
    let opts = HostOptions {
        drop_capabilities: true,
        ..HostOptions::default()
    };
    let mut h = HostProcess::spawn_with(&opts).unwrap();
    assert_eq!(h.call(&map_page_zero()).unwrap(), Outcome::Err(Errno::EPERM));
}

#[test]
fn root_may_map_page_zero() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root; skipping");
        return;
    }
    let mut h = HostProcess::spawn().unwrap();
    assert_eq!(ok(&mut h, map_page_zero()), 0);
}

#[test]
fn hwpoison_is_refused_by_default() {
    let mut h = HostProcess::spawn().unwrap();
    let addr = common::anon(&mut h, 1, PROT_READ);
    for advice in [madv::HWPOISON, madv::SOFT_OFFLINE] {
        let err = h
            .call(&Call::Madvise {
                addr,
                len: PAGE_SIZE,
                advice,
            })
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }
    // The helper is still fine.
    assert_eq!(ok(&mut h, Call::Brk { addr: 0 }), h.stat().unwrap().brk);
}

#[test]
fn unmapping_the_helpers_text_kills_it_with_a_clear_error() {
    let mut h = HostProcess::spawn().unwrap();
    let err = h
        .call(&Call::Munmap {
            addr: 0x40_0000,
            len: PAGE_SIZE,
        })
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    assert!(err.to_string().contains("SIGSEGV"), "{err}");
    assert!(h.maps().is_err());
}

#[test]
fn over_long_strings_are_judged_by_the_kernel_or_refused() {
    let mut h = HostProcess::spawn().unwrap();
    let open = |path: String| Call::Open {
        path,
        flags: 0,
        mode: None,
    };
    let long = format!("/{}", "a".repeat(5000));
    assert_eq!(h.call(&open(long)).unwrap(), Outcome::Err(Errno::ENAMETOOLONG));
    let too_long = format!("/{}", "a".repeat(9000));
    let err = h.call(&open(too_long)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let name = Call::MemfdCreate {
        name: "n".repeat(300),
        flags: 0,
    };
    assert_eq!(h.call(&name).unwrap(), Outcome::Err(Errno::EINVAL));
}

/// Addresses and lengths at the edges: 0, `TASK_SIZE`, 2^63, 2^64, sums
/// that overflow when aligned or added. Every call's result must be the
/// kernel's (no panic, no wrong errno), and the maps identical after.
#[test]
fn extreme_arguments_match_the_kernel() {
    use mm_ops::uapi::{MAP_FIXED_NOREPLACE, MREMAP_DONTUNMAP, MREMAP_FIXED, MREMAP_MAYMOVE, madv as m};
    const TASK_SIZE: u64 = 0x7fff_ffff_f000;
    let addrs = [
        0,
        0x1000,
        TASK_SIZE + 0x1000,
        1 << 63,
        u64::MAX - 0x1fff,
        u64::MAX - 0xfff,
        u64::MAX - 0xffe,
        u64::MAX - 11,
        u64::MAX,
    ];
    // (No valid length that would cover the helper itself.)
    let lens = [0, 1, 0x1000, 0x2000, u64::MAX - 0x1fff, u64::MAX - 0xfff, u64::MAX];
    let mut twin = mm_host::Twin::spawn().unwrap();
    let mut calls = Vec::new();
    for &addr in &addrs {
        for &len in &lens {
            for flags in [
                MAP_PRIVATE | MAP_ANONYMOUS,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
            ] {
                calls.push(Call::Mmap {
                    addr,
                    len,
                    prot: PROT_READ,
                    flags,
                    fd: -1,
                    off: 0,
                });
            }
            calls.push(Call::Munmap { addr, len });
            for advice in [m::NORMAL, m::DONTNEED, m::WILLNEED] {
                calls.push(Call::Madvise { addr, len, advice });
            }
            for &new_len in &lens {
                for flags in [
                    0,
                    MREMAP_MAYMOVE,
                    MREMAP_MAYMOVE | MREMAP_FIXED,
                    MREMAP_MAYMOVE | MREMAP_DONTUNMAP,
                ] {
                    for new_addr in [0, 0x10000, u64::MAX - 0xfff] {
                        calls.push(Call::Mremap {
                            old_addr: addr,
                            old_len: len,
                            new_len,
                            flags,
                            new_addr,
                        });
                    }
                }
            }
        }
    }
    let mut differ = Vec::new();
    for c in &calls {
        let (h, m) = twin.step(c).unwrap();
        if h != m {
            differ.push(format!("{}: host {h} model {m}", mm_ops::strace::format_call(c)));
        }
    }
    assert!(
        differ.is_empty(),
        "{} of {} calls differ:\n{}",
        differ.len(),
        calls.len(),
        differ.join("\n")
    );
    assert_eq!(twin.diff_maps().unwrap(), None);
}
