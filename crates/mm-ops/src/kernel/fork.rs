//! `fork(2)` and `CLONE_VM`: a child's address space (`kernel/fork.c`
//! `dup_mm`, `mm/mmap.c` `dup_mmap`, `mm/rmap.c` `anon_vma_fork`) and the
//! teardown of one that failed or exits (`exit_mmap`).
//!
//! What the child gets, VMA by VMA, as `dup_mmap` does it:
//! * a `VM_DONTCOPY` VMA (`MADV_DONTFORK`) is not copied, and its pages
//!   leave the child's `total_vm`/`data_vm`/… counters;
//! * a `VM_ACCOUNT` VMA is charged to the commit count first
//!   (`security_vm_enough_memory_mm`): under `OVERCOMMIT_NEVER` the fork
//!   fails with `ENOMEM` once the parent's charge plus the child's reaches
//!   the commit limit (the model counts only these two address spaces; the
//!   kernel counts every process), and everything charged so far is given
//!   back;
//! * `VM_LOCKED` and `VM_LOCKONFAULT` are cleared (`VM_LOCKED_MASK`), and
//!   `locked_vm` starts at 0 (`mm_init`); maps is unchanged, smaps'
//!   `VmFlags` lose `lo`/`lf`;
//! * a `VM_WIPEONFORK` VMA is copied without its memory: no `anon_vma`,
//!   no page tables (so no guard markers either);
//! * any other VMA with an `anon_vma` gets a new one of its own,
//!   `anon_vma_fork`, one per VMA even where the parent's VMAs share one,
//!   whose chain also links the parent's: the child's VMA is then a "fork
//!   child" (`vma_is_fork_child`), which the model marks in the id
//!   ([`AnonVmaId::FORK_CHILD`]). Such a VMA merges with no VMA that has
//!   no `anon_vma` and lends its `anon_vma` to no faulting neighbour
//!   (`reusable_anon_vma`), so a new mapping next to it stays separate in
//!   the child though the same calls merge in the parent. The parent's
//!   VMAs and their chains are unchanged;
//! * a VMA without `anon_vma` gets none;
//! * guard markers (page-table state) are copied with the page tables of
//!   the VMAs that copy them (`copy_page_range`).
//!
//! `def_flags` keeps only `VM_NOHUGEPAGE` (`VM_INIT_DEF_MASK`), so
//! `mlockall(MCL_FUTURE)` is not inherited. `max_map_count` and
//! `RLIMIT_AS` are not checked: the child has the parent's VMAs less some.
//!
//! Files: the kernel's child shares the parent's open file descriptions.
//! The model's file table belongs to the address space, so the child's is
//! a copy ([`FileTable::fork_copy`](mm_core::file::FileTable::fork_copy)):
//! the same [`FileId`](mm_core::file::FileId)s, inodes, inode numbers and
//! names, so the child's maps lines are the parent's and a later `mmap` of
//! an inherited descriptor merges with an inherited VMA of that file, as
//! in the kernel. What one side later does to a file (`ftruncate`, a
//! rename) is not seen by the other, and a shmem object's commit charge
//! stays with the parent.

use std::sync::Arc;

use mm_core::failslab::AllocSite;
use mm_core::{AnonVmaId, BarrierPolicy, FaultView, MmStruct, MmWrite, Overcommit, VmFlags, VmaView};

use crate::task::Task;
use crate::uapi::Errno;
use crate::util::{vm_commit_limit, vm_stat_account, vm_unacct_memory};

impl<P: BarrierPolicy> Task<P> {
    /// `fork(2)`: a child with a copy of this address space ([`dup_mm`])
    /// and of the descriptor table, on the same open file descriptions
    /// (in the model: the same ids in the child's copied file table).
    /// `ENOMEM` as the kernel's fork fails, the parent unchanged. The
    /// child's VMAs come from the parent's VMA cache; dropping the child's
    /// last task gives them back ([`exit_mmap`]).
    ///
    /// ```
    /// use mm_core::VmaView;
    /// use mm_ops::Task;
    /// use mm_ops::uapi::*;
    ///
    /// let mut parent: Task = Task::new(Default::default());
    /// let rw = PROT_READ | PROT_WRITE;
    /// let a = parent.mmap(0, 4096, rw, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)?;
    /// parent.fault(a, mm_ops::Access::Write).unwrap(); // gives it an anon_vma
    /// let mut child = parent.fork()?;
    /// // Below it, a new mapping merges in the parent but not in the child.
    /// let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
    /// parent.mmap(a - 4096, 4096, rw, flags, -1, 0)?;
    /// child.mmap(a - 4096, 4096, rw, flags, -1, 0)?;
    /// assert_eq!(parent.mm().read().vma_count(), 1);
    /// assert_eq!(child.mm().read().vma_count(), 2);
    /// # Ok::<(), mm_ops::Errno>(())
    /// ```
    pub fn fork(&mut self) -> Result<Task<P>, Errno> {
        let mm = Arc::new(dup_mm(self.mm())?);
        let mut child = self.with_descriptors_of(mm, false);
        child.exit_on_drop = true;
        // shm_open for each copied System V segment VMA: they count in
        // shm_nattch.
        child.shm_ns().register(child.mm());
        Ok(child)
    }

    /// `clone(CLONE_VM)` without `CLONE_FILES` (`vfork` is one): a child
    /// that shares this address space (the same `Arc<MmStruct>`: every
    /// later call of either is seen by both) with a copy of the descriptor
    /// table.
    pub fn clone_vm(&self) -> Task<P> {
        self.with_descriptors_of(self.mm().clone(), true)
    }
}

/// `dup_mm` (`kernel/fork.c`): a new address space for a fork child, with
/// `oldmm`'s configuration and layout, allocating its VMAs from the same
/// cache (`vm_area_cachep`; a cache of its own when the shared one, which
/// unlike the kernel's is bounded, lacks room for a copy of every VMA),
/// its files a copy of `oldmm`'s, and its VMAs
/// copied by [`dup_mmap`]'s rules (see the module documentation). On
/// failure nothing is left: `oldmm` is unchanged, the child's VMAs are
/// freed ([`exit_mmap`]).
pub fn dup_mm<P: BarrierPolicy>(oldmm: &MmStruct<P>) -> Result<MmStruct<P>, Errno> {
    // dup_mmap: mmap_write_lock_killable(oldmm) for the whole copy.
    let old = oldmm.write();
    let cfg = old.state().cfg.clone();
    // The kernel's slab grows; the model's is bounded: a child that would
    // not fit in the shared one gets one of its own.
    let shared = oldmm.vma_cache();
    let room = shared.capacity().saturating_sub(shared.in_use());
    let cache = if room >= old.state().map_count as usize {
        shared.clone()
    } else {
        mm_core::vma_cache::VmaCache::new(cfg.vma_capacity)
    };
    let mm = MmStruct::with_cache(cfg, cache);
    // The child's thread starts with the parent's PKRU (its FPU state).
    mm.set_pkru(oldmm.pkru());
    let files = old.files().fork_copy(mm.file_slots()).ok_or(Errno::ENOMEM)?;
    *mm.files() = files;
    let r = dup_mmap(&old, &mm);
    drop(old);
    match r {
        Ok(()) => Ok(mm),
        Err(e) => {
            exit_mmap(&mm);
            Err(e)
        }
    }
}

/// `security_vm_enough_memory_mm` for a fork child's `pages`: the charge
/// of both address spaces counts against the commit limit.
fn fork_enough_memory(old: &mm_core::MmState, child: &mut mm_core::MmState, pages: u64) -> bool {
    let cfg = &old.cfg;
    let ok = match cfg.overcommit {
        Overcommit::Always => true,
        Overcommit::Guess => pages <= cfg.totalram_pages + cfg.total_swap_pages,
        Overcommit::Never => old.committed + child.committed + pages < vm_commit_limit(cfg),
    };
    if ok {
        child.committed += pages;
    }
    ok
}

/// `dup_mmap` (`mm/mmap.c`): copies `old`'s VMAs into the empty `mm`, with
/// both write-locked. On `ENOMEM` the VMAs copied so far stay in `mm`, for
/// the caller's [`exit_mmap`].
pub fn dup_mmap<P: BarrierPolicy>(old: &MmWrite<'_, P>, mm: &MmStruct<P>) -> Result<(), Errno> {
    let ost = old.state();
    let mut w = mm.write();
    {
        let st = w.st();
        st.start_brk = ost.start_brk;
        st.brk = ost.brk;
        st.start_data = ost.start_data;
        st.end_data = ost.end_data;
        st.start_stack = ost.start_stack;
        // mm_init: def_flags & VM_INIT_DEF_MASK.
        st.def_flags = ost.def_flags & VmFlags::NOHUGEPAGE;
        // The protection-key state comes with the copied mm_struct (and
        // arch_dup_pkeys, with keys on).
        st.pkey_allocation_map = ost.pkey_allocation_map;
        st.execute_only_pkey = ost.execute_only_pkey;
    }
    let fail = old.fail_nth();
    // __mt_dup: the child's tree, node for node.
    if fail.should_fail(AllocSite::TreePrealloc) {
        return Err(Errno::ENOMEM);
    }
    let mut copied = Vec::new();
    for v in old.snapshot() {
        if v.flags.contains(VmFlags::DONTCOPY) {
            continue;
        }
        let pages = v.pages();
        let mut charge = 0;
        if v.flags.contains(VmFlags::ACCOUNT) {
            if !fork_enough_memory(ost, w.st(), pages) {
                return Err(Errno::ENOMEM);
            }
            charge = pages;
        }
        let mut c = v;
        c.flags &= !VmFlags::LOCKED_MASK;
        let wipe = v.flags.contains(VmFlags::WIPEONFORK);
        // vm_area_dup, then anon_vma_fork (anon_vma_clone's chain entries,
        // anon_vma_alloc) unless VM_WIPEONFORK gives a clean slate.
        let forks_anon = !wipe && v.anon_vma.is_some();
        if fail.should_fail(AllocSite::VmAreaAlloc) || (forks_anon && fail.should_fail(AllocSite::AnonVmaClone)) {
            vm_unacct_memory(w.st(), charge);
            return Err(Errno::ENOMEM);
        }
        c.anon_vma = forks_anon.then(|| AnonVmaId(w.new_anon_vma().0 | AnonVmaId::FORK_CHILD));
        // vma_iter_bulk_store cannot fail after __mt_dup; the model's
        // slab can be full.
        if w.vma_link(c).is_err() {
            vm_unacct_memory(w.st(), charge);
            return Err(Errno::ENOMEM);
        }
        if let Some(f) = c.file {
            w.files().get(f);
        }
        let st = w.st();
        st.map_count += 1;
        vm_stat_account(st, c.flags, pages as i64);
        if !wipe {
            copied.push((c.start, c.end));
        }
    }
    // The parent's references of the VMAs left behind, in the copied table.
    let mut files = w.files();
    for v in old.snapshot() {
        if let (true, Some(f)) = (v.flags.contains(VmFlags::DONTCOPY), v.file) {
            files.put(f);
        }
    }
    drop(files);
    // copy_hugetlb_page_range: the parent's private huge pages, under the
    // copied VMAs only.
    crate::hugetlb::hugetlb_fork_prune(&w);
    // copy_page_range: guard markers under the VMAs whose tables are copied.
    let guards = &mut w.st().guard_pages;
    for (&s, &e) in &ost.guard_pages {
        for &(vs, ve) in &copied {
            let (a, b) = (s.max(vs), e.min(ve));
            if a >= b {
                continue;
            }
            match guards.iter_mut().next_back() {
                Some((_, end)) if *end == a => *end = b,
                _ => {
                    guards.insert(a, b);
                }
            }
        }
    }
    Ok(())
}

/// `exit_mmap` (`mm/mmap.c`), as far as the model keeps state: unmaps
/// every VMA (giving its slot back to the shared VMA cache, its file
/// reference back to the table and its commit charge back), and zeroes
/// the counters. What descriptors still hold (a shmem object's charge)
/// and the stranded charge stay.
pub fn exit_mmap<P: BarrierPolicy>(mm: &MmStruct<P>) {
    let mut w = mm.write();
    let mut unacct = 0;
    for id in w.vma_ids() {
        let v = *w.vma_ref(id);
        w.vma_unlink(id);
        if v.flags.contains(VmFlags::ACCOUNT) {
            unacct += v.pages();
        }
        if let Some(f) = v.file {
            unacct += w.files().put(f);
        }
    }
    let st = w.st();
    vm_unacct_memory(st, unacct);
    st.map_count = 0;
    st.total_vm = 0;
    st.locked_vm = 0;
    st.data_vm = 0;
    st.exec_vm = 0;
    st.stack_vm = 0;
    st.locked_vm_stranded = 0;
    st.guard_pages.clear();
}
