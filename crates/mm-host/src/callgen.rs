//! Random call sequences for differential testing, and a session runner
//! that steps a [`Twin`](crate::twin::Twin) and stops at the first divergence.
//!
//! Calls concentrate on an *arena*, a 256-page window at 4 GiB far from
//! everything else (fixed mappings, hints, unmaps, protection changes and
//! faults inside and across it), plus kernel-placed mappings below the vDSO,
//! the heap via `brk`, and files: two regular files in a temporary
//! directory and memfds, opened, duplicated, truncated and closed the way a
//! program does (now and then through a `0700` directory, or a path that is
//! missing or walks through a file); `mremap` (every flag combination, on
//! existing VMAs) and `madvise` (every advice value), the mlock family
//! (small ranges; `mlockall` only with `MCL_ONFAULT`), `mseal` (never on
//! the helper's own mappings), System V shared memory and the protection-key calls
//! (`pkey_mprotect`, `pkey_alloc`, `pkey_free`), `remap_file_pages`, and
//! `setrlimit` of the limits the memory calls consult. A small share of
//! calls have invalid arguments.

use std::path::Path;

use mm_ops::call::{Access, Call, Outcome};
use mm_ops::uapi::{oflags::*, *};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

mod madvise;
mod mlock;
mod mremap;
mod mseal;
mod pkeys;
mod rlimit;
mod session;
mod shm;

pub use session::{Divergence, Key0Guard, SessionStats, run_session, session_options, temp_dir};

/// Start of the arena.
pub const ARENA: u64 = 0x1_0000_0000;
/// Pages in the arena.
pub const ARENA_PAGES: u64 = 256;

/// A random call generator.
pub struct CallGen {
    rng: StdRng,
    files: Vec<String>,
    fds: Vec<i64>,
    placed: Vec<u64>,
    brk: u64,
    /// Current VMAs (start, end) of interest, refreshed by the runner.
    vmas: Vec<(u64, u64)>,
    /// System V segment ids `shmget` returned.
    shm_ids: Vec<i64>,
    /// Addresses `shmat` returned.
    shm_addrs: Vec<u64>,
}

/// A directory in the files' directory that only its owner (root) may
/// search (mode `0700`), holding a file `f`: opens through it are
/// `EACCES` for a session without root's capabilities.
pub const LOCKED_DIR: &str = "locked";

impl CallGen {
    /// A generator for `seed`, using regular files in `dir`.
    pub fn new(seed: u64, dir: &Path) -> CallGen {
        let files = (0..2)
            .map(|i| dir.join(format!("f{i}")).to_string_lossy().into_owned())
            .collect();
        CallGen {
            rng: StdRng::seed_from_u64(seed),
            files,
            fds: vec![],
            placed: vec![],
            brk: 0,
            vmas: vec![],
            shm_ids: vec![],
            shm_addrs: vec![],
        }
    }

    /// A generator that continues from this one's state (the files,
    /// descriptors and placements it knows), drawing its calls from
    /// `seed`: for a fork child.
    pub fn fork_with_seed(&self, seed: u64) -> CallGen {
        CallGen {
            rng: StdRng::seed_from_u64(seed),
            files: self.files.clone(),
            fds: self.fds.clone(),
            placed: self.placed.clone(),
            brk: self.brk,
            vmas: self.vmas.clone(),
            shm_ids: self.shm_ids.clone(),
            shm_addrs: self.shm_addrs.clone(),
        }
    }

    /// Paths of the regular files the calls use (create them first).
    pub fn file_paths(&self) -> &[String] {
        &self.files
    }

    /// The directory of the files (where [`LOCKED_DIR`] goes too).
    pub fn file_dir(&self) -> &str {
        self.files[0].rsplit_once('/').map_or("/", |(d, _)| d)
    }

    fn pages(&mut self, max: u64) -> u64 {
        // Mostly small, sometimes large.
        if self.rng.random_ratio(1, 10) {
            self.rng.random_range(1..=max * 4)
        } else {
            self.rng.random_range(1..=max)
        }
    }

    fn arena_addr(&mut self) -> u64 {
        ARENA + self.rng.random_range(0..ARENA_PAGES) * PAGE_SIZE
    }

    /// Tells the generator which VMAs exist (so that calls hit them).
    pub fn set_vmas(&mut self, vmas: Vec<(u64, u64)>) {
        self.vmas = vmas;
    }

    /// A range on or around an existing VMA: inside it, or straddling one
    /// of its ends, or spanning it and its neighbours.
    fn vma_range(&mut self) -> Option<(u64, u64)> {
        if self.vmas.is_empty() {
            return None;
        }
        let i = self.rng.random_range(0..self.vmas.len());
        let (s, e) = self.vmas[i];
        let pages = (e - s) / PAGE_SIZE;
        let (a, b) = match self.rng.random_range(0..5) {
            0 => (s, e),
            1 => {
                let a = s + self.rng.random_range(0..pages) * PAGE_SIZE;
                let b = a + self.rng.random_range(1..=(e - a) / PAGE_SIZE) * PAGE_SIZE;
                (a, b)
            }
            2 => (
                s.saturating_sub(self.rng.random_range(0..3) * PAGE_SIZE),
                s + self.rng.random_range(1..=pages) * PAGE_SIZE,
            ),
            3 => (
                s + self.rng.random_range(0..pages) * PAGE_SIZE,
                e + self.rng.random_range(0..3) * PAGE_SIZE,
            ),
            _ => {
                let j = (i + self.rng.random_range(1..3)).min(self.vmas.len() - 1);
                (s, self.vmas[j].1.max(e))
            }
        };
        Some((a, b.max(a + PAGE_SIZE)))
    }

    /// An address where things are: the arena, or near a kernel-placed mapping.
    fn some_addr(&mut self) -> u64 {
        if !self.placed.is_empty() && self.rng.random_ratio(1, 4) {
            let i = self.rng.random_range(0..self.placed.len());
            let delta = self.rng.random_range(-4i64..8) * PAGE_SIZE as i64;
            return self.placed[i].wrapping_add_signed(delta);
        }
        self.arena_addr()
    }

    fn len(&mut self) -> u64 {
        let n = self.pages(16) * PAGE_SIZE;
        if self.rng.random_ratio(1, 20) {
            n - self.rng.random_range(1..PAGE_SIZE)
        } else {
            n
        }
    }

    fn prot(&mut self) -> u64 {
        let mut p = self.rng.random_range(0..8u64);
        if self.rng.random_ratio(1, 30) {
            p |= [PROT_SEM, 0x10, PROT_GROWSDOWN][self.rng.random_range(0..3)];
        }
        p
    }

    fn fd(&mut self) -> i64 {
        if self.fds.is_empty() || self.rng.random_ratio(1, 20) {
            return [-1, 3, 4, 5, 6, 7, 8, 9, 11][self.rng.random_range(0..9)];
        }
        self.fds[self.rng.random_range(0..self.fds.len())]
    }

    fn mmap(&mut self) -> Call {
        let file = self.rng.random_ratio(1, 3) && !self.fds.is_empty();
        let mut flags = match self.rng.random_range(0..10) {
            0..=5 => MAP_PRIVATE,
            6..=8 => MAP_SHARED,
            _ => [MAP_SHARED_VALIDATE, 0, MAP_DROPPABLE][self.rng.random_range(0..3)],
        };
        if !file {
            flags |= MAP_ANONYMOUS;
        }
        let placement = self.rng.random_range(0..10);
        let addr = match placement {
            0..=4 => {
                flags |= if self.rng.random_ratio(1, 5) {
                    MAP_FIXED_NOREPLACE
                } else {
                    MAP_FIXED
                };
                match self.vma_range() {
                    // Right after an existing VMA, or over part of one.
                    Some((a, b)) if self.rng.random_bool(0.5) => {
                        if self.rng.random_bool(0.5) {
                            b
                        } else {
                            a
                        }
                    }
                    _ if self.rng.random_ratio(1, 40) => {
                        self.rng.random_range(0..3u64).saturating_sub(1) * self.rng.random_range(1..20) * PAGE_SIZE
                    }
                    _ => self.some_addr(),
                }
            }
            5..=6 => self.some_addr(),
            _ => 0,
        };
        for (f, odds) in [
            (MAP_NORESERVE, 8),
            (MAP_STACK, 12),
            (MAP_GROWSDOWN, 15),
            (MAP_POPULATE, 10),
            (MAP_LOCKED, 25),
            (MAP_DENYWRITE, 30),
            (MAP_32BIT, 60),
            (MAP_SYNC, 60),
            (MAP_HUGETLB, 50),
            (MAP_ABOVE4G, 60),
            (MAP_NONBLOCK, 40),
            (MAP_EXECUTABLE, 80),
            (MAP_UNINITIALIZED, 80),
            (21 << MAP_HUGE_SHIFT, 120),
            (30 << MAP_HUGE_SHIFT, 120),
            (0x80_0000, 120),
        ] {
            if self.rng.random_ratio(1, odds) {
                flags |= f;
            }
        }
        let len = if self.rng.random_ratio(1, 40) {
            [0, 1 << 47, u64::MAX - 4095, 512 << 20][self.rng.random_range(0..4)]
        } else if self.rng.random_ratio(1, 25) || (flags & MAP_LOCKED != 0 && self.rng.random_ratio(1, 3)) {
            (2 << 20) * self.rng.random_range(1..6)
        } else {
            self.len()
        };
        let (fd, off) = if file {
            let off = if self.rng.random_ratio(1, 25) {
                [1, u64::MAX - 4095, 1 << 62][self.rng.random_range(0..3)]
            } else {
                self.rng.random_range(0..8) * PAGE_SIZE
            };
            (self.fd(), off)
        } else {
            (-1, 0)
        };
        // Low fixed mappings must stay clear of the helper's own text at 4 MiB.
        let len = if addr < ARENA && flags & MAP_FIXED != 0 {
            len.min(64 * PAGE_SIZE)
        } else {
            len
        };
        Call::Mmap {
            addr,
            len,
            prot: self.prot(),
            flags,
            fd,
            off,
        }
    }

    /// The next call.
    pub fn next_call(&mut self) -> Call {
        match self.rng.random_range(0..144) {
            142..=143 => self.setrlimit(),
            140..=141 => self.remap_file_pages(),
            138..=139 => self.pkey(),
            134..=137 => self.shm(),
            100..=111 => self.mremap(),
            112..=123 => self.madvise(),
            124..=131 => self.mlock(),
            132..=133 => self.mseal(),
            0..=29 => self.mmap(),
            30..=44 => {
                if self.rng.random_bool(0.5)
                    && let Some((a, b)) = self.vma_range()
                {
                    return Call::Munmap { addr: a, len: b - a };
                }
                let addr = if self.rng.random_ratio(1, 30) {
                    self.some_addr() + 1
                } else {
                    self.some_addr()
                };
                let len = if self.rng.random_ratio(1, 40) { 0 } else { self.len() };
                Call::Munmap { addr, len }
            }
            45..=64 => {
                let mut prot = self.prot();
                if self.rng.random_ratio(1, 25) {
                    prot |= PROT_GROWSDOWN;
                }
                if self.rng.random_bool(0.6)
                    && let Some((a, b)) = self.vma_range()
                {
                    return Call::Mprotect {
                        addr: a,
                        len: b - a,
                        prot,
                    };
                }
                let addr = if self.rng.random_ratio(1, 30) {
                    self.some_addr() | 0x10
                } else {
                    self.some_addr()
                };
                Call::Mprotect {
                    addr,
                    len: self.len(),
                    prot,
                }
            }
            65..=72 => {
                let addr = match self.rng.random_range(0..6) {
                    0 => 0,
                    1 => self.brk.saturating_sub(self.rng.random_range(0..4) * PAGE_SIZE),
                    2 => self.rng.random_range(0..0x400000),
                    _ => self.brk + self.rng.random_range(0..40) * PAGE_SIZE + self.rng.random_range(0..3) * 1000,
                };
                Call::Brk { addr }
            }
            73..=87 => {
                let base = match self.vma_range() {
                    Some((a, b)) if self.rng.random_bool(0.6) => {
                        a + self.rng.random_range(0..(b - a) / PAGE_SIZE) * PAGE_SIZE
                    }
                    _ => self.some_addr(),
                };
                let addr = base + self.rng.random_range(0..PAGE_SIZE);
                let access = [Access::Read, Access::Write, Access::Exec][self.rng.random_range(0..3)];
                Call::Fault { addr, access }
            }
            88..=91 => {
                let dir = self.files[0].rsplit_once('/').map_or("/", |(d, _)| d).to_string();
                // The regular files, and now and then a device: /dev/zero
                // maps (shared: shmem), /dev/null does not (ENODEV).
                // Now and then a path through the session's `0700` directory
                // (searchable only with root's capabilities: EACCES for
                // others), or one that is missing or walks through a file.
                let path = match self.rng.random_range(0..13) {
                    0 => "/dev/zero".to_string(),
                    1 => "/dev/null".to_string(),
                    10 => format!("{dir}/{LOCKED_DIR}/f"),
                    // Or a descriptor's link in /proc/self/fd (the file
                    // behind it, opened again) or /dev/fd.
                    11 => {
                        let rel = ["locked/none", "gone", "gone/f", "f0/x", "./locked/../f0", "f1/"];
                        let i = self.rng.random_range(0..rel.len() + 2);
                        match rel.get(i) {
                            Some(r) => format!("{dir}/{r}"),
                            None if i == rel.len() => format!("/proc/self/fd/{}", self.fd()),
                            None => format!("/dev/fd/{}", self.fd()),
                        }
                    }
                    // Relative to the working directory, the files' directory.
                    12 => {
                        let base = dir.rsplit('/').next().unwrap_or("");
                        let rel = ["f0", "./f1", "locked/f", "gone", &format!("../{base}/f0"), "f0/"];
                        rel[self.rng.random_range(0..rel.len())].to_string()
                    }
                    _ => self.files[self.rng.random_range(0..self.files.len())].clone(),
                };
                let acc = [O_RDONLY, O_RDWR, O_WRONLY][self.rng.random_range(0..3)];
                // Now and then: create a file (O_EXCL: EEXIST the second
                // time), ask for a directory, or create one (EINVAL).
                let (path, flags, mode) = match self.rng.random_range(0..16) {
                    0 | 1 => {
                        let excl = if self.rng.random_bool(0.5) { O_EXCL } else { 0 };
                        let mode = [0o644, 0o600, 0o000, 0o666][self.rng.random_range(0..4)];
                        let name = format!("{dir}/n{}", self.rng.random_range(0..3));
                        (name, O_CREAT | excl | acc, Some(mode))
                    }
                    2 => (path, O_CREAT | O_EXCL | acc, Some(0o644)),
                    3 => (path, O_DIRECTORY | acc, None),
                    4 => (
                        dir,
                        [O_RDONLY | O_DIRECTORY, O_CREAT | O_DIRECTORY, O_RDWR][self.rng.random_range(0..3)],
                        None,
                    ),
                    _ => (path, 0, None),
                };
                if flags != 0 || mode.is_some() {
                    return Call::Openat {
                        dirfd: AT_FDCWD,
                        path,
                        flags,
                        mode,
                    };
                }
                let flags = [
                    O_RDONLY,
                    O_RDWR,
                    O_WRONLY,
                    O_RDWR | O_APPEND,
                    O_RDWR,
                    O_RDONLY,
                    O_RDWR | O_TRUNC,
                    O_RDONLY | O_TRUNC,
                    O_PATH,
                ][self.rng.random_range(0..9)];
                Call::Openat {
                    dirfd: AT_FDCWD,
                    path,
                    flags,
                    mode: None,
                }
            }
            92 => Call::MemfdCreate {
                name: format!("m{}", self.rng.random_range(0..3)),
                flags: mfd::CLOEXEC,
            },
            93..=95 => Call::Close { fd: self.fd() },
            96 => Call::Dup { fd: self.fd() },
            97 => Call::Dup2 {
                oldfd: self.fd(),
                // Now and then at or past a limit of 1024 (EBADF there).
                newfd: if self.rng.random_ratio(1, 10) {
                    [1024, 1500, 30000][self.rng.random_range(0..3)]
                } else {
                    self.rng.random_range(3..10)
                },
            },
            _ => Call::Ftruncate {
                fd: self.fd(),
                // Now and then negative: EINVAL before the descriptor.
                length: if self.rng.random_ratio(1, 20) {
                    (-4096i64) as u64
                } else {
                    self.rng.random_range(0..12) * 2048
                },
            },
        }
    }

    /// Learns from a call's (agreed) outcome.
    pub fn observe(&mut self, call: &Call, outcome: &Outcome) {
        match (call, outcome) {
            (Call::Mmap { flags, .. }, Outcome::Val(a)) if flags & MAP_FIXED == 0 => {
                self.placed.push(*a);
                if self.placed.len() > 8 {
                    self.placed.remove(0);
                }
            }
            (Call::Brk { .. }, Outcome::Val(b)) => self.brk = *b,
            (c, Outcome::Val(fd)) if c.creates_fd() && !self.fds.contains(&(*fd as i64)) => {
                self.fds.push(*fd as i64);
            }
            (Call::Close { fd }, Outcome::Val(_)) => self.fds.retain(|f| f != fd),
            (Call::Shmget { .. }, Outcome::Val(id)) if !self.shm_ids.contains(&(*id as i64)) => {
                self.shm_ids.push(*id as i64);
            }
            (Call::Shmat { .. }, Outcome::Val(a)) => {
                self.shm_addrs.push(*a);
                if self.shm_addrs.len() > 8 {
                    self.shm_addrs.remove(0);
                }
            }
            _ => {}
        }
    }
}
