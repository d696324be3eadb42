//! Helpers shared by the integration tests.
#![allow(dead_code)]

use mm_host::HostProcess;
use mm_ops::call::{Access, Call, Outcome, Signal};
use mm_ops::uapi::{MAP_ANONYMOUS, MAP_PRIVATE, PAGE_SIZE};

/// One line of `/proc/PID/maps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapsLine {
    pub start: u64,
    pub end: u64,
    pub perms: String,
    pub offset: u64,
    pub name: String,
}

/// Parses `/proc/PID/maps` text.
pub fn parse_maps(text: &str) -> Vec<MapsLine> {
    text.lines()
        .map(|line| {
            let mut f = line.split_whitespace();
            let range = f.next().expect("range");
            let (s, e) = range.split_once('-').expect("a-b");
            let perms = f.next().expect("perms").to_string();
            let offset = u64::from_str_radix(f.next().expect("offset"), 16).unwrap();
            let _dev = f.next().expect("dev");
            let _inode = f.next().expect("inode");
            let name = f.collect::<Vec<_>>().join(" ");
            MapsLine {
                start: u64::from_str_radix(s, 16).unwrap(),
                end: u64::from_str_radix(e, 16).unwrap(),
                perms,
                offset,
                name,
            }
        })
        .collect()
}

/// The helper's maps, parsed.
pub fn maps(host: &mut HostProcess) -> Vec<MapsLine> {
    parse_maps(&host.maps().expect("maps"))
}

/// The maps line containing `addr`, if any.
pub fn vma_at(host: &mut HostProcess, addr: u64) -> Option<MapsLine> {
    maps(host).into_iter().find(|l| l.start <= addr && addr < l.end)
}

/// `call` must succeed; returns its value.
pub fn ok(host: &mut HostProcess, call: Call) -> u64 {
    match host.call(&call).expect("helper alive") {
        Outcome::Val(v) => v,
        other => panic!("{call:?} gave {other:?}"),
    }
}

/// An anonymous private mapping of `pages` pages anywhere.
pub fn anon(host: &mut HostProcess, pages: u64, prot: u64) -> u64 {
    ok(
        host,
        Call::Mmap {
            addr: 0,
            len: pages * PAGE_SIZE,
            prot,
            flags: MAP_PRIVATE | MAP_ANONYMOUS,
            fd: -1,
            off: 0,
        },
    )
}

/// The outcome of one fault.
pub fn fault(host: &mut HostProcess, addr: u64, access: Access) -> Outcome {
    host.call(&Call::Fault { addr, access }).expect("helper alive")
}

/// `Outcome::Signal(SIGSEGV)`.
pub const SEGV: Outcome = Outcome::Signal(Signal::Segv);
/// `Outcome::Signal(SIGBUS)`.
pub const BUS: Outcome = Outcome::Signal(Signal::Bus);
/// `Outcome::Val(0)`: the access went through.
pub const OK: Outcome = Outcome::Val(0);
