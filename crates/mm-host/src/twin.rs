//! The differential harness: a host helper and a model [`Task`] started
//! from the same state, stepped with the same calls.

use std::io;

use mm_core::{MmConfig, VmaView};
use mm_ops::call::{Call, Outcome};
use mm_ops::env::ProcEnv;
use mm_ops::hostfs::host_probe;
use mm_ops::kernel::task_mmu::{render_maps, render_maps_vma_locked};
use mm_ops::procmaps::{MapsLine, parse_maps};
use mm_ops::task::Task;

use crate::{HostOptions, HostProcess, ProcStat};

/// The model configuration matching a helper started with the default
/// [`crate::HostOptions`] (ASLR off, 8 MiB stack, root).
pub fn host_config() -> MmConfig {
    MmConfig::default()
}

/// A host helper and its model twin.
pub struct Twin {
    /// The host side.
    pub host: HostProcess,
    /// The model side.
    pub model: Task,
}

impl Twin {
    /// Starts a helper and a model initialised from its maps and stat.
    pub fn spawn() -> io::Result<Twin> {
        Self::spawn_with(&HostOptions::default())
    }

    /// Like [`spawn`](Self::spawn) with options. The model's configuration
    /// is the helper's environment as `/proc` shows it
    /// ([`ProcEnv::of_process`]): memory size, sysctls, THP mode, rlimits,
    /// capabilities, personality.
    pub fn spawn_with(opts: &HostOptions) -> io::Result<Twin> {
        let mut host = HostProcess::spawn_with(opts)?;
        let maps = host.maps()?;
        let stat = host.stat()?;
        let (env, missing) = ProcEnv::of_process(Some(host.pid()));
        if !missing.is_empty() {
            return Err(io::Error::other(format!(
                "the helper's environment: cannot read {missing:?}"
            )));
        }
        let cfg = env.config();
        let mut model = Task::new(cfg);
        model.set_probe(host_probe());
        model.dir_fs_probe = Some(mm_ops::hostfs::host_dir_fs);
        // The host's files are the ones the helper opens, call by call.
        model.live_files = true;
        // The helper's protocol pipes hold descriptors 1022 and 1023.
        model.inherit_fd(1022, "pipe:[0]");
        model.inherit_fd(1023, "pipe:[1]");
        // Relative paths start where the helper's do.
        let cwd = std::fs::read_link(format!("/proc/{}/cwd", host.pid()))?;
        model.set_cwd(&cwd.to_string_lossy());
        let lines = parse_maps(&maps).map_err(io::Error::other)?;
        model.import_maps(&lines).map_err(io::Error::other)?;
        set_layout(&model, &stat);
        // With randomization the mmap area's base is where the kernel put
        // the helper's first mappings there (its vDSO block).
        if opts.aslr && !model.infer_mmap_base(&lines) {
            return Err(io::Error::other(
                "ASLR: no vDSO in the helper's maps to place the mmap area by",
            ));
        }
        Ok(Twin { host, model })
    }

    /// Runs `call` on both sides: `(host, model)`.
    pub fn step(&mut self, call: &Call) -> io::Result<(Outcome, Outcome)> {
        // An open that may create its file goes to the model first: the
        // model looks at the host's files, which the host's call changes.
        // The model then picks the descriptor itself (the lowest free one,
        // as the kernel does), and the results are compared as any other.
        let creates = match call {
            Call::Open { flags, .. } | Call::Openat { flags, .. } => flags & mm_ops::uapi::oflags::O_CREAT != 0,
            _ => false,
        };
        if creates {
            let m = self.model.apply(call, None);
            let h = self.host.call(call)?;
            return Ok((h, m));
        }
        let h = self.host.call(call)?;
        let recorded_fd = match (call.creates_fd(), h) {
            (true, Outcome::Val(fd)) => Some(fd as i64),
            _ => None,
        };
        let m = self.model.apply(call, recorded_fd);
        Ok((h, m))
    }

    /// The model's maps text (with the `[vsyscall]` line). Rendered both
    /// under `mmap_lock` and the 6.17+ way (each VMA under its own lock,
    /// `lock_next_vma`), which must agree; a difference panics, so every
    /// differential test compares the lock-free reader with the host too.
    pub fn model_maps(&self) -> String {
        let locked = {
            let r = self.model.mm().read();
            let files = r.files();
            render_maps(&r, &files, true)
        };
        let mut free = String::new();
        render_maps_vma_locked(&mut free, self.model.mm(), true);
        assert_eq!(
            free, locked,
            "maps read under per-VMA locks differs from maps read under mmap_lock"
        );
        locked
    }

    /// Compares `PROCMAP_QUERY` on both sides at every VMA boundary of
    /// `[lo, hi)` (each start and end, a page either side) with each
    /// query-flag combination; describes the first difference.
    pub fn diff_procmap_query(&self, lo: u64, hi: u64) -> io::Result<Option<String>> {
        use mm_ops::kernel::procmap_query::*;
        let mut addrs = vec![lo];
        for v in self.model.mm().read().snapshot() {
            if v.end <= lo || v.start >= hi {
                continue;
            }
            for a in [v.start.saturating_sub(4096), v.start, v.end - 4096, v.end] {
                addrs.push(a);
            }
        }
        addrs.sort_unstable();
        addrs.dedup();
        let flag_sets = [
            0,
            PROCMAP_QUERY_COVERING_OR_NEXT_VMA,
            PROCMAP_QUERY_COVERING_OR_NEXT_VMA | PROCMAP_QUERY_FILE_BACKED_VMA,
            PROCMAP_QUERY_COVERING_OR_NEXT_VMA | PROCMAP_QUERY_VMA_WRITABLE,
            PROCMAP_QUERY_COVERING_OR_NEXT_VMA | PROCMAP_QUERY_VMA_EXECUTABLE | PROCMAP_QUERY_VMA_READABLE,
            PROCMAP_QUERY_VMA_SHARED,
            0x40,
        ];
        for &a in &addrs {
            for f in flag_sets {
                let host = crate::procmap::host_procmap_query(self.host.pid(), a, f)?;
                let mut model = procmap_query(self.model.mm(), a, f);
                // As the maps comparison: not dev and inode (the model
                // numbers the objects it makes itself), but whether there
                // is one.
                if let (Ok(h), Ok(m)) = (&host, &mut model)
                    && (m.inode == 0) == (h.inode == 0)
                {
                    m.inode = h.inode;
                    m.dev = h.dev;
                }
                if host != model {
                    return Ok(Some(format!(
                        "PROCMAP_QUERY at {a:#x} flags {f:#x}: host {host:x?}, model {model:x?}"
                    )));
                }
            }
        }
        Ok(None)
    }

    /// Compares maps line by line on every column but dev and inode;
    /// returns a description of the first difference.
    pub fn diff_maps(&mut self) -> io::Result<Option<String>> {
        let host = self.host.maps()?;
        let model = self.model_maps();
        Ok(diff_maps_text(&host, &model))
    }

    /// Compares the `VmFlags` of every VMA in `/proc/PID/smaps` (flags
    /// that maps does not show: `VM_ACCOUNT`, `VM_LOCKED`, the madvise
    /// bits) and, on a machine with protection keys, each VMA's
    /// `ProtectionKey`; returns a description of the differences.
    pub fn diff_vmflags(&mut self) -> io::Result<Option<String>> {
        let smaps = self.host.smaps()?;
        let mut host = parse_smaps_flags(&smaps);
        let mut model = {
            let r = self.model.mm().read();
            mm_ops::kernel::task_mmu::smaps_flags(&r)
        };
        with_pkeys(&mut host, &parse_smaps_pkeys(&smaps));
        with_pkeys(&mut model, &model_pkeys(self.model.mm()));
        if host == model {
            return Ok(None);
        }
        let mut out = String::new();
        for i in 0..host.len().max(model.len()) {
            let show = |v: Option<&(u64, u64, String)>| match v {
                Some((s, e, f)) => format!("{s:x}-{e:x} {f}"),
                None => "-".into(),
            };
            let (a, b) = (show(host.get(i)), show(model.get(i)));
            let mark = if a == b { "  " } else { "!!" };
            out.push_str(&format!("{mark} host: {a:<60} model: {b}\n"));
        }
        Ok(Some(out))
    }

    /// Number of VMAs in the model.
    pub fn model_vma_count(&self) -> usize {
        self.model.mm().read().vma_count()
    }
}

/// Sets brk, stack and data bounds of the model from the helper's stat.
pub fn set_layout(model: &Task, stat: &ProcStat) {
    let mut w = model.mm().write();
    let st = w.st();
    st.start_brk = stat.start_brk;
    st.brk = stat.brk;
    st.start_stack = stat.start_stack;
    st.start_data = stat.start_data;
    st.end_data = stat.end_data;
}

/// `(start, end, VmFlags)` of each VMA in an smaps text (the `VmFlags:`
/// value with its trailing space, as the kernel prints it).
pub fn parse_smaps_flags(text: &str) -> Vec<(u64, u64, String)> {
    smaps_field(text, "VmFlags: ")
        .into_iter()
        .map(|(s, e, f)| (s, e, f.to_string()))
        .collect()
}

/// `(start, end, key)` of each VMA in an smaps text that shows
/// `ProtectionKey` (`arch_show_smap`: machines with protection keys);
/// empty otherwise.
pub fn parse_smaps_pkeys(text: &str) -> Vec<(u64, u64, i32)> {
    smaps_field(text, "ProtectionKey:")
        .into_iter()
        .filter_map(|(s, e, k)| Some((s, e, k.trim().parse().ok()?)))
        .collect()
}

/// `(start, end, value)` of each VMA in an smaps text for the field whose
/// line starts with `name` (the rest of that line), the gate area left
/// out (it has no VMA in the model).
fn smaps_field<'t>(text: &'t str, name: &str) -> Vec<(u64, u64, &'t str)> {
    let mut out = Vec::new();
    let mut range = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix(name) {
            if let Some((s, e)) = range.take() {
                out.push((s, e, v));
            }
            continue;
        }
        let Some(first) = line.split(' ').next() else { continue };
        if let Some((s, e)) = first.split_once('-')
            && let (Ok(s), Ok(e)) = (u64::from_str_radix(s, 16), u64::from_str_radix(e, 16))
        {
            range = Some((s, e));
        }
    }
    out.retain(|&(s, _, _)| s < 0xffff_ffff_ff60_0000);
    out
}

/// Each model VMA's protection key, as [`parse_smaps_pkeys`] reads the
/// host's (empty when the model's machine has no protection keys).
pub fn model_pkeys<P: mm_core::BarrierPolicy>(mm: &mm_core::MmStruct<P>) -> Vec<(u64, u64, i32)> {
    let r = mm.read();
    let mut out = Vec::new();
    if r.state().cfg.pkeys {
        r.for_each_vma(|v| out.push((v.start, v.end, mm_ops::kernel::pkeys::vma_pkey(v.flags))));
    }
    out
}

/// Appends ` pkey=K` to the flags of each VMA that `keys` gives a key, so
/// that one comparison covers both.
pub fn with_pkeys(flags: &mut [(u64, u64, String)], keys: &[(u64, u64, i32)]) {
    for f in flags.iter_mut() {
        if let Some(&(_, _, k)) = keys.iter().find(|&&(s, e, _)| s == f.0 && e == f.1) {
            f.2.push_str(&format!("pkey={k} "));
        }
    }
}

/// Compares two maps texts by [`MapsLine::key`]; `None` if equal.
pub fn diff_maps_text(host: &str, model: &str) -> Option<String> {
    let keys = |t: &str| -> Vec<String> {
        match parse_maps(t) {
            Ok(v) => v.iter().map(MapsLine::key).collect(),
            Err(e) => vec![format!("unparsable: {e}")],
        }
    };
    let (h, m) = (keys(host), keys(model));
    if h == m {
        return None;
    }
    let mut out = String::new();
    let n = h.len().max(m.len());
    for i in 0..n {
        let (a, b) = (
            h.get(i).map(String::as_str).unwrap_or("-"),
            m.get(i).map(String::as_str).unwrap_or("-"),
        );
        let mark = if a == b { "  " } else { "!!" };
        out.push_str(&format!("{mark} host: {a:<70} model: {b}\n"));
    }
    Some(out)
}
