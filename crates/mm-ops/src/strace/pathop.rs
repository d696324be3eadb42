//! Calls that change which path names a file — `unlink`, `unlinkat`,
//! `rename`, `renameat`, `renameat2` — read from complete trace lines.
//! They are not address-space calls, but `/proc/PID/maps` prints a mapped
//! file's current name (`/tmp/x (deleted)` after an unlink), so a replay
//! that wants the kernel's final maps applies them to its file table.

use super::lex::{self, Body};
use super::{ParseError, Recorded, result, value};
use crate::call::Outcome;

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
}
