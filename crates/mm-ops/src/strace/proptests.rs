//! Property tests: the canonical text reads back as the call strace would
//! show, and no input makes the reader panic.

use proptest::prelude::*;

use super::{Line, Parser, Recorded, format_call, format_result, parse_line, visible};
use crate::call::{Access, Call, Outcome, Signal};
use crate::uapi::Errno;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/strace/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn word() -> impl Strategy<Value = u64> {
    prop_oneof![any::<u64>(), 0..64u64, (0..64u32).prop_map(|b| 1u64 << b)]
}

fn fd() -> impl Strategy<Value = i64> {
    prop_oneof![-101..1024i64, any::<i64>()]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,40}",
        any::<String>().prop_filter("cut inside a character", |s| s.len() <= 32),
    ]
}

fn call() -> impl Strategy<Value = Call> {
    let access = prop_oneof![Just(Access::Read), Just(Access::Write), Just(Access::Exec)];
    prop_oneof![
        (word(), word(), word(), word(), fd(), word()).prop_map(|(addr, len, prot, flags, fd, off)| Call::Mmap {
            addr,
            len,
            prot,
            flags,
            fd,
            off
        }),
        (word(), word()).prop_map(|(addr, len)| Call::Munmap { addr, len }),
        (word(), word(), word()).prop_map(|(addr, len, prot)| Call::Mprotect { addr, len, prot }),
        word().prop_map(|addr| Call::Brk { addr }),
        (word(), word(), word(), word(), word()).prop_map(|(a, b, c, d, e)| Call::Mremap {
            old_addr: a,
            old_len: b,
            new_len: c,
            flags: d,
            new_addr: e
        }),
        (word(), word(), word()).prop_map(|(addr, len, advice)| Call::Madvise { addr, len, advice }),
        (word(), word()).prop_map(|(addr, len)| Call::Mlock { addr, len }),
        (word(), word(), word()).prop_map(|(addr, len, flags)| Call::Mlock2 { addr, len, flags }),
        (word(), word()).prop_map(|(addr, len)| Call::Munlock { addr, len }),
        word().prop_map(|flags| Call::Mlockall { flags }),
        Just(Call::Munlockall),
        (word(), word(), word()).prop_map(|(addr, len, flags)| Call::Mseal { addr, len, flags }),
        (fd(), word(), word()).prop_map(|(key, size, flags)| Call::Shmget { key, size, flags }),
        (fd(), word(), word()).prop_map(|(id, addr, flags)| Call::Shmat { id, addr, flags }),
        word().prop_map(|addr| Call::Shmdt { addr }),
        word().prop_map(|flags| Call::MemfdSecret { flags }),
        (word(), word(), word(), fd()).prop_map(|(addr, len, prot, pkey)| Call::PkeyMprotect { addr, len, prot, pkey }),
        (word(), word()).prop_map(|(flags, init_val)| Call::PkeyAlloc { flags, init_val }),
        fd().prop_map(|pkey| Call::PkeyFree { pkey }),
        (word(), word(), word(), word(), word()).prop_map(|(start, size, prot, pgoff, flags)| {
            Call::RemapFilePages {
                start,
                size,
                prot,
                pgoff,
                flags,
            }
        }),
        (word(), word(), word()).prop_map(|(resource, cur, max)| Call::Setrlimit { resource, cur, max }),
        fd().prop_map(|id| Call::ShmctlRmid { id }),
        (word(), access).prop_map(|(addr, access)| Call::Fault { addr, access }),
        (any::<String>(), word(), proptest::option::of(word())).prop_map(|(path, flags, mode)| Call::Open {
            path,
            flags,
            mode
        }),
        (fd(), any::<String>(), word(), proptest::option::of(word())).prop_map(|(dirfd, path, flags, mode)| {
            Call::Openat {
                dirfd,
                path,
                flags,
                mode,
            }
        }),
        fd().prop_map(|fd| Call::Close { fd }),
        fd().prop_map(|fd| Call::Dup { fd }),
        (fd(), fd()).prop_map(|(oldfd, newfd)| Call::Dup2 { oldfd, newfd }),
        (fd(), fd(), word()).prop_map(|(oldfd, newfd, flags)| Call::Dup3 { oldfd, newfd, flags }),
        (name(), word()).prop_map(|(name, flags)| Call::MemfdCreate { name, flags }),
        (fd(), word()).prop_map(|(fd, length)| Call::Ftruncate { fd, length }),
    ]
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        word().prop_map(Outcome::Val),
        (-5..4200i32).prop_map(|e| Outcome::Err(Errno(e))),
        Just(Outcome::Signal(Signal::Segv)),
        Just(Outcome::Signal(Signal::Bus)),
    ]
}

fn fixture_lines() -> Vec<String> {
    [
        "basic.txt",
        "basic-y.txt",
        "basic-verbose.txt",
        "threads-f.txt",
        "inject.txt",
    ]
    .iter()
    .flat_map(|f| fixture(f).lines().map(String::from).collect::<Vec<_>>())
    .collect()
}

proptest! {
    #[test]
    fn canonical_text_reads_back(c in call(), o in outcome()) {
        let text = format_call(&c);
        let line = format!("{text} = {}", format_result(&c, &o));
        let t = match parse_line(&line) {
            Ok(Line::Call(t)) => t,
            other => return Err(TestCaseError::fail(format!("{line}: {other:?}"))),
        };
        prop_assert_eq!(&t.call, &visible(&c), "{}", line);
        prop_assert_eq!(format_call(&t.call), text);
        prop_assert_eq!(t.recorded, Some(Recorded::Outcome(o)), "{}", line);
    }

    #[test]
    fn random_text_never_panics(s in any::<String>(), t in "[a-z_0-9(),|<>\"\\\\ .=?/*x-]{0,60}") {
        let _ = parse_line(&s);
        let _ = parse_line(&t);
        for prefix in ["mmap(", "openat(AT_FDCWD, \"", "<... mmap resumed>", "[pid 1] dup3("] {
            let _ = parse_line(&format!("{prefix}{t}"));
            let mut p = Parser::new();
            let _ = p.feed(&format!("{prefix}{t} <unfinished ...>"));
            let _ = p.feed(&format!("{prefix}{t}strace: Process 5 attached"));
            let _ = p.feed(&t);
            let _ = p.feed(&s);
            let _ = p.finish();
        }
    }

    #[test]
    fn damaged_captures_never_panic(
        i in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0..3u8, any::<char>()), 1..6),
    ) {
        thread_local!(static LINES: Vec<String> = fixture_lines());
        let mut line: Vec<char> = LINES.with(|l| i.get(l).chars().collect());
        for (at, op, c) in edits {
            let n = line.len();
            match op {
                0 => line.insert(at.index(n + 1), c),
                1 if n > 0 => { line.remove(at.index(n)); }
                _ if n > 0 => line[at.index(n)] = c,
                _ => {}
            }
        }
        let line: String = line.into_iter().collect();
        let _ = parse_line(&line);
        let mut p = Parser::new();
        let _ = p.feed(&line);
        let _ = p.feed(&line);
        let _ = p.finish();
    }
}
