//! Random round trips against a page-granular reference of protections.
//!
//! Also the speed check: prints the mean latency per call (run with
//! `--nocapture` to see it).

mod common;

use std::time::Instant;

use common::{BUS, OK, SEGV, anon, maps};
use mm_host::HostProcess;
use mm_ops::call::{Access, Call, Outcome};
use mm_ops::uapi::{
    Errno, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PAGE_SIZE, PROT_EXEC, PROT_NONE, PROT_READ, PROT_WRITE,
};

const P: u64 = PAGE_SIZE;
const PAGES: u64 = 64;
const ROUNDS: usize = 2000;
const PROTS: [u64; 4] = [PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_EXEC];

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn perms(prot: u64) -> String {
    let bit = |b, c| if prot & b != 0 { c } else { '-' };
    [bit(PROT_READ, 'r'), bit(PROT_WRITE, 'w'), bit(PROT_EXEC, 'x'), 'p']
        .iter()
        .collect()
}

/// What the reference expects of one access to a page.
fn expected(prot: Option<u64>, access: Access) -> Outcome {
    let Some(prot) = prot else { return SEGV };
    let allowed = match access {
        Access::Read => prot != PROT_NONE,
        Access::Write => prot & PROT_WRITE != 0,
        Access::Exec => prot & PROT_EXEC != 0,
    };
    if allowed { OK } else { SEGV }
}

#[test]
fn random_round_trips_match_a_page_reference() {
    let mut h = HostProcess::spawn().unwrap();
    let base = anon(&mut h, PAGES, PROT_NONE);
    let mut model: Vec<Option<u64>> = vec![Some(PROT_NONE); PAGES as usize];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);

    let start = Instant::now();
    for round in 0..ROUNDS {
        let first = rng.below(PAGES);
        let count = 1 + rng.below(8.min(PAGES - first));
        let (addr, len) = (base + first * P, count * P);
        let pages = first as usize..(first + count) as usize;
        let roll = rng.below(100);
        let (call, want) = if roll < 20 {
            let prot = PROTS[rng.below(4) as usize];
            let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
            pages.for_each(|p| model[p] = Some(prot));
            (
                Call::Mmap {
                    addr,
                    len,
                    prot,
                    flags,
                    fd: -1,
                    off: 0,
                },
                Outcome::Val(addr),
            )
        } else if roll < 30 {
            pages.for_each(|p| model[p] = None);
            (Call::Munmap { addr, len }, Outcome::Val(0))
        } else if roll < 50 {
            // Linux changes the VMAs up to the first hole, then says ENOMEM.
            let prot = PROTS[rng.below(4) as usize];
            let mut want = Outcome::Val(0);
            for p in pages {
                if model[p].is_none() {
                    want = Outcome::Err(Errno::ENOMEM);
                    break;
                }
                model[p] = Some(prot);
            }
            (Call::Mprotect { addr, len, prot }, want)
        } else {
            let access = match rng.below(100) {
                0..2 => Access::Exec,
                2..50 => Access::Read,
                _ => Access::Write,
            };
            let offset = rng.below(P);
            let want = expected(model[first as usize], access);
            (
                Call::Fault {
                    addr: addr + offset,
                    access,
                },
                want,
            )
        };
        let got = h.call(&call).unwrap();
        assert_eq!(got, want, "round {round}: {call:?}");
        assert_ne!(got, BUS, "anonymous memory never gives SIGBUS");
    }
    let elapsed = start.elapsed();
    eprintln!(
        "mm-host: {ROUNDS} round trips in {elapsed:?}, {:.1} µs per call",
        elapsed.as_secs_f64() * 1e6 / ROUNDS as f64
    );

    // Page by page, /proc/self/maps agrees with the reference.
    let lines = maps(&mut h);
    for (i, prot) in model.iter().enumerate() {
        let addr = base + i as u64 * P;
        let line = lines.iter().find(|l| l.start <= addr && addr < l.end);
        match (prot, line) {
            (None, None) => {}
            (Some(prot), Some(line)) => assert_eq!(line.perms, perms(*prot), "page {i}"),
            (prot, line) => panic!("page {i}: reference {prot:?}, maps {line:?}"),
        }
    }
}
