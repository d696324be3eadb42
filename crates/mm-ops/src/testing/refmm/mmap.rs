//! The reference's `mmap`: the argument checks and the flags in the
//! kernel's order, the placement of a mapping the kernel places
//! (`unmapped_area_topdown`, hints, THP alignment), the overcommit
//! accounting and `MAP_POPULATE`.

use mm_core::VmFlags;

use super::{GUARD, MIN_ADDR, MMAP_BASE, RAM_PAGES, RefMm, TASK_SIZE, pages};
use crate::testing::reference::*;
use crate::uapi::*;

impl RefMm {
    /// The lowest gap of `[lo, hi)` pages... highest-first search for
    /// `unmapped_area_topdown`, with a grows-down neighbour's guard gap.
    fn topdown(&self, len: u64, mut hi: u64) -> Option<u64> {
        let lo = MIN_ADDR >> PAGE_SHIFT;
        loop {
            let gap = self
                .layout
                .gaps(lo..hi)
                .into_iter()
                .rev()
                .find(|g| g.end - g.start >= len)?;
            // The VMA after the gap keeps a guard gap below it if it grows down.
            // (The gap may be clipped at `hi`: the VMA after it is the first
            // one above.)
            if let Some(n) = self.layout.find(gap.end)
                && n.seg.flags.contains(VmFlags::GROWSDOWN)
                && n.start.saturating_sub(GUARD) < gap.end
            {
                hi = n.start.saturating_sub(GUARD);
                continue;
            }
            return Some(gap.end - len);
        }
    }

    /// Is `[p, p + len)` free and clear of a grows-down VMA's guard gap?
    fn hint_ok(&self, p: u64, len: u64) -> bool {
        if p + len > pages(TASK_SIZE) {
            return false;
        }
        match self.layout.find(p) {
            None => true,
            Some(v) => {
                let gap = if v.seg.flags.contains(VmFlags::GROWSDOWN) {
                    v.start.saturating_sub(GUARD)
                } else {
                    v.start
                };
                p + len <= gap
            }
        }
    }

    /// Placement of a non-fixed mapping of `len` pages.
    fn place(&self, hint: u64, len: u64, thp: bool, off_pages: u64) -> Result<u64, Errno> {
        let top = pages(MMAP_BASE);
        let hint = hint & PAGE_MASK;
        let hint = if hint != 0 && hint < MIN_ADDR { MIN_ADDR } else { hint };
        let plain = |hint: u64, len: u64| -> Option<u64> {
            if hint != 0 && self.hint_ok(hint >> PAGE_SHIFT, len) {
                return Some(hint >> PAGE_SHIFT);
            }
            self.topdown(len, top)
        };
        let huge = PMD_SIZE >> PAGE_SHIFT;
        if thp && len >= huge {
            // Pad by 2 MiB, then align so address and offset agree mod 2 MiB.
            if let Some(p) = plain(hint, len + huge) {
                if hint != 0 && p == hint >> PAGE_SHIFT {
                    return Ok(hint);
                }
                let sub = off_pages.wrapping_sub(p) & (huge - 1);
                let p = if sub == 0 { p + huge } else { p + sub };
                return Ok(p << PAGE_SHIFT);
            }
        }
        plain(hint, len).map(|p| p << PAGE_SHIFT).ok_or(Errno::ENOMEM)
    }

    pub(super) fn mmap(
        &mut self,
        addr: u64,
        len: u64,
        prot: u64,
        mut flags: u64,
        fd: i64,
        off: u64,
    ) -> Result<u64, Errno> {
        if off & !PAGE_MASK != 0 {
            return Err(Errno::EINVAL);
        }
        let file = if flags & MAP_ANONYMOUS == 0 {
            Some(self.fds.get(&fd).cloned().ok_or(Errno::EBADF)?)
        } else {
            None
        };
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        if flags & MAP_FIXED_NOREPLACE != 0 {
            flags |= MAP_FIXED;
        }
        let len_b = len.wrapping_add(PAGE_SIZE - 1) & PAGE_MASK;
        if len_b == 0 {
            return Err(Errno::ENOMEM);
        }
        let (n, pgoff) = (pages(len_b), off >> PAGE_SHIFT);
        if pgoff.checked_add(n).is_none() {
            return Err(Errno::EOVERFLOW);
        }
        if len_b > TASK_SIZE {
            return Err(Errno::ENOMEM);
        }
        let addr = if flags & MAP_FIXED != 0 {
            addr
        } else {
            let thp = match &file {
                Some(f) => f.thp,
                None => flags & MAP_SHARED == 0 && addr == 0 && len_b.is_multiple_of(PMD_SIZE),
            };
            let off_pages = if file.is_some() { pgoff } else { 0 };
            self.place(addr, n, thp, off_pages)?
        };
        if addr > TASK_SIZE - len_b {
            return Err(Errno::ENOMEM);
        }
        if addr & !PAGE_MASK != 0 {
            return Err(Errno::EINVAL);
        }
        let (s, e) = (addr >> PAGE_SHIFT, (addr >> PAGE_SHIFT) + n);
        if flags & MAP_FIXED_NOREPLACE != 0 && self.layout.overlaps(s..e) {
            return Err(Errno::EEXIST);
        }
        let mut vf = VmFlags::MAYREAD | VmFlags::MAYWRITE | VmFlags::MAYEXEC | crate::util::calc_vm_prot_bits(prot);
        vf |= crate::util::calc_vm_flag_bits(flags);
        let (seg_file, base) = match &file {
            Some(f) => {
                match flags & MAP_TYPE {
                    t @ (MAP_SHARED | MAP_SHARED_VALIDATE) => {
                        // FOP_MMAP_SYNC (ext4-like files) lets MAP_SYNC through.
                        let sync = if f.thp { MAP_SYNC } else { 0 };
                        let mask = if t == MAP_SHARED {
                            u64::MAX
                        } else {
                            LEGACY_MAP_MASK | sync
                        };
                        if flags & !mask != 0 {
                            return Err(Errno::EOPNOTSUPP);
                        }
                        if prot & PROT_WRITE != 0 && !f.writable {
                            return Err(Errno::EACCES);
                        }
                        vf |= VmFlags::SHARED | VmFlags::MAYSHARE;
                        if !f.writable {
                            vf = VmFlags(vf.0 & !(VmFlags::MAYWRITE.0 | VmFlags::SHARED.0));
                        }
                    }
                    MAP_PRIVATE => {}
                    _ => return Err(Errno::EINVAL),
                }
                if !f.readable {
                    return Err(Errno::EACCES);
                }
                if vf.contains(VmFlags::GROWSDOWN) {
                    return Err(Errno::EINVAL);
                }
                (Some(f.desc), pgoff.wrapping_sub(s))
            }
            None => match flags & MAP_TYPE {
                MAP_SHARED => {
                    if vf.contains(VmFlags::GROWSDOWN) {
                        return Err(Errno::EINVAL);
                    }
                    vf |= VmFlags::SHARED | VmFlags::MAYSHARE;
                    self.next_obj += 1;
                    self.sizes.insert(self.next_obj, len_b);
                    (Some(self.next_obj), 0u64.wrapping_sub(s))
                }
                MAP_PRIVATE => (None, 0),
                MAP_DROPPABLE => {
                    if flags & (MAP_LOCKED | MAP_HUGETLB) != 0 || vf.contains(VmFlags::GROWSDOWN) {
                        return Err(Errno::EINVAL);
                    }
                    vf |= VmFlags::DROPPABLE | VmFlags::NORESERVE | VmFlags::WIPEONFORK | VmFlags::DONTDUMP;
                    (None, 0)
                }
                _ => return Err(Errno::EINVAL),
            },
        };
        if flags & MAP_NORESERVE != 0 {
            vf |= VmFlags::NORESERVE;
        }
        let accountable = vf.0 & (VmFlags::NORESERVE.0 | VmFlags::SHARED.0 | VmFlags::WRITE.0) == VmFlags::WRITE.0;
        // Splits the unmap makes happen before the accounting check.
        self.split_range(s, e);
        self.layout.touch(s..e);
        if accountable {
            let replaced: u64 = self.accounted_in(s, e);
            if n - replaced > RAM_PAGES {
                // The splits stay, unmerged.
                for b in [s, e] {
                    if self.layout.ending_at(b).is_some() && self.layout.starting_at(b).is_some() {
                        self.layout.unmerged.insert(b);
                    }
                }
                return Err(Errno::ENOMEM);
            }
            vf |= VmFlags::ACCOUNT;
        }
        if file.as_ref().is_some_and(|f| f.thp) && vf.contains(VmFlags::SYNC) {
            self.layout.clear(s..e);
            return Err(Errno::EOPNOTSUPP);
        }
        self.layout.clear(s..e);
        let seg = Seg {
            id: 0,
            flags: vf,
            file: seg_file,
            base,
            anon: None,
        };
        let shared_anon = file.is_none() && flags & MAP_TYPE == MAP_SHARED;
        if shared_anon {
            let id = self.layout.fresh_id();
            self.layout.set(s..e, Seg { id, ..seg });
        } else {
            place_new(&mut self.layout, s, e, seg, false);
        }
        if vf.contains(VmFlags::LOCKED) || flags & (MAP_POPULATE | MAP_NONBLOCK) == MAP_POPULATE {
            self.populate(s, e);
        }
        Ok(addr)
    }

    fn accounted_in(&self, s: u64, e: u64) -> u64 {
        self.layout
            .vmas()
            .iter()
            .filter(|v| v.start < e && v.end > s && v.seg.flags.contains(VmFlags::ACCOUNT))
            .map(|v| v.end.min(e) - v.start.max(s))
            .sum()
    }

    /// `__mm_populate`: private writable VMAs are write-faulted.
    fn populate(&mut self, s: u64, e: u64) {
        for v in self.layout.vmas() {
            if v.start < e && v.end > s {
                let f = v.seg.flags;
                if f.0 & (VmFlags::WRITE.0 | VmFlags::SHARED.0) == VmFlags::WRITE.0 {
                    anon_prepare(&mut self.layout, v.start);
                }
            }
        }
    }
}
