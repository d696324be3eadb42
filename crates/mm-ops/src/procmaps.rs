//! Reading `/proc/PID/maps` back in: parsing lines, and starting an address
//! space from a snapshot (`mmsim replay --initial-maps`, the host oracle).
//!
//! A maps line does not carry every `vm_flags` bit, nor `anon_vma`; the
//! import infers them as the kernel sets them for the usual sources (ELF
//! loader, ld.so, the stack and special mappings): private writable
//! mappings are `VM_ACCOUNT` and assumed faulted (own `anon_vma`), the
//! stack grows down, `[vdso]`/`[vvar]`/`[vvar_vclock]` are special.

use mm_core::file::{FileId, Inode, InodeKind};
use mm_core::{BarrierPolicy, FaultView, VmFlags, Vma, VmaView};

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

/// Why a `/proc/PID/maps` text cannot be read or imported, and where:
/// the line (from 1), the column (from 1, in characters) of the field at
/// fault, and the line's text.
///
/// ```
/// let e = mm_ops::procmaps::parse_maps("00400000-00401000 r-xp 00000000 08:01 12 /bin/x\n\
///                                         00401000-00402000 rwzp 00000000 08:01 12 /bin/x\n")
///     .unwrap_err();
/// assert_eq!((e.line, e.column), (2, 19));
/// assert_eq!(e.to_string(), "line 2, column 19: bad perms \"rwzp\": \"00401000-00402000 rwzp 00000000 08:01 12 /bin/x\"");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}: {text:?}")]
pub struct MapsError {
    /// The line, from 1 (for [`Task::import_maps`], the position among the
    /// lines given).
    pub line: usize,
    /// The column of the field at fault, from 1 (1 for a whole-line
    /// problem such as an overlap).
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// The line's text.
    pub text: String,
}

/// A problem within one line: the column (from 1) and the message.
type FieldError = (usize, String);

/// Parses the hex field `s`, found at column `col`.
fn hex(s: &str, col: usize, what: &str) -> Result<u64, FieldError> {
    let ok = !s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let v = ok.then(|| u64::from_str_radix(s, 16).ok()).flatten();
    v.ok_or_else(|| (col, format!("bad {what} {s:?}")))
}

/// Parses one maps line.
pub fn parse_maps_line(line: &str) -> Result<MapsLine, MapsError> {
    parse_fields(line).map_err(|(column, message)| MapsError {
        line: 1,
        column,
        message,
        text: line.to_string(),
    })
}

/// The fields of one line; errors give the column of the field at fault.
fn parse_fields(line: &str) -> Result<MapsLine, FieldError> {
    // (column, text) of the first five space-separated fields (empty when
    // missing), then the name after the padding.
    let mut fields = [(0usize, ""); 5];
    let mut rest = line;
    let mut at = 0;
    for f in &mut fields {
        let text = rest.split(' ').next().unwrap_or("");
        *f = (line[..at].chars().count() + 1, text);
        at += text.len();
        rest = &line[at..];
        if let Some(r) = rest.strip_prefix(' ') {
            rest = r;
            at += 1;
        }
    }
    let name = rest.trim_start_matches(' ').to_string();
    // Checked in order, so that the first field at fault is named.
    let field = |i: usize, what: &str| -> Result<(usize, &str), FieldError> {
        let (col, text) = fields[i];
        if text.is_empty() {
            Err((col, format!("missing {what}")))
        } else {
            Ok((col, text))
        }
    };
    let (rc, range) = field(0, "range")?;
    let (s, e) = range.split_once('-').ok_or((rc, format!("bad range {range:?}")))?;
    let (start, end) = (hex(s, rc, "start")?, hex(e, rc + s.chars().count() + 1, "end")?);
    let (pc, perms) = field(1, "perms")?;
    let perms_ok = perms.len() == 4
        && matches!(perms.as_bytes()[0], b'r' | b'-')
        && matches!(perms.as_bytes()[1], b'w' | b'-')
        && matches!(perms.as_bytes()[2], b'x' | b'-')
        && matches!(perms.as_bytes()[3], b'p' | b's');
    if !perms_ok {
        return Err((pc, format!("bad perms {perms:?}")));
    }
    let (oc, offset) = field(2, "offset")?;
    let offset = hex(offset, oc, "offset")?;
    let (dc, dev) = field(3, "device")?;
    let (maj, min) = dev.split_once(':').ok_or((dc, format!("bad device {dev:?}")))?;
    let major = hex(maj, dc, "major")?;
    let minor = hex(min, dc + maj.chars().count() + 1, "minor")?;
    let (ic, ino) = field(4, "inode")?;
    let l = MapsLine {
        start,
        end,
        perms: perms.as_bytes().try_into().unwrap_or(*b"----"),
        offset,
        dev: (
            u32::try_from(major).map_err(|_| (dc, format!("bad major {maj:?}")))?,
            u32::try_from(minor).map_err(|_| (dc, format!("bad minor {min:?}")))?,
        ),
        ino: ino.parse().map_err(|_| (ic, format!("bad inode {ino:?}")))?,
        name,
    };
    if l.start >= l.end || !l.start.is_multiple_of(4096) || !l.end.is_multiple_of(4096) {
        return Err((rc, format!("bad range {range:?}")));
    }
    Ok(l)
}

/// Parses a whole maps text; an error names the line and column.
pub fn parse_maps(text: &str) -> Result<Vec<MapsLine>, MapsError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| parse_maps_line(l).map_err(|e| MapsError { line: i + 1, ..e }))
        .collect()
}

/// [`parse_maps`] for a snapshot to start from: also checks that every
/// VMA lies below `task_size` (`[vsyscall]`, the gate area above it, is
/// not a VMA) and that the lines are sorted and do not overlap, naming the
/// line (and the line it overlaps).
pub fn parse_maps_snapshot(text: &str, task_size: u64) -> Result<Vec<MapsLine>, MapsError> {
    let mut out: Vec<MapsLine> = Vec::new();
    let mut prev: Option<(usize, u64)> = None;
    for (i, l) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let n = i + 1;
        let err = |message: String| MapsError {
            line: n,
            column: 1,
            message,
            text: l.to_string(),
        };
        let m = parse_maps_line(l).map_err(|e| MapsError { line: n, ..e })?;
        if m.name != "[vsyscall]" {
            if m.end > task_size {
                return Err(err(format!(
                    "{:#x}-{:#x} ends above TASK_SIZE ({task_size:#x})",
                    m.start, m.end
                )));
            }
            if let Some((pn, pend)) = prev
                && m.start < pend
            {
                return Err(err(format!(
                    "{:#x}-{:#x} overlaps or precedes line {pn} (which ends at {pend:#x})",
                    m.start, m.end
                )));
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
    pub fn import_maps(&mut self, lines: &[MapsLine]) -> Result<(), MapsError> {
        let mut by_path: std::collections::HashMap<String, FileId> = Default::default();
        let mut files_to_drop = vec![];
        for (n, l) in lines.iter().enumerate() {
            let err = |message: &str| MapsError {
                line: n + 1,
                column: 1,
                message: message.to_string(),
                text: l.key(),
            };
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
                            let f = self.import_file(name, l).map_err(|e| err(&e))?;
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
                return Err(err("overlaps an earlier line"));
            }
            w.vma_link(v).map_err(|_| err("too many VMAs"))?;
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
                inode.set_deleted(deleted);
                if let Some(i) = &info {
                    inode.noexec = i.noexec;
                    if kind == InodeKind::Regular && i.file_type == crate::file_kind::FileType::Regular {
                        crate::file_kind::apply_fs_mmap(&mut inode, i.fs_magic);
                        if i.fs_magic == crate::file_kind::TMPFS_MAGIC {
                            inode.tmpfs_huge = Some(i.tmpfs_huge);
                        }
                    } else {
                        // Not a file system's regular file (a device): no
                        // mmap_prepare refusing VM_SYNC, as `open` sets it.
                        inode.rejects_sync = false;
                    }
                    inode.thp_unmapped_area = i.thp_unmapped_area;
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

#[cfg(test)]
mod tests {
    use super::{parse_maps, parse_maps_line, parse_maps_snapshot};

    const GOOD: &str = "7ffff7fc3000-7ffff7fc7000 r--p 00001000 fe:00 325843                     /usr/lib/ld.so";

    #[test]
    fn a_good_line_reads_back() {
        let l = parse_maps_line(GOOD).expect("good line");
        assert_eq!(
            (l.start, l.end, l.offset, l.dev, l.ino),
            (0x7ffff7fc3000, 0x7ffff7fc7000, 0x1000, (0xfe, 0), 325843)
        );
        assert_eq!(&l.perms, b"r--p");
        assert_eq!(l.name, "/usr/lib/ld.so");
        let anon = parse_maps_line("7ffff7fc3000-7ffff7fc7000 rw-p 00000000 00:00 0 ").expect("anon");
        assert_eq!(anon.name, "");
    }

    #[test]
    fn each_bad_field_is_named_at_its_column() {
        // (line, column, message start)
        let cases = [
            ("7ffff7fc3000+7ffff7fc7000 r--p 00001000 fe:00 1 /x", 1, "bad range"),
            ("zz-7ffff7fc7000 r--p 00001000 fe:00 1 /x", 1, "bad start"),
            ("7ffff7fc3000-7ffff7fc7g00 r--p 00001000 fe:00 1 /x", 14, "bad end"),
            ("7ffff7fc3000-7ffff7fc7000 r-zp 00001000 fe:00 1 /x", 27, "bad perms"),
            ("7ffff7fc3000-7ffff7fc7000 r--p 0000100x fe:00 1 /x", 32, "bad offset"),
            ("7ffff7fc3000-7ffff7fc7000 r--p 00001000 fe00 1 /x", 41, "bad device"),
            ("7ffff7fc3000-7ffff7fc7000 r--p 00001000 fe:0g 1 /x", 44, "bad minor"),
            ("7ffff7fc3000-7ffff7fc7000 r--p 00001000 fe:00 x1 /x", 47, "bad inode"),
            ("7ffff7fc3000-7ffff7fc7000 r--p 00001000", 40, "missing device"),
            ("7ffff7fc7000-7ffff7fc3000 r--p 00001000 fe:00 1 /x", 1, "bad range"),
            ("7ffff7fc3001-7ffff7fc7000 r--p 00001000 fe:00 1 /x", 1, "bad range"),
            (
                "17ffff7fc3000000000-7ffff7fc7000 r--p 00001000 fe:00 1 /x",
                1,
                "bad start",
            ),
        ];
        for (line, col, msg) in cases {
            let e = parse_maps_line(line).expect_err(line);
            assert_eq!(e.column, col, "{line}: {e}");
            assert!(e.message.starts_with(msg), "{line}: {e}");
            assert_eq!(e.text, line);
        }
    }

    #[test]
    fn the_line_number_counts_blank_lines() {
        let text = format!("{GOOD}\n\n7ffff7fc7000-7ffff7fc8000 r--p 00001000 fe:00 1\nbad\n");
        let e = parse_maps(&text).expect_err("line 4");
        assert_eq!((e.line, e.column), (4, 1));
        assert!(e.to_string().starts_with("line 4, column 1: bad range"), "{e}");
    }

    #[test]
    fn a_snapshot_must_be_sorted_and_below_task_size() {
        let text = format!("{GOOD}\n7ffff7fc0000-7ffff7fc4000 r--p 00000000 00:00 0\n");
        let e = parse_maps_snapshot(&text, 1 << 47).expect_err("overlap");
        assert_eq!(e.line, 2);
        assert!(e.message.contains("overlaps or precedes line 1"), "{e}");
        let e = parse_maps_snapshot(GOOD, 0x7ffff7fc5000).expect_err("above");
        assert!(e.message.contains("ends above TASK_SIZE"), "{e}");
    }
}
