//! `remap_file_pages(2)` (deprecated; since Linux 4.0 a fixed shared
//! mapping of the same file at another offset, `mm/mmap.c`) against the
//! host: results, maps and smaps `VmFlags` after every call.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

#[allow(dead_code)]
#[path = "scenarios/harness.rs"]
mod harness;

use harness::{P, Sc, at, run};
use mm_ops::call::{Call, Outcome};
use mm_ops::uapi::*;

const RW: u64 = PROT_READ | PROT_WRITE;
const OK: Outcome = Outcome::Val(0);

fn rfp(page: u64, pages: u64, prot: u64, pgoff: u64, flags: u64) -> Call {
    Call::RemapFilePages {
        start: at(page),
        size: pages * P,
        prot,
        pgoff,
        flags,
    }
}

fn scenario(s: &mut Sc) {
    // Shared anonymous memory: one page to another offset, then back.
    s.shared_anon(0, 8, RW);
    s.expect(rfp(0, 1, 0, 3, 0), OK);
    s.expect_arena("split at the remapped page", &[(0, 1, "rw-s", 3), (1, 8, "rw-s", 1)]);
    // Across the two VMAs of the same file (same flags, contiguous).
    s.expect(rfp(0, 4, 0, 0, MAP_NONBLOCK), OK);
    // prot must be 0; an unaligned start is rounded down; a range past
    // the VMAs, or into a hole, or a private mapping: EINVAL.
    s.err(rfp(0, 1, PROT_READ, 0, 0), Errno::EINVAL);
    s.expect(
        Call::RemapFilePages {
            start: at(2) + 5,
            size: P + 7,
            prot: 0,
            pgoff: 6,
            flags: 0,
        },
        OK,
    );
    s.err(rfp(6, 4, 0, 0, 0), Errno::EINVAL);
    s.anon(16, 4, RW);
    s.err(rfp(16, 1, 0, 0, 0), Errno::EINVAL);
    s.err(rfp(12, 1, 0, 0, 0), Errno::EINVAL);
    // Different flags in the range (mprotect split): EINVAL.
    s.mprotect(5, 1, PROT_READ);
    s.err(rfp(4, 2, 0, 0, 0), Errno::EINVAL);
    // A read-only shared VMA keeps its protection.
    s.expect(rfp(5, 1, 0, 2, 0), OK);
    // Size 0, and a pgoff that wraps.
    s.err(rfp(0, 0, 0, 0, 0), Errno::EINVAL);
    s.err(rfp(0, 1, 0, u64::MAX, 0), Errno::EINVAL);
    // A memfd, locked: the new mapping is locked and populated too.
    let fd = s.ok(Call::MemfdCreate {
        name: "r".into(),
        flags: 0,
    }) as i64;
    s.expect(Call::Ftruncate { fd, length: 16 * P }, OK);
    s.map(32, 4, RW, MAP_SHARED | MAP_LOCKED, fd, 0);
    s.expect(rfp(33, 2, 0, 9, 0), OK);
    s.ok(Call::Close { fd });
    // Its descriptor closed, the memfd lives on in these VMAs alone:
    // remapping all of them keeps it alive (the call holds a reference).
    s.expect(rfp(32, 4, 0, 1, 0), OK);
    s.expect_window("the whole memfd range, remapped", 32, 36, &[(32, 36, "rw-s")]);
}

#[test]
fn remap_file_pages() {
    let n = run("remap_file_pages", scenario);
    println!("remap_file_pages: {n} host-compared calls");
}
