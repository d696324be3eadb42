//! The host kernel as a test oracle.
//!
//! [`HostProcess`] runs the [`Call`](mm_ops::call::Call)s of the model for
//! real, on the kernel this crate runs on, inside a child process whose
//! address space is small, quiet and deterministic, so that its results and
//! its `/proc/PID/maps` can be compared with the model's.
//!
//! ```
//! use mm_host::HostProcess;
//! use mm_ops::call::{Access, Call, Outcome, Signal};
//!
//! let mut host = HostProcess::spawn()?;
//! let map = Call::Mmap { addr: 0, len: 4096, prot: 1, flags: 0x22, fd: -1, off: 0 };
//! let Outcome::Val(addr) = host.call(&map)? else { panic!() };
//! assert!(host.maps()?.contains(&format!("{addr:08x}-")));
//! let store = Call::Fault { addr, access: Access::Write };
//! assert_eq!(host.call(&store)?, Outcome::Signal(Signal::Segv));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # The helper
//!
//! The child runs `helper/mm-host-helper.c`, a freestanding C program that
//! `build.rs` compiles with `gcc -static -nostdlib -ffreestanding -fno-pie
//! -no-pie -Os …` (plus `-z noseparate-code`, no build-id, no CET notes, no
//! unwind tables). It has no libc, its own `_start`, raw `syscall`
//! instructions, static buffers only and no heap: it never calls `brk` or
//! `mmap` for itself. Its ELF file has exactly two loadable segments at fixed
//! addresses: `R E` (text and rodata, one page at `0x400000`) and `RW`
//! (bss only, no file bytes).
//!
//! [`HostProcess::spawn`] starts it like `setarch -R`: `personality
//! (ADDR_NO_RANDOMIZE)`, an empty environment, `argv = ["mm-host-helper"]`,
//! executed as `./mm-host-helper` from its own directory (so the strings
//! `execve` copies onto the stack, and with them the initial stack pointer,
//! do not depend on where the crate was built), `RLIMIT_STACK` = 8 MiB (it
//! decides `mmap_base`), and only descriptors 0, 1, 2 open. The layout is
//! then identical from run to run. Its initial `/proc/self/maps` on Linux
//! 6.18 x86-64 (the first path is wherever `build.rs` put the helper):
//!
//! ```text
//! 00400000-00401000 r-xp 00000000 fe:00 5316681    /…/out/mm-host-helper
//! 00401000-00407000 rw-p 00000000 00:00 0
//! 7ffff7ff7000-7ffff7ffb000 r--p 00000000 00:00 0  [vvar]
//! 7ffff7ffb000-7ffff7ffd000 r--p 00000000 00:00 0  [vvar_vclock]
//! 7ffff7ffd000-7ffff7fff000 r-xp 00000000 00:00 0  [vdso]
//! 7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0  [stack]
//! ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0  [vsyscall]
//! ```
//!
//! and its [`ProcStat`]: `start_code 0x400000`, `end_code 0x400e58`,
//! `start_data = end_data = 0x401e60` (the bss starts the data segment),
//! `start_brk = brk = 0x407000` (right after the bss; no `[heap]` VMA until
//! the break grows, and then it is a VMA of its own, not merged with the
//! bss), `start_stack 0x7fffffffee20`. These exact numbers move if the C
//! file changes size; the tests check the relations, not the numbers.
//! The first kernel-placed mapping ends where `[vvar]` begins
//! (`mmap_base` = `0x7ffff7fff000`, minus the vDSO pages).
//!
//! # Protocol
//!
//! Binary, little-endian, one request then one reply, over pipes that are
//! the helper's stdin and stdout (it moves them to descriptors 1022/1023,
//! close-on-exec, at start-up, so that calls may close or replace 0, 1, 2):
//!
//! | | layout |
//! |---|---|
//! | request | `u64 op, u64 args[6], u64 slen`, then `slen` bytes of string (path or memfd name, at most 8192) |
//! | reply | `i64 value, u64 len`, then `len` bytes of data |
//!
//! The helper greets with `value = 0x74736f682d6d6d` ("mm-host"). Ops 1–15
//! are the calls (`mmap munmap mprotect brk mremap madvise open openat close
//! dup dup2 dup3 memfd_create ftruncate fault`, arguments in their C order;
//! `fault` takes the address and 0/1/2 for READ/WRITE/EXEC); their `value`
//! is the raw return value (negative = `-errno`), or for `fault` 0, 11
//! (SIGSEGV) or 7 (SIGBUS). Op 16 (`maps`) streams `/proc/self/maps` as
//! replies `{1, n}` + n bytes, closed by `{0, 0}`; op 17 (`stat`) answers
//! `value = brk(0)` with the `/proc/self/stat` line as data; op 18 exits;
//! op 19 is `chdir` (used once at start-up for [`HostOptions::cwd`]); op 20
//! (`smaps`) streams `/proc/self/smaps` like op 16. Ops 35–37 are
//! `pkey_mprotect pkey_alloc pkey_free`. Ops 22–26 are
//! `mlock mlock2 munlock mlockall munlockall` (arguments in their C
//! order), answered like ops 1–15. Op 21 (`fork`) forks
//! the helper and answers the child's pid once the child, a helper serving
//! requests over a second pipe pair at descriptors 1020/1021 (its own
//! 1022/1023), has greeted; a request whose op has bit `0x1000` is then
//! passed to the child without the bit, and its replies back
//! ([`HostProcess::child`]); `-ECHILD` without a child, `-EPIPE` once it
//! died.
//!
//! # Faults
//!
//! READ is one `movb (%rdi),%al`, WRITE one `movb $0xc3,(%rdi)`, under a
//! `SA_SIGINFO|SA_RESTORER` SIGSEGV/SIGBUS handler that records the signal
//! and steps over the 2- or 3-byte instruction.
//!
//! EXEC forks (so nothing but the kernel's own fork bookkeeping touches the
//! helper's address space) and the child, with all descriptors closed and
//! `alarm(1)`, does `call *addr` with `rax` pointing at a scratch byte
//! (zeroed memory decodes as `add %al,(%rax)`, and a `0xC3` written by a
//! WRITE fault is `ret`). A SIGSEGV/SIGBUS on the instruction at `addr`
//! itself (`si_addr == rip == addr`; for a non-canonical `addr`, the `#GP`
//! on the `call` or at `addr`) is the result; any later fault, SIGILL,
//! SIGTRAP or the alarm means the fetch succeeded. A fork child lacks the
//! `MADV_DONTFORK` VMAs: when `mincore` finds `addr` mapped in the helper
//! but not in the child, the probe is redone by a `CLONE_VM` child that
//! shares the helper's address space (on a stack of its own in the bss).
//! Code that a child runs can write to memory it shares with the helper
//! (`MAP_SHARED` mappings, and everything in the `CLONE_VM` case).
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

pub mod callgen;
mod host;
pub mod procmap;
mod protocol;
mod stat;
pub mod summary;
pub mod twin;

pub use host::{HostChild, HostOptions, HostProcess, helper_path};
pub use stat::ProcStat;
pub use twin::Twin;
