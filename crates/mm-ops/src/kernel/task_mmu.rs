//! `/proc/PID/maps` (`fs/proc/task_mmu.c`: `show_map_vma`,
//! `show_vma_header_prefix`, `get_vma_name`).

use mm_core::file::FileTable;
use mm_core::vma_lock::{NextPath, lock_next_vma};
use mm_core::{BarrierPolicy, MmState, MmStruct, VmFlags, Vma, VmaView};

/// The `[vsyscall]` gate area that x86-64 prints after the last VMA
/// (`get_gate_vma`; not a VMA of the tree).
pub const GATE_LINE: &str = "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n";
/// The gate line with `vsyscall=emulate` (the page is readable).
pub const GATE_LINE_EMULATE: &str =
    "ffffffffff600000-ffffffffff601000 r-xp 00000000 00:00 0                  [vsyscall]\n";

/// The gate line `/proc/PID/maps` ends with in vsyscall mode `v`
/// (`gate_vma` of `arch/x86/entry/vsyscall/vsyscall_64.c`; none with
/// `vsyscall=none`).
pub fn gate_line(v: mm_core::Vsyscall) -> Option<&'static str> {
    match v {
        mm_core::Vsyscall::XOnly => Some(GATE_LINE),
        mm_core::Vsyscall::Emulate => Some(GATE_LINE_EMULATE),
        mm_core::Vsyscall::None => None,
    }
}

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

/// Whether `path` holds a newline, eight bytes at a time: a word XORed
/// with eight newlines has a zero byte where the path has one, and
/// `(x - 0x01..01) & !x & 0x80..80` is non-zero exactly when `x` has a zero
/// byte. The last word overlaps the one before it; no branch depends on the
/// bytes.
fn has_newline(path: &str) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let b = path.as_bytes();
    if b.len() < 8 {
        return b.contains(&b'\n');
    }
    let zero_byte = |w: &[u8]| {
        let x = u64::from_le_bytes(w.try_into().unwrap_or_default()) ^ (u64::from(b'\n') * ONES);
        x.wrapping_sub(ONES) & !x & HIGHS
    };
    let mut found = zero_byte(&b[b.len() - 8..]);
    for w in b.chunks_exact(8) {
        found |= zero_byte(w);
    }
    found != 0
}

/// Escapes `\n` in a path as `seq_path(…, "\n")` does (`\012`).
fn escape_path(out: &mut String, path: &str) {
    if !has_newline(path) {
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

/// The eight nibbles of `x`, one per byte, most significant in the highest
/// byte.
fn spread_nibbles(x: u32) -> u64 {
    let x = u64::from(x);
    let x = (x | x << 16) & 0x0000_ffff_0000_ffff;
    let x = (x | x << 8) & 0x00ff_00ff_00ff_00ff;
    (x | x << 4) & 0x0f0f_0f0f_0f0f_0f0f
}

/// Eight bytes of nibbles (0..=15) as lowercase hex digits, without a
/// branch: `'0' + n`, plus `'a' - '0' - 10` where `n > 9`.
fn nibbles_to_hex(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let above_nine = ((x + 6 * ONES) >> 4) & ONES;
    x + u64::from(b'0') * ONES + above_nine * u64::from(b'a' - b'0' - 10)
}

/// `00` to `99`.
const DEC_PAIRS: [[u8; 2]; 100] = {
    let mut t = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        t[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    t
};

/// The 16 hex digits of `v` as bytes of a `u128`, most significant digit
/// in the highest byte.
#[inline(always)]
fn hex16(v: u64) -> u128 {
    let hi = nibbles_to_hex(spread_nibbles((v >> 32) as u32));
    let lo = nibbles_to_hex(spread_nibbles(v as u32));
    u128::from(hi) << 64 | u128::from(lo)
}

/// Room in the header for the longest line: 16 + 1 + 16 + 1 + 4 + 1 + 16 +
/// 1 + 8 + 1 + 8 + 1 + 20 + 1 = 95 bytes, plus the 16 a hex field writes
/// past its end, and under it the name column (72) plus one space.
const HEADER_ROOM: usize = 128;

/// The fixed-width start of a maps line, assembled as bytes (every byte
/// written is ASCII) and appended once. The buffer lives apart from the
/// cursor, so that the cursor stays in a register.
struct Header<'b> {
    buf: &'b mut [u8; HEADER_ROOM],
    len: usize,
}

impl<'b> Header<'b> {
    /// A header writing into `buf`, which must hold only spaces.
    #[inline(always)]
    fn new(buf: &'b mut [u8; HEADER_ROOM]) -> Header<'b> {
        Header { buf, len: 0 }
    }

    #[inline(always)]
    fn byte(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    #[inline(always)]
    fn bytes4(&mut self, b: [u8; 4]) {
        self.buf[self.len..self.len + 4].copy_from_slice(&b);
        self.len += 4;
    }

    /// A 32-bit `v` (a device number) in lowercase hex, zero-padded to
    /// `width` (at most 8) digits: half the work of [`Header::hex`].
    #[inline(always)]
    fn hex32(&mut self, v: u32, width: usize) {
        let digits = (8 - v.leading_zeros() as usize / 4).max(width).max(1);
        let shown = nibbles_to_hex(spread_nibbles(v)) << (8 * (8 - digits));
        self.buf[self.len..self.len + 8].copy_from_slice(&shown.to_be_bytes());
        self.len += digits;
    }

    /// `v` in lowercase hex, zero-padded to `width` (at most 16) digits
    /// (`%0*lx`, as `show_vma_header_prefix` prints with `seq_put_hex_ll`).
    /// Always stores 16 bytes: what lies past the digits is overwritten by
    /// the next field, or blanked by [`Header::end`].
    #[inline(always)]
    fn hex(&mut self, v: u64, width: usize) {
        // File offsets mostly fit in 32 bits: half the work.
        if v >> 32 == 0 && width <= 8 {
            return self.hex32(v as u32, width);
        }
        let digits = (16 - v.leading_zeros() as usize / 4).max(width).max(1);
        // The leading digits to the front, as a 16-byte big-endian store.
        let shown = hex16(v) << (8 * (16 - digits));
        self.buf[self.len..self.len + 16].copy_from_slice(&shown.to_be_bytes());
        self.len += digits;
    }

    /// `v` in decimal (`seq_put_decimal_ull`), two digits at a time from
    /// the last.
    #[inline(always)]
    fn dec(&mut self, v: u64) {
        let digits = v.checked_ilog10().unwrap_or(0) as usize + 1;
        let mut at = self.len + digits;
        let mut x = v;
        while x >= 100 {
            let pair = DEC_PAIRS[(x % 100) as usize];
            self.buf[at - 2..at].copy_from_slice(&pair);
            x /= 100;
            at -= 2;
        }
        if x >= 10 {
            self.buf[at - 2..at].copy_from_slice(&DEC_PAIRS[x as usize]);
        } else {
            self.buf[at - 1] = b'0' + x as u8;
        }
        self.len += digits;
    }

    /// Blanks what the last hex field wrote past the end of the line, so
    /// that the padding to the name column is spaces.
    #[inline(always)]
    fn end(&mut self) {
        self.buf[self.len..self.len + 16].fill(b' ');
    }

    fn push_to(&self, out: &mut String, len: usize) {
        let bytes = &self.buf[..len];
        // Every byte of the buffer is ASCII: spaces it starts with, and the
        // digits, dashes, colons and permission letters written into it
        // (the unit tests check each writer; debug builds check again).
        debug_assert!(bytes.is_ascii(), "maps header not ASCII: {bytes:?}");
        // SAFETY: ASCII bytes are valid UTF-8 (see above). Validating them
        // (`str::from_utf8`) cost 112 of a maps line's 867 instructions.
        out.push_str(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
}

/// Appends `v` in hex zero-padded to `width` digits (tests compare it with
/// `format!`).
#[cfg(test)]
fn push_hex(out: &mut String, v: u64, width: usize) {
    let mut buf = [b' '; HEADER_ROOM];
    let mut h = Header::new(&mut buf);
    h.hex(v, width);
    h.push_to(out, h.len);
}

/// Appends a 32-bit `v` in hex zero-padded to `width` digits.
#[cfg(test)]
fn push_hex32(out: &mut String, v: u32, width: usize) {
    let mut buf = [b' '; HEADER_ROOM];
    let mut h = Header::new(&mut buf);
    h.hex32(v, width);
    h.push_to(out, h.len);
}

/// Appends `v` in decimal (tests compare it with `format!`).
#[cfg(test)]
fn push_dec(out: &mut String, v: u64) {
    let mut buf = [b' '; HEADER_ROOM];
    let mut h = Header::new(&mut buf);
    h.dec(v);
    h.push_to(out, h.len);
}

/// The name a maps line shows for `v` (path with ` (deleted)`, special
/// name, `[heap]`, `[stack]`), or empty (`get_vma_name`).
pub fn vma_name(st: &MapsMm, files: &FileTable, v: &Vma) -> String {
    let mut out = String::new();
    if let Some(f) = v.file {
        let i = files.file_inode(f);
        escape_path(&mut out, &i.path);
        if i.deleted() {
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
            (i.dev, i.ino, v.pgoff << 12, Some((i.path.as_str(), i.deleted())))
        }
        None => ((0, 0), 0, 0, None),
    };
    let mut buf = [b' '; HEADER_ROOM];
    let mut h = Header::new(&mut buf);
    h.hex(v.start, 8);
    h.byte(b'-');
    h.hex(v.end, 8);
    h.byte(b' ');
    h.bytes4(v.flags.perms());
    h.byte(b' ');
    h.hex(pgoff, 8);
    h.byte(b' ');
    h.hex32(dev.0, 2);
    h.byte(b':');
    h.hex32(dev.1, 2);
    h.byte(b' ');
    h.dec(ino);
    h.byte(b' ');
    h.end();
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
/// `[vsyscall]` line ([`gate_line`] of the configured mode) at the end
/// when `gate` is set.
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
    if gate && let Some(line) = gate_line(mm.state().cfg.vsyscall) {
        out.push_str(line);
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
    if gate && let Some(line) = gate_line(mm.vsyscall()) {
        out.push_str(line);
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
    use super::{has_newline, push_dec, push_hex, push_hex32};

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
        // Every digit value at every position, and a pseudo-random walk.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        // Miri (`cargo xtask miri`) runs a smaller sample.
        let samples = if cfg!(miri) { 300 } else { 4096 };
        for i in 0..samples {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let v = if i < 256 {
                (i % 16) << (4 * (i / 16))
            } else {
                x >> (i % 64)
            };
            for w in [1usize, 2, 8, 16] {
                let mut s = String::new();
                push_hex(&mut s, v, w);
                assert_eq!(s, format!("{v:0w$x}"), "{v:#x} width {w}");
            }
            let mut s = String::new();
            push_dec(&mut s, v);
            assert_eq!(s, v.to_string());
            for w in [1usize, 2, 8] {
                let v = v as u32;
                let mut s = String::new();
                push_hex32(&mut s, v, w);
                assert_eq!(s, format!("{v:0w$x}"), "{v:#x} width {w}");
            }
        }
        for v in [0, 9, 10, 99, 100, u64::MAX, 10u64.pow(19), 10u64.pow(19) - 1] {
            let mut s = String::new();
            push_dec(&mut s, v);
            assert_eq!(s, v.to_string());
        }
    }

    #[test]
    fn has_newline_finds_every_position() {
        let longest = if cfg!(miri) { 20 } else { 80 };
        for len in 0..longest {
            let base = "a".repeat(len);
            assert!(!has_newline(&base));
            // Bytes one bit or one carry away from a newline, and
            // multi-byte characters with 0x8a in them, are not newlines.
            let near: String = ["\t", "\u{b}", "\u{10a}", "\u{a0a}", "+", "\r"]
                .iter()
                .cycle()
                .take(len)
                .copied()
                .collect();
            assert!(!has_newline(&near), "{near:?}");
            for at in 0..len {
                let mut p = base.clone().into_bytes();
                p[at] = b'\n';
                assert!(has_newline(std::str::from_utf8(&p).unwrap()), "len {len} at {at}");
            }
        }
    }
}
