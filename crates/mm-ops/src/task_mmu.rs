//! `/proc/PID/maps` (`fs/proc/task_mmu.c`: `show_map_vma`,
//! `show_vma_header_prefix`, `get_vma_name`).

use std::fmt::Write as _;

use mm_core::file::FileTable;
use mm_core::{MmState, Vma, VmaView};

/// The `[vsyscall]` gate area that x86-64 prints after the last VMA
/// (`get_gate_vma`; not a VMA of the tree).
pub const GATE_LINE: &str = "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n";

/// Width the header is padded to before a name: `25 + sizeof(void *) * 6 - 1`.
const NAME_COLUMN: usize = 72;

/// `vma_is_initial_heap`: overlaps `[start_brk, brk)` (strictly: a VMA
/// that merely touches the heap is not it).
fn is_initial_heap(st: &MmState, v: &Vma) -> bool {
    v.start < st.brk && v.end > st.start_brk
}

/// `vma_is_initial_stack`.
fn is_initial_stack(st: &MmState, v: &Vma) -> bool {
    v.start <= st.start_stack && v.end >= st.start_stack
}

/// Escapes `\n` in a path as `seq_path(…, "\n")` does (`\012`).
fn escape_path(out: &mut String, path: &str) {
    for c in path.chars() {
        if c == '\n' {
            out.push_str("\\012");
        } else {
            out.push(c);
        }
    }
}

/// `show_map_vma`: appends one line for `v`.
pub fn show_map_vma(out: &mut String, st: &MmState, files: &FileTable, v: &Vma) {
    let line_start = out.len();
    let (dev, ino, pgoff, path) = match v.file {
        Some(f) => {
            let i = files.file_inode(f);
            (i.dev, i.ino, v.pgoff << 12, Some((i.path.as_str(), i.deleted)))
        }
        None => ((0, 0), 0, 0, None),
    };
    let p = v.flags.perms();
    let _ = write!(
        out,
        "{:08x}-{:08x} {}{}{}{} {:08x} {:02x}:{:02x} {} ",
        v.start, v.end, p[0] as char, p[1] as char, p[2] as char, p[3] as char, pgoff, dev.0, dev.1, ino
    );
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
    if path.is_some() || name.is_some() {
        // seq_pad: pad to the name column, then one space.
        let used = out.len() - line_start;
        for _ in used..NAME_COLUMN {
            out.push(' ');
        }
        out.push(' ');
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
    }
    out.push('\n');
}

/// Renders the whole address space as `/proc/PID/maps` does, with the
/// `[vsyscall]` line at the end when `gate` is set.
pub fn render_maps(mm: &impl VmaView, files: &FileTable, gate: bool) -> String {
    let st = mm.state();
    let mut out = String::with_capacity(mm.vma_count() * 80 + 100);
    for v in mm.snapshot() {
        show_map_vma(&mut out, st, files, &v);
    }
    if gate {
        out.push_str(GATE_LINE);
    }
    out
}
