//! `/proc/PID/maps` (`fs/proc/task_mmu.c`: `show_map_vma`,
//! `show_vma_header_prefix`, `get_vma_name`).

use mm_core::file::FileTable;
use mm_core::vma_lock::{NextPath, lock_next_vma};
use mm_core::{BarrierPolicy, MmState, MmStruct, VmFlags, Vma, VmaView};

/// The `[vsyscall]` gate area that x86-64 prints after the last VMA
/// (`get_gate_vma`; not a VMA of the tree).
pub const GATE_LINE: &str = "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n";

/// Width the header is padded to before a name: `25 + sizeof(void *) * 6 - 1`.
const NAME_COLUMN: usize = 72;

/// The `mm_struct` fields a maps line reads besides its VMA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapsMm {
    /// `mm->start_brk`.
    pub start_brk: u64,
    /// `mm->brk`.
    pub brk: u64,
    /// `mm->start_stack`.
    pub start_stack: u64,
}

impl MapsMm {
    /// From the writer-side state (under `mmap_lock`).
    pub fn of(st: &MmState) -> MapsMm {
        MapsMm {
            start_brk: st.start_brk,
            brk: st.brk,
            start_stack: st.start_stack,
        }
    }
}

/// `vma_is_initial_heap`: overlaps `[start_brk, brk)` (strictly: a VMA
/// that merely touches the heap is not it).
fn is_initial_heap(st: &MapsMm, v: &Vma) -> bool {
    v.start < st.brk && v.end > st.start_brk
}

/// `vma_is_initial_stack`.
fn is_initial_stack(st: &MapsMm, v: &Vma) -> bool {
    v.start <= st.start_stack && v.end >= st.start_stack
}

/// Escapes `\n` in a path as `seq_path(…, "\n")` does (`\012`).
fn escape_path(out: &mut String, path: &str) {
    if !path.contains('\n') {
        out.push_str(path);
        return;
    }
    for c in path.chars() {
        if c == '\n' {
            out.push_str("\\012");
        } else {
            out.push(c);
        }
    }
}

/// Every byte value as two lowercase hex digits.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [D[i >> 4], D[i & 0xf]];
        i += 1;
    }
    t
};

/// The fixed-width start of a maps line, assembled as bytes (every byte
/// written is ASCII) and appended once.
struct Header {
    buf: [u8; 128],
    len: usize,
}

impl Header {
    fn new() -> Header {
        Header {
            buf: [b' '; 128],
            len: 0,
        }
    }

    fn byte(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    /// `v` in lowercase hex, zero-padded to `width` digits (`%0*lx`, as
    /// `show_vma_header_prefix` prints with `seq_put_hex_ll`).
    fn hex(&mut self, v: u64, width: usize) {
        let digits = (16 - v.leading_zeros() as usize / 4).max(width.min(16));
        let end = self.len + digits;
        // Two digits per step, from the right, through a table of the 256
        // byte values.
        let mut x = v;
        let mut at = end;
        while at >= self.len + 2 {
            let pair = HEX_PAIRS[(x & 0xff) as usize];
            self.buf[at - 2..at].copy_from_slice(&pair);
            x >>= 8;
            at -= 2;
        }
        if at > self.len {
            self.buf[at - 1] = HEX_PAIRS[(x & 0xf) as usize][1];
        }
        self.len = end;
    }

    fn dec(&mut self, v: u64) {
        let mut b = itoa::Buffer::new();
        let s = b.format(v).as_bytes();
        self.buf[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
    }

    fn push_to(&self, out: &mut String, len: usize) {
        out.push_str(std::str::from_utf8(&self.buf[..len]).unwrap_or_default());
    }
}

/// Appends `v` in hex zero-padded to `width` digits (tests compare it with
/// `format!`).
#[cfg(test)]
fn push_hex(out: &mut String, v: u64, width: usize) {
    let mut h = Header::new();
    h.hex(v, width);
    h.push_to(out, h.len);
}

/// The name a maps line shows for `v` (path with ` (deleted)`, special
/// name, `[heap]`, `[stack]`), or empty (`get_vma_name`).
pub fn vma_name(st: &MapsMm, files: &FileTable, v: &Vma) -> String {
    let mut out = String::new();
    if let Some(f) = v.file {
        let i = files.file_inode(f);
        escape_path(&mut out, &i.path);
        if i.deleted {
            out.push_str(" (deleted)");
        }
    } else if let Some(s) = v.special {
        out.push_str(s);
    } else if is_initial_heap(st, v) {
        out.push_str("[heap]");
    } else if is_initial_stack(st, v) {
        out.push_str("[stack]");
    }
    out
}

/// `show_map_vma`: appends one line for `v`.
pub fn show_map_vma(out: &mut String, st: &MapsMm, files: &FileTable, v: &Vma) {
    let (dev, ino, pgoff, path) = match v.file {
        Some(f) => {
            let i = files.file_inode(f);
            (i.dev, i.ino, v.pgoff << 12, Some((i.path.as_str(), i.deleted)))
        }
        None => ((0, 0), 0, 0, None),
    };
    let mut h = Header::new();
    h.hex(v.start, 8);
    h.byte(b'-');
    h.hex(v.end, 8);
    h.byte(b' ');
    for b in v.flags.perms() {
        h.byte(b);
    }
    h.byte(b' ');
    h.hex(pgoff, 8);
    h.byte(b' ');
    h.hex(u64::from(dev.0), 2);
    h.byte(b':');
    h.hex(u64::from(dev.1), 2);
    h.byte(b' ');
    h.dec(ino);
    h.byte(b' ');
    let name: Option<&str> = if path.is_some() {
        None
    } else if let Some(s) = v.special {
        Some(s)
    } else if is_initial_heap(st, v) {
        Some("[heap]")
    } else if is_initial_stack(st, v) {
        Some("[stack]")
    } else {
        None
    };
    if path.is_none() && name.is_none() {
        h.push_to(out, h.len);
        out.push('\n');
        return;
    }
    // seq_pad: pad to the name column (the buffer is pre-filled with
    // spaces), then one space.
    h.push_to(out, h.len.max(NAME_COLUMN) + 1);
    match (path, name) {
        (Some((p, deleted)), _) => {
            escape_path(out, p);
            if deleted {
                out.push_str(" (deleted)");
            }
        }
        (None, Some(n)) => out.push_str(n),
        (None, None) => {}
    }
    out.push('\n');
}

/// `show_smap_vma_flags` (`fs/proc/task_mmu.c`): the mnemonics of the
/// `VmFlags:` line of `/proc/PID/smaps`, in bit order, each followed by a
/// space (protection-key bits are not shown there).
pub fn smaps_vm_flags(flags: VmFlags) -> String {
    let mut out = String::with_capacity(64);
    for &(flag, mn) in VmFlags::NAMED {
        if flag.0 != 0 && !mn.is_empty() && flags.contains(flag) {
            out.push_str(mn);
            out.push(' ');
        }
    }
    out
}

/// `(start, end, VmFlags)` of every VMA, as `/proc/PID/smaps` shows them.
pub fn smaps_flags(mm: &impl VmaView) -> Vec<(u64, u64, String)> {
    let mut v = Vec::with_capacity(mm.vma_count());
    mm.for_each_vma(|vma| v.push((vma.start, vma.end, smaps_vm_flags(vma.flags))));
    v
}

/// Renders the whole address space as `/proc/PID/maps` does, with the
/// `[vsyscall]` line at the end when `gate` is set.
pub fn render_maps(mm: &impl VmaView, files: &FileTable, gate: bool) -> String {
    let mut out = String::with_capacity(mm.vma_count() * 80 + 100);
    render_maps_into(&mut out, mm, files, gate);
    out
}

/// [`render_maps`] appending to `out` (a reader's reused buffer, as
/// `seq_file` reuses its page).
pub fn render_maps_into(out: &mut String, mm: &impl VmaView, files: &FileTable, gate: bool) {
    let st = MapsMm::of(mm.state());
    // A maps line shows no `anon_vma`: the writer's copies do.
    mm.for_each_vma_ref(|v| show_map_vma(out, &st, files, v));
    if gate {
        out.push_str(GATE_LINE);
    }
}

/// How a lock-free maps read went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MapsReadStats {
    /// Lines (VMAs) shown.
    pub lines: u64,
    /// VMAs found and locked without `mmap_lock`.
    pub lockless: u64,
    /// VMAs found under `mmap_read_lock` (`lock_next_vma`'s fallback).
    pub fallbacks: u64,
}

/// `/proc/PID/maps` as Linux 6.17+ reads it: each VMA under its own read
/// lock, found by `lock_next_vma` from the end of the previous one, with
/// `mmap_read_lock` only as a fallback (`fs/proc/task_mmu.c`
/// `m_start`/`m_next`/`show_map` with `CONFIG_PER_VMA_LOCK`). Each line is
/// a VMA as it was at some instant while its lock was held; lines come in
/// address order; a gap between two lines was a gap at some instant.
pub fn render_maps_vma_locked<P: BarrierPolicy>(out: &mut String, mm: &MmStruct<P>, gate: bool) -> MapsReadStats {
    let stats = for_each_vma_locked(mm, |v| {
        let (start_brk, brk, start_stack) = mm.heap_and_stack();
        let st = MapsMm {
            start_brk,
            brk,
            start_stack,
        };
        show_map_vma(out, &st, &mm.files(), v);
    });
    if gate {
        out.push_str(GATE_LINE);
    }
    stats
}

/// The walk of [`render_maps_vma_locked`]: calls `f` on each VMA in
/// address order, each while its read lock is held (`lock_next_vma` from
/// the end of the previous one).
pub fn for_each_vma_locked<P: BarrierPolicy>(mm: &MmStruct<P>, mut f: impl FnMut(&Vma)) -> MapsReadStats {
    let mut stats = MapsReadStats::default();
    let mut from = 0;
    while let Some((lock, path)) = lock_next_vma(mm, from) {
        match path {
            NextPath::Lockless => stats.lockless += 1,
            NextPath::MmapLock => stats.fallbacks += 1,
        }
        let s = lock.slot();
        let v = Vma {
            start: s.start(),
            end: s.end(),
            pgoff: s.pgoff(),
            flags: s.flags(),
            file: s.file(),
            anon_vma: s.anon_vma(),
            special: s.special(),
        };
        f(&v);
        stats.lines += 1;
        from = v.end;
        drop(lock);
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::push_hex;

    #[test]
    fn push_hex_matches_format() {
        for (v, w) in [
            (0u64, 8usize),
            (0, 2),
            (0xfe, 2),
            (0x1, 8),
            (0x7ffff7fff000, 8),
            (u64::MAX, 8),
            (0xffffffffff600000, 8),
            (0x123, 0),
        ] {
            let mut s = String::new();
            push_hex(&mut s, v, w);
            assert_eq!(s, format!("{v:0w$x}"), "{v:#x} width {w}");
        }
    }
}
