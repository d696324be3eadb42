//! Every page fault of the traced threads, from the kernel's
//! `exceptions:page_fault_user` and `exceptions:page_fault_kernel`
//! tracepoints (`arch/x86/mm/fault.c`, `trace_page_fault_entries`),
//! sampled through `perf_event_open` (the `perf-event2` crate): one
//! counter with a ring buffer per traced thread, every event sampled with
//! its thread, time and raw record (address, ip, error code).
//!
//! The tracer drains every buffer before it writes a trace line, so a
//! fault goes into the trace before the call that completed after it, as
//! `PID fault(ADDR, READ|WRITE|EXEC) = OUTCOME`. A user-mode fault that
//! fails stops its thread at the signal's delivery before it runs again,
//! so the outcome is known for every fault but the last one of a thread
//! still running: `0`, the signal, or `?` for that one (and for the
//! kernel's faults, which fail with an error code). Faults of the kernel on user
//! addresses (`copy_to_user` in `read(2)`) count: they give VMAs an
//! `anon_vma` as user faults do. Faults on kernel addresses (and the
//! vsyscall page) do not.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use mm_ops::call::Access;
use perf_event::events::Tracepoint;
use perf_event::{Builder, SampleFlag, Sampler};

/// `PERF_RECORD_SAMPLE`.
const RECORD_SAMPLE: u32 = 9;
/// `PERF_RECORD_LOST`.
const RECORD_LOST: u32 = 2;
/// x86 page-fault error code bits (`arch/x86/include/asm/trap_pf.h`).
const X86_PF_WRITE: u64 = 1 << 1;
const X86_PF_INSTR: u64 = 1 << 4;
/// Faults at or above this are not in a VMA (x86-64 `TASK_SIZE`).
const TASK_SIZE: u64 = 0x7fff_ffff_f000;
/// Where tracefs is, or may be mounted.
const TRACEFS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// One fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fault {
    /// `CLOCK_MONOTONIC` nanoseconds.
    pub time: u64,
    /// The faulting thread.
    pub tid: i32,
    /// The faulting address.
    pub addr: u64,
    /// What the access was.
    pub access: Access,
    /// A fault in user mode (`page_fault_user`); else the kernel's own
    /// access to user memory (`page_fault_kernel`, e.g. `copy_to_user`),
    /// whose failure is an error code, not a signal.
    pub user: bool,
}

impl Fault {
    /// The trace line: `PID fault(ADDR, ACCESS) = OUTCOME`, where the
    /// outcome is `0`, `SIGSEGV`, `SIGBUS`, or `?` when unknown.
    pub(crate) fn line(&self, outcome: &str) -> String {
        let a = match self.access {
            Access::Read => "READ",
            Access::Write => "WRITE",
            Access::Exec => "EXEC",
        };
        format!("{} fault({:#x}, {a}) = {outcome}", self.tid, self.addr)
    }
}

/// Decodes a sample's body (`PERF_SAMPLE_TID | TIME | RAW`): pid, tid,
/// time, raw size, then the tracepoint record (common fields, address at
/// 8, ip at 16, error code at 24).
fn decode(body: &[u8], user: bool) -> Option<Fault> {
    let u32_at = |o: usize| Some(u32::from_ne_bytes(body.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_ne_bytes(body.get(o..o + 8)?.try_into().ok()?));
    let tid = u32_at(4)? as i32;
    let time = u64_at(8)?;
    let raw = 20;
    let addr = u64_at(raw + 8)?;
    let error = u64_at(raw + 24)?;
    let access = if error & X86_PF_INSTR != 0 {
        Access::Exec
    } else if error & X86_PF_WRITE != 0 {
        Access::Write
    } else {
        Access::Read
    };
    Some(Fault {
        time,
        tid,
        addr,
        access,
        user,
    })
}

/// The ids of the two tracepoints, mounting tracefs if it is not there
/// (root only).
fn tracepoint_ids() -> Result<[u64; 2], String> {
    let read = |dir: &str| -> Option<[u64; 2]> {
        let id = |name: &str| {
            std::fs::read_to_string(format!("{dir}/events/exceptions/{name}/id"))
                .ok()?
                .trim()
                .parse()
                .ok()
        };
        Some([id("page_fault_user")?, id("page_fault_kernel")?])
    };
    if let Some(ids) = TRACEFS.iter().find_map(|d| read(d)) {
        return Ok(ids);
    }
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tracefs", "nodev", TRACEFS[0]])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if mounted && let Some(ids) = read(TRACEFS[0]) {
        return Ok(ids);
    }
    Err(format!(
        "the exceptions:page_fault_user tracepoint is not readable (tracefs at {} or {}; mounting it needs root)",
        TRACEFS[0], TRACEFS[1]
    ))
}

/// What the tracer and the pump thread share.
#[derive(Default)]
struct Shared {
    samplers: BTreeMap<i32, Vec<Sampler>>,
    /// Faults read from the ring buffers, not yet handed to the tracer.
    pending: Vec<Fault>,
    /// Events the kernel dropped (a ring buffer was full).
    lost: u64,
}

impl Shared {
    /// Reads every record the ring buffers hold.
    fn pump(&mut self) {
        for samplers in self.samplers.values_mut() {
            // The first sampler is page_fault_user's.
            for (i, s) in samplers.iter_mut().enumerate() {
                while let Some(r) = s.next_record() {
                    let body = r.to_contiguous();
                    match r.ty() {
                        RECORD_SAMPLE => {
                            if let Some(f) = decode(&body, i == 0).filter(|f| f.addr < TASK_SIZE) {
                                self.pending.push(f);
                            }
                        }
                        RECORD_LOST => {
                            if let Some(n) = body.get(8..16) {
                                self.lost += u64::from_ne_bytes(n.try_into().expect("8 bytes"));
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

/// How often the pump thread empties the ring buffers: a thread faulting
/// a page per 1.5 µs fills a buffer's 130,000 records in 0.2 s.
const PUMP_EVERY: std::time::Duration = std::time::Duration::from_millis(1);

/// The samplers of every traced thread, and a thread that keeps emptying
/// their ring buffers while the program runs between the tracer's stops
/// (a program that faults a gigabyte between two system calls would
/// otherwise overflow them).
pub(crate) struct Faults {
    ids: [u64; 2],
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    pump: Option<std::thread::JoinHandle<()>>,
    buffer: usize,
    /// Faults recorded.
    pub recorded: u64,
}

impl Faults {
    /// Finds the tracepoints; an error says why faults cannot be recorded.
    pub(crate) fn new() -> Result<Faults, String> {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        // perf_event_mlock_kb bounds an unprivileged user's buffers.
        Faults::with_buffer(if root { 8 << 20 } else { 128 << 10 })
    }

    /// [`new`](Self::new) with ring buffers of `buffer` bytes.
    fn with_buffer(buffer: usize) -> Result<Faults, String> {
        let ids = tracepoint_ids()?;
        let shared = Arc::new(Mutex::new(Shared::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (sh, st) = (shared.clone(), stop.clone());
        let pump = std::thread::Builder::new()
            .name("fault-pump".into())
            .spawn(move || {
                while !st.load(Ordering::Relaxed) {
                    sh.lock().expect("fault samplers").pump();
                    std::thread::sleep(PUMP_EVERY);
                }
            })
            .map_err(|e| format!("cannot start the fault pump thread: {e}"))?;
        Ok(Faults {
            ids,
            shared,
            stop,
            pump: Some(pump),
            buffer,
            recorded: 0,
        })
    }

    /// Events the kernel dropped so far (a ring buffer was full).
    pub(crate) fn lost(&self) -> u64 {
        self.shared.lock().expect("fault samplers").lost
    }

    /// Starts sampling thread `tid`'s faults.
    pub(crate) fn attach(&mut self, tid: i32) -> Result<(), String> {
        if self.shared.lock().expect("fault samplers").samplers.contains_key(&tid) {
            return Ok(());
        }
        let mut v = Vec::new();
        for id in self.ids {
            let counter = Builder::new(Tracepoint::with_id(id))
                .observe_pid(tid)
                .any_cpu()
                .sample_period(1)
                .sample(SampleFlag::TID | SampleFlag::TIME | SampleFlag::RAW)
                .clockid(perf_event::Clock::MONOTONIC)
                .include_kernel()
                .enabled(true)
                .build()
                .map_err(|e| format!("perf_event_open on thread {tid}: {e}"))?;
            v.push(
                counter
                    .sampled(self.buffer)
                    .map_err(|e| format!("mapping the ring buffer of thread {tid}: {e}"))?,
            );
        }
        self.shared.lock().expect("fault samplers").samplers.insert(tid, v);
        Ok(())
    }

    /// Stops sampling `tid` (after [`drain`](Self::drain)).
    pub(crate) fn detach(&mut self, tid: i32) {
        self.shared.lock().expect("fault samplers").samplers.remove(&tid);
    }

    /// Every fault sampled since the last drain, oldest first: what the
    /// pump thread collected, and what the ring buffers hold now.
    pub(crate) fn drain(&mut self) -> Vec<Fault> {
        let mut out = {
            let mut g = self.shared.lock().expect("fault samplers");
            g.pump();
            std::mem::take(&mut g.pending)
        };
        out.sort_by_key(|f| f.time);
        self.recorded += out.len() as u64;
        out
    }
}

impl Drop for Faults {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(p) = self.pump.take() {
            let _ = p.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_decoding() {
        let mut body = vec![0u8; 20 + 32];
        body[4..8].copy_from_slice(&77i32.to_ne_bytes());
        body[8..16].copy_from_slice(&5u64.to_ne_bytes());
        body[16..20].copy_from_slice(&32u32.to_ne_bytes());
        body[28..36].copy_from_slice(&0x7000_1234u64.to_ne_bytes());
        body[44..52].copy_from_slice(&(X86_PF_WRITE | 4).to_ne_bytes());
        let f = decode(&body, true).unwrap();
        assert_eq!(
            f,
            Fault {
                time: 5,
                tid: 77,
                addr: 0x7000_1234,
                access: Access::Write,
                user: true,
            }
        );
        assert_eq!(f.line("0"), "77 fault(0x70001234, WRITE) = 0");
        assert_eq!(f.line("?"), "77 fault(0x70001234, WRITE) = ?");
        body[44..52].copy_from_slice(&(X86_PF_INSTR | 4).to_ne_bytes());
        assert_eq!(decode(&body, false).unwrap().access, Access::Exec);
        assert!(!decode(&body, false).unwrap().user);
        assert!(decode(&body[..30], true).is_none());
    }

    /// Samplers on this thread (ring buffers of `buffer` bytes) and its
    /// id; `None` (said on stderr) without root or tracefs.
    fn on_this_thread(buffer: usize) -> Option<(Faults, i32)> {
        let mut f = match Faults::with_buffer(buffer) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("skipping: {e}");
                return None;
            }
        };
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        if let Err(e) = f.attach(tid) {
            eprintln!("skipping: {e}");
            return None;
        }
        Some((f, tid))
    }

    /// Writes once to each of `pages` fresh anonymous pages (no huge
    /// pages: one fault each), sleeping 5 ms after every `batch` of them,
    /// then drains `f`. Returns the mapping's address and the faults.
    fn fault_fresh_pages(f: &mut Faults, pages: usize, batch: usize) -> (u64, Vec<Fault>) {
        // SAFETY: a fresh anonymous mapping, private to this test.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                pages * 4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        } as u64;
        // SAFETY: advice on the mapping just made.
        unsafe { libc::madvise(p as *mut libc::c_void, pages * 4096, libc::MADV_NOHUGEPAGE) };
        for i in 0..pages as u64 {
            // SAFETY: inside the mapping.
            unsafe { std::ptr::write_volatile((p + i * 4096) as *mut u8, 1) };
            if i % batch as u64 == batch as u64 - 1 {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        let faults = f.drain();
        // SAFETY: the mapping made above.
        unsafe { libc::munmap(p as *mut libc::c_void, pages * 4096) };
        (p, faults)
    }

    /// This thread's own faults, sampled: each page written once is one
    /// write fault at its address (root and tracefs needed).
    #[test]
    fn own_faults_are_sampled() {
        let Some((mut f, tid)) = on_this_thread(8 << 20) else {
            return;
        };
        const PAGES: usize = 16;
        let (p, faults) = fault_fresh_pages(&mut f, PAGES, PAGES);
        for i in 0..PAGES as u64 {
            let a = p + i * 4096;
            assert!(
                faults
                    .iter()
                    .any(|x| x.addr == a && x.access == Access::Write && x.tid == tid && x.user),
                "no write fault at {a:#x} in {faults:?}"
            );
        }
        assert!(faults.windows(2).all(|w| w[0].time <= w[1].time));
    }

    /// The pump thread empties the ring buffers while the program runs: a
    /// burst of faults many times a buffer's size loses none (the thread
    /// pauses between batches, so the pump gets a CPU even on a busy
    /// machine).
    #[test]
    fn bursts_larger_than_a_ring_buffer_lose_nothing() {
        // 256 KiB: about 4,000 records, a fifth of the burst; the pump must
        // run once per 10 batches (60 ms), which a busy machine still does.
        let Some((mut f, _)) = on_this_thread(256 << 10) else {
            return;
        };
        const PAGES: usize = 20_000;
        let (p, faults) = fault_fresh_pages(&mut f, PAGES, 400);
        let ours = faults
            .iter()
            .filter(|x| x.addr >= p && x.addr < p + (PAGES * 4096) as u64)
            .count();
        assert_eq!(f.lost(), 0, "events lost");
        assert_eq!(ours, PAGES);
    }
}
