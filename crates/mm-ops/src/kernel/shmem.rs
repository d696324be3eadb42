//! Where shmem objects are placed (`mm/shmem.c`
//! `shmem_get_unmapped_area`): memfds, tmpfs files, System V segments and
//! shared anonymous memory (`/dev/zero` included) get a huge-page aligned
//! address when huge pages may back them: the super block's `huge=`
//! setting (a tmpfs mount's option; for the internal mount, the
//! `shmem_enabled` sysfs knob) or, for anonymous shmem, the per-size knob
//! of the PMD size. With the defaults (`never`, `inherit`) placement is
//! plain.
//!
//! Not modeled: the per-size knobs below the PMD size (for anonymous
//! shmem, the highest order enabled sets the alignment); the boot options
//! `transparent_hugepage_shmem=` and `transparent_hugepage_tmpfs=` (the
//! model takes what sysfs and the mount show).

use mm_core::{MmConfig, ShmemHuge, VmFlags, VmaView};

use crate::mmap::mm_get_unmapped_area;
use crate::sys_x86_64::AreaFile;
use crate::uapi::*;

/// The super block whose `huge` setting a shmem object follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShmemSb {
    /// The internal mount (`shm_mnt`): memfds, System V segments, shared
    /// anonymous objects. Its setting is `shmem_enabled`'s.
    Internal,
    /// A tmpfs mount, with its `huge=` option.
    Mount(ShmemHuge),
}

/// `SHMEM_SB(shm_mnt->mnt_sb)->huge`: `shmem_enabled`, which `deny` and
/// `force` leave as it was (taken here as the default, `never`).
fn internal_huge(cfg: &MmConfig) -> ShmemHuge {
    match cfg.shmem_enabled {
        ShmemHuge::Deny | ShmemHuge::Force | ShmemHuge::Inherit => ShmemHuge::Never,
        h => h,
    }
}

/// `shmem_get_unmapped_area`. `sb` is `None` for a shared anonymous
/// mapping, which has no file yet (`file == NULL`: the internal mount,
/// and the anonymous shmem per-size knobs); `pgoff` is in pages.
pub fn shmem_get_unmapped_area(
    mm: &impl VmaView,
    area: Option<AreaFile>,
    sb: Option<ShmemSb>,
    uaddr: u64,
    len: u64,
    pgoff: u64,
    flags: u64,
) -> Result<u64, Errno> {
    let cfg = &mm.state().cfg;
    if len > cfg.task_size {
        return Err(Errno::ENOMEM);
    }
    let addr = mm_get_unmapped_area(mm, area, uaddr, len, pgoff, flags, VmFlags::NONE)?;
    if !cfg.thp || addr & !PAGE_MASK != 0 || addr > cfg.task_size - len {
        return Ok(addr);
    }
    if cfg.shmem_enabled == ShmemHuge::Deny || flags & MAP_FIXED != 0 || uaddr == addr {
        return Ok(addr);
    }
    let hpage = PMD_SIZE;
    if cfg.shmem_enabled != ShmemHuge::Force {
        let (sb_huge, anon) = match sb {
            Some(ShmemSb::Mount(h)) => (h, false),
            Some(ShmemSb::Internal) => (internal_huge(cfg), false),
            None => (internal_huge(cfg), true),
        };
        // Anonymous shmem: the highest per-size order enabled (only the
        // PMD size is modeled); `inherit` counts when the mount's setting
        // is not `never`.
        let pmd_order = anon
            && match cfg.shmem_pmd {
                ShmemHuge::Always | ShmemHuge::WithinSize | ShmemHuge::Advise => true,
                ShmemHuge::Inherit => sb_huge != ShmemHuge::Never,
                _ => false,
            };
        if sb_huge == ShmemHuge::Never && !pmd_order {
            return Ok(addr);
        }
    }
    if len < hpage {
        return Ok(addr);
    }
    let offset = (pgoff << PAGE_SHIFT) & (hpage - 1);
    if offset != 0 && offset + len < 2 * hpage {
        return Ok(addr);
    }
    if addr & (hpage - 1) == offset {
        return Ok(addr);
    }
    let inflated_len = len.wrapping_add(hpage - PAGE_SIZE);
    if inflated_len > cfg.task_size || inflated_len < len {
        return Ok(addr);
    }
    let Ok(inflated) = mm_get_unmapped_area(mm, None, uaddr, inflated_len, 0, flags, VmFlags::NONE) else {
        return Ok(addr);
    };
    if inflated & !PAGE_MASK != 0 {
        return Ok(addr);
    }
    let inflated_offset = inflated & (hpage - 1);
    let mut aligned = inflated.wrapping_add(offset).wrapping_sub(inflated_offset);
    if inflated_offset > offset {
        aligned = aligned.wrapping_add(hpage);
    }
    if aligned > cfg.task_size - len {
        return Ok(addr);
    }
    Ok(aligned)
}
