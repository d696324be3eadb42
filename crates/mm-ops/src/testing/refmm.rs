//! The reference model's system calls: the argument checks in the
//! kernel's order and the effects, over a [`Layout`].
//!
//! `mmap`, with the placement and the accounting only it needs, is in the
//! `mmap` submodule (`refmm/mmap.rs`).

use std::collections::BTreeMap;

use mm_core::VmFlags;

use super::reference::*;
use crate::call::{Access, Call, Outcome, Signal};
use crate::uapi::*;

mod mmap;

const TASK_SIZE: u64 = 0x7fff_ffff_f000;
/// `mmap_base` of the reference process (ASLR off, 8 MiB stack).
pub const MMAP_BASE: u64 = TASK_SIZE - (128 << 20);
/// The kernel's effective `mmap_min_addr` on the host.
const MIN_ADDR: u64 = 65536;
const GUARD: u64 = 256;
/// `start_brk` of the reference process.
pub const START_BRK: u64 = 0x1000_0000;
/// `totalram_pages + total_swap_pages` (24 GiB, no swap).
const RAM_PAGES: u64 = 24_684_084 / 4;

/// The reference process.
#[derive(Clone, Debug)]
pub struct RefMm {
    /// The pages.
    pub layout: Layout,
    /// Open descriptors.
    pub fds: BTreeMap<i64, RFile>,
    /// Every file description ever opened, by identity.
    pub descs: BTreeMap<u32, RFile>,
    /// Inode sizes in bytes.
    pub sizes: Sizes,
    /// `mm->brk`.
    pub brk: u64,
    next_obj: u32,
}

fn pages(bytes: u64) -> u64 {
    bytes >> PAGE_SHIFT
}

impl RefMm {
    /// A process with the given files and an empty address space.
    pub fn new(fds: BTreeMap<i64, RFile>, sizes: Sizes) -> RefMm {
        let descs = fds.values().map(|f| (f.desc, f.clone())).collect();
        RefMm {
            layout: Layout::default(),
            fds,
            descs,
            sizes,
            brk: START_BRK,
            next_obj: 1000,
        }
    }

    /// Applies a call.
    pub fn apply(&mut self, call: &Call) -> Outcome {
        let r = match *call {
            Call::Mmap {
                addr,
                len,
                prot,
                flags,
                fd,
                off,
            } => self.mmap(addr, len, prot, flags, fd, off),
            Call::Munmap { addr, len } => self.munmap(addr, len).map(|()| 0),
            Call::Mprotect { addr, len, prot } => self.mprotect(addr, len, prot).map(|()| 0),
            Call::Madvise { addr, len, advice } => self.madvise(addr, len, advice).map(|()| 0),
            Call::Brk { addr } => Ok(self.brk(addr)),
            Call::Fault { addr, access } => {
                return match self.fault(addr, access) {
                    Ok(()) => Outcome::Val(0),
                    Err(s) => Outcome::Signal(s),
                };
            }
            _ => Err(Errno::ENOSYS),
        };
        r.map_or_else(Outcome::Err, Outcome::Val)
    }

    /// `vms_gather_munmap_vmas`'s splits at the ends of `[s, e)`.
    fn split_range(&mut self, s: u64, e: u64) {
        if self.layout.at(s).is_some_and(|v| v.start < s) {
            self.layout.split_at(s, true);
        }
        if self.layout.at(e).is_some_and(|v| v.start < e) && self.layout.at(e - 1).is_some() {
            self.layout.split_at(e, false);
        }
    }

    fn munmap(&mut self, addr: u64, len: u64) -> Result<(), Errno> {
        if addr & !PAGE_MASK != 0 || addr > TASK_SIZE || len > TASK_SIZE - addr {
            return Err(Errno::EINVAL);
        }
        let end = addr + (len.wrapping_add(PAGE_SIZE - 1) & PAGE_MASK);
        if end == addr {
            return Err(Errno::EINVAL);
        }
        let (s, e) = (addr >> PAGE_SHIFT, end >> PAGE_SHIFT);
        self.split_range(s, e);
        self.layout.touch(s..e);
        self.layout.clear(s..e);
        Ok(())
    }

    fn mprotect(&mut self, addr: u64, len: u64, prot: u64) -> Result<(), Errno> {
        let grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP);
        let prot = prot & !(PROT_GROWSDOWN | PROT_GROWSUP);
        if grows == PROT_GROWSDOWN | PROT_GROWSUP || addr & !PAGE_MASK != 0 {
            return Err(Errno::EINVAL);
        }
        if len == 0 {
            return Ok(());
        }
        let end = addr.wrapping_add(len.wrapping_add(PAGE_SIZE - 1) & PAGE_MASK);
        if end <= addr {
            return Err(Errno::ENOMEM);
        }
        if prot & !(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM) != 0 {
            return Err(Errno::EINVAL);
        }
        let (mut s, e) = (addr >> PAGE_SHIFT, end >> PAGE_SHIFT);
        let first = self.layout.find(s).filter(|v| v.start < e).ok_or(Errno::ENOMEM)?;
        if grows & PROT_GROWSDOWN != 0 {
            s = first.start;
            if !first.seg.flags.contains(VmFlags::GROWSDOWN) {
                return Err(Errno::EINVAL);
            }
        } else if first.start > s {
            return Err(Errno::ENOMEM);
        } else if grows != 0 {
            return Err(Errno::EINVAL);
        }
        let mut tmp = first.start;
        let mut cur = Some(first);
        while let Some(v) = cur {
            if v.start != tmp {
                return Err(Errno::ENOMEM);
            }
            let keep = v.seg.flags.0 & !(VmFlags::ACCESS_FLAGS.0 | VmFlags::PKEY_MASK.0);
            let mut nf = VmFlags(crate::util::calc_vm_prot_bits(prot).0 | keep);
            if (nf.0 & !(nf.0 >> 4)) & VmFlags::ACCESS_FLAGS.0 != 0 {
                return Err(Errno::EACCES);
            }
            let (a, b) = (s.max(v.start), v.end.min(e));
            let res = if nf == v.seg.flags {
                v.start..v.end
            } else {
                let old = v.seg.flags;
                if nf.contains(VmFlags::WRITE) {
                    let none =
                        VmFlags::ACCOUNT | VmFlags::WRITE | VmFlags::HUGETLB | VmFlags::SHARED | VmFlags::NORESERVE;
                    if !old.intersects(none) {
                        if b - a > RAM_PAGES {
                            return Err(Errno::ENOMEM);
                        }
                        nf |= VmFlags::ACCOUNT;
                    }
                } else if old.contains(VmFlags::ACCOUNT) && v.seg.file.is_none() && v.seg.anon.is_none() {
                    nf = VmFlags(nf.0 & !VmFlags::ACCOUNT.0);
                }
                // Only a real change reconsiders merges (mprotect_fixup
                // returns early when the flags stay the same).
                self.layout.touch(a..b);
                let r = modify(&mut self.layout, &v, a, b, nf);
                let cow = VmFlags::WRITE.0 | VmFlags::SHARED.0 | VmFlags::LOCKED.0;
                if old.0 & cow == VmFlags::LOCKED.0 && nf.contains(VmFlags::WRITE) {
                    anon_prepare(&mut self.layout, r.start);
                }
                r
            };
            tmp = res.end;
            s = tmp;
            cur = self.layout.find(tmp).filter(|n| n.start < e);
        }
        if tmp < e { Err(Errno::ENOMEM) } else { Ok(()) }
    }

    /// `madvise(2)` for the advice that changes `vm_flags` (and invalid
    /// advice): each VMA of the range gets its new flags, split or merged
    /// as mprotect does; a hole fails the call with ENOMEM once the rest is
    /// done; an error stops at the VMA that refuses.
    fn madvise(&mut self, addr: u64, len: u64, advice: u64) -> Result<(), Errno> {
        let advice = u64::from(advice as u32);
        let alen = len.wrapping_add(PAGE_SIZE - 1) & PAGE_MASK;
        if addr & !PAGE_MASK != 0 || (len != 0 && alen == 0) || addr.checked_add(alen).is_none() {
            return Err(Errno::EINVAL);
        }
        if !matches!(advice, 0..=2 | 10..=19) {
            return Err(Errno::EINVAL);
        }
        if alen == 0 {
            return Ok(());
        }
        let (mut cur, e) = (addr >> PAGE_SHIFT, (addr + alen) >> PAGE_SHIFT);
        let mut hole = false;
        while cur < e {
            let Some(v) = self.layout.find(cur).filter(|v| v.start < e) else {
                hole = true;
                break;
            };
            hole |= v.start > cur;
            let (a, b) = (cur.max(v.start), v.end.min(e));
            let nf = advice_flags(&v.seg, advice)?;
            cur = if nf == v.seg.flags {
                v.end
            } else {
                self.layout.touch(a..b);
                modify(&mut self.layout, &v, a, b, nf).end
            };
        }
        if hole { Err(Errno::ENOMEM) } else { Ok(()) }
    }

    fn brk(&mut self, brk: u64) -> u64 {
        let old = self.brk;
        if brk < START_BRK {
            return old;
        }
        let up = |x: u64| x.wrapping_add(PAGE_SIZE - 1) & PAGE_MASK;
        let (newp, oldp) = (up(brk) >> PAGE_SHIFT, up(old) >> PAGE_SHIFT);
        if newp == oldp {
            self.brk = brk;
            return brk;
        }
        if brk <= old {
            if self.layout.find(newp).is_none_or(|v| v.start >= oldp) {
                return old;
            }
            self.split_range(newp, oldp);
            self.layout.touch(newp..oldp);
            self.layout.clear(newp..oldp);
            self.brk = brk;
            return brk;
        }
        if (newp << PAGE_SHIFT) > TASK_SIZE {
            return old;
        }
        // One free page (and a stack guard gap) must stay below the next VMA.
        if let Some(n) = self.layout.find(oldp) {
            let gap = if n.seg.flags.contains(VmFlags::GROWSDOWN) {
                n.start.saturating_sub(GUARD)
            } else {
                n.start
            };
            if n.start < newp + 1 + GUARD && newp + 1 > gap {
                return old;
            }
        }
        let flags = VmFlags::DATA_DEFAULT | VmFlags::ACCOUNT;
        let seg = Seg {
            id: 0,
            flags,
            file: None,
            base: 0,
            anon: None,
        };
        self.layout.touch(oldp..newp);
        // Only a VMA reaching above start_brk may be expanded.
        let expand = self
            .layout
            .ending_at(oldp)
            .is_some_and(|p| p.end > START_BRK >> PAGE_SHIFT);
        if expand {
            place_new(&mut self.layout, oldp, newp, seg, true);
        } else {
            let id = self.layout.fresh_id();
            self.layout.set(oldp..newp, Seg { id, ..seg });
        }
        self.brk = brk;
        brk
    }

    fn fault(&mut self, addr: u64, access: Access) -> Result<(), Signal> {
        if addr >= TASK_SIZE {
            return Err(Signal::Segv);
        }
        let p = addr >> PAGE_SHIFT;
        let mut v = self.layout.find(p).ok_or(Signal::Segv)?;
        if v.start > p {
            if !v.seg.flags.contains(VmFlags::GROWSDOWN) || (p << PAGE_SHIFT) < MIN_ADDR {
                return Err(Signal::Segv);
            }
            if let Some(prev) = self.layout.vmas().into_iter().rfind(|x| x.end <= v.start)
                && !prev.seg.flags.contains(VmFlags::GROWSDOWN)
                && prev.seg.flags.is_accessible()
                && p - prev.end < GUARD
            {
                return Err(Signal::Segv);
            }
            anon_prepare(&mut self.layout, v.start);
            // acct_stack_growth: RLIMIT_STACK (8 MiB).
            if v.end - p > (8 << 20) >> PAGE_SHIFT {
                return Err(Signal::Segv);
            }
            let v2 = self.layout.at(v.start).expect("still there");
            self.layout.set(p..v2.end, v2.seg.clone());
            // expand_downwards never merges with the VMA it reaches.
            if self.layout.ending_at(p).is_some() {
                self.layout.unmerged.insert(p);
            }
            v = self.layout.at(p).expect("grown");
        }
        let f = v.seg.flags;
        let denied = match access {
            Access::Write => !f.contains(VmFlags::WRITE),
            _ => !f.is_accessible(),
        };
        if denied {
            return Err(Signal::Segv);
        }
        let write = access == Access::Write;
        if write && !f.contains(VmFlags::SHARED) {
            anon_prepare(&mut self.layout, p);
        }
        if let Some(file) = v.seg.file {
            let inode = self.descs.get(&file).map_or(file, |x| x.inode);
            let size = self.sizes.get(&inode).copied().unwrap_or(0);
            if v.pgoff() + (p - v.start) >= size.div_ceil(PAGE_SIZE) {
                return Err(Signal::Bus);
            }
        }
        if access == Access::Exec && !f.contains(VmFlags::EXEC) {
            return Err(Signal::Segv);
        }
        Ok(())
    }

    /// The maps lines of the reference, without dev and inode, in the form
    /// of [`crate::procmaps::MapsLine::key`].
    pub fn maps_keys(&self) -> Vec<String> {
        self.layout
            .vmas()
            .iter()
            .map(|v| {
                let p = v.seg.flags.perms();
                let (offset, name) = match v.seg.file {
                    Some(d) => match self.descs.get(&d) {
                        Some(f) => (v.pgoff() << PAGE_SHIFT, f.path.clone()),
                        None => (v.pgoff() << PAGE_SHIFT, "/dev/zero (deleted)".to_string()),
                    },
                    None => {
                        let heap = (v.start << PAGE_SHIFT) < self.brk && (v.end << PAGE_SHIFT) > START_BRK;
                        (0, if heap { "[heap]".to_string() } else { String::new() })
                    }
                };
                format!(
                    "{:x}-{:x} {} {:08x} {}",
                    v.start << PAGE_SHIFT,
                    v.end << PAGE_SHIFT,
                    std::str::from_utf8(&p).unwrap_or("????"),
                    offset,
                    name
                )
            })
            .collect()
    }
}

/// The flags madvise `advice` gives a VMA with attributes `seg`, or the
/// error it refuses with.
fn advice_flags(seg: &Seg, advice: u64) -> Result<VmFlags, Errno> {
    let f = seg.flags;
    let without = |x: VmFlags| VmFlags(f.0 & !x.0);
    Ok(match advice {
        0 => without(VmFlags::SEQ_READ | VmFlags::RAND_READ),
        1 => without(VmFlags::SEQ_READ) | VmFlags::RAND_READ,
        2 => without(VmFlags::RAND_READ) | VmFlags::SEQ_READ,
        10 => f | VmFlags::DONTCOPY,
        11 if f.contains(VmFlags::IO) => return Err(Errno::EINVAL),
        11 => without(VmFlags::DONTCOPY),
        12 => {
            // KSM leaves shared, special, hugetlb and droppable VMAs alone.
            let bad = VmFlags::SHARED | VmFlags::MAYSHARE | VmFlags::SPECIAL | VmFlags::HUGETLB | VmFlags::DROPPABLE;
            if f.intersects(bad) { f } else { f | VmFlags::MERGEABLE }
        }
        13 => without(VmFlags::MERGEABLE),
        14 => without(VmFlags::NOHUGEPAGE) | VmFlags::HUGEPAGE,
        15 => without(VmFlags::HUGEPAGE) | VmFlags::NOHUGEPAGE,
        16 => f | VmFlags::DONTDUMP,
        17 if (f.intersects(VmFlags::SPECIAL) && !f.contains(VmFlags::HUGETLB)) || f.contains(VmFlags::DROPPABLE) => {
            return Err(Errno::EINVAL);
        }
        17 => without(VmFlags::DONTDUMP),
        18 if seg.file.is_some() || f.contains(VmFlags::SHARED) => return Err(Errno::EINVAL),
        18 => f | VmFlags::WIPEONFORK,
        19 if f.contains(VmFlags::DROPPABLE) => return Err(Errno::EINVAL),
        19 => without(VmFlags::WIPEONFORK),
        _ => return Err(Errno::EINVAL),
    })
}
