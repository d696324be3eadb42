//! The instructions each registered barrier policy emits for the four
//! steps of the protocol, as out-of-line functions to disassemble
//! (`cargo xtask asm`). Run, it prints where each function lies relative
//! to [`anchor`] (`policy step offset`), so that a disassembler can find
//! the generic functions' instances without their mangled names.

use std::hint::black_box;

use mm_core::sync::AtomicU32;
use mm_core::{BarrierPolicy, PolicyKind, PolicyVisitor};

/// mmap_write_lock's bump.
#[inline(never)]
pub fn write_lock<P: BarrierPolicy>(seq: &AtomicU32, new: u32) {
    P::write_begin(seq, new)
}

/// mmap_write_unlock's bump.
#[inline(never)]
pub fn write_unlock<P: BarrierPolicy>(seq: &AtomicU32, new: u32) {
    P::write_end(seq, new)
}

/// mmap_lock_speculate_try_begin.
#[inline(never)]
pub fn try_begin<P: BarrierPolicy>(seq: &AtomicU32) -> Option<u32> {
    P::read_begin(seq)
}

/// mmap_lock_speculate_retry.
#[inline(never)]
pub fn retry<P: BarrierPolicy>(seq: &AtomicU32, start: u32) -> bool {
    P::read_retry(seq, start)
}

/// A fixed point whose address the disassembler knows by name.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn mm_barrier_asm_anchor() {}

/// Calls the four steps once (so that they are instantiated) and prints
/// their offsets from the anchor.
struct Steps;

impl PolicyVisitor for Steps {
    type Output = ();
    fn visit<P: BarrierPolicy>(self) {
        let seq = AtomicU32::new(0);
        let s = black_box(&seq);
        write_lock::<P>(s, 1);
        write_unlock::<P>(s, 2);
        black_box(try_begin::<P>(s));
        black_box(retry::<P>(s, 2));
        let anchor = mm_barrier_asm_anchor as extern "C" fn() as usize;
        let fns: [(&str, usize); 4] = [
            ("write-lock", write_lock::<P> as fn(&AtomicU32, u32) as usize),
            ("write-unlock", write_unlock::<P> as fn(&AtomicU32, u32) as usize),
            ("try-begin", try_begin::<P> as fn(&AtomicU32) -> Option<u32> as usize),
            ("retry", retry::<P> as fn(&AtomicU32, u32) -> bool as usize),
        ];
        for (step, addr) in fns {
            println!("{}\t{step}\t{}", P::NAME, addr as i64 - anchor as i64);
        }
    }
}

fn main() {
    mm_barrier_asm_anchor();
    for &p in PolicyKind::ALL {
        p.visit(Steps);
    }
}
