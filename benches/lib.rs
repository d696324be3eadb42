//! Fixtures shared by the criterion suite (`benches/mm.rs`): the same
//! address-space layout built in the model and in this very process (the
//! host-kernel baseline), and the side outputs `cargo xtask bench` folds
//! into `docs/benchmarks.md`.
//!
//! # Layout (identical in the model and on the host)
//!
//! * `fill` VMAs of two pages each at [`FIX_BASE`], shared mappings of one
//!   sparse file with linear offsets, alternately `r--s` and `rw-s` so that
//!   no two neighbours merge (a loaded program's libraries look alike);
//! * an arena after them: one anonymous `rw-p` page (the neighbour a 4 KiB
//!   mapping merges with), then free pages for hinted mappings;
//! * the model also has a heap (`brk1`), as the host process does.
//!
//! `fill` is chosen so that the whole address space holds
//! [`total_vmas`]`(n)` VMAs, counting the host process's own.

use std::fs::File;
use std::io::Write as _;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mm_core::{BarrierPolicy, MmConfig, MmStruct, VmaView};
use mm_ops::task::Task;
use mm_ops::uapi::*;

pub mod locking;

/// The VMA counts every group is parameterized by.
pub const VMAS: [usize; 3] = [64, 1024, 65530];
/// Page size.
pub const P: u64 = 4096;
/// Where the fixture VMAs start (free in any x86-64 process: far below
/// the libraries, far above the heap).
pub const FIX_BASE: u64 = 0x7e00_0000_0000;
/// `mmap1`/`mmap2` size: 128 MiB, as in will-it-scale.
pub const MMAP_BIG: u64 = 128 << 20;
/// Size of the sparse file behind the fixture and `mmap2`.
pub const FILE_SIZE: u64 = 2 * P * 65536;
/// VMAs kept free below `max_map_count` at the top size, so that the
/// benchmarked calls (and the process's own allocations) can still map.
pub const HEADROOM: usize = 8;

/// The number of VMAs the address space holds for parameter `n`: `n`
/// itself, except at `max_map_count` (65,530) where [`HEADROOM`] is kept.
pub fn total_vmas(n: usize) -> usize {
    n.min(65530 - HEADROOM)
}

/// Address of the `i`-th fixture VMA.
pub fn fix_addr(i: usize) -> u64 {
    FIX_BASE + i as u64 * 2 * P
}

/// Protection of the `i`-th fixture VMA.
pub fn fix_prot(i: usize) -> u64 {
    if i.is_multiple_of(2) {
        PROT_READ
    } else {
        PROT_READ | PROT_WRITE
    }
}

/// Addresses the calls of one fixture use.
#[derive(Clone, Copy, Debug)]
pub struct Spots {
    /// Fixture VMAs.
    pub fill: usize,
    /// The arena's neighbour page (anonymous `rw-p`).
    pub arena: u64,
    /// The page the mprotect toggle flips: the first page of an `r--p`
    /// fixture VMA that follows an `rw-p` one.
    pub toggle: u64,
}

impl Spots {
    /// Spots for `fill` fixture VMAs.
    pub fn new(fill: usize) -> Spots {
        assert!(fill >= 4, "a fixture needs at least 4 VMAs, not {fill}");
        let mid = ((fill / 2) & !1).max(2);
        Spots {
            fill,
            arena: fix_addr(fill) + 16 * P,
            toggle: fix_addr(mid),
        }
    }

    /// Hint of the 4 KiB mapping that merges with the arena neighbour.
    pub fn merge_hint(&self) -> u64 {
        self.arena + P
    }

    /// Hint of the 4 KiB mapping that gets its own VMA.
    pub fn own_hint(&self) -> u64 {
        self.arena + 4 * P
    }

    /// Hint used by the background writer of the threads mode.
    pub fn writer_hint(&self) -> u64 {
        self.arena + 8 * P
    }

    /// `count` addresses inside fixture VMAs, in a fixed pseudo-random
    /// order (so that no cache of the last lookup helps).
    pub fn lookup_addrs(&self, count: usize) -> Vec<u64> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..count)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                fix_addr((x % self.fill as u64) as usize) + (x >> 32) % (2 * P)
            })
            .collect()
    }
}

/// Files the benches map: one sparse file of [`FILE_SIZE`] bytes.
pub struct BenchFiles {
    dir: PathBuf,
    /// The sparse file.
    pub path: PathBuf,
    file: File,
}

impl BenchFiles {
    /// Creates the file in a fresh directory under `parent` (the system
    /// temporary directory by default: ext4 here, like a real program's).
    pub fn create(parent: &Path) -> std::io::Result<BenchFiles> {
        BenchFiles::create_sized(parent, "data", FILE_SIZE)
    }

    /// A sparse file of `size` bytes in a fresh directory under `parent`
    /// named after this process and `name`.
    pub fn create_sized(parent: &Path, name: &str, size: u64) -> std::io::Result<BenchFiles> {
        let dir = parent.join(format!("mm-bench-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("data");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        file.set_len(size)?;
        Ok(BenchFiles { dir, path, file })
    }

    /// The open descriptor (read-write).
    pub fn fd(&self) -> i32 {
        self.file.as_raw_fd()
    }
}

impl Drop for BenchFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The model's side of a fixture.
pub struct ModelFixture<P: BarrierPolicy> {
    /// The process (descriptor table + address space).
    pub task: Task<P>,
    /// The descriptor of the bench file.
    pub fd: i64,
    /// Where the calls go.
    pub spots: Spots,
    /// The heap's start (`mm->start_brk`).
    pub brk: u64,
}

impl<Pol: BarrierPolicy> ModelFixture<Pol> {
    /// Builds the layout with [`total_vmas`]`(n)` VMAs.
    pub fn new(n: usize, files: &BenchFiles) -> ModelFixture<Pol> {
        let mut task: Task<Pol> = Task::new(MmConfig::default());
        task.set_probe(mm_ops::hostfs::host_probe());
        let fd = task
            .open(files.path.to_str().expect("utf-8 temp path"), oflags::O_RDWR, None)
            .expect("model open");
        // Heap and arena neighbour count too.
        let fill = total_vmas(n) - 2;
        let spots = Spots::new(fill);
        let start_brk = 0x5555_5556_0000;
        {
            let mut w = task.mm().write();
            let st = w.st();
            st.start_brk = start_brk;
            st.brk = start_brk;
            st.start_data = start_brk - 0x1000;
            st.end_data = start_brk - 0x800;
        }
        let brk = mm_ops::kernel::mmap::sys_brk(task.mm(), start_brk + 33 * P);
        assert_eq!(brk, start_brk + 33 * P, "model heap");
        for i in 0..fill {
            let a = task
                .mmap(
                    fix_addr(i),
                    2 * P,
                    fix_prot(i),
                    MAP_SHARED | MAP_FIXED,
                    fd,
                    i as u64 * 2 * P,
                )
                .expect("model fixture mmap");
            assert_eq!(a, fix_addr(i));
        }
        let a = task
            .mmap(
                spots.arena,
                P,
                PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                -1,
                0,
            )
            .expect("model arena");
        assert_eq!(a, spots.arena);
        assert_eq!(task.mm().read().vma_count(), total_vmas(n), "model fixture size");
        ModelFixture { task, fd, spots, brk }
    }

    /// The address space.
    pub fn mm(&self) -> &Arc<MmStruct<Pol>> {
        self.task.mm()
    }
}

/// Lines of `/proc/self/maps` that are VMAs (the `[vsyscall]` gate area
/// is not one). Streams the file through a small buffer: reading it whole
/// would itself map memory (a new VMA) at 65,530 VMAs.
pub fn host_vma_count() -> usize {
    use std::io::BufRead as _;
    let f = File::open("/proc/self/maps").expect("open /proc/self/maps");
    let mut r = std::io::BufReader::with_capacity(32 << 10, f);
    let mut line = Vec::with_capacity(512);
    let mut n = 0;
    loop {
        line.clear();
        match r.read_until(b'\n', &mut line) {
            Ok(0) => return n,
            Ok(_) => n += usize::from(!line.trim_ascii_end().ends_with(b"[vsyscall]")),
            Err(e) => panic!("read /proc/self/maps: {e}"),
        }
    }
}

/// The host side of a fixture: the same layout mapped in this process.
pub struct HostFixture {
    /// Where the calls go.
    pub spots: Spots,
    end: u64,
}

impl HostFixture {
    /// Maps the layout so that this process holds [`total_vmas`]`(n)`
    /// VMAs. Panics (naming the address) if the range is not free.
    ///
    /// The process's own VMAs can change while the fixture is mapped (a
    /// thread of an earlier benchmark exiting frees its stack and guard):
    /// then the count is off, the fixture is unmapped and mapped again
    /// from a fresh count, up to five times.
    pub fn new(n: usize, files: &BenchFiles) -> HostFixture {
        let mut last = (0, 0);
        for attempt in 0..5 {
            match Self::try_new(n, files) {
                Ok(f) => return f,
                Err(got) => {
                    last = got;
                    std::thread::sleep(std::time::Duration::from_millis(20 << attempt));
                }
            }
        }
        panic!(
            "host fixture size: {} VMAs instead of {} after five attempts (the process's own VMAs kept changing)",
            last.0, last.1
        );
    }

    /// One attempt of [`new`](Self::new): `Err((got, wanted))` (with the
    /// fixture unmapped again) when the count is off.
    fn try_new(n: usize, files: &BenchFiles) -> Result<HostFixture, (usize, usize)> {
        let own = host_vma_count();
        let fill = total_vmas(n)
            .checked_sub(own + 1)
            .unwrap_or_else(|| panic!("this process already has {own} VMAs, more than the {n} of the fixture"));
        let spots = Spots::new(fill);
        let map = |addr: u64, len: u64, prot: u64, flags: u64, fd: i32, off: u64| {
            // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing
            // mapping, so no memory this process uses is touched.
            let r = unsafe {
                libc::mmap(
                    addr as *mut libc::c_void,
                    len as usize,
                    prot as i32,
                    (flags | MAP_FIXED_NOREPLACE) as i32,
                    fd,
                    off as i64,
                )
            };
            assert_eq!(
                r as u64,
                addr,
                "host fixture mmap at {addr:#x}: {}",
                std::io::Error::last_os_error()
            );
        };
        for i in 0..fill {
            map(
                fix_addr(i),
                2 * P,
                fix_prot(i),
                MAP_SHARED,
                files.fd(),
                i as u64 * 2 * P,
            );
        }
        map(
            spots.arena,
            P,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS,
            -1,
            0,
        );
        let got = host_vma_count();
        let f = HostFixture {
            spots,
            end: spots.arena + 64 * P,
        };
        if got != total_vmas(n) {
            // Dropping it unmaps the fixture.
            return Err((got, total_vmas(n)));
        }
        Ok(f)
    }
}

impl Drop for HostFixture {
    fn drop(&mut self) {
        // SAFETY: the range holds only the fixture's own mappings (mapped
        // with MAP_FIXED_NOREPLACE above) and the bench's hinted pages.
        unsafe { libc::munmap(FIX_BASE as *mut libc::c_void, (self.end - FIX_BASE) as usize) };
    }
}

/// Bytes of `vm_area_struct` and `maple_node` objects in use on the whole
/// machine (`/proc/slabinfo`, readable by root); `None` if unreadable.
pub fn kernel_vma_slab_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/slabinfo").ok()?;
    let mut total = 0;
    let mut seen = 0;
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let name = f.next()?;
        if name == "vm_area_struct" || name == "maple_node" {
            let active: u64 = f.next()?.parse().ok()?;
            let _num: u64 = f.next()?.parse().ok()?;
            let size: u64 = f.next()?.parse().ok()?;
            total += active * size;
            seen += 1;
        }
    }
    (seen == 2).then_some(total)
}

/// Appends tab-separated records for `cargo xtask bench` to
/// `$MM_BENCH_OUT/extra.tsv` (default `target/mm-bench`).
pub struct Extra {
    file: Option<File>,
}

impl Extra {
    /// Truncates the file and returns a writer.
    pub fn create() -> Extra {
        Extra::create_named("extra.tsv")
    }

    /// Truncates `$MM_BENCH_OUT/name` and returns a writer.
    pub fn create_named(name: &str) -> Extra {
        let dir = std::env::var_os("MM_BENCH_OUT")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/mm-bench"));
        let file = std::fs::create_dir_all(&dir)
            .and_then(|_| File::create(dir.join(name)))
            .ok();
        Extra { file }
    }

    /// Writes one record.
    pub fn record(&mut self, fields: &[&dyn std::fmt::Display]) {
        if let Some(f) = &mut self.file {
            let line: Vec<String> = fields.iter().map(|x| x.to_string()).collect();
            let _ = writeln!(f, "{}", line.join("\t"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mm_core::Upstream;

    #[test]
    fn model_fixture_has_the_promised_shape() {
        let dir = std::env::temp_dir();
        let files = BenchFiles::create(&dir).unwrap();
        let f: ModelFixture<Upstream> = ModelFixture::new(64, &files);
        let r = f.mm().read();
        assert_eq!(r.vma_count(), 64);
        // The toggle page starts an r--p VMA preceded by an rw-p one.
        let id = r.vma_lookup(f.spots.toggle).unwrap();
        let v = r.vma(id);
        assert_eq!(v.start, f.spots.toggle);
        assert!(!v.flags.contains(mm_core::VmFlags::WRITE));
        let prev = r.vma(r.vma_lookup(f.spots.toggle - 1).unwrap());
        assert!(prev.flags.contains(mm_core::VmFlags::WRITE));
        // Lookup addresses all fall in fixture VMAs.
        for a in f.spots.lookup_addrs(256) {
            assert!(r.vma_lookup(a).is_some(), "{a:#x}");
        }
    }
}

#[cfg(test)]
mod loops {
    use super::*;
    use mm_core::Upstream;

    fn maps(f: &ModelFixture<Upstream>) -> String {
        let r = f.mm().read();
        mm_ops::kernel::task_mmu::render_maps(&r, &r.files(), false)
    }

    #[test]
    fn write_loops_restore_the_layout() {
        let files = BenchFiles::create(&std::env::temp_dir()).unwrap();
        let mut f: ModelFixture<Upstream> = ModelFixture::new(64, &files);
        let before = maps(&f);
        let rw = PROT_READ | PROT_WRITE;
        let anon = MAP_PRIVATE | MAP_ANONYMOUS;
        let s = f.spots;
        let a = f.task.mmap(s.merge_hint(), P, rw, anon, -1, 0).unwrap();
        assert_eq!(a, s.merge_hint());
        assert_eq!(f.mm().read().vma_count(), 64, "merged");
        mm_ops::kernel::mmap::vm_munmap(f.mm(), a, P).unwrap();
        assert_eq!(maps(&f), before, "mmap_munmap_4k");
        let a = f.task.mmap(s.own_hint(), P, PROT_READ, anon, -1, 0).unwrap();
        assert_eq!(f.mm().read().vma_count(), 65, "own VMA");
        mm_ops::kernel::mmap::vm_munmap(f.mm(), a, P).unwrap();
        assert_eq!(maps(&f), before, "own");
        let cur = mm_ops::kernel::mmap::sys_brk(f.mm(), 0);
        assert_eq!(mm_ops::kernel::mmap::sys_brk(f.mm(), cur + P), cur + P);
        assert_eq!(mm_ops::kernel::mmap::sys_brk(f.mm(), cur), cur);
        assert_eq!(maps(&f), before, "brk1");
        mm_ops::kernel::mprotect::do_mprotect(f.mm(), s.toggle, P, rw).unwrap();
        assert_eq!(f.mm().read().vma_count(), 64, "toggle merges left");
        mm_ops::kernel::mprotect::do_mprotect(f.mm(), s.toggle, P, PROT_READ).unwrap();
        assert_eq!(maps(&f), before, "mprotect_toggle");
    }
}
