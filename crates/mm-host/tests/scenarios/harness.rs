//! The scenario driver: one [`Twin`] per scenario, every call run on the
//! host and on the model, results and maps compared after every step, and
//! assertions on the host's maps in page units relative to an arena.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use mm_host::Twin;
use mm_ops::call::{Access, Call, Outcome};
use mm_ops::procmaps::{MapsLine, parse_maps};
use mm_ops::strace::format_call;
use mm_ops::uapi::{AT_FDCWD, Errno, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MAP_SHARED, PAGE_SIZE, oflags};

/// Start of the arena: far from the helper's text, bss, heap, the
/// top-down mmap area and the stack.
pub const ARENA: u64 = 0x1_0000_0000;
/// Size of the arena window that [`Sc::arena`] reports.
const ARENA_SIZE: u64 = 1 << 30;
/// One page.
pub const P: u64 = PAGE_SIZE;

/// `MM_SCENARIOS_HOST_ONLY` is set: run the calls on the host only and
/// check just the kernel expectations (to validate a scenario's
/// expectations while the model diverges on it).
pub fn host_only() -> bool {
    std::env::var_os("MM_SCENARIOS_HOST_ONLY").is_some()
}

/// A scenario body.
pub type Scenario = fn(&mut Sc);

/// Huge pages in this machine's pool (`HugePages_Total`).
#[allow(dead_code)] // for special_files.rs and filesystems.rs, not scenarios.rs
pub fn hugetlb_pool() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("HugePages_Total:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// `mmap(addr, len, prot, flags, fd, off)` as a call.
pub fn mmap(addr: u64, len: u64, prot: u64, flags: u64, fd: i64, off: u64) -> Call {
    Call::Mmap {
        addr,
        len,
        prot,
        flags,
        fd,
        off,
    }
}

/// Address of arena page `page`.
pub fn at(page: u64) -> u64 {
    ARENA + page * P
}

/// One arena VMA of the host in page units: `(start, end, perms, offset)`,
/// start and end relative to [`ARENA`], the offset in pages.
pub type Vma = (u64, u64, String, u64);

/// A running scenario.
pub struct Sc {
    /// The scenario's name (used in every failure message).
    pub name: &'static str,
    /// The host helper and its model twin.
    pub twin: Twin,
    /// Calls compared so far.
    pub calls: usize,
    log: Vec<String>,
    dir: Option<PathBuf>,
}

/// Runs scenario `f` named `name` on a fresh twin; returns the number of
/// calls it compared.
pub fn run(name: &'static str, f: Scenario) -> usize {
    run_with(name, &mm_host::HostOptions::default(), f)
}

/// Like [`run`] with a helper started with `opts` (e.g. unprivileged).
pub fn run_with(name: &'static str, opts: &mm_host::HostOptions, f: Scenario) -> usize {
    run_closure(name, opts, f)
}

/// Like [`run`], with a closure (which may carry values in and out).
#[allow(dead_code)] // for shmem_huge.rs, not scenarios.rs
pub fn run_with_state(name: &'static str, f: impl FnOnce(&mut Sc)) -> usize {
    run_closure(name, &mm_host::HostOptions::default(), f)
}

fn run_closure(name: &'static str, opts: &mm_host::HostOptions, f: impl FnOnce(&mut Sc)) -> usize {
    let twin = Twin::spawn_with(opts).unwrap_or_else(|e| panic!("[{name}] cannot start the host helper: {e}"));
    let mut sc = Sc {
        name,
        twin,
        calls: 0,
        log: vec![],
        dir: None,
    };
    if host_only() {
        f(&mut sc);
        return sc.calls;
    }
    if let Some(d) = sc.twin.diff_maps().expect("maps") {
        panic!("[{name}] initial maps differ:\n{d}");
    }
    f(&mut sc);
    sc.calls
}

/// Whether this host has memory protection keys (`ospke` in the flags of
/// `/proc/cpuinfo`): execute-only memory then refuses reads, which changes
/// what the host answers to some calls. (Not every test binary that
/// includes this harness asks.)
#[allow(dead_code)]
pub fn host_pkeys() -> bool {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|w| w == "ospke"))
}

impl Drop for Sc {
    fn drop(&mut self) {
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

impl Sc {
    /// Panics naming the scenario, with the calls so far.
    pub fn fail(&self, what: &str) -> ! {
        let mut msg = format!("[scenario {}] {what}\ncalls so far (host results):\n", self.name);
        for l in &self.log {
            msg.push_str("  ");
            msg.push_str(l);
            msg.push('\n');
        }
        panic!("{msg}");
    }

    /// Runs `call` on both sides; the results and then the maps must be
    /// identical. Returns the (common) outcome.
    pub fn step(&mut self, call: Call) -> Outcome {
        if host_only() {
            let h = match self.twin.host.call(&call) {
                Ok(h) => h,
                Err(e) => self.fail(&format!("{}: helper failed: {e}", format_call(&call))),
            };
            self.log.push(format!("{} = {}", format_call(&call), h.render(true)));
            self.calls += 1;
            return h;
        }
        let (h, m) = match self.twin.step(&call) {
            Ok(r) => r,
            Err(e) => self.fail(&format!("{}: helper failed: {e}", format_call(&call))),
        };
        let hex = call.returns_address();
        self.log.push(format!("{} = {}", format_call(&call), h.render(hex)));
        self.calls += 1;
        if h != m {
            self.fail(&format!(
                "result differs for `{}`: host {} model {}",
                format_call(&call),
                h.render(hex),
                m.render(hex)
            ));
        }
        match self.twin.diff_maps() {
            Ok(None) => {}
            Ok(Some(d)) => self.fail(&format!("maps differ after `{}`:\n{d}", format_call(&call))),
            Err(e) => self.fail(&format!("cannot read maps: {e}")),
        }
        match self.twin.diff_vmflags() {
            Ok(None) => {}
            Ok(Some(d)) => self.fail(&format!("smaps VmFlags differ after `{}`:\n{d}", format_call(&call))),
            Err(e) => self.fail(&format!("cannot read smaps: {e}")),
        }
        h
    }

    /// Runs `call`; the host must answer `want`.
    pub fn expect(&mut self, call: Call, want: Outcome) {
        let text = format_call(&call);
        let got = self.step(call);
        if got != want {
            self.fail(&format!("`{text}`: host answered {got}, expected {want}"));
        }
    }

    /// Runs `call`; it must succeed. Returns its value.
    pub fn ok(&mut self, call: Call) -> u64 {
        let text = format_call(&call);
        match self.step(call) {
            Outcome::Val(v) => v,
            other => self.fail(&format!("`{text}` failed on the host: {other}")),
        }
    }

    /// Runs `call`; it must fail with `e`.
    pub fn err(&mut self, call: Call, e: Errno) {
        self.expect(call, Outcome::Err(e));
    }

    /// `mmap(at(page), pages, prot, MAP_FIXED|flags, fd, off_pages)`; must
    /// land at `at(page)`.
    pub fn map(&mut self, page: u64, pages: u64, prot: u64, flags: u64, fd: i64, off_pages: u64) {
        let call = mmap(at(page), pages * P, prot, MAP_FIXED | flags, fd, off_pages * P);
        let text = format_call(&call);
        let got = self.ok(call);
        if got != at(page) {
            self.fail(&format!("`{text}` returned {got:#x}"));
        }
    }

    /// A private anonymous fixed mapping at arena page `page`.
    pub fn anon(&mut self, page: u64, pages: u64, prot: u64) {
        self.map(page, pages, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    }

    /// A private anonymous fixed mapping with extra `MAP_*` flags.
    pub fn anon_with(&mut self, page: u64, pages: u64, prot: u64, extra: u64) {
        self.map(page, pages, prot, MAP_PRIVATE | MAP_ANONYMOUS | extra, -1, 0);
    }

    /// A shared anonymous fixed mapping.
    pub fn shared_anon(&mut self, page: u64, pages: u64, prot: u64) {
        self.map(page, pages, prot, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    }

    /// `mprotect` of arena pages; must succeed.
    pub fn mprotect(&mut self, page: u64, pages: u64, prot: u64) {
        self.ok(Call::Mprotect {
            addr: at(page),
            len: pages * P,
            prot,
        });
    }

    /// `munmap` of arena pages; must succeed.
    pub fn munmap(&mut self, page: u64, pages: u64) {
        self.ok(Call::Munmap {
            addr: at(page),
            len: pages * P,
        });
    }

    /// `madvise` of arena pages; must succeed.
    pub fn madvise(&mut self, page: u64, pages: u64, advice: u64) {
        self.ok(Call::Madvise {
            addr: at(page),
            len: pages * P,
            advice,
        });
    }

    /// A write fault on arena page `page`; must succeed (it gives a private
    /// mapping its `anon_vma`).
    pub fn write(&mut self, page: u64) {
        self.expect(
            Call::Fault {
                addr: at(page) + 8,
                access: Access::Write,
            },
            Outcome::Val(0),
        );
    }

    /// A read fault on arena page `page`; must succeed.
    pub fn read(&mut self, page: u64) {
        self.expect(
            Call::Fault {
                addr: at(page) + 8,
                access: Access::Read,
            },
            Outcome::Val(0),
        );
    }

    /// Creates (or empties) the regular file `name` in the scenario's own
    /// temporary directory, opens it with `openat(AT_FDCWD, path, O_RDWR)`
    /// and sizes it to `pages` pages with `ftruncate`. Returns `(path, fd)`.
    pub fn file(&mut self, name: &str, pages: u64) -> (String, i64) {
        let dir = self.dir.get_or_insert_with(|| {
            // Unique per run: a scenario may run twice at once (its own
            // test and `summary`).
            static RUNS: AtomicUsize = AtomicUsize::new(0);
            let run = RUNS.fetch_add(1, Ordering::Relaxed);
            let d = std::env::temp_dir().join(format!("mm-sim-scenarios-{}-{run}-{}", std::process::id(), self.name));
            std::fs::create_dir_all(&d).expect("temp dir");
            d
        });
        let path = dir.join(name);
        std::fs::File::create(&path).expect("create file");
        let path = path.to_string_lossy().into_owned();
        let fd = self.open(&path, oflags::O_RDWR);
        self.ok(Call::Ftruncate { fd, length: pages * P });
        (path, fd)
    }

    /// `openat(AT_FDCWD, path, flags)`; must succeed. Returns the fd.
    pub fn open(&mut self, path: &str, flags: u64) -> i64 {
        self.ok(Call::Openat {
            dirfd: AT_FDCWD,
            path: path.to_string(),
            flags,
            mode: None,
        }) as i64
    }

    /// The host's maps, parsed.
    pub fn host_maps(&mut self) -> Vec<MapsLine> {
        let text = match self.twin.host.maps() {
            Ok(t) => t,
            Err(e) => self.fail(&format!("cannot read host maps: {e}")),
        };
        parse_maps(&text).unwrap_or_else(|e| self.fail(&format!("unparsable host maps: {e}")))
    }

    /// The host's VMAs in the arena, in page units.
    pub fn arena(&mut self) -> Vec<Vma> {
        self.host_maps()
            .into_iter()
            .filter(|l| l.start >= ARENA && l.end <= ARENA + ARENA_SIZE)
            .map(|l| {
                (
                    (l.start - ARENA) / P,
                    (l.end - ARENA) / P,
                    String::from_utf8_lossy(&l.perms).into_owned(),
                    l.offset / P,
                )
            })
            .collect()
    }

    /// The host's arena maps lines (with names).
    pub fn arena_lines(&mut self) -> Vec<MapsLine> {
        self.host_maps()
            .into_iter()
            .filter(|l| l.start >= ARENA && l.end <= ARENA + ARENA_SIZE)
            .collect()
    }

    /// The kernel-level expectation of a step: the host's arena holds
    /// exactly `want`, `(start, end, perms, offset)` in pages.
    pub fn expect_arena(&mut self, what: &str, want: &[(u64, u64, &str, u64)]) {
        let got = self.arena();
        let want: Vec<Vma> = want.iter().map(|&(s, e, p, o)| (s, e, p.to_string(), o)).collect();
        if got != want {
            self.fail(&format!(
                "kernel expectation `{what}` does not hold on the host\n  expected (page, page, perms, pgoff): {}\n  host:                                {}",
                show(&want),
                show(&got)
            ));
        }
    }

    /// Like [`Sc::expect_arena`], restricted to the VMAs inside arena
    /// pages `[lo, hi)` (boundaries and permissions).
    pub fn expect_window(&mut self, what: &str, lo: u64, hi: u64, want: &[(u64, u64, &str)]) {
        let got: Vec<Vma> = self.arena().into_iter().filter(|v| v.0 >= lo && v.1 <= hi).collect();
        let got: Vec<Vma> = got.into_iter().map(|(s, e, p, _)| (s, e, p, 0)).collect();
        let want: Vec<Vma> = want.iter().map(|&(s, e, p)| (s, e, p.to_string(), 0)).collect();
        if got != want {
            self.fail(&format!(
                "kernel expectation `{what}` does not hold on the host (pages [{lo:#x},{hi:#x}))\n  expected: {}\n  host:     {}",
                show(&want),
                show(&got)
            ));
        }
    }

    /// Like [`Sc::expect_arena`] but only on boundaries and permissions
    /// (anonymous memory shows offset 0 anyway).
    pub fn expect_vmas(&mut self, what: &str, want: &[(u64, u64, &str)]) {
        let w: Vec<(u64, u64, &str, u64)> = want.iter().map(|&(s, e, p)| (s, e, p, 0)).collect();
        self.expect_arena(what, &w);
    }

    /// The names (paths) of the host's arena VMAs must be `want`.
    pub fn expect_names(&mut self, what: &str, want: &[&str]) {
        let got: Vec<String> = self.arena_lines().into_iter().map(|l| l.name).collect();
        if got != want {
            self.fail(&format!(
                "kernel expectation `{what}`: arena names {got:?}, expected {want:?}"
            ));
        }
    }

    /// The model's fork child and the host's (after `fork` on both
    /// sides): maps and smaps `VmFlags` must match.
    #[allow(dead_code)] // for mlock.rs and mseal.rs, not scenarios.rs
    pub fn check_child(&mut self, child: &mm_ops::task::Task) {
        let mut host = self.twin.host.child();
        let (hmaps, hsmaps) = (host.maps().expect("child maps"), host.smaps().expect("child smaps"));
        if let Some(d) = mm_host::twin::diff_maps_text(&hmaps, &child.maps()) {
            self.fail(&format!("child maps differ:\n{d}"));
        }
        let flags = mm_ops::kernel::task_mmu::smaps_flags(&child.mm().read());
        if mm_host::twin::parse_smaps_flags(&hsmaps) != flags {
            self.fail(&format!("child VmFlags differ:\nhost {hsmaps}\nmodel {flags:x?}"));
        }
    }

    /// Runs `call` in both fork children; the host must answer `want`;
    /// then `check` compares the children.
    #[allow(dead_code)] // for mlock.rs and mseal.rs, not scenarios.rs
    pub fn in_child(
        &mut self,
        child: &mut mm_ops::task::Task,
        call: Call,
        want: Outcome,
        check: fn(&mut Sc, &mm_ops::task::Task),
    ) {
        let h = self.twin.host.child().call(&call).expect("host child");
        let m = child.apply(&call, None);
        self.calls += 1;
        if h != m || h != want {
            self.fail(&format!("child: {call:?}: host {h:?}, model {m:?}, expected {want:?}"));
        }
        check(self, child);
    }

    /// A condition on the host that must hold.
    pub fn check(&self, what: &str, cond: bool) {
        if !cond {
            self.fail(&format!("kernel expectation `{what}` does not hold on the host"));
        }
    }
}

/// `[a,b) perms @off` list for messages.
fn show(v: &[Vma]) -> String {
    let items: Vec<String> = v
        .iter()
        .map(|(s, e, p, o)| format!("[{s:#x},{e:#x}) {p} @{o:#x}"))
        .collect();
    if items.is_empty() {
        "(nothing)".into()
    } else {
        items.join(", ")
    }
}
