//! What the replay infers about writes a trace does not show
//! ([`ReplayOptions::assume_written`](super::ReplayOptions::assume_written)):
//! the ranges a call made writable, and the ranges a call works on.

use mm_ops::call::{Call, Outcome};
use mm_ops::uapi::{MAP_SHARED, PROT_WRITE};

/// The range a successful `call` made (or kept) writable, for
/// [`ReplayOptions::assume_written`]: new private writable mappings,
/// mprotect to writable, mremap's new range, and heap growth.
pub(super) fn written_range(call: &Call, outcome: &Outcome, old_brk: u64) -> Option<(u64, u64)> {
    let page = |x: u64| x.checked_add(0xfff).map(|v| v & !0xfff);
    match (call, outcome) {
        (&Call::Mmap { len, prot, flags, .. }, &Outcome::Val(a))
            if prot & PROT_WRITE != 0 && flags & MAP_SHARED == 0 =>
        {
            Some((a, a.checked_add(page(len)?)?))
        }
        (&Call::Mprotect { addr, len, prot }, Outcome::Val(_)) if prot & PROT_WRITE != 0 => {
            Some((addr, addr.checked_add(page(len)?)?))
        }
        (&Call::Mremap { new_len, .. }, &Outcome::Val(a)) => Some((a, a.checked_add(page(new_len)?)?)),
        (&Call::Brk { .. }, &Outcome::Val(new)) if new > old_brk => Some((old_brk & !0xfff, page(new)?)),
        _ => None,
    }
}

/// The address ranges `call` works on, before it runs (for a call that
/// chooses its address, where the trace says it went).
pub(super) fn affected_ranges(call: &Call, recorded: Option<Outcome>, old_brk: u64) -> Vec<(u64, u64)> {
    let span = |a: u64, len: u64| (a, a.saturating_add(len));
    let placed = match recorded {
        Some(Outcome::Val(v)) => Some(v),
        _ => None,
    };
    match *call {
        Call::Mmap { addr, len, .. } => vec![span(placed.unwrap_or(addr), len)],
        Call::Munmap { addr, len }
        | Call::Mprotect { addr, len, .. }
        | Call::Madvise { addr, len, .. }
        | Call::Mlock { addr, len }
        | Call::Mlock2 { addr, len, .. }
        | Call::Munlock { addr, len }
        | Call::Mseal { addr, len, .. } => vec![span(addr, len)],
        Call::Mremap {
            old_addr,
            old_len,
            new_len,
            ..
        } => {
            let mut v = vec![span(old_addr, old_len.max(1))];
            if let Some(n) = placed {
                v.push(span(n, new_len));
            }
            v
        }
        Call::Brk { addr } => vec![(old_brk.min(addr), old_brk.max(addr))],
        _ => Vec::new(),
    }
}
