//! The address space's invariants, checkable after any call: what the
//! fuzz targets (`fuzz/`) and the allocation-failure tests assert.
//!
//! Each holds in the kernel by construction (`validate_mm` in `mm/vma.c`
//! checks the first three under `CONFIG_DEBUG_VM_MAPLE_TREE`); the model
//! keeps the same state in several places, so each is a consistency check
//! between them:
//! 1. the tree, the writer's VMA copies and the published copies agree
//!    ([`MmRead::check_published`](mm_core::MmRead::check_published));
//! 2. VMAs are page aligned, non-empty, sorted, non-overlapping and below
//!    `TASK_SIZE`;
//! 3. `map_count` is the number of VMAs;
//! 4. `total_vm`, `data_vm`, `exec_vm`, `stack_vm` and `locked_vm` equal
//!    their sums over the VMAs (`vm_stat_account`'s classification;
//!    `VM_LOCKED` pages; less what the kernel leaves in `locked_vm`, see
//!    [`MmState::locked_vm_stranded`](mm_core::MmState::locked_vm_stranded));
//! 5. the commit charge equals the pages of `VM_ACCOUNT` VMAs plus the
//!    charges of live shmem objects (`shmem_acct_size`) plus what stack
//!    growth charged to VMAs without `VM_ACCOUNT` (never given back, as
//!    in the kernel);
//! 6. every guard marker lies inside a VMA (markers are page-table state,
//!    and page tables exist only under VMAs).

use mm_core::{BarrierPolicy, MmStruct, VmFlags, Vma, VmaView};

use crate::uapi::{PAGE_MASK, PAGE_SHIFT};

/// The VMAs with neighbours of identical attributes joined: what a failed
/// call that keeps its splits (munmap, mremap, brk) leaves unchanged.
pub fn coalesced(vmas: &[Vma]) -> Vec<Vma> {
    let mut out: Vec<Vma> = Vec::new();
    for v in vmas {
        if let Some(l) = out.last_mut()
            && l.end == v.start
            && (l.flags, l.file, l.anon_vma, l.special) == (v.flags, v.file, v.anon_vma, v.special)
            && l.pgoff + ((l.end - l.start) >> PAGE_SHIFT) == v.pgoff
        {
            l.end = v.end;
            continue;
        }
        out.push(*v);
    }
    out
}

/// Checks every invariant above; the error names the first one broken.
pub fn check<P: BarrierPolicy>(mm: &MmStruct<P>) -> Result<(), String> {
    let r = mm.read();
    r.check_published()?;
    let st = r.state();
    let vmas = r.snapshot();
    let mut sums = [0u64; 5];
    let mut accounted = 0;
    let mut prev_end = 0;
    for v in &vmas {
        if v.start & !PAGE_MASK != 0 || v.end & !PAGE_MASK != 0 || v.start >= v.end {
            return Err(format!("VMA {:#x}-{:#x}: not a page-aligned range", v.start, v.end));
        }
        if v.start < prev_end {
            return Err(format!("VMA {:#x}-{:#x} overlaps its predecessor", v.start, v.end));
        }
        if v.end > st.cfg.task_size && v.special.is_none() {
            return Err(format!("VMA {:#x}-{:#x} ends above TASK_SIZE", v.start, v.end));
        }
        prev_end = v.end;
        let pages = (v.end - v.start) >> PAGE_SHIFT;
        sums[0] += pages;
        if v.flags.is_exec_mapping() {
            sums[1] += pages;
        } else if v.flags.is_stack_mapping() {
            sums[2] += pages;
        } else if v.flags.is_data_mapping() {
            sums[3] += pages;
        }
        if v.flags.contains(VmFlags::LOCKED) {
            sums[4] += pages;
        }
        if v.flags.contains(VmFlags::ACCOUNT) {
            accounted += pages;
        }
    }
    if st.map_count as usize != vmas.len() {
        return Err(format!("map_count {} but {} VMAs", st.map_count, vmas.len()));
    }
    // locked_vm less what the kernel leaves there without a locked VMA.
    let counters = [
        st.total_vm,
        st.exec_vm,
        st.stack_vm,
        st.data_vm,
        st.locked_vm - st.locked_vm_stranded,
    ];
    if counters != sums {
        return Err(format!(
            "counters (total, exec, stack, data, locked) {counters:?}, sums over the VMAs {sums:?}"
        ));
    }
    let objects: u64 = r.files().live_inodes().map(|i| i.acct_pages).sum();
    if st.committed != accounted + objects + st.committed_stranded {
        return Err(format!(
            "commit charge {} pages, but VM_ACCOUNT VMAs hold {accounted}, shmem objects {objects} \
             and stack growth without VM_ACCOUNT {}",
            st.committed, st.committed_stranded
        ));
    }
    for (&s, &e) in &st.guard_pages {
        let mut at = s;
        for v in vmas.iter().skip_while(|v| v.end <= s) {
            if v.start > at || at >= e {
                break;
            }
            at = v.end;
        }
        if at < e {
            return Err(format!("guard marker {s:#x}-{e:#x} outside any VMA at {at:#x}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::Task;
    use crate::uapi::*;

    /// A shrink-and-move mremap of an accounted VMA strands the shrunk
    /// pages' charge, as 6.18 does; the checker counts it as stranded.
    #[test]
    fn shrink_and_move_strands_its_delta() {
        let mut t: Task = Task::new(mm_core::MmConfig::default());
        let rw = PROT_READ | PROT_WRITE;
        let anon = MAP_PRIVATE | MAP_ANONYMOUS;
        let dst = t.mmap(0, PAGE_SIZE, rw, anon, -1, 0).expect("mmap");
        let a = t.mmap(0, 65 * PAGE_SIZE, rw, anon, -1, 0).expect("mmap");
        let call = crate::call::Call::Mremap {
            old_addr: a,
            old_len: 65 * PAGE_SIZE,
            new_len: PAGE_SIZE,
            flags: MREMAP_MAYMOVE | MREMAP_FIXED,
            new_addr: dst,
        };
        assert_eq!(t.apply(&call, None), crate::call::Outcome::Val(dst));
        check(t.mm()).expect("consistent");
        let r = t.mm().read();
        assert_eq!((r.state().committed, r.state().committed_stranded), (1 + 64, 64));
    }

    /// An MREMAP_DONTUNMAP move of a locked VMA leaves the source's pages in
    /// locked_vm, as 6.18 does (VmLck 256 -> 512 kB for 256 kB on the host).
    #[test]
    fn dontunmap_of_locked_memory_strands_locked_vm() {
        let mut t: Task = Task::new(mm_core::MmConfig::default());
        let len = 64 * PAGE_SIZE;
        let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED;
        let a = t.mmap(0, len, PROT_READ | PROT_WRITE, flags, -1, 0).expect("mmap");
        let call = crate::call::Call::Mremap {
            old_addr: a,
            old_len: len,
            new_len: len,
            flags: MREMAP_MAYMOVE | MREMAP_DONTUNMAP,
            new_addr: 0,
        };
        assert!(matches!(t.apply(&call, None), crate::call::Outcome::Val(_)));
        check(t.mm()).expect("consistent");
        let r = t.mm().read();
        assert_eq!((r.state().locked_vm, r.state().locked_vm_stranded), (128, 64));
    }

    /// Each invariant, broken on purpose, is reported.
    #[test]
    fn each_broken_invariant_is_reported() {
        let fresh = || {
            let mut t: Task = Task::new(mm_core::MmConfig::default());
            let a = t
                .mmap(
                    0,
                    3 * PAGE_SIZE,
                    PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS,
                    -1,
                    0,
                )
                .expect("mmap");
            crate::mprotect::do_mprotect(t.mm(), a, PAGE_SIZE, PROT_READ).expect("mprotect");
            (t, a)
        };
        let (t, _) = fresh();
        check(t.mm()).expect("a consistent address space");
        type Break = fn(&mut mm_core::MmState, u64);
        let breaks: [(&str, Break); 5] = [
            ("map_count", |st, _| st.map_count += 1),
            ("counters", |st, _| st.data_vm -= 1),
            ("counters", |st, _| st.locked_vm += 1),
            ("commit charge", |st, _| st.committed += 1),
            ("guard marker", |st, a| {
                st.guard_pages.insert(a + 64 * PAGE_SIZE, a + 65 * PAGE_SIZE);
            }),
        ];
        for (what, f) in breaks {
            let (t, a) = fresh();
            f(t.mm().write().st(), a);
            let e = check(t.mm()).expect_err(what);
            assert!(e.contains(what), "{what}: {e}");
        }
    }
}
