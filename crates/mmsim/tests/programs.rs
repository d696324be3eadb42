//! Real programs, recorded live on this machine with `mmsim record` and
//! replayed with `mmsim replay --fixture`: every result (including where
//! each non-fixed mmap lands) and the final maps must match the kernel's.
//!
//! Each program runs in a fresh temporary directory. `MM_PROGRAMS=a,b`
//! runs only those; `MM_KEEP_FIXTURES=DIR` copies the fixtures there.

mod common;

use std::path::Path;
use std::process::Command;

use common::TempDir;

/// A program to record: a name, and its command line (`{dir}` is the
/// temporary directory).
struct Program {
    name: &'static str,
    argv: &'static [&'static str],
    /// What the trace must contain (the point of recording it).
    must_call: &'static [&'static str],
    /// Run only when installed (not one of the programs CI installs).
    optional: bool,
    /// `--env KEY=VALUE` settings under which the replay must diverge: the
    /// environment the recorder saw is what made it match.
    diverges_with: &'static [&'static str],
    /// Processes the recording must show (`processes:` in `meta.txt`):
    /// more than one for the process trees.
    min_processes: u64,
}

const PROGRAMS: &[Program] = &[
    Program {
        name: "cat",
        argv: &["cat", "/etc/passwd", "/etc/os-release"],
        must_call: &["openat", "mmap"],
        optional: false,
        diverges_with: &[],
        min_processes: 1,
    },
    Program {
        name: "ls",
        argv: &["ls", "-la", "/usr/lib", "/etc"],
        must_call: &["openat", "mmap", "mprotect"],
        optional: false,
        diverges_with: &[],
        min_processes: 1,
    },
    Program {
        name: "sort",
        argv: &["sort", "-r", "{dir}/input.txt", "-o", "{dir}/sorted.txt"],
        must_call: &["mmap", "munmap"],
        optional: false,
        diverges_with: &[],
        min_processes: 1,
    },
    Program {
        name: "tar",
        argv: &["tar", "-cf", "{dir}/out.tar", "-C", "/usr/share/common-licenses", "."],
        must_call: &["openat", "mmap"],
        optional: false,
        diverges_with: &[],
        min_processes: 1,
    },
    Program {
        name: "perl",
        argv: &[
            "perl",
            "-e",
            "my @a = (1..300000); my %h = map { $_ => $_ } @a; print scalar(keys %h), qq(\\n);",
        ],
        must_call: &["brk", "mmap", "munmap"],
        optional: false,
        diverges_with: &[],
        min_processes: 1,
    },
    Program {
        name: "python3",
        argv: &[
            "python3",
            "-c",
            "import json, re, collections, decimal, hashlib\n\
             big = bytearray(64 << 20)\n\
             xs = [str(i) for i in range(300000)]\n\
             print(len(json.dumps(xs)), len(big))",
        ],
        must_call: &["mmap", "munmap", "brk"],
        optional: false,
        diverges_with: &[],
        min_processes: 1,
    },
    Program {
        name: "awk",
        argv: &[
            "awk",
            "BEGIN { s = \"\"; for (i = 0; i < 400000; i++) { a[i] = i; s = s \"x\" } print length(a), length(s) }",
        ],
        must_call: &["mremap"],
        optional: false,
        diverges_with: &[],
        min_processes: 1,
    },
    Program {
        name: "sqlite3",
        argv: &[
            "sqlite3",
            "{dir}/db.sqlite",
            "CREATE TABLE t(x); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000) \
             INSERT INTO t SELECT x FROM c; CREATE INDEX i ON t(x); SELECT count(*), sum(x) FROM t;",
        ],
        must_call: &["openat", "mmap"],
        optional: false,
        diverges_with: &[],
        min_processes: 1,
    },
    Program {
        name: "node",
        argv: &[
            "node",
            "-e",
            "const a = []; for (let i = 0; i < 300000; i++) a.push({ i, s: String(i) }); console.log(a.length)",
        ],
        must_call: &["mmap", "mprotect", "munmap", "madvise"],
        optional: false,
        diverges_with: &[],
        min_processes: 1,
    },
    // Process trees: every process is recorded and replayed, each with
    // its own model (forks copy the parent's, vforks share it, execs start
    // from their snapshots).
    Program {
        name: "sh-pipeline",
        argv: &[
            "sh",
            "-c",
            "ls -la /usr/lib /etc | sort -r | head -n 50 | tr a-z A-Z > {dir}/out.txt; (cat {dir}/out.txt; echo end) | wc -l",
        ],
        must_call: &["execve", "mmap", "brk"],
        optional: false,
        diverges_with: &[],
        min_processes: 6,
    },
    Program {
        name: "make-j4",
        argv: &["make", "-s", "-j4", "-C", "{dir}", "all"],
        must_call: &["execve", "mmap"],
        optional: false,
        diverges_with: &[],
        min_processes: 9,
    },
    Program {
        name: "gcc-driver",
        argv: &["gcc", "-O2", "-o", "{dir}/hello", "{dir}/hello.c"],
        must_call: &["execve", "mmap", "munmap"],
        optional: false,
        diverges_with: &[],
        min_processes: 4,
    },
    Program {
        name: "python3-pool",
        argv: &[
            "python3",
            "-c",
            "import multiprocessing as mp\n\
             if __name__ == '__main__':\n    \
             with mp.get_context('fork').Pool(3) as p:\n        \
             print(sum(p.map(abs, range(-50000, 50000), chunksize=1000)))",
        ],
        must_call: &["mmap", "munmap"],
        optional: false,
        diverges_with: &[],
        min_processes: 4,
    },
    // The same interpreter under other limits, credentials and layouts:
    // the recorder writes the environment into meta.txt, and the replay
    // must take it from there (each one diverges on the reference host's).
    Program {
        name: "python3-rlimit-as",
        argv: &[
            "sh",
            "-c",
            "ulimit -v 1048576; exec python3 -c '\
a = bytearray(64 << 20)\n\
try:\n    b = bytearray(2 << 30)\nexcept MemoryError:\n    print(\"ENOMEM under RLIMIT_AS\")'",
        ],
        must_call: &["mmap", "munmap"],
        optional: false,
        diverges_with: &["rlimit_as=unlimited"],
        min_processes: 1,
    },
    Program {
        name: "perl-unprivileged",
        argv: &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "perl",
            "-e",
            "my $r = syscall(9, 0, 4096, 1, 0x32, -1, 0); print qq($r $!\\n); my @a = (1..100000); print scalar(@a), qq(\\n);",
        ],
        must_call: &["mmap", "brk"],
        optional: false,
        diverges_with: &["cap_eff=1ffffffffff"],
        min_processes: 1,
    },
    Program {
        name: "python3-legacy-layout",
        argv: &[
            "setarch",
            "x86_64",
            "-L",
            "python3",
            "-c",
            "a = bytearray(8 << 20); print(len(a))",
        ],
        // setarch also turns randomization back on: the mmap area's base
        // comes from the initial maps.
        must_call: &["mmap", "munmap"],
        optional: false,
        diverges_with: &["personality=0"],
        min_processes: 1,
    },
    Program {
        name: "python3-big-stack",
        argv: &[
            "sh",
            "-c",
            "ulimit -s 1048576; exec python3 -c 'a = bytearray(8 << 20); print(len(a))'",
        ],
        must_call: &["mmap", "munmap"],
        optional: false,
        diverges_with: &[],
        min_processes: 1,
    },
    // A shm_open-style tmpfs file, unlinked before the replay: its
    // mappings are placed as tmpfs places them (no THP alignment), which
    // the replay learns from the directory's file system.
    Program {
        name: "python3-shm-unlinked",
        argv: &[
            "python3",
            "-c",
            "import mmap, os\n\
p = '/dev/shm/mmsim-test-%d' % os.getpid()\n\
fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o600)\n\
os.ftruncate(fd, 8 << 20)\n\
a = mmap.mmap(fd, 2 << 20)\n\
b = mmap.mmap(fd, 4 << 20)\n\
a[0] = 1\n\
os.unlink(p)\n\
c = mmap.mmap(fd, 2 << 20, offset=2 << 20)\n\
print(len(a) + len(b) + len(c))",
        ],
        must_call: &["mmap", "unlink"],
        optional: false,
        diverges_with: &[],
        min_processes: 1,
    },
    // System V shared memory: a segment attached twice (once read-only),
    // split by mprotect, one attach detached, removed while the other is
    // still attached, and a fork child that inherits the attach.
    Program {
        name: "python3-sysv-shm",
        argv: &[
            "python3",
            "-c",
            "import ctypes, os\n\
libc = ctypes.CDLL(None, use_errno=True)\n\
libc.shmat.restype = ctypes.c_void_p\n\
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]\n\
libc.shmdt.argtypes = [ctypes.c_void_p]\n\
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]\n\
i = libc.shmget(0, 5 * 4096, 0o1600)\n\
a = libc.shmat(i, None, 0)\n\
b = libc.shmat(i, None, 0o10000)\n\
libc.mprotect(a + 4096, 4096, 1)\n\
pid = os.fork()\n\
if pid == 0: libc.shmdt(ctypes.c_void_p(a)); os._exit(0)\n\
os.waitpid(pid, 0)\n\
print(libc.shmdt(ctypes.c_void_p(a)), libc.shmctl(i, 0, None), b > 0)",
        ],
        must_call: &["shmget", "shmat", "shmdt", "shmctl"],
        optional: false,
        diverges_with: &[],
        min_processes: 2,
    },
    // A System V segment of huge pages: with SHM_NORESERVE it needs no
    // pool (its attaches map whole huge pages, aligned); without, it
    // reserves from the pool (ENOMEM with none). A fork child detaches.
    Program {
        name: "python3-sysv-hugetlb",
        argv: &[
            "python3",
            "-c",
            "import ctypes, os\n\
libc = ctypes.CDLL(None, use_errno=True)\n\
libc.shmat.restype = ctypes.c_void_p\n\
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]\n\
libc.shmdt.argtypes = [ctypes.c_void_p]\n\
i = libc.shmget(0, 3 << 20, 0o15600)\n\
j = libc.shmget(0, 1 << 30, 0o5600)\n\
a = libc.shmat(i, None, 0)\n\
b = libc.shmat(i, None, 0o10000)\n\
pid = os.fork()\n\
if pid == 0: libc.shmdt(ctypes.c_void_p(a)); os._exit(0)\n\
os.waitpid(pid, 0)\n\
print(i >= 0, j, a % (2 << 20), libc.shmdt(ctypes.c_void_p(a)), libc.shmdt(ctypes.c_void_p(b)), libc.shmctl(i, 0, None))",
        ],
        must_call: &["shmget", "shmat", "shmdt", "shmctl"],
        optional: false,
        diverges_with: &[],
        min_processes: 2,
    },
    // Limits changed by the program itself (prlimit64): a mapping the new
    // RLIMIT_AS refuses, a refused raise of the hard limit (taken from the
    // trace), a lower RLIMIT_MEMLOCK.
    Program {
        name: "python3-setrlimit",
        argv: &[
            "python3",
            "-c",
            "import resource, mmap\n\
resource.setrlimit(resource.RLIMIT_AS, (600 << 20, 600 << 20))\n\
try: mmap.mmap(-1, 700 << 20)\n\
except OSError as e: print(e)\n\
m = mmap.mmap(-1, 100 << 20)\n\
try: resource.setrlimit(resource.RLIMIT_AS, (700 << 20, 700 << 20))\n\
except Exception as e: print(e)\n\
resource.setrlimit(resource.RLIMIT_MEMLOCK, (8192, 8192))\n\
print(len(m))",
        ],
        must_call: &["prlimit64", "mmap"],
        optional: false,
        diverges_with: &[],
        min_processes: 1,
    },
    // The protection-key calls: pkey_mprotect with -1 splits like
    // mprotect, with a key nobody allocated it fails; pkey_alloc and
    // pkey_free answer what the machine's keys allow (without keys:
    // EINVAL, then ENOSPC), in a fork child too.
    Program {
        name: "python3-pkeys",
        argv: &[
            "python3",
            "-c",
            "import ctypes, os\n\
libc = ctypes.CDLL(None, use_errno=True)\n\
libc.mmap.restype = ctypes.c_void_p\n\
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]\n\
libc.syscall.restype = ctypes.c_long\n\
p = libc.mmap(None, 8 * 4096, 3, 0x22, -1, 0)\n\
a = libc.syscall(329, ctypes.c_void_p(p + 4096), ctypes.c_size_t(8192), 1, -1)\n\
b = libc.syscall(329, ctypes.c_void_p(p), ctypes.c_size_t(4096), 1, 7)\n\
k = libc.syscall(330, 0, 0)\n\
libc.syscall(331, ctypes.c_long(k))\n\
c = os.fork()\n\
if c == 0:\n    libc.syscall(330, 0, 0); libc.syscall(329, ctypes.c_void_p(p), ctypes.c_size_t(4096), 4, -1); os._exit(0)\n\
os.waitpid(c, 0)\n\
print(a, b)",
        ],
        must_call: &["pkey_mprotect", "pkey_alloc", "pkey_free"],
        optional: false,
        diverges_with: &[],
        min_processes: 2,
    },
    // Programs whose faults the old inference got wrong or needed:
    // recorded with every fault, they replay without it.
    Program {
        name: "ruby",
        argv: &[
            "ruby",
            "-e",
            "a = (1..300000).map { |i| i.to_s * 3 }; h = {}; a.each { |s| h[s] = s.size }; puts h.size",
        ],
        must_call: &["mmap", "munmap", "fault"],
        optional: false,
        diverges_with: &[],
        min_processes: 1,
    },
    Program {
        name: "go",
        argv: &[
            "sh",
            "-c",
            "cd {dir} && HOME={dir} GOCACHE={dir}/gocache GOPATH={dir}/gopath GOFLAGS=-mod=mod \
             go build -o hello-go hello.go && exec ./hello-go",
        ],
        must_call: &["mmap", "madvise", "fault"],
        optional: false,
        diverges_with: &[],
        min_processes: 1,
    },
    Program {
        name: "gdb",
        argv: &["gdb", "-batch", "-nx", "-ex", "run", "--args", "/bin/true"],
        must_call: &["mmap", "fault"],
        optional: false,
        diverges_with: &[],
        min_processes: 1,
    },
    // The stack grows by faults below it (4 MiB of recursion): the final
    // [stack] line matches only if the faults are replayed.
    Program {
        name: "c-stack-growth",
        argv: &["sh", "-c", "gcc -O0 -o {dir}/stack {dir}/stack.c && exec {dir}/stack"],
        must_call: &["fault"],
        optional: false,
        diverges_with: &[],
        min_processes: 1,
    },
    // PKRU is per thread: a thread made before pkey_alloc keeps the rights
    // a process starts with (its read of the key's memory is SIGSEGV where
    // the host has protection keys), one made after starts with its
    // creator's (its read works). With one PKRU for the address space the
    // first read replayed as 0. Then main gives itself a write right with
    // pkey_set (WRPKRU), which the replay learns from the write's fault.
    Program {
        name: "c-pkey-threads",
        argv: &["sh", "-c", "gcc -O0 -pthread -o {dir}/pk {dir}/pk.c && exec {dir}/pk"],
        must_call: &["pkey_alloc", "fault"],
        optional: false,
        diverges_with: &[],
        min_processes: 1,
    },
    // A file grown by write(2), which the trace does not show, then mapped,
    // read at its end and removed: the replay takes its size from
    // files.txt (else the model's fault there is SIGBUS).
    Program {
        name: "python3-written-then-mapped",
        argv: &[
            "python3",
            "-c",
            "import mmap, os\n\
p = '{dir}/grown'\n\
fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o600)\n\
os.write(fd, b'x' * 20000)\n\
m = mmap.mmap(fd, 20000)\n\
print(m[19999])\n\
os.unlink(p)",
        ],
        must_call: &["mmap", "unlink", "fault"],
        optional: false,
        diverges_with: &[],
        min_processes: 1,
    },
    Program {
        name: "java",
        argv: &["java", "-Xmx256m", "{dir}/Hello.java"],
        must_call: &["mmap", "mprotect", "munmap", "unlink"],
        optional: true,
        diverges_with: &[],
        min_processes: 1,
    },
];

fn selected(name: &str) -> bool {
    match std::env::var("MM_PROGRAMS") {
        Ok(list) => list.split(',').any(|n| n.trim() == name),
        Err(_) => true,
    }
}

fn mmsim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mmsim"))
}

/// Records and replays one program; returns a description of what went
/// wrong, if anything.
fn record_and_replay(p: &Program, tmp: &Path) -> Result<String, String> {
    let on_path =
        std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(p.argv[0]).is_file()));
    if !on_path {
        if p.optional {
            return Ok(format!("skipped: `{}` is not installed", p.argv[0]));
        }
        return Err(format!(
            "`{}` is not installed (`cargo xtask ci` installs it)",
            p.argv[0]
        ));
    }
    let fixture = tmp.join("fixture");
    let argv: Vec<String> = p
        .argv
        .iter()
        .map(|a| a.replace("{dir}", tmp.to_str().expect("utf-8 temp dir")))
        .collect();
    let rec = mmsim()
        .arg("record")
        .arg("-o")
        .arg(&fixture)
        .arg("--")
        .args(&argv)
        .current_dir(tmp)
        .output()
        .map_err(|e| format!("cannot run mmsim record: {e}"))?;
    if !rec.status.success() {
        return Err(format!(
            "mmsim record -- {argv:?} failed ({}): {}",
            rec.status,
            String::from_utf8_lossy(&rec.stderr)
        ));
    }
    let trace = std::fs::read_to_string(fixture.join("trace.txt")).map_err(|e| format!("trace.txt: {e}"))?;
    // As root every fault is recorded, so the replay infers none.
    let meta = std::fs::read_to_string(fixture.join("meta.txt")).map_err(|e| format!("meta.txt: {e}"))?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 && !meta.lines().any(|l| l.starts_with("faults: recorded")) {
        return Err(format!("{}: page faults were not recorded:\n{meta}", p.name));
    }
    let processes = meta
        .lines()
        .find_map(|l| l.strip_prefix("processes: "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1);
    if processes < p.min_processes {
        return Err(format!(
            "{}: {processes} processes recorded, at least {} expected:\n{meta}",
            p.name, p.min_processes
        ));
    }
    for name in p.must_call {
        let head = format!("{name}(");
        if !trace
            .lines()
            .any(|l| l.split_whitespace().any(|w| w.starts_with(&head)))
        {
            return Err(format!("the trace of {} has no {name} call", p.name));
        }
    }
    if let Ok(keep) = std::env::var("MM_KEEP_FIXTURES") {
        let dest = Path::new(&keep).join(p.name);
        let _ = std::fs::create_dir_all(&dest);
        for f in [
            "trace.txt",
            "initial-maps.txt",
            "final-maps.txt",
            "meta.txt",
            "files.txt",
        ] {
            let _ = std::fs::copy(fixture.join(f), dest.join(f));
        }
        if let Ok(images) = std::fs::read_dir(fixture.join("mm")) {
            let _ = std::fs::create_dir_all(dest.join("mm"));
            for e in images.flatten() {
                let _ = std::fs::copy(e.path(), dest.join("mm").join(e.file_name()));
            }
        }
    }
    let rep = mmsim()
        .arg("replay")
        .arg("--fixture")
        .arg(&fixture)
        .output()
        .map_err(|e| format!("cannot run mmsim replay: {e}"))?;
    let stderr = String::from_utf8_lossy(&rep.stderr).into_owned();
    if rep.status.code() != Some(0) {
        return Err(format!(
            "mmsim replay --fixture of {} exited {:?}:\n{stderr}",
            p.name,
            rep.status.code()
        ));
    }
    if !stderr.contains("final maps identical") || !stderr.contains(" 0 divergences") {
        return Err(format!("unexpected replay report for {}:\n{stderr}", p.name));
    }
    for setting in p.diverges_with {
        let rep = mmsim()
            .arg("replay")
            .arg("--fixture")
            .arg(&fixture)
            .arg("--env")
            .arg(setting)
            .output()
            .map_err(|e| format!("cannot run mmsim replay: {e}"))?;
        if rep.status.code() != Some(1) {
            return Err(format!(
                "{}: replayed with --env {setting}, the replay should diverge, but exited {:?}:\n{}",
                p.name,
                rep.status.code(),
                String::from_utf8_lossy(&rep.stderr)
            ));
        }
    }
    Ok(stderr.lines().last().unwrap_or_default().to_string())
}

#[test]
fn real_programs_replay_with_zero_divergence() {
    let mut failures = Vec::new();
    let mut ran = 0;
    for p in PROGRAMS.iter().filter(|p| selected(p.name)) {
        let tmp = TempDir::new(&format!("prog-{}", p.name));
        if p.name == "java" {
            std::fs::write(
                tmp.path().join("Hello.java"),
                "public class Hello { public static void main(String[] a) { var l = new java.util.ArrayList<String>(); \
                 for (int i = 0; i < 200000; i++) l.add(\"x\" + i); System.out.println(l.size()); } }",
            )
            .expect("java source");
        }
        if p.name == "c-stack-growth" {
            std::fs::write(
                tmp.path().join("stack.c"),
                "#include <stdio.h>\nstatic int f(int n) { volatile char buf[1024]; buf[0] = (char)n; return n ? f(n - 1) + buf[0] : 0; }\n\
                 int main(void) { printf(\"%d\\n\", f(4000)); return 0; }\n",
            )
            .expect("c source");
        }
        if p.name == "c-pkey-threads" {
            std::fs::write(tmp.path().join("pk.c"), PKEY_THREADS_C).expect("c source");
        }
        if p.name == "go" {
            std::fs::write(
                tmp.path().join("hello.go"),
                "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tm := map[int]string{}\n\tfor i := 0; i < 200000; i++ {\n\t\tm[i] = fmt.Sprint(i)\n\t}\n\ts := make([]byte, 64<<20)\n\ts[len(s)-1] = 1\n\tfmt.Println(len(m), len(s))\n}\n",
            )
            .expect("go source");
        }
        if p.name == "make-j4" {
            let mut mk = String::from("all: a b c d e f\n");
            for t in ["a", "b", "c", "d", "e", "f"] {
                mk.push_str(&format!(
                    "{t}:\n\tsort -r /etc/passwd > {t}.out && wc -l < {t}.out > {t}.n\n"
                ));
            }
            std::fs::write(tmp.path().join("Makefile"), mk).expect("Makefile");
        }
        if p.name == "gcc-driver" {
            std::fs::write(
                tmp.path().join("hello.c"),
                "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n",
            )
            .expect("c source");
        }
        if p.name == "sort" {
            let text: String = (0..200_000)
                .map(|i| format!("{:08}\n", (i * 7919) % 1_000_003))
                .collect();
            std::fs::write(tmp.path().join("input.txt"), text).expect("sort input");
        }
        match record_and_replay(p, tmp.path()) {
            Ok(summary) => {
                ran += 1;
                eprintln!("{}: {summary}", p.name);
            }
            Err(e) => failures.push(format!("{}: {e}", p.name)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} programs diverged:\n{}",
        failures.len(),
        ran + failures.len(),
        failures.join("\n\n")
    );
    assert!(ran >= 1, "no program selected");
}

/// The program of `c-pkey-threads`.
const PKEY_THREADS_C: &str = "#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static char *buf;
static int pipefd[2];
static sigjmp_buf jb;
static volatile int segv;

static void on_segv(int sig) { (void)sig; segv = 1; siglongjmp(jb, 1); }

/* Made before pkey_alloc: it keeps the PKRU a process starts with. */
static void *early(void *arg) {
    char c;
    (void)arg;
    if (read(pipefd[0], &c, 1) != 1) return 0;
    if (!sigsetjmp(jb, 1)) { volatile char v = buf[0]; (void)v; }
    printf(\"early thread: %s\\n\", segv ? \"SIGSEGV\" : \"read\");
    return 0;
}

/* Made after: it starts with its creator's PKRU. */
static void *late(void *arg) {
    (void)arg;
    volatile char v = buf[4096]; (void)v;
    printf(\"late thread: read\\n\");
    return 0;
}

int main(void) {
    signal(SIGSEGV, on_segv);
    if (pipe(pipefd)) return 1;
    buf = mmap(0, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pthread_t t1, t2;
    pthread_create(&t1, 0, early, 0);
    long k = syscall(SYS_pkey_alloc, 0, 0);
    if (k >= 0) syscall(SYS_pkey_mprotect, buf, 3 * 4096, PROT_READ | PROT_WRITE, k);
    buf[0] = 1;
    pthread_create(&t2, 0, late, 0);
    pthread_join(t2, 0);
    if (write(pipefd[1], \"x\", 1) != 1) return 1;
    pthread_join(t1, 0);
    printf(\"key %ld\\n\", k);
    /* A right the thread gives itself: pkey_set is WRPKRU, no system call. */
    char *w = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int k2 = pkey_alloc(0, PKEY_DISABLE_WRITE);
    if (k2 >= 0) {
        pkey_mprotect(w, 4096, PROT_READ | PROT_WRITE, k2);
        pkey_set(k2, 0);
        w[0] = 1;
        pkey_set(k2, PKEY_DISABLE_WRITE);
    }
    printf(\"key %d written\\n\", k2);
    return 0;
}
";
