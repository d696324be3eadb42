//! The loom harness: scenarios as data (setup, writer threads made of
//! operations, one reader), the states each write section must leave
//! (computed on a single-threaded twin), and the checks of what readers
//! return.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc as StdArc, Mutex as StdMutex, OnceLock};

use loom::sync::Arc;
use loom::thread;
use mm_core::file::{FileId, Inode, InodeKind};
use mm_core::vma_lock::lock_vma_under_rcu;
use mm_core::{BarrierPolicy, MmConfig, MmStruct, VmFlags, VmaView};
use mm_ops::call::{Access, Signal};
use mm_ops::kernel::memory::handle_user_fault;
use mm_ops::kernel::mmap::{MapFile, do_mmap, vm_mmap_pgoff, vm_munmap};
use mm_ops::kernel::mprotect::{do_mprotect, mprotect_locked};
use mm_ops::kernel::mremap::sys_mremap;
use mm_ops::kernel::task_mmu::for_each_vma_locked;
use mm_ops::uapi::*;
use mm_spec::lookup::{Spec, SpecStats, VmaInfo, vma_lookup, vma_lookup_speculative};
use mm_spec::uprobe::{UprobeHit, resolve, uprobe_speculative};

/// Base address of every scenario.
pub const A: u64 = 0x1000_0000;
/// One page.
pub const P: u64 = PAGE_SIZE;
/// `mm_lock_seq` after the setup's one write section, by the seqcount
/// contract (every section adds 2), not by reading the code under test.
const S0: u32 = 2;

/// One operation of a writer thread. All but [`Op::Open`] are one write
/// section each.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    /// `mprotect(2)` (`do_mprotect`).
    Mprotect(u64, u64, u64),
    /// `munmap(2)` (`vm_munmap`: write lock, downgrade, unlock).
    Munmap(u64, u64),
    /// `mmap(addr, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED)`.
    MmapAnon(u64, u64, u64),
    /// `mmap(addr, len, prot, MAP_SHARED | MAP_FIXED, file, pgoff pages)`,
    /// `file` indexing the setup's files.
    MmapShared(usize, u64, u64, u64, u64),
    /// `mmap(addr, len, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED)`: a
    /// new shmem file, opened inside the write section.
    MmapSharedAnon(u64, u64),
    /// `mremap(old, old_len, new_len, flags, new_addr)`.
    Mremap(u64, u64, u64, u64, u64),
    /// `mmap_write_lock`, mprotect, `mmap_write_downgrade`, read unlock.
    MprotectDowngrade(u64, u64, u64),
    /// `mmap_write_trylock` until it succeeds, then mprotect.
    MprotectTrylock(u64, u64, u64),
    /// `open` of a new file outside `mmap_lock` (recycles a freed file
    /// slot if there is one): not a write section.
    Open(u64),
    /// `mmap(addr, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED)` in
    /// the *other* address space, which shares the VMA cache (a write
    /// section there, not here).
    MmapAnonOther(u64, u64, u64),
}

impl Op {
    /// True if the operation is one write section.
    fn is_section(self) -> bool {
        !matches!(self, Op::Open(_) | Op::MmapAnonOther(..))
    }
}

/// What the reader (the main thread) does, once per execution.
#[derive(Clone, Copy, Debug)]
pub enum Reader {
    /// `vma_lookup_speculative`: a validated result must equal the state
    /// at the sequence number it validated against.
    Spec(u64),
    /// `uprobe_speculative` (`find_active_uprobe_speculative`'s reads):
    /// likewise for (inode, file offset).
    Uprobe(u64),
    /// `vma_lookup` with its locked fallback: the result must be the state
    /// at some sequence number at or after the call began.
    Lookup(u64),
    /// `uprobe::resolve` with its locked fallback: likewise.
    Resolve(u64),
    /// Under `mmap_read_lock`, `try_begin` must succeed; then as `Spec`.
    UnderReadLock(u64),
    /// A user fault (`handle_user_fault`: under the VMA lock first, then
    /// `mmap_lock`): its outcome must be the one of some state at or after
    /// the count read before it.
    Fault(u64, Access),
    /// `lock_vma_under_rcu`: a VMA it locks must be this address space's,
    /// contain the address, match a state at or after the count read
    /// before, and not change while it is held.
    LockVma(u64),
    /// `/proc/PID/maps` under per-VMA locks (`lock_next_vma`): line ends
    /// strictly increase; each line a VMA of some state at or after the
    /// count read before; each gap between lines (and before the first,
    /// after the last) a gap in some such state — no phantom gaps.
    Maps,
}

/// A scenario: files, the setup's mappings (one write section), writer
/// threads, one reader.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Name in reports.
    pub name: &'static str,
    /// What the write section exercises.
    pub about: &'static str,
    /// Inode numbers of the files the setup opens (read-write, shmem).
    pub files: &'static [u64],
    /// Setup operations, applied inside one write section.
    pub setup: &'static [Op],
    /// Keep the setup's descriptor references (else the VMAs hold the
    /// only references, and munmap frees the file slots).
    pub keep_fds: bool,
    /// A second address space shares the VMA cache ([`Op::MmapAnonOther`]).
    pub other_mm: bool,
    /// Instead of writers and a reader: the killable-writer check
    /// ([`killable_execution`]).
    pub killable: bool,
    /// One list of operations per writer thread.
    pub writers: &'static [&'static [Op]],
    /// The reader.
    pub reader: Reader,
    /// Preemption bound (`None`: exhaustive).
    pub bound: Option<usize>,
    /// A check of the twin after the writers ran (that the section really
    /// split a node, recycled a slot, …); panics if the scenario no longer
    /// exercises what it claims.
    pub shape: Option<fn(&Shape)>,
}

/// What a scenario's writers did to the tree and the slab, measured on
/// the twin.
#[derive(Clone, Debug, Default)]
pub struct Shape {
    /// Tree (height, nodes, root) before and after.
    pub tree_before: (u32, usize, Option<u32>),
    /// See `tree_before`.
    pub tree_after: (u32, usize, Option<u32>),
    /// File ids of the setup's files and of every file the writers opened.
    pub setup_files: Vec<FileId>,
    /// File ids the writers' VMAs or opens use at the end.
    pub files_after: Vec<FileId>,
}

/// One VMA as readers report it.
pub type State = Vec<VmaInfo>;

/// The VMAs and their files' inodes, under the read lock.
pub fn snapshot<Pol: BarrierPolicy>(mm: &MmStruct<Pol>) -> State {
    let r = mm.read();
    let files = r.files();
    r.snapshot()
        .into_iter()
        .map(|v| VmaInfo {
            start: v.start,
            end: v.end,
            pgoff: v.pgoff,
            flags: v.flags,
            ino: v.file.map(|f| files.file_inode(f).ino),
        })
        .collect()
}

fn lookup(state: &State, addr: u64) -> Option<VmaInfo> {
    state.iter().find(|v| v.start <= addr && addr < v.end).copied()
}

fn uprobe(state: &State, addr: u64) -> Option<UprobeHit> {
    let v = lookup(state, addr)?;
    Some(UprobeHit {
        ino: v.ino?,
        offset: (v.pgoff << 12) + (addr - v.start),
    })
}

/// The states a scenario may be in at each sequence number: one per
/// order of the writers' sections.
#[derive(Debug, Default)]
pub struct Expected {
    by_seq: BTreeMap<u32, Vec<State>>,
    shape: Shape,
}

impl Expected {
    fn add(&mut self, seq: u32, s: State) {
        let v = self.by_seq.entry(seq).or_default();
        if !v.contains(&s) {
            v.push(s);
        }
    }

    fn at(&self, seq: u32) -> Result<&[State], String> {
        self.by_seq
            .get(&seq)
            .map(Vec::as_slice)
            .ok_or_else(|| format!("validated at seq {seq}, which no write section ends at"))
    }

    /// The states in force at sequence number `lo` or later. An odd `lo`
    /// is a section in progress: the state before it still counts, since a
    /// per-VMA lock reader may see a VMA the section has not write-locked
    /// yet.
    fn from(&self, lo: u32) -> impl Iterator<Item = &State> {
        let lo = lo & !1;
        self.by_seq
            .iter()
            .filter(move |(s, _)| s.wrapping_sub(lo) as i32 >= 0)
            .flat_map(|(_, v)| v.iter())
    }
}

/// Mutable context of one execution: the setup's files, and the other
/// address space.
pub struct Ctx<Pol: BarrierPolicy> {
    files: Vec<FileId>,
    other: Option<MmStruct<Pol>>,
}

/// Applies `op` (one write section, or an open).
fn apply<Pol: BarrierPolicy>(mm: &MmStruct<Pol>, ctx: &Ctx<Pol>, op: Op) {
    let r = match op {
        Op::Mprotect(a, l, p) => do_mprotect(mm, a, l, p),
        Op::Munmap(a, l) => vm_munmap(mm, a, l),
        Op::MmapAnon(a, l, p) => vm_mmap_pgoff(mm, None, a, l, p, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, 0).map(drop),
        Op::MmapShared(f, a, l, p, pg) => {
            let desc = MapFile::describe(mm, ctx.files[f]);
            vm_mmap_pgoff(mm, Some(&desc), a, l, p, MAP_SHARED | MAP_FIXED, pg).map(drop)
        }
        Op::MmapSharedAnon(a, l) => vm_mmap_pgoff(
            mm,
            None,
            a,
            l,
            PROT_READ | PROT_WRITE,
            MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED,
            0,
        )
        .map(drop),
        Op::Mremap(o, ol, nl, fl, na) => sys_mremap(mm, o, ol, nl, fl, na).map(drop),
        Op::MprotectDowngrade(a, l, p) => {
            let mut w = mm.write();
            let r = mprotect_locked(&mut w, a, a + l, p, 0);
            drop(w.downgrade());
            r
        }
        Op::MprotectTrylock(a, l, p) => loop {
            if let Some(mut w) = mm.try_write() {
                break mprotect_locked(&mut w, a, a + l, p, 0);
            }
            thread::yield_now();
        },
        Op::MmapAnonOther(a, l, p) => {
            let other = ctx.other.as_ref().expect("the scenario has a second address space");
            vm_mmap_pgoff(other, None, a, l, p, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, 0).map(drop)
        }
        Op::Open(ino) => {
            let mut files = mm.files();
            let inode = files.add_inode(Inode::new(ino, (0, 1), 64 * P, format!("/f{ino}"), InodeKind::Memfd));
            files
                .open(mm.file_slots(), inode, true, true, false)
                .map(drop)
                .ok_or(Errno::ENFILE)
        }
    };
    r.unwrap_or_else(|e| panic!("{op:?}: {e:?}"));
}

fn config() -> MmConfig {
    MmConfig {
        vma_capacity: 12,
        ..MmConfig::default()
    }
}

/// A fresh address space with the scenario's files and setup mappings.
pub fn setup<Pol: BarrierPolicy>(sc: &Scenario) -> (Arc<MmStruct<Pol>>, Ctx<Pol>) {
    let mm: MmStruct<Pol> = MmStruct::new(config());
    let files: Vec<FileId> = {
        let mut ft = mm.files();
        sc.files
            .iter()
            .map(|&ino| {
                let inode = ft.add_inode(Inode::new(ino, (0, 1), 64 * P, format!("/f{ino}"), InodeKind::Memfd));
                ft.open(mm.file_slots(), inode, true, true, false).expect("file slot")
            })
            .collect()
    };
    {
        let mut w = mm.write();
        for &op in sc.setup {
            let r = match op {
                Op::MmapAnon(a, l, p) => {
                    do_mmap(&mut w, None, a, l, p, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, 0).map(drop)
                }
                Op::MmapShared(f, a, l, p, pg) => {
                    let desc = MapFile::describe_locked(&w, files[f]);
                    do_mmap(&mut w, Some(&desc), a, l, p, MAP_SHARED | MAP_FIXED, pg).map(drop)
                }
                Op::Mprotect(a, l, p) => mprotect_locked(&mut w, a, a + l, p, 0),
                other => panic!("setup supports mmap and mprotect, not {other:?}"),
            };
            r.unwrap_or_else(|e| panic!("setup {op:?}: {e:?}"));
        }
    }
    if !sc.keep_fds {
        let mut ft = mm.files();
        for &f in &files {
            ft.put(f);
        }
    }
    let other = sc
        .other_mm
        .then(|| MmStruct::with_cache(config(), mm.vma_cache().clone()));
    (Arc::new(mm), Ctx { files, other })
}

/// Every order of the writers' operations that keeps each writer's own
/// order.
fn orders(writers: &[&[Op]]) -> Vec<Vec<Op>> {
    fn go(rest: &mut Vec<Vec<Op>>, cur: &mut Vec<Op>, out: &mut Vec<Vec<Op>>) {
        if rest.iter().all(Vec::is_empty) {
            out.push(cur.clone());
            return;
        }
        for i in 0..rest.len() {
            if rest[i].is_empty() {
                continue;
            }
            let op = rest[i].remove(0);
            cur.push(op);
            go(rest, cur, out);
            cur.pop();
            rest[i].insert(0, op);
        }
    }
    let mut out = vec![];
    go(&mut writers.iter().map(|w| w.to_vec()).collect(), &mut vec![], &mut out);
    out
}

fn cache() -> &'static StdMutex<BTreeMap<String, StdArc<Expected>>> {
    static CACHE: OnceLock<StdMutex<BTreeMap<String, StdArc<Expected>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn key<Pol: BarrierPolicy>(sc: &Scenario) -> String {
    format!("{}/{}", sc.name, Pol::NAME)
}

/// Computes the expected states on single-threaded twins, in a model run
/// of its own (loom objects live only inside a model, and the checked
/// model must do the same loom operations in every execution, so it only
/// reads the result).
fn precompute<Pol: BarrierPolicy>(sc: &'static Scenario) {
    if cache().lock().unwrap().contains_key(&key::<Pol>(sc)) {
        return;
    }
    loom::model(move || {
        let mut e = Expected::default();
        for order in orders(sc.writers) {
            let (twin, ctx) = setup::<Pol>(sc);
            let mut seq = S0;
            e.add(seq, snapshot(&twin));
            e.shape.tree_before = twin.read().tree_shape();
            e.shape.setup_files = ctx.files.clone();
            for op in order {
                apply(&twin, &ctx, op);
                if op.is_section() {
                    seq = seq.wrapping_add(2);
                    e.add(seq, snapshot(&twin));
                }
            }
            let r = twin.read();
            e.shape.tree_after = r.tree_shape();
            e.shape.files_after = r.snapshot().iter().filter_map(|v| v.file).collect();
        }
        cache().lock().unwrap().insert(key::<Pol>(sc), StdArc::new(e));
    });
}

fn expected<Pol: BarrierPolicy>(sc: &Scenario) -> StdArc<Expected> {
    cache()
        .lock()
        .unwrap()
        .get(&key::<Pol>(sc))
        .expect("precomputed")
        .clone()
}

/// Runs the reader once and checks what it returns.
fn read_and_check<Pol: BarrierPolicy>(mm: &MmStruct<Pol>, e: &Expected, reader: Reader) -> Result<(), String> {
    let stats = SpecStats::default();
    match reader {
        Reader::Spec(addr) => check_spec(e, addr, vma_lookup_speculative(mm, addr)),
        Reader::UnderReadLock(addr) => {
            let r = mm.read();
            let ok = mm.speculate_try_begin().is_some();
            drop(r);
            if !ok {
                return Err("try_begin failed under mmap_read_lock".into());
            }
            check_spec(e, addr, vma_lookup_speculative(mm, addr))
        }
        Reader::Uprobe(addr) => match uprobe_speculative(mm, addr) {
            Spec::Valid { value, seq } => {
                let states = e.at(seq)?;
                if states.iter().any(|s| uprobe(s, addr) == value) {
                    Ok(())
                } else {
                    Err(format!(
                        "uprobe validated at seq {seq}: {value:?}, expected {:?}",
                        states.iter().map(|s| uprobe(s, addr)).collect::<Vec<_>>()
                    ))
                }
            }
            _ => Ok(()),
        },
        Reader::Lookup(addr) => {
            let lo = mm.mmap_lock().seq();
            let value = vma_lookup(mm, addr, &stats);
            if e.from(lo).any(|s| lookup(s, addr) == value) {
                Ok(())
            } else {
                Err(format!(
                    "vma_lookup (seq >= {lo}): {value:?}, a state that never existed"
                ))
            }
        }
        Reader::Fault(addr, access) => {
            let lo = mm.mmap_lock().seq();
            let got = handle_user_fault(mm, addr, access);
            if e.from(lo).any(|s| expect_fault(s, addr, access) == got) {
                Ok(())
            } else {
                Err(format!(
                    "fault {access:?} at {addr:#x} (seq >= {lo}): {got:?}, no state gives that"
                ))
            }
        }
        Reader::LockVma(addr) => {
            let lo = mm.mmap_lock().seq();
            let Some(lock) = lock_vma_under_rcu(mm, addr) else {
                return Ok(());
            };
            let s = lock.slot();
            let read = |s: &mm_core::VmaSlot| (s.start(), s.end(), s.pgoff(), s.flags());
            let first = read(s);
            thread::yield_now();
            let second = read(lock.slot());
            if first != second {
                return Err(format!("VMA changed under its read lock: {first:x?} then {second:x?}"));
            }
            let (start, end, pgoff, flags) = first;
            let ok = e.from(lo).any(|st| {
                lookup(st, addr).is_some_and(|v| (v.start, v.end, v.pgoff, v.flags) == (start, end, pgoff, flags))
            });
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "locked VMA {start:#x}-{end:#x} pgoff {pgoff:#x} {flags:?} at {addr:#x} (seq >= {lo}) existed in no state"
                ))
            }
        }
        Reader::Maps => {
            let lo = mm.mmap_lock().seq();
            // The walk the maps file makes (lock_next_vma), without the
            // text formatting, which would only add loom steps.
            let mut out = String::new();
            for_each_vma_locked(mm, |v| {
                out.push_str(&format!(
                    "{:x}-{:x} {}\n",
                    v.start,
                    v.end,
                    String::from_utf8_lossy(&v.flags.perms())
                ))
            });
            check_maps(e, lo, &out)
        }
        Reader::Resolve(addr) => {
            let lo = mm.mmap_lock().seq();
            let value = resolve(mm, addr, &stats);
            if e.from(lo).any(|s| uprobe(s, addr) == value) {
                Ok(())
            } else {
                Err(format!("resolve (seq >= {lo}): {value:?}, a state that never existed"))
            }
        }
    }
}

/// The invariants of a lock-free maps read (see [`Reader::Maps`]).
fn check_maps(e: &Expected, lo: u32, out: &str) -> Result<(), String> {
    let mut lines = vec![];
    for l in out.lines() {
        let parsed = l.split_once(' ').and_then(|(range, rest)| {
            let (a, b) = range.split_once('-')?;
            let a = u64::from_str_radix(a, 16).ok()?;
            let b = u64::from_str_radix(b, 16).ok()?;
            Some((a, b, rest.get(..4)?.to_string()))
        });
        lines.push(parsed.ok_or_else(|| format!("unparsable maps line {l:?}"))?);
    }
    let states: Vec<&State> = e.from(lo).collect();
    let perms = |v: &VmaInfo| String::from_utf8_lossy(&v.flags.perms()).into_owned();
    for (i, (a, b, p)) in lines.iter().enumerate() {
        // Ends strictly increase (a line may start below the previous
        // line's end: a VMA that grew backwards is shown again).
        if i > 0 && lines[i - 1].1 >= *b {
            return Err(format!("maps line ends not increasing:\n{out}"));
        }
        let existed = states
            .iter()
            .any(|st| st.iter().any(|v| (v.start, v.end) == (*a, *b) && perms(v) == *p));
        if !existed {
            return Err(format!(
                "maps line {a:#x}-{b:#x} {p} is no VMA of any state (seq >= {lo}):\n{out}"
            ));
        }
    }
    // Every gap shown must have been a gap (no VMA in it) in some state.
    let mut gaps = vec![];
    let mut prev = 0;
    for (a, b, _) in &lines {
        if *a > prev {
            gaps.push((prev, *a));
        }
        prev = prev.max(*b);
    }
    gaps.push((prev, u64::MAX));
    for (g0, g1) in gaps {
        let real = states.iter().any(|st| st.iter().all(|v| v.end <= g0 || v.start >= g1));
        if !real {
            return Err(format!("phantom gap {g0:#x}-{g1:#x} (seq >= {lo}):\n{out}"));
        }
    }
    Ok(())
}

/// The outcome of a fault in `state`.
fn expect_fault(state: &State, addr: u64, access: Access) -> Result<(), Signal> {
    mm_spec::oracle::expected_fault(lookup(state, addr).map(|v| v.flags), access)
}

fn check_spec(e: &Expected, addr: u64, s: Spec<Option<VmaInfo>>) -> Result<(), String> {
    let Spec::Valid { value, seq } = s else { return Ok(()) };
    let states = e.at(seq)?;
    if states.iter().any(|s| lookup(s, addr) == value) {
        Ok(())
    } else {
        Err(format!(
            "vma_lookup validated at seq {seq}: {value:?}, expected {:?}",
            states.iter().map(|s| lookup(s, addr)).collect::<Vec<_>>()
        ))
    }
}

/// One execution of `sc`: setup, writer threads, the reader on the main
/// thread. Panics with the reader's complaint on a violation.
pub fn execution<Pol: BarrierPolicy>(sc: &'static Scenario) {
    if sc.killable {
        return killable_execution::<Pol>(sc);
    }
    let e = expected::<Pol>(sc);
    let (mm, ctx) = setup::<Pol>(sc);
    let ctx = Arc::new(ctx);
    let handles: Vec<_> = sc
        .writers
        .iter()
        .map(|&ops| {
            let (mm, ctx) = (mm.clone(), ctx.clone());
            thread::spawn(move || {
                for &op in ops {
                    apply(&mm, &ctx, op);
                }
            })
        })
        .collect();
    let verdict = read_and_check(&mm, &e, sc.reader);
    for h in handles {
        h.join().expect("writer");
    }
    // Loom objects must not be dropped while a panic unwinds out of the
    // model (loom aborts then), so they go first.
    drop((mm, ctx));
    if let Err(msg) = verdict {
        panic!("VIOLATION: {msg}");
    }
}

/// `vma_start_write_killable` while a reader holds the VMA: the reader
/// takes its lock and then "kills" the writer. The writer either locks the
/// VMA (no reader in: then it changes it, and loom checks that no reader
/// saw that) or gives up with `EINTR` and leaves the VMA unchanged and
/// lockable again: afterwards a reader must be able to lock it.
fn killable_execution<Pol: BarrierPolicy>(sc: &'static Scenario) {
    let (mm, _ctx) = setup::<Pol>(sc);
    let id = mm.vma_lookup_rcu_id(A).expect("the setup's VMA");
    let killed = Arc::new(mm_core::sync::AtomicBool::new(false));
    let reader = {
        let (mm, killed) = (mm.clone(), killed.clone());
        thread::spawn(move || {
            let lock = lock_vma_under_rcu(&mm, A + 8);
            killed.store(true, std::sync::atomic::Ordering::Relaxed);
            if let Some(l) = &lock {
                let s = l.slot();
                std::hint::black_box(s.flags());
            }
            drop(lock);
        })
    };
    let outcome = {
        let mut w = mm.write();
        let r = w.vma_start_write_killable(id, &killed);
        if r.is_ok() {
            mprotect_locked(&mut w, A, A + 2 * P, PROT_READ, 0).expect("mprotect");
        }
        r
    };
    reader.join().expect("reader");
    let after = lock_vma_under_rcu(&mm, A + 8).map(|l| l.slot().flags());
    let verdict = match (outcome, after) {
        (_, None) => Err(format!("after the writer ({outcome:?}), no reader can lock the VMA")),
        (Err(_), Some(f)) if f.contains(VmFlags::WRITE) => Ok(()),
        (Err(_), Some(f)) => Err(format!("a killed writer changed the VMA: {f:?}")),
        (Ok(()), Some(_)) => Ok(()),
    };
    drop(mm);
    if let Err(msg) = verdict {
        panic!("VIOLATION: {msg}");
    }
}

/// Checks the scenario's claim about what its writers do (on the twin).
pub fn check_shape<Pol: BarrierPolicy>(sc: &'static Scenario) {
    if let Some(f) = sc.shape {
        precompute::<Pol>(sc);
        f(&expected::<Pol>(sc).shape);
    }
}

/// The result of model-checking one scenario.
pub struct Verdict {
    /// The first violation's message, if any.
    pub violation: Option<String>,
    /// Executions explored.
    pub executions: usize,
    /// Wall time.
    pub secs: f64,
    /// The preemption bound used.
    pub bound: Option<usize>,
}

static EXECUTIONS: AtomicUsize = AtomicUsize::new(0);

/// The preemption bound: `LOOM_BOUND=N` or `none` overrides the
/// scenario's.
fn bound(sc: &Scenario) -> Option<usize> {
    match std::env::var("LOOM_BOUND") {
        Ok(v) if v == "none" => None,
        Ok(v) => v.parse().ok().or(sc.bound),
        Err(_) => sc.bound,
    }
}

/// Model-checks `sc` under policy `Pol`.
pub fn check<Pol: BarrierPolicy>(sc: &'static Scenario) -> Verdict {
    precompute::<Pol>(sc);
    EXECUTIONS.store(0, Ordering::SeqCst);
    let t = std::time::Instant::now();
    let b = bound(sc);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = b;
        builder.max_branches = 100_000;
        builder.check(move || {
            EXECUTIONS.fetch_add(1, Ordering::SeqCst);
            execution::<Pol>(sc);
        });
    }));
    let violation = r.err().map(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic without a message".into())
    });
    Verdict {
        violation,
        executions: EXECUTIONS.load(Ordering::SeqCst),
        secs: t.elapsed().as_secs_f64(),
        bound: b,
    }
}
