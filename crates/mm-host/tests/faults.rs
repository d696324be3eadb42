//! Page faults: loads, stores and instruction fetches, as the CPU does them.

mod common;

use common::{BUS, OK, SEGV, anon, fault, maps, ok, vma_at};
use mm_host::HostProcess;
use mm_ops::call::{Access, Call};
use mm_ops::uapi::{MAP_PRIVATE, MAP_SHARED, PAGE_SIZE, PROT_EXEC, PROT_NONE, PROT_READ, PROT_WRITE, oflags};

const P: u64 = PAGE_SIZE;

#[test]
fn unmapped_addresses_segfault() {
    let mut h = HostProcess::spawn().unwrap();
    for addr in [0, 0x1000, 0x1000_0000, 0x7fff_0000_0000] {
        assert_eq!(fault(&mut h, addr, Access::Read), SEGV, "read {addr:#x}");
        assert_eq!(fault(&mut h, addr, Access::Write), SEGV, "write {addr:#x}");
    }
    // Non-canonical and kernel addresses: #GP or a protection fault, SIGSEGV all the same.
    assert_eq!(fault(&mut h, 0x8000_0000_0000, Access::Read), SEGV);
    assert_eq!(fault(&mut h, 0xffff_ffff_8000_0000, Access::Write), SEGV);
}

#[test]
fn permissions_decide_loads_and_stores() {
    let mut h = HostProcess::spawn().unwrap();
    let ro = anon(&mut h, 1, PROT_READ);
    assert_eq!(fault(&mut h, ro, Access::Read), OK);
    assert_eq!(fault(&mut h, ro + 17, Access::Write), SEGV);
    let none = anon(&mut h, 1, PROT_NONE);
    assert_eq!(fault(&mut h, none, Access::Read), SEGV);
    let rw = anon(&mut h, 1, PROT_READ | PROT_WRITE);
    assert_eq!(fault(&mut h, rw + P - 1, Access::Write), OK);
    assert_eq!(fault(&mut h, rw, Access::Read), OK);
    // Write-only still reads on x86 (no way to express it in page tables).
    let wo = anon(&mut h, 1, PROT_WRITE);
    assert_eq!(fault(&mut h, wo, Access::Read), OK);
    // The helper's own text is read-only.
    assert_eq!(fault(&mut h, 0x40_0000, Access::Write), SEGV);
    assert_eq!(fault(&mut h, 0x40_0000, Access::Read), OK);
}

#[test]
fn reading_past_eof_of_a_file_mapping_is_sigbus() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one-page");
    std::fs::write(&path, vec![0x90u8; P as usize]).unwrap();
    let mut h = HostProcess::spawn().unwrap();
    let open = Call::Open {
        path: path.to_str().unwrap().into(),
        flags: oflags::O_RDONLY,
        mode: None,
    };
    let fd = ok(&mut h, open) as i64;
    for flags in [MAP_PRIVATE, MAP_SHARED] {
        let map = Call::Mmap {
            addr: 0,
            len: 2 * P,
            prot: PROT_READ,
            flags,
            fd,
            off: 0,
        };
        let addr = ok(&mut h, map);
        assert_eq!(vma_at(&mut h, addr).unwrap().end, addr + 2 * P, "VMA covers both pages");
        assert_eq!(fault(&mut h, addr, Access::Read), OK);
        assert_eq!(fault(&mut h, addr + P - 1, Access::Read), OK);
        assert_eq!(fault(&mut h, addr + P, Access::Read), BUS);
        assert_eq!(fault(&mut h, addr + 2 * P - 1, Access::Read), BUS);
        // The protection check comes first: a store is SIGSEGV, not SIGBUS.
        assert_eq!(fault(&mut h, addr + P, Access::Write), SEGV);
    }
}

#[test]
fn exec_needs_prot_exec() {
    let mut h = HostProcess::spawn().unwrap();
    let r = anon(&mut h, 1, PROT_READ);
    assert_eq!(fault(&mut h, r, Access::Exec), SEGV);
    // A zero page executes (`add %al,(%rax)` …) until it runs off the end:
    // the fault is elsewhere, so the fetch at the address succeeded.
    let rx = anon(&mut h, 1, PROT_READ | PROT_EXEC);
    assert_eq!(fault(&mut h, rx, Access::Exec), OK);
    assert_eq!(fault(&mut h, 0x1000_0000, Access::Exec), SEGV, "unmapped");
    assert_eq!(fault(&mut h, 0x8000_0000_0000, Access::Exec), SEGV, "non-canonical");
    // The data and bss are not executable; the text is. (Where the text
    // ends depends on the helper's size: the maps tell.)
    let data = maps(&mut h)
        .into_iter()
        .find(|l| l.start >= 0x40_0000 && l.perms == "rw-p")
        .expect("the helper's data");
    assert_eq!(fault(&mut h, data.start, Access::Exec), SEGV);
    assert_eq!(fault(&mut h, 0x40_0000, Access::Exec), OK);
}

#[test]
fn written_ret_executes_and_exec_faults_leave_no_trace() {
    let mut h = HostProcess::spawn().unwrap();
    let rw = anon(&mut h, 2, PROT_READ | PROT_WRITE);
    // A WRITE fault stores 0xC3 (`ret`).
    assert_eq!(fault(&mut h, rw + 100, Access::Write), OK);
    let mp = Call::Mprotect {
        addr: rw,
        len: 2 * P,
        prot: PROT_READ | PROT_EXEC,
    };
    assert_eq!(ok(&mut h, mp), 0);
    let before = h.maps().unwrap();
    let st = h.stat().unwrap();
    assert_eq!(fault(&mut h, rw + 100, Access::Exec), OK);
    assert_eq!(fault(&mut h, rw + P, Access::Exec), OK);
    assert_eq!(h.maps().unwrap(), before, "the fork child's faults stay in the child");
    assert_eq!(h.stat().unwrap(), st);
}

/// The helper's fetch probe calls the target with the target's address in
/// `rdi`: an instruction there that writes `(%rdi)` faults on read-only
/// code at the same instruction and address as a refused fetch would.
/// Only the page fault's error code (`X86_PF_INSTR`) tells them apart:
/// found by the random fork sessions (seed 2171), whose fetch landed on
/// such bytes in the vDSO ("c0 0f 85": `rorb $0x85,(%rdi)`).
#[test]
fn a_fetch_whose_instruction_writes_the_target_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("code");
    let mut code = vec![0xc3u8; 64];
    code[16..19].copy_from_slice(&[0xc0, 0x0f, 0x85]);
    std::fs::write(&path, code).unwrap();
    let mut h = HostProcess::spawn().unwrap();
    let open = Call::Open {
        path: path.to_str().unwrap().into(),
        flags: oflags::O_RDONLY,
        mode: None,
    };
    let fd = ok(&mut h, open) as i64;
    let map = |prot| Call::Mmap {
        addr: 0,
        len: P,
        prot,
        flags: MAP_PRIVATE,
        fd,
        off: 0,
    };
    let addr = ok(&mut h, map(PROT_READ | PROT_EXEC));
    assert_eq!(fault(&mut h, addr + 16, Access::Exec), OK);
    // Not executable: the fetch itself is refused, at the same address.
    let addr = ok(&mut h, map(PROT_READ));
    assert_eq!(fault(&mut h, addr + 16, Access::Exec), SEGV);
}

#[test]
fn exec_past_eof_is_sigbus() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("code");
    std::fs::write(&path, vec![0xc3u8; 100]).unwrap();
    let mut h = HostProcess::spawn().unwrap();
    let open = Call::Open {
        path: path.to_str().unwrap().into(),
        flags: oflags::O_RDONLY,
        mode: None,
    };
    let fd = ok(&mut h, open) as i64;
    let map = Call::Mmap {
        addr: 0,
        len: 2 * P,
        prot: PROT_READ | PROT_EXEC,
        flags: MAP_PRIVATE,
        fd,
        off: 0,
    };
    let addr = ok(&mut h, map);
    assert_eq!(fault(&mut h, addr + 50, Access::Exec), OK, "ret");
    assert_eq!(
        fault(&mut h, addr + 3000, Access::Exec),
        OK,
        "zero tail of the last page"
    );
    assert_eq!(fault(&mut h, addr + P, Access::Exec), BUS);
}

#[test]
fn guard_pages_of_the_stack_and_growth() {
    let mut h = HostProcess::spawn().unwrap();
    let stack = common::maps(&mut h).into_iter().find(|l| l.name == "[stack]").unwrap();
    // Just below the stack VMA: the stack grows down to cover it.
    assert_eq!(fault(&mut h, stack.start - 8, Access::Read), OK);
    let grown = vma_at(&mut h, stack.start - 8).unwrap();
    assert_eq!(grown.name, "[stack]");
    assert_eq!((grown.start, grown.end), (stack.start - P, stack.end));
}

#[test]
fn exec_in_dontfork_and_guarded_memory() {
    let mut h = HostProcess::spawn().unwrap();
    let rx = anon(&mut h, 3, PROT_READ | PROT_EXEC);
    let madvise = |addr, advice| Call::Madvise { addr, len: P, advice };
    // A fork child lacks MADV_DONTFORK VMAs; the probe must still see them.
    assert_eq!(ok(&mut h, madvise(rx, mm_ops::uapi::madv::DONTFORK)), 0);
    let before = h.maps().unwrap();
    assert_eq!(fault(&mut h, rx + 8, Access::Exec), OK);
    assert_eq!(h.maps().unwrap(), before);
    let mp = Call::Mprotect {
        addr: rx,
        len: P,
        prot: PROT_READ,
    };
    assert_eq!(ok(&mut h, mp), 0);
    assert_eq!(fault(&mut h, rx + 8, Access::Exec), SEGV);
    // Guard regions survive fork: fetching there is SIGSEGV.
    assert_eq!(ok(&mut h, madvise(rx + P, mm_ops::uapi::madv::GUARD_INSTALL)), 0);
    assert_eq!(fault(&mut h, rx + P, Access::Exec), SEGV);
    assert_eq!(fault(&mut h, rx + P, Access::Read), SEGV);
    // WIPEONFORK only zeroes the child's copy: still executable.
    assert_eq!(ok(&mut h, madvise(rx + 2 * P, mm_ops::uapi::madv::WIPEONFORK)), 0);
    assert_eq!(fault(&mut h, rx + 2 * P, Access::Exec), OK);
}
