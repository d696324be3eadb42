//! Structured system-call sequences with extreme values, through
//! `Task::apply`. After every call:
//! * the invariant checker passes (`mm_ops::invariants::check`: sorted,
//!   aligned, non-overlapping VMAs; `map_count`; counters equal to their
//!   sums; published copy equal to the writer's; the commit charge);
//! * with an allocation failing (`Op::FailNth`), the kernel's answers for
//!   it (`ENOMEM`, `EAGAIN`, or success where the kernel falls back);
//! * a failed call left the VMAs, counters and maps as they were — except
//!   where the kernel documents a partial effect: `mprotect`, `madvise`,
//!   `mlock`, `mlock2` and `munlock` keep what they changed before the
//!   error (a hole, a prefault that fails), `munmap`, `mremap` and
//!   `MAP_FIXED` `mmap` keep splits already made (compared coalesced) or,
//!   for a file that refuses late, the range they cleared; `mremap` with
//!   `MREMAP_FIXED` or a shrink has unmapped the destination or the tail
//!   before a later step fails.
//!
//! At the end, unmapping everything and closing every descriptor leaves no
//! VMA, no charge (but what the kernel never gives back, and System V
//! segments not removed, which keep theirs), no guard marker and no open
//! file.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mm_core::{MmConfig, Vma, VmaView};
use mm_ops::call::{Access, Call, Outcome};
use mm_ops::invariants::coalesced;
use mm_ops::task::Task;
use mm_ops::uapi::*;

/// Where the interesting addresses are: a base the calls share, so that
/// they meet; the edges of the address space; values that wrap.
const BASE: u64 = 0x2_0000_0000;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Addr {
    /// `BASE` + pages.
    Page(u8),
    /// `BASE` + pages + a sub-page offset.
    Unaligned(u8, u16),
    /// 0 and near it.
    Low(u16),
    /// `TASK_SIZE` ± pages.
    Top(i8),
    /// 2^64 − pages.
    Wrap(u8),
    /// 2^63 and 2^47 neighbourhoods.
    High(bool, i8),
    /// Anything.
    Raw(u64),
}

impl Addr {
    fn value(self) -> u64 {
        match self {
            Addr::Page(p) => BASE + u64::from(p) * PAGE_SIZE,
            Addr::Unaligned(p, o) => BASE + u64::from(p) * PAGE_SIZE + u64::from(o % 4096),
            Addr::Low(x) => u64::from(x),
            Addr::Top(d) => TASK_SIZE.wrapping_add_signed(i64::from(d) * PAGE_SIZE as i64),
            Addr::Wrap(p) => 0u64.wrapping_sub(u64::from(p) * PAGE_SIZE),
            Addr::High(b, d) => {
                let base = if b { 1u64 << 63 } else { 1u64 << 47 };
                base.wrapping_add_signed(i64::from(d) * PAGE_SIZE as i64)
            }
            Addr::Raw(x) => x,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Len {
    Pages(u8),
    Bytes(u16),
    /// Lengths that overflow when page-aligned or added to an address.
    Huge(u8),
    Raw(u64),
}

impl Len {
    fn value(self) -> u64 {
        match self {
            Len::Pages(p) => u64::from(p) * PAGE_SIZE,
            Len::Bytes(b) => u64::from(b),
            Len::Huge(k) => u64::MAX - u64::from(k),
            Len::Raw(x) => x,
        }
    }
}

/// `TASK_SIZE` with 4-level page tables (the model's default).
const TASK_SIZE: u64 = mm_core::mm::TASK_SIZE_4LEVEL;

#[derive(Arbitrary, Debug, Clone)]
enum Op {
    Mmap {
        addr: Addr,
        len: Len,
        prot: u8,
        flags: u32,
        fd: i8,
        off: Len,
    },
    Munmap {
        addr: Addr,
        len: Len,
    },
    Mprotect {
        addr: Addr,
        len: Len,
        prot: u32,
    },
    Brk {
        addr: Addr,
    },
    Mremap {
        old: Addr,
        old_len: Len,
        new_len: Len,
        flags: u8,
        new_addr: Addr,
    },
    Madvise {
        addr: Addr,
        len: Len,
        advice: u8,
    },
    Fault {
        addr: Addr,
        access: u8,
    },
    Open {
        path: u8,
        flags: u32,
    },
    Close {
        fd: i8,
    },
    Dup {
        fd: i8,
        to: Option<i8>,
    },
    Memfd {
        flags: u8,
    },
    Ftruncate {
        fd: i8,
        len: Len,
    },
    /// `mlock`, `mlock2`, `munlock`, `mlockall`, `munlockall` (by `kind`),
    /// with flag words from `flags`.
    Mlock {
        kind: u8,
        addr: Addr,
        len: Len,
        flags: u8,
    },
    /// `mseal`.
    Mseal {
        addr: Addr,
        len: Len,
        flags: u8,
    },
    /// System V shared memory (by `kind`): `shmget` (key from `key`,
    /// size from `len`), `shmat` (`id`, `addr`), `shmdt`, `shmctl(IPC_RMID)`;
    /// flag words from `flags`.
    Shm {
        kind: u8,
        key: u8,
        id: i8,
        addr: Addr,
        len: Len,
        flags: u32,
    },
    /// The protection-key calls (by `kind`): `pkey_mprotect` (key from
    /// `key`, -1 included), `pkey_alloc` (flags and rights from `flags`),
    /// `pkey_free`.
    Pkey {
        kind: u8,
        addr: Addr,
        len: Len,
        prot: u8,
        key: i8,
        flags: u8,
    },
    /// The next call's `n`-th allocation fails (`mm_core::failslab`).
    FailNth {
        n: u8,
        op: Box<Op>,
    },
}

const PATHS: [&str; 4] = ["/fz/a", "/fz/b", "/dev/zero", "/fz/dir/c"];

fn call(op: &Op) -> Call {
    match *op {
        Op::FailNth { ref op, .. } => call(op),
        Op::Mmap {
            addr,
            len,
            prot,
            flags,
            fd,
            off,
        } => Call::Mmap {
            addr: addr.value(),
            len: len.value(),
            prot: u64::from(prot),
            // Every MAP_* bit the ABI defines, and a few it does not.
            flags: u64::from(flags) & 0x1f_ffff,
            fd: i64::from(fd),
            off: off.value(),
        },
        Op::Munmap { addr, len } => Call::Munmap {
            addr: addr.value(),
            len: len.value(),
        },
        Op::Mprotect { addr, len, prot } => Call::Mprotect {
            addr: addr.value(),
            len: len.value(),
            prot: u64::from(prot) & 0x0300_001f,
        },
        Op::Brk { addr } => Call::Brk { addr: addr.value() },
        Op::Mremap {
            old,
            old_len,
            new_len,
            flags,
            new_addr,
        } => Call::Mremap {
            old_addr: old.value(),
            old_len: old_len.value(),
            new_len: new_len.value(),
            flags: u64::from(flags & 0xf),
            new_addr: new_addr.value(),
        },
        Op::Madvise { addr, len, advice } => Call::Madvise {
            addr: addr.value(),
            len: len.value(),
            advice: u64::from(advice % 120),
        },
        Op::Fault { addr, access } => Call::Fault {
            addr: addr.value(),
            access: [Access::Read, Access::Write, Access::Exec][usize::from(access % 3)],
        },
        Op::Open { path, flags } => Call::Open {
            path: PATHS[usize::from(path) % PATHS.len()].to_string(),
            flags: u64::from(flags) & 0o37_777_777,
            mode: Some(0o644),
        },
        Op::Close { fd } => Call::Close { fd: i64::from(fd) },
        Op::Dup { fd, to: None } => Call::Dup { fd: i64::from(fd) },
        Op::Dup { fd, to: Some(to) } => Call::Dup2 {
            oldfd: i64::from(fd),
            newfd: i64::from(to),
        },
        Op::Memfd { flags } => Call::MemfdCreate {
            name: "fz".into(),
            flags: u64::from(flags & 0x1f),
        },
        Op::Ftruncate { fd, len } => Call::Ftruncate {
            fd: i64::from(fd),
            length: len.value(),
        },
        Op::Mlock { kind, addr, len, flags } => {
            let (addr, len, flags) = (addr.value(), len.value(), u64::from(flags & 0xf));
            match kind % 5 {
                0 => Call::Mlock { addr, len },
                1 => Call::Mlock2 { addr, len, flags },
                2 => Call::Munlock { addr, len },
                3 => Call::Mlockall { flags },
                _ => Call::Munlockall,
            }
        }
        Op::Mseal { addr, len, flags } => Call::Mseal {
            addr: addr.value(),
            len: len.value(),
            flags: u64::from(flags & 1),
        },
        Op::Pkey {
            kind,
            addr,
            len,
            prot,
            key,
            flags,
        } => match kind % 3 {
            0 => Call::PkeyMprotect {
                addr: addr.value(),
                len: len.value(),
                prot: u64::from(prot & 0xf),
                pkey: i64::from(key),
            },
            1 => Call::PkeyAlloc {
                flags: u64::from(flags >> 4 == 0xf),
                init_val: u64::from(flags & 7),
            },
            _ => Call::PkeyFree { pkey: i64::from(key) },
        },
        Op::Shm {
            kind,
            key,
            id,
            addr,
            len,
            flags,
        } => {
            let (id, flags) = (i64::from(id), u64::from(flags));
            match kind % 4 {
                0 => Call::Shmget {
                    key: i64::from(key % 3),
                    size: len.value(),
                    flags,
                },
                1 => Call::Shmat {
                    id,
                    addr: addr.value(),
                    flags,
                },
                2 => Call::Shmdt { addr: addr.value() },
                _ => Call::ShmctlRmid { id },
            }
        }
    }
}

/// What a failed call must leave unchanged.
#[derive(Debug, PartialEq)]
struct State {
    vmas: Vec<Vma>,
    counters: [u64; 8],
    maps: String,
}

fn state(t: &Task) -> State {
    let r = t.mm().read();
    let st = r.state();
    let maps = mm_ops::kernel::task_mmu::render_maps(&r, &r.files(), false);
    State {
        vmas: r.snapshot(),
        counters: [
            u64::from(st.map_count),
            st.total_vm,
            st.locked_vm,
            st.data_vm,
            st.exec_vm,
            st.stack_vm,
            // What an error path strands (as the kernel does) aside.
            st.committed - st.committed_stranded,
            st.brk,
        ],
        maps,
    }
}

fuzz_target!(|ops: Vec<Op>| {
    // A small vm.max_map_count: the limit is reachable within a run, and
    // each run allocates a small VMA slab.
    // Protection keys on for inputs of odd length, so that both machines'
    // rules (`mm_ops::kernel::pkeys`) are exercised.
    let cfg = MmConfig {
        max_map_count: 64,
        vma_capacity: 64 + 64,
        pkeys: ops.len() % 2 == 1,
        ..MmConfig::default()
    };
    let mut t: Task = Task::new(cfg);
    {
        let mut w = t.mm().write();
        w.st().start_brk = BASE - 0x100_0000;
        w.st().brk = BASE - 0x100_0000;
    }
    for op in ops.iter().take(256) {
        let c = call(op);
        let before = state(&t);
        if let Op::FailNth { n, .. } = op {
            t.mm().fail_nth().set(u64::from(*n % 16) + 1);
        }
        let out = t.apply(&c, None);
        // An injected failure: the kernel's answers for it, and the
        // invariants; what it may leave changed is tests/failslab.rs's.
        let injected = matches!(op, Op::FailNth { .. }) && !t.mm().fail_nth().pending();
        t.mm().fail_nth().set(0);
        if std::env::var_os("MM_FUZZ_TRACE").is_some() {
            eprintln!("{} = {out:?}", mm_ops::strace::format_call(&c));
        }
        if let Err(e) = mm_ops::invariants::check(t.mm()) {
            panic!("after {c:?} -> {out:?}: {e}");
        }
        if injected {
            assert!(
                matches!(
                    out,
                    Outcome::Val(_) | Outcome::Err(Errno::ENOMEM) | Outcome::Err(Errno::EAGAIN)
                ),
                "{c:?} with an allocation failing -> {out:?}"
            );
            continue;
        }
        if let Outcome::Err(_) = out {
            let after = state(&t);
            match c {
                Call::Mprotect { .. }
                | Call::PkeyMprotect { .. }
                | Call::Madvise { .. }
                | Call::Mlock { .. }
                | Call::Mlock2 { .. }
                | Call::Munlock { .. } => {}
                // MREMAP_FIXED unmaps the destination first, and a shrink
                // unmaps the tail, before a later step can fail (mremap_to).
                Call::Mremap {
                    flags,
                    old_len,
                    new_len,
                    ..
                } if flags & MREMAP_FIXED != 0 || new_len < old_len => {}
                Call::Munmap { .. } | Call::Mremap { .. } => {
                    assert_eq!(coalesced(&after.vmas), coalesced(&before.vmas), "{c:?} -> {out:?}");
                    // map_count aside: a kept split adds one.
                    assert_eq!(after.counters[1..], before.counters[1..], "{c:?} -> {out:?}");
                }
                Call::Mmap { flags, .. } if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0 => {}
                // SHM_REMAP maps as MAP_FIXED does.
                Call::Shmat { flags, .. } if flags & mm_ops::kernel::shm::SHM_REMAP != 0 => {}
                _ => assert_eq!(after, before, "{c:?} -> {out:?}"),
            }
        }
    }
    // Unmap everything, close everything.
    let all = Call::Munmap {
        addr: 0,
        len: TASK_SIZE,
    };
    let sealed = t
        .mm()
        .read()
        .snapshot()
        .iter()
        .any(|v| v.flags.contains(mm_core::VmFlags::SEALED));
    if sealed {
        // A sealed VMA cannot be unmapped: nothing is.
        let before = state(&t);
        assert_eq!(t.apply(&all, None), Outcome::Err(Errno::EPERM));
        assert_eq!(state(&t), before, "munmap over a sealed VMA changed something");
        return;
    }
    assert_eq!(t.apply(&all, None), Outcome::Val(0));
    for fd in -1..=300 {
        let _ = t.apply(&Call::Close { fd }, None);
    }
    mm_ops::invariants::check(t.mm()).expect("after unmapping everything");
    let r = t.mm().read();
    let st = r.state();
    assert_eq!(r.vma_count(), 0);
    assert_eq!(
        st.committed, st.committed_stranded,
        "charge left after unmapping everything"
    );
    assert!(st.guard_pages.is_empty(), "guard markers left: {:?}", st.guard_pages);
    assert_eq!(r.files().live_files(), 0, "open files left");
});
