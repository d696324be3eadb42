//! Descriptor numbers against `RLIMIT_NOFILE` (`alloc_fd`, `ksys_dup3` in
//! `fs/file.c`): a new descriptor is the lowest free one below the limit,
//! else `EMFILE`; `dup2` onto the limit or above is `EBADF`. The expected
//! values are those rules, worked by hand for a limit of 8.

use mm_core::MmConfig;
use mm_ops::Task;
use mm_ops::uapi::{Errno, mfd, oflags::*};

fn task(limit: u64) -> Task {
    Task::new(MmConfig {
        rlimit_nofile: limit,
        ..MmConfig::default()
    })
}

#[test]
fn new_descriptors_stop_at_the_limit() {
    let mut t = task(8);
    // 0-2 are open: 3..=7 are the five left.
    let fds: Vec<i64> = (0..5).map(|_| t.open("/tmp/x", O_RDONLY, None).unwrap()).collect();
    assert_eq!(fds, [3, 4, 5, 6, 7]);
    assert_eq!(t.open("/tmp/x", O_RDONLY, None), Err(Errno::EMFILE));
    assert_eq!(t.dup(3, None, None), Err(Errno::EMFILE));
    assert_eq!(t.memfd_create("m", mfd::CLOEXEC, None), Err(Errno::EMFILE));
    // EINVAL of the flags comes first.
    assert_eq!(t.open("/tmp/x", O_CREAT | O_DIRECTORY, None), Err(Errno::EINVAL));
    // A closed descriptor is the next one given.
    t.close(5).unwrap();
    assert_eq!(t.dup(3, None, None), Ok(5));
}

#[test]
fn dup2_onto_the_limit_is_ebadf() {
    let mut t = task(8);
    let fd = t.open("/tmp/x", O_RDONLY, None).unwrap();
    assert_eq!(t.dup(fd, Some(8), None), Err(Errno::EBADF));
    assert_eq!(t.dup(fd, Some(7), None), Ok(7));
    assert_eq!(t.dup(7, Some(7), None), Ok(7));
    // An inherited descriptor is open: the next new one skips it.
    t.inherit_fd(4, "pipe:[9]");
    assert_eq!(t.open("/tmp/x", O_RDONLY, None), Ok(5));
}
