//! Calls that change which path names a file — `unlink`, `unlinkat`,
//! `rename`, `renameat`, `renameat2` — read from complete trace lines.
//! They are not address-space calls, but `/proc/PID/maps` prints a mapped
//! file's current name (`/tmp/x (deleted)` after an unlink), so a replay
//! that wants the kernel's final maps applies them to its file table.

use super::lex::{self, Body};
use super::{ParseError, Recorded, TraceLine, result, value};
use crate::call::{Call, Outcome};
use crate::uapi::oflags::{O_CREAT, O_TRUNC, O_WRONLY};

/// A path argument: the directory descriptor it is relative to (`None`
/// for `unlink`/`rename`, whose paths resolve like `AT_FDCWD`), that
/// descriptor's `-y` path if annotated, and the path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathArg {
    /// `dirfd` (`AT_FDCWD` is -100), if the call has one.
    pub dirfd: Option<i64>,
    /// The `-y` annotation of `dirfd`.
    pub dir_path: Option<String>,
    /// The path as the call passed it.
    pub path: String,
}

/// A path operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathOp {
    /// `unlink`, `unlinkat` (without `AT_REMOVEDIR`).
    Unlink(PathArg),
    /// `rename`, `renameat`, `renameat2`: `from` now names nothing and
    /// `to` names `from`'s file.
    Rename {
        /// The old name.
        from: PathArg,
        /// The new name.
        to: PathArg,
    },
}

/// A path operation read from one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathOpLine {
    /// The pid column, if any.
    pub pid: Option<u32>,
    /// The operation.
    pub op: PathOp,
    /// True when the line records success (`= 0`).
    pub ok: bool,
}

/// Reads `line` if it is a complete `unlink`, `unlinkat`, `rename`,
/// `renameat` or `renameat2` call; `Ok(None)` for any other line.
pub fn parse_path_op(line: &str) -> Result<Option<PathOpLine>, ParseError> {
    let (pid, s) = lex::split_prefix(line);
    let Body::Call { name, rest } = lex::body(s) else {
        return Ok(None);
    };
    if !matches!(name, "unlink" | "unlinkat" | "rename" | "renameat" | "renameat2") {
        return Ok(None);
    }
    if rest.trim_end().ends_with(lex::UNFINISHED) {
        return Ok(None);
    }
    let args = lex::split_args(rest)?;
    let Some(tail) = args.tail else {
        return Err(ParseError::new(format!("{name}: missing `)`")));
    };
    let a = &args.args;
    let need = |n: usize| {
        if a.len() < n {
            Err(ParseError::new(format!(
                "{name} takes {n} arguments, found {}",
                a.len()
            )))
        } else {
            Ok(())
        }
    };
    let plain = |i: usize| -> Result<PathArg, ParseError> {
        Ok(PathArg {
            dirfd: None,
            dir_path: None,
            path: value::string(a[i])?,
        })
    };
    let at = |i: usize| -> Result<PathArg, ParseError> {
        let (fd, dir_path) = value::fd(a[i], true)?;
        Ok(PathArg {
            dirfd: Some(fd),
            dir_path,
            path: value::string(a[i + 1])?,
        })
    };
    let op = match name {
        "unlink" => {
            need(1)?;
            PathOp::Unlink(plain(0)?)
        }
        "unlinkat" => {
            need(3)?;
            if a[2].contains("AT_REMOVEDIR") {
                return Ok(None);
            }
            PathOp::Unlink(at(0)?)
        }
        "rename" => {
            need(2)?;
            PathOp::Rename {
                from: plain(0)?,
                to: plain(1)?,
            }
        }
        _ => {
            need(4)?;
            if name == "renameat2" && a.get(4).is_some_and(|f| f.contains("RENAME_EXCHANGE")) {
                // Two files swap names: not modeled.
                return Ok(None);
            }
            PathOp::Rename {
                from: at(0)?,
                to: at(2)?,
            }
        }
    };
    let ok = matches!(result::tail(tail)?, Some(Recorded::Outcome(Outcome::Val(0))));
    Ok(Some(PathOpLine { pid, op, ok }))
}

/// `F_DUPFD` and `F_DUPFD_CLOEXEC` (`include/uapi/asm-generic/fcntl.h`).
const F_DUPFD: u64 = 0;
const F_DUPFD_CLOEXEC: u64 = 1030;

/// Reads a complete line of a call that creates a descriptor the way a
/// modeled call does, and returns that modeled call with the line's
/// result: `fcntl(fd, F_DUPFD[_CLOEXEC], min) = N` is a `dup(fd) = N`
/// (`f_dupfd`: the new descriptor shares the open file description), and
/// `creat(path, mode) = N` is `open(path, O_CREAT|O_WRONLY|O_TRUNC, mode)`
/// (`SYSCALL_DEFINE2(creat)`). `Ok(None)` for any other line.
pub fn equivalent_call(line: &str) -> Result<Option<TraceLine>, ParseError> {
    let (pid, s) = lex::split_prefix(line);
    let Body::Call { name, rest } = lex::body(s) else {
        return Ok(None);
    };
    if !matches!(name, "fcntl" | "fcntl64" | "creat") || rest.trim_end().ends_with(lex::UNFINISHED) {
        return Ok(None);
    }
    let args = lex::split_args(rest)?;
    let Some(tail) = args.tail else {
        return Err(ParseError::new(format!("{name}: missing `)`")));
    };
    let a = &args.args;
    let (call, fd_path) = if name == "creat" {
        if a.len() != 2 {
            return Err(ParseError::new(format!("creat takes 2 arguments, found {}", a.len())));
        }
        let mode = value::number(a[1])?;
        let call = Call::Open {
            path: value::string(a[0])?,
            flags: O_CREAT | O_WRONLY | O_TRUNC,
            mode: Some(mode),
        };
        (call, None)
    } else {
        let cmd = match a.get(1).map(|c| c.trim()) {
            Some("F_DUPFD") => F_DUPFD,
            Some("F_DUPFD_CLOEXEC") => F_DUPFD_CLOEXEC,
            Some(other) => match value::number(other) {
                Ok(n) => n,
                Err(_) => return Ok(None),
            },
            None => return Ok(None),
        };
        if cmd != F_DUPFD && cmd != F_DUPFD_CLOEXEC {
            return Ok(None);
        }
        let (fd, path) = value::fd(a[0], false)?;
        (Call::Dup { fd }, path)
    };
    let recorded = result::tail(tail)?;
    Ok(Some(TraceLine {
        pid,
        call,
        recorded,
        fd_path,
        newfd_path: None,
        dirfd_path: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_five_calls() {
        let l = parse_path_op("123 unlink(\"/tmp/a b\") = 0").unwrap().unwrap();
        assert_eq!(l.pid, Some(123));
        assert!(l.ok);
        assert_eq!(
            l.op,
            PathOp::Unlink(PathArg {
                dirfd: None,
                dir_path: None,
                path: "/tmp/a b".into()
            })
        );
        let l = parse_path_op("unlinkat(AT_FDCWD</home/me>, \"x\", 0) = -1 ENOENT (No such file or directory)")
            .unwrap()
            .unwrap();
        assert!(!l.ok);
        let PathOp::Unlink(p) = l.op else { panic!() };
        assert_eq!(
            (p.dirfd, p.dir_path.as_deref(), p.path.as_str()),
            (Some(-100), Some("/home/me"), "x")
        );
        assert_eq!(parse_path_op("unlinkat(3, \"d\", AT_REMOVEDIR) = 0").unwrap(), None);
        let l = parse_path_op("renameat2(AT_FDCWD, \"a\", 4</d>, \"b\", RENAME_NOREPLACE) = 0")
            .unwrap()
            .unwrap();
        let PathOp::Rename { from, to } = l.op else { panic!() };
        assert_eq!(
            (from.path.as_str(), to.dirfd, to.dir_path.as_deref()),
            ("a", Some(4), Some("/d"))
        );
        assert!(parse_path_op("rename(\"a\", \"b\") = 0").unwrap().is_some());
        assert_eq!(
            parse_path_op("mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x1000").unwrap(),
            None
        );
        assert_eq!(parse_path_op("unlink(\"/x\" <unfinished ...>").unwrap(), None);
        assert!(parse_path_op("unlink(0x1234) = 0").is_err());
    }

    #[test]
    fn fcntl_dupfd_and_creat_are_dup_and_open() {
        let l = equivalent_call("7 fcntl(3</tmp/x>, F_DUPFD_CLOEXEC, 10) = 10</tmp/x>")
            .unwrap()
            .unwrap();
        assert_eq!(l.pid, Some(7));
        assert_eq!(l.call, Call::Dup { fd: 3 });
        assert_eq!(l.fd_path.as_deref(), Some("/tmp/x"));
        assert_eq!(l.recorded.and_then(|r| r.outcome()), Some(Outcome::Val(10)));
        let l = equivalent_call("fcntl(5, 0x406, 3) = 4").unwrap().unwrap();
        assert_eq!(l.call, Call::Dup { fd: 5 });
        assert_eq!(
            equivalent_call("fcntl(5, F_GETFL) = 0x8002 (flags O_RDWR|O_LARGEFILE)").unwrap(),
            None
        );
        assert_eq!(equivalent_call("fcntl(5, F_SETFD, FD_CLOEXEC) = 0").unwrap(), None);
        let l = equivalent_call("creat(\"/tmp/o.tar\", 0666) = 3").unwrap().unwrap();
        assert_eq!(
            l.call,
            Call::Open {
                path: "/tmp/o.tar".into(),
                flags: O_CREAT | O_WRONLY | O_TRUNC,
                mode: Some(0o666)
            }
        );
    }
}
