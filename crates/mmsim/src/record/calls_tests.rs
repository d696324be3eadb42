//! Unit tests of `record/calls.rs`: strace lines to calls.

use super::*;
use mm_ops::strace::{Line, Recorded, parse_line};

fn parse(l: &str) -> mm_ops::strace::TraceLine {
    match parse_line(l) {
        Ok(Line::Call(t)) => t,
        other => panic!("{l}: {other:?}"),
    }
}

fn entry(nr: u64, args: [u64; 6]) -> Entry {
    Entry { nr, args }
}

#[test]
fn mmap_with_annotated_fd_round_trips() {
    let call = decode(&entry(nr::MMAP, [0, 8192, 1, 2, 3, 0x2000]), None).unwrap();
    let anns = vec![(4, annotation(b"/usr/lib/x86_64-linux-gnu/libc.so.6"))];
    let text = call_text(&call, &anns);
    assert_eq!(
        text,
        "mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, 3</usr/lib/x86_64-linux-gnu/libc.so.6>, 0x2000)"
    );
    let l = line(42, &text, &call, &Outcome::Val(0x7fff_f7fb_7000), None);
    let t = parse(&l);
    assert_eq!(t.pid, Some(42));
    assert_eq!(t.call, call);
    assert_eq!(t.fd_path.as_deref(), Some("/usr/lib/x86_64-linux-gnu/libc.so.6"));
    assert_eq!(t.recorded, Some(Recorded::Outcome(Outcome::Val(0x7fff_f7fb_7000))));
}

#[test]
fn awkward_paths_round_trip() {
    for path in [
        &b"/tmp/a<b>c"[..],
        b"/tmp/with space, comma) and (paren",
        b"/tmp/quote\"back\\slash",
        b"/tmp/tab\tnew\nline",
        b"/tmp/caf\xc3\xa9",
        b"/tmp/<7>1",
    ] {
        let call = decode(&entry(nr::OPENAT, [AT_FDCWD as u64, 0, 0o101, 0o644, 0, 0]), Some(path)).unwrap();
        let anns = vec![(0, annotation(b"/home/x>y"))];
        let text = call_text(&call, &anns);
        let ann = annotation(path);
        let l = line(7, &text, &call, &Outcome::Val(3), Some(&ann));
        let t = parse(&l);
        assert_eq!(t.call, call, "{l}");
        assert_eq!(t.dirfd_path.as_deref(), Some("/home/x>y"), "{l}");
        let want = String::from_utf8_lossy(path).into_owned();
        assert_eq!(t.recorded, Some(Recorded::FdWithPath(3, want)), "{l}");
    }
}

#[test]
fn deleted_files_and_dup2_newfd() {
    let call = decode(&entry(nr::DUP2, [3, 7, 0, 0, 0, 0]), None).unwrap();
    let anns = vec![(0, annotation(b"/memfd:abc (deleted)")), (1, annotation(b"/dev/null"))];
    let text = call_text(&call, &anns);
    assert_eq!(text, "dup2(3</memfd:abc>(deleted), 7</dev/null>)");
    let ann = annotation(b"/memfd:abc (deleted)");
    let l = line(1, &text, &call, &Outcome::Val(7), Some(&ann));
    assert_eq!(
        l,
        "1 dup2(3</memfd:abc>(deleted), 7</dev/null>) = 7</memfd:abc>(deleted)"
    );
    let t = parse(&l);
    assert_eq!(t.call, call);
    assert_eq!(t.fd_path.as_deref(), Some("/memfd:abc (deleted)"));
    assert_eq!(t.newfd_path.as_deref(), Some("/dev/null"));
}

#[test]
fn errors_and_narrowed_arguments() {
    // Upper halves of int arguments are not what the kernel reads.
    let call = decode(&entry(nr::CLOSE, [0xdead_0000_0005, 0, 0, 0, 0, 0]), None).unwrap();
    assert_eq!(call, Call::Close { fd: 5 });
    let o = outcome(-9i64 as u64);
    assert_eq!(o, Outcome::Err(Errno(9)));
    let l = line(3, &call_text(&call, &[]), &call, &o, Some("<ignored>"));
    assert_eq!(l, "3 close(5) = -1 EBADF (Bad file descriptor)");
    assert_eq!(parse(&l).call, call);
    // open without O_CREAT has no mode; mremap without FIXED no new address.
    let open = decode(&entry(nr::OPEN, [0, 0, 0o2000000, 0o777, 0, 0]), Some(b"/x")).unwrap();
    assert_eq!(
        parse(&line(1, &call_text(&open, &[]), &open, &Outcome::Val(3), None)).call,
        open
    );
    let mr = decode(&entry(nr::MREMAP, [0x1000, 4096, 8192, 1, 0x5000, 0]), None).unwrap();
    assert_eq!(
        parse(&line(1, &call_text(&mr, &[]), &mr, &Outcome::Val(0x9000), None)).call,
        mr
    );
    let memfd = decode(
        &entry(nr::MEMFD_CREATE, [0, 1, 0, 0, 0, 0]),
        Some(b"a name that is longer than thirty-two bytes"),
    )
    .unwrap();
    let ann = annotation(b"/memfd:a name that is longer than thirty-two bytes (deleted)");
    let l = line(1, &call_text(&memfd, &[]), &memfd, &Outcome::Val(4), Some(&ann));
    assert!(parse_line(&l).is_ok(), "{l}");
}

#[test]
fn fd_args_skip_negative_descriptors() {
    let anon = decode(&entry(nr::MMAP, [0, 4096, 3, 0x22, u64::MAX, 0]), None).unwrap();
    assert!(fd_args(&anon).is_empty());
    let at = decode(&entry(nr::OPENAT, [AT_FDCWD as u64, 0, 0, 0, 0, 0]), Some(b"x")).unwrap();
    assert_eq!(fd_args(&at), vec![(0, FdArg::Cwd)]);
    assert!(string_arg(nr::EXIT_GROUP).is_none());
}
