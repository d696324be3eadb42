//! The address-space system calls as methods of [`Task`], one calling
//! style for all: byte addresses and lengths, the kernel's flag values
//! ([`crate::uapi`]), and the kernel's answer (`Err(Errno)` where the
//! system call returns `-1`). [`Task::mmap`] and the descriptor calls
//! ([`Task::open`], [`Task::memfd_create`], [`Task::close`], [`Task::dup`],
//! [`Task::ftruncate`]) are in [`crate::task`].
//!
//! The methods behind them (`vm_munmap`, `do_mprotect`, `sys_mremap`, …)
//! stay public in their modules for kernel developers who want the
//! kernel's own entry points.
//!
//! ```
//! use mm_core::VmaView;
//! use mm_ops::Task;
//! use mm_ops::uapi::*;
//!
//! let mut t: Task = Task::new(Default::default());
//! let a = t.mmap(0, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)?;
//! t.mprotect(a + 4096, 4096, PROT_READ)?; // splits the mapping in three
//! assert_eq!(t.mm().read().vma_count(), 3);
//! t.munmap(a, 3 * 4096)?;
//! assert_eq!(t.mprotect(a, 4096, PROT_READ), Err(mm_ops::Errno::ENOMEM));
//! # Ok::<(), mm_ops::Errno>(())
//! ```

use mm_core::{BarrierPolicy, VmaView};

use crate::call::{Access, Signal};
use crate::madvise::do_madvise;
use crate::memory::handle_user_fault;
use crate::mlock::{sys_mlock, sys_mlock2, sys_mlockall, sys_munlock, sys_munlockall};
use crate::mmap::{sys_brk, vm_munmap};
use crate::mprotect::do_mprotect;
use crate::mremap::sys_mremap;
use crate::task::Task;
use crate::task_mmu::render_maps;
use crate::uapi::{Errno, rlimit};

impl<P: BarrierPolicy> Task<P> {
    /// `munmap(2)` (`mm/mmap.c` `vm_munmap`).
    pub fn munmap(&mut self, addr: u64, len: u64) -> Result<(), Errno> {
        let r = vm_munmap(self.mm(), addr, len);
        self.reap_shm();
        r
    }

    /// `mprotect(2)` (`mm/mprotect.c` `do_mprotect_pkey`).
    pub fn mprotect(&mut self, addr: u64, len: u64, prot: u64) -> Result<(), Errno> {
        do_mprotect(self.mm(), addr, len, prot)
    }

    /// `pkey_mprotect(2)` (`mm/mprotect.c` `do_mprotect_pkey`): `mprotect`
    /// that gives the range protection key `pkey` (an allocated one; -1:
    /// as `mprotect`). See [`pkeys`](crate::kernel::pkeys).
    pub fn pkey_mprotect(&mut self, addr: u64, len: u64, prot: u64, pkey: i32) -> Result<(), Errno> {
        crate::kernel::mprotect::do_mprotect_pkey(self.mm(), addr, len, prot, pkey)
    }

    /// `pkey_alloc(2)`: a new protection key, its rights in PKRU set from
    /// `init_val` (`PKEY_DISABLE_ACCESS`, `PKEY_DISABLE_WRITE`).
    pub fn pkey_alloc(&mut self, flags: u64, init_val: u64) -> Result<u64, Errno> {
        crate::kernel::pkeys::sys_pkey_alloc(self.mm(), flags, init_val)
    }

    /// `pkey_free(2)`.
    pub fn pkey_free(&mut self, pkey: i32) -> Result<(), Errno> {
        crate::kernel::pkeys::sys_pkey_free(self.mm(), pkey as u32 as u64)
    }

    /// `mremap(2)` (`mm/mremap.c` `do_mremap`): the new address.
    /// `new_addr` is the fifth argument, the target of an
    /// `MREMAP_FIXED` move ([`sys_mremap`] treats it as the kernel does).
    pub fn mremap(
        &mut self,
        old_addr: u64,
        old_len: u64,
        new_len: u64,
        flags: u64,
        new_addr: u64,
    ) -> Result<u64, Errno> {
        let r = sys_mremap(self.mm(), old_addr, old_len, new_len, flags, new_addr);
        self.reap_shm();
        r
    }

    /// `madvise(2)` (`mm/madvise.c` `do_madvise`).
    pub fn madvise(&mut self, addr: u64, len: u64, advice: u64) -> Result<(), Errno> {
        do_madvise(self.mm(), addr, len, advice)
    }

    /// `mlock(2)` (`mm/mlock.c` `do_mlock`): locks the pages of the range
    /// (widened to whole pages), splitting VMAs as needed.
    pub fn mlock(&mut self, addr: u64, len: u64) -> Result<(), Errno> {
        sys_mlock(self.mm(), addr, len)
    }

    /// `mlock2(2)` (`mm/mlock.c`): `flags` is 0 or `MLOCK_ONFAULT`.
    pub fn mlock2(&mut self, addr: u64, len: u64, flags: u64) -> Result<(), Errno> {
        sys_mlock2(self.mm(), addr, len, flags)
    }

    /// `munlock(2)` (`mm/mlock.c`).
    pub fn munlock(&mut self, addr: u64, len: u64) -> Result<(), Errno> {
        sys_munlock(self.mm(), addr, len)
    }

    /// `mseal(2)` (`mm/mseal.c` `do_mseal`): seals the VMAs of a range
    /// without holes against `munmap`, `mremap`, `mprotect`, `MAP_FIXED`
    /// and discarding `madvise`; `flags` must be 0.
    pub fn mseal(&mut self, addr: u64, len: u64, flags: u64) -> Result<(), Errno> {
        crate::kernel::mseal::do_mseal(self.mm(), addr, len, flags)
    }

    /// `remap_file_pages(2)` ([`sys_remap_file_pages`](crate::kernel::fremap::sys_remap_file_pages)).
    /// On an attach of a System V segment removed with `IPC_RMID` that no
    /// other address space maps, the mapping's unmap may close the
    /// segment's last attach, which destroys it: the new mapping then
    /// fails with `EINVAL`, leaving the range unmapped, as on the host.
    pub fn remap_file_pages(&mut self, start: u64, size: u64, prot: u64, pgoff: u64, flags: u64) -> Result<(), Errno> {
        let last = self.removed_segment_attached_here_only(start);
        let mm = self.mm().clone();
        if let Some(i) = last {
            mm.files().inode_mut(i).shm_last_attaches = true;
        }
        let r = crate::kernel::fremap::sys_remap_file_pages(&mm, start, size, prot, pgoff, flags);
        if let Some(i) = last
            && let Some(inode) = mm.files().try_inode_mut(i)
        {
            inode.shm_last_attaches = false;
        }
        self.reap_shm();
        r
    }

    /// The inode of the System V attach mapped at `addr`, if its segment
    /// was removed (`IPC_RMID`) and no other address space maps it.
    fn removed_segment_attached_here_only(&self, addr: u64) -> Option<mm_core::file::InodeId> {
        let (inode, id) = {
            let r = self.mm().read();
            let file = r.vma_lookup(addr).and_then(|v| r.vma_ref(v).file)?;
            let files = r.files();
            let inode = files.file(file).inode;
            let i = files.inode(inode);
            if !i.is_sysv_shm() {
                return None;
            }
            (inode, i.ino as i64)
        };
        let ns = self.shm_ns();
        ns.removed_and_attached_only_by(id, self.mm()).then_some(inode)
    }

    /// `setrlimit(2)`/`prlimit64(2)` on the calling process
    /// (`kernel/sys.c` `do_prlimit`). `resource` is the system call's
    /// `unsigned int`: its upper 32 bits are dropped. In the kernel's order:
    /// a resource out of range, or a soft limit above the hard one, is
    /// `EINVAL`; an `RLIMIT_NOFILE` hard limit above `fs.nr_open` (its
    /// default, 1,048,576) is `EPERM`, and so is raising any hard limit
    /// without `CAP_SYS_RESOURCE`. The hard limit is kept
    /// ([`MmConfig::rlimit_max`](mm_core::MmConfig::rlimit_max)); the soft
    /// limits of the address space's resources (`AS`, `DATA`, `STACK`,
    /// `MEMLOCK`, `NOFILE`, `FSIZE`) take effect at once, the others
    /// change nothing here.
    pub fn setrlimit(&mut self, resource: u64, cur: u64, max: u64) -> Result<(), Errno> {
        const NR_OPEN: u64 = 1 << 20;
        let resource = resource as u32 as u64;
        if resource >= mm_core::RLIM_NLIMITS as u64 || cur > max {
            return Err(Errno::EINVAL);
        }
        if resource == rlimit::NOFILE && max > NR_OPEN {
            return Err(Errno::EPERM);
        }
        let mm = self.mm().clone();
        let mut w = mm.write();
        let cfg = &mut w.st().cfg;
        if max > cfg.rlimit_max[resource as usize] && !cfg.cap_sys_resource {
            return Err(Errno::EPERM);
        }
        cfg.rlimit_max[resource as usize] = max;
        match resource {
            rlimit::FSIZE => cfg.rlimit_fsize = cur,
            rlimit::DATA => cfg.rlimit_data = cur,
            rlimit::STACK => cfg.rlimit_stack = cur,
            rlimit::NOFILE => cfg.rlimit_nofile = cur,
            rlimit::MEMLOCK => cfg.rlimit_memlock = cur,
            rlimit::AS => cfg.rlimit_as = cur,
            _ => return Ok(()),
        }
        let (nofile, fsize) = (cfg.rlimit_nofile, cfg.rlimit_fsize);
        mm.set_file_rlimits(nofile, fsize);
        Ok(())
    }

    /// `shmget(2)` (`ipc/shm.c` `ksys_shmget`): the id of the System V
    /// segment `key` names, or of a new one. `want_id` is the id a
    /// recording returned (see [`ksys_shmget`](crate::kernel::shm::ksys_shmget)).
    pub fn shmget(&mut self, key: i64, size: u64, flags: u64, want_id: Option<i64>) -> Result<i64, Errno> {
        let mm = self.mm().clone();
        self.with_shm(|ns| crate::kernel::shm::ksys_shmget(ns, &mm, key, size, flags, want_id))
    }

    /// `shmat(2)` (`ipc/shm.c` `do_shmat`): maps segment `id` shared, at
    /// `addr` or anywhere, and returns the address.
    pub fn shmat(&mut self, id: i64, addr: u64, flags: u64) -> Result<u64, Errno> {
        let mm = self.mm().clone();
        self.with_shm(|ns| crate::kernel::shm::do_shmat(ns, &mm, id, addr, flags))
    }

    /// `shmdt(2)` (`ipc/shm.c` `ksys_shmdt`): unmaps the segment attached
    /// at `addr`.
    pub fn shmdt(&mut self, addr: u64) -> Result<(), Errno> {
        let mm = self.mm().clone();
        self.with_shm(|ns| crate::kernel::shm::ksys_shmdt(ns, &mm, addr))
    }

    /// `shmctl(id, IPC_RMID, NULL)` (`ipc/shm.c` `shmctl_down`).
    pub fn shmctl_rmid(&mut self, id: i64) -> Result<(), Errno> {
        let mm = self.mm().clone();
        self.with_shm(|ns| crate::kernel::shm::shmctl_rmid(ns, &mm, id))
    }

    /// `mlockall(2)` (`mm/mlock.c`): `MCL_CURRENT`, `MCL_FUTURE`,
    /// `MCL_ONFAULT`.
    pub fn mlockall(&mut self, flags: u64) -> Result<(), Errno> {
        sys_mlockall(self.mm(), flags)
    }

    /// `munlockall(2)` (`mm/mlock.c`).
    pub fn munlockall(&mut self) -> Result<(), Errno> {
        sys_munlockall(self.mm())
    }

    /// `brk(2)` (`mm/mmap.c` `sys_brk`): the new break, or the old one when
    /// the kernel refuses (as the system call does; it never fails).
    /// `brk(0)` reads the break.
    pub fn brk(&mut self, addr: u64) -> u64 {
        sys_brk(self.mm(), addr)
    }

    /// A user access to `addr` (`arch/x86/mm/fault.c`
    /// `do_user_addr_fault`): `Ok` when the access may proceed (the page
    /// is faulted in, the stack grown), or the signal the task gets.
    pub fn fault(&mut self, addr: u64, access: Access) -> Result<(), Signal> {
        handle_user_fault(self.mm(), addr, access)
    }

    /// `/proc/PID/maps`, `[vsyscall]` line included
    /// (`fs/proc/task_mmu.c` `show_map`).
    pub fn maps(&self) -> String {
        let r = self.mm().read();
        let files = r.files();
        render_maps(&r, &files, true)
    }

    /// `(mm->start_brk, mm->brk)`: where the heap starts and the current
    /// break.
    pub fn brk_range(&self) -> (u64, u64) {
        let r = self.mm().read();
        (r.state().start_brk, r.state().brk)
    }

    /// Sets `mm->start_brk` and `mm->brk`, as `exec` does (the heap is
    /// `[start_brk, brk)`, named `[heap]` in maps). Call it before the
    /// first `brk`, or after importing a snapshot whose break is known
    /// exactly (`/proc/PID/stat` field 47 holds `start_brk`).
    pub fn set_brk(&mut self, start_brk: u64, brk: u64) {
        let mut w = self.mm().write();
        let st = w.st();
        st.start_brk = start_brk;
        st.brk = brk;
    }

    /// `mm->start_stack`.
    pub fn start_stack(&self) -> u64 {
        self.mm().read().state().start_stack
    }

    /// Sets `mm->start_stack` (`/proc/PID/stat` field 28): the VMA that
    /// contains it is `[stack]` in maps.
    pub fn set_start_stack(&mut self, addr: u64) {
        self.mm().write().st().start_stack = addr;
    }
}
