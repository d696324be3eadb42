//! Reading `/proc/PID/maps` back in: parsing lines, and starting an address
//! space from a snapshot (`mmsim replay --initial-maps`, the host oracle).
//!
//! A maps line does not carry every `vm_flags` bit, nor `anon_vma`; the
//! import infers them as the kernel sets them for the usual sources (ELF
//! loader, ld.so, the stack and special mappings): private writable
//! mappings are `VM_ACCOUNT` and assumed faulted (own `anon_vma`), the
//! stack grows down, `[vdso]`/`[vvar]`/`[vvar_vclock]` are special.

use mm_core::file::{FileId, Inode, InodeKind};
use mm_core::{BarrierPolicy, VmFlags, Vma, VmaView};

use crate::task::Task;
use crate::util::vm_stat_account;

/// One parsed line of `/proc/PID/maps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapsLine {
    /// Start address.
    pub start: u64,
    /// End address.
    pub end: u64,
    /// `rwxp` column.
    pub perms: [u8; 4],
    /// Offset column (bytes).
    pub offset: u64,
    /// Device (major, minor).
    pub dev: (u32, u32),
    /// Inode.
    pub ino: u64,
    /// Path or pseudo-name (`[heap]`), empty for anonymous memory.
    pub name: String,
}

impl MapsLine {
    /// The line without dev and inode columns: what the model and the
    /// kernel must agree on exactly.
    pub fn key(&self) -> String {
        format!(
            "{:x}-{:x} {} {:08x} {}",
            self.start,
            self.end,
            std::str::from_utf8(&self.perms).unwrap_or("????"),
            self.offset,
            self.name
        )
    }
}

fn hex(s: &str, what: &str) -> Result<u64, String> {
    u64::from_str_radix(s, 16).map_err(|_| format!("bad {what} {s:?}"))
}

/// Parses one maps line.
pub fn parse_maps_line(line: &str) -> Result<MapsLine, String> {
    let mut it = line.splitn(6, ' ');
    let mut next = |what: &str| it.next().filter(|s| !s.is_empty()).ok_or(format!("missing {what}"));
    let range = next("range")?;
    let perms = next("perms")?;
    let offset = next("offset")?;
    let dev = next("device")?;
    let ino = next("inode")?;
    let name = it.next().unwrap_or("").trim_start_matches(' ').to_string();
    let (s, e) = range.split_once('-').ok_or("bad range")?;
    let perms: [u8; 4] = perms
        .as_bytes()
        .try_into()
        .map_err(|_| format!("bad perms {perms:?}"))?;
    let (maj, min) = dev.split_once(':').ok_or("bad device")?;
    let l = MapsLine {
        start: hex(s, "start")?,
        end: hex(e, "end")?,
        perms,
        offset: hex(offset, "offset")?,
        dev: (hex(maj, "major")? as u32, hex(min, "minor")? as u32),
        ino: ino.parse().map_err(|_| format!("bad inode {ino:?}"))?,
        name,
    };
    if l.start >= l.end || l.start % 4096 != 0 || l.end % 4096 != 0 {
        return Err(format!("bad range {range:?}"));
    }
    Ok(l)
}

/// Parses a whole maps text; errors name the line number.
pub fn parse_maps(text: &str) -> Result<Vec<MapsLine>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| parse_maps_line(l).map_err(|e| format!("line {}: {e}: {l:?}", i + 1)))
        .collect()
}

/// [`parse_maps`] for a snapshot to start from: also checks that every
/// VMA lies below `task_size` (`[vsyscall]`, the gate area above it, is
/// not a VMA) and that the lines are sorted and do not overlap, naming the
/// line (and the line it overlaps).
pub fn parse_maps_snapshot(text: &str, task_size: u64) -> Result<Vec<MapsLine>, String> {
    let mut out: Vec<MapsLine> = Vec::new();
    let mut prev: Option<(usize, u64)> = None;
    for (i, l) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let n = i + 1;
        let m = parse_maps_line(l).map_err(|e| format!("line {n}: {e}: {l:?}"))?;
        if m.name != "[vsyscall]" {
            if m.end > task_size {
                return Err(format!(
                    "line {n}: {:#x}-{:#x} ends above TASK_SIZE ({task_size:#x}): {l:?}",
                    m.start, m.end
                ));
            }
            if let Some((pn, pend)) = prev
                && m.start < pend
            {
                return Err(format!(
                    "line {n}: {:#x}-{:#x} overlaps or precedes line {pn} (which ends at {pend:#x}): {l:?}",
                    m.start, m.end
                ));
            }
            prev = Some((n, m.end));
        }
        out.push(m);
    }
    Ok(out)
}

/// The range of the program interpreter's mappings in a maps snapshot
/// taken at `exec` (`ld-*.so*`), or of the vDSO block (`[vvar]` to
/// `[vdso]`) when there is no interpreter.
pub fn first_area_mappings(lines: &[MapsLine]) -> Option<(u64, u64)> {
    let span = |pick: &dyn Fn(&str) -> bool| {
        lines
            .iter()
            .filter(|l| pick(&l.name))
            .fold(None, |acc: Option<(u64, u64)>, l| {
                Some(acc.map_or((l.start, l.end), |(a, b)| (a.min(l.start), b.max(l.end))))
            })
    };
    let interp = |name: &str| {
        let base = name.rsplit('/').next().unwrap_or(name);
        name.starts_with('/') && base.starts_with("ld-") && base.contains(".so")
    };
    span(&interp).or_else(|| span(&|n: &str| matches!(n, "[vvar]" | "[vvar_vclock]" | "[vdso]")))
}

/// Special mappings installed by the kernel at exec.
fn special_name(name: &str) -> Option<&'static str> {
    match name {
        "[vdso]" => Some("[vdso]"),
        "[vvar]" => Some("[vvar]"),
        "[vvar_vclock]" => Some("[vvar_vclock]"),
        "[uprobes]" => Some("[uprobes]"),
        _ => None,
    }
}

impl<P: BarrierPolicy> Task<P> {
    /// Starts the (empty) address space from a maps snapshot. `[vsyscall]`
    /// is the gate area, not a VMA, and is skipped. A `[heap]` line sets
    /// `start_brk` and `brk` to its range, a `[stack]` line sets
    /// `start_stack` inside it, so that both keep their names and `brk(0)`
    /// answers the heap's end.
    pub fn import_maps(&mut self, lines: &[MapsLine]) -> Result<(), String> {
        let mut by_path: std::collections::HashMap<String, FileId> = Default::default();
        let mut files_to_drop = vec![];
        for l in lines {
            if l.name == "[vsyscall]" {
                continue;
            }
            let mut flags = VmFlags::MAYREAD | VmFlags::MAYWRITE | VmFlags::MAYEXEC;
            if l.perms[0] == b'r' {
                flags |= VmFlags::READ;
            }
            if l.perms[1] == b'w' {
                flags |= VmFlags::WRITE;
            }
            if l.perms[2] == b'x' {
                flags |= VmFlags::EXEC;
            }
            let shared = l.perms[3] == b's';
            if shared {
                flags |= VmFlags::SHARED | VmFlags::MAYSHARE;
            }
            let special = special_name(&l.name);
            let file_name = (!l.name.is_empty() && !l.name.starts_with('[')).then_some(l.name.as_str());
            match l.name.as_str() {
                "[stack]" => flags |= VmFlags::GROWSDOWN,
                "[vdso]" | "[uprobes]" => flags |= VmFlags::DONTEXPAND,
                "[vvar]" | "[vvar_vclock]" => {
                    flags = VmFlags(flags.0 & !(VmFlags::MAYWRITE.0 | VmFlags::MAYEXEC.0))
                        | VmFlags::IO
                        | VmFlags::PFNMAP
                        | VmFlags::DONTEXPAND
                        | VmFlags::DONTDUMP
                }
                _ => {}
            }
            if flags.contains(VmFlags::WRITE) && !shared && special.is_none() {
                flags |= VmFlags::ACCOUNT;
            }
            let file = match file_name {
                Some(name) => {
                    let key = format!("{}#{}:{}:{}", name, l.dev.0, l.dev.1, l.ino);
                    let id = match by_path.get(&key) {
                        Some(&f) => f,
                        None => {
                            let f = self.import_file(name, l)?;
                            by_path.insert(key, f);
                            files_to_drop.push(f);
                            f
                        }
                    };
                    Some(id)
                }
                None => None,
            };
            let pgoff = if file.is_some() || special.is_some() {
                l.offset >> 12
            } else {
                l.start >> 12
            };
            let writable_private = flags.contains(VmFlags::WRITE) && !shared;
            let mm = self.mm().clone();
            let mut w = mm.write();
            let anon_vma = writable_private.then(|| w.new_anon_vma());
            let v = Vma {
                start: l.start,
                end: l.end,
                pgoff,
                flags,
                file,
                anon_vma,
                special,
            };
            if w.find_vma_intersection(l.start, l.end).is_some() {
                return Err(format!("overlapping maps line {:#x}-{:#x}", l.start, l.end));
            }
            w.vma_link(v).map_err(|_| "too many VMAs".to_string())?;
            if let Some(f) = file {
                w.files().get(f);
            }
            let st = w.st();
            st.map_count += 1;
            vm_stat_account(st, flags, ((l.end - l.start) >> 12) as i64);
            if flags.contains(VmFlags::ACCOUNT) {
                st.committed += (l.end - l.start) >> 12;
            }
        }
        let mm = self.mm().clone();
        {
            let mut files = mm.files();
            for f in files_to_drop {
                files.put(f);
            }
        }
        // Maps names `[heap]` and `[stack]` after `mm->start_brk`, `brk`
        // and `start_stack`, which exec set: take them back from the
        // names. The heap's end is the break rounded up to a page; where
        // the exact values are known, `set_brk`/`set_start_stack` give
        // them.
        let heap = lines.iter().filter(|l| l.name == "[heap]");
        let heap_start = heap.clone().map(|l| l.start).min();
        let heap_end = heap.map(|l| l.end).max();
        let stack = lines.iter().find(|l| l.name == "[stack]");
        let mut w = mm.write();
        let st = w.st();
        if let (Some(s), Some(e)) = (heap_start, heap_end) {
            st.start_brk = s;
            st.brk = e;
        }
        if let Some(s) = stack {
            st.start_stack = s.end - 8;
        }
        Ok(())
    }

    /// Takes the mmap area's base from a snapshot
    /// ([`first_area_mappings`]): the top of the program interpreter's
    /// mappings becomes `mmap_base` in the top-down layout, their bottom
    /// `mmap_legacy_base` in the legacy one. With randomization on, no
    /// limit or personality tells the base; this is where the kernel put
    /// it (`arch/x86/mm/mmap.c` `arch_pick_mmap_layout`). Returns whether
    /// the snapshot showed it.
    pub fn infer_mmap_base(&mut self, lines: &[MapsLine]) -> bool {
        let Some((lo, hi)) = first_area_mappings(lines) else {
            return false;
        };
        let mut w = self.mm().write();
        let cfg = &mut w.st().cfg;
        if cfg.topdown {
            cfg.mmap_base = hi;
        } else {
            cfg.mmap_legacy_base = lo;
        }
        true
    }

    /// An open file description for a file named in a maps snapshot.
    fn import_file(&mut self, name: &str, l: &MapsLine) -> Result<FileId, String> {
        let (path, deleted) = match name.strip_suffix(" (deleted)") {
            Some(p) => (p, true),
            None => (name, false),
        };
        let kind = if path == "/dev/zero" && deleted {
            InodeKind::ShmemAnon
        } else if path.starts_with("/memfd:") {
            InodeKind::Memfd
        } else if path == "/anon_hugepage" {
            InodeKind::HugetlbAnon
        } else {
            InodeKind::Regular
        };
        let info = self.probe_path(path);
        let mm = self.mm().clone();
        let mut files = mm.files();
        let inode = match (kind, files.lookup_path(path)) {
            (InodeKind::Regular, Some(i)) => i,
            _ => {
                let size = info.as_ref().map_or(u64::MAX, |i| i.size);
                let mut inode = Inode::new(l.ino, l.dev, size, path.to_string(), kind);
                inode.deleted = deleted;
                if let Some(i) = &info {
                    inode.noexec = i.noexec;
                    inode.thp_unmapped_area = i.thp_unmapped_area;
                    inode.rejects_sync = i.thp_unmapped_area;
                }
                files.add_inode(inode)
            }
        };
        let writable = l.perms[3] == b's';
        files
            .open(mm.file_slots(), inode, true, writable, false)
            .ok_or_else(|| "too many files".to_string())
    }
}
