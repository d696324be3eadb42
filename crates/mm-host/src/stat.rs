//! The layout fields of `/proc/PID/stat` (see `proc_pid_stat(5)`).

use std::io;

/// Address-space bounds of the helper, from `/proc/self/stat` and `brk(0)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProcStat {
    /// Start of the text segment (field 26, `startcode`).
    pub start_code: u64,
    /// End of the text segment (field 27, `endcode`).
    pub end_code: u64,
    /// Start of initialized and uninitialized data (field 45, `start_data`).
    pub start_data: u64,
    /// End of initialized and uninitialized data (field 46, `end_data`).
    pub end_data: u64,
    /// Start of the heap: the initial program break (field 47, `start_brk`).
    pub start_brk: u64,
    /// The current program break, as `brk(0)` returned it.
    pub brk: u64,
    /// Address of the bottom (start) of the stack (field 28, `startstack`).
    pub start_stack: u64,
}

impl ProcStat {
    /// Parses a `/proc/PID/stat` line; `brk` is taken as given.
    pub fn parse(line: &str, brk: u64) -> io::Result<ProcStat> {
        // `comm` (field 2) is parenthesised and may hold spaces or ')'.
        let close = line
            .rfind(')')
            .ok_or_else(|| bad(format!("no ')' in /proc/PID/stat: {line:?}")))?;
        let fields: Vec<&str> = line[close + 1..].split_whitespace().collect();
        // fields[0] is field 3 (state).
        let field = |n: usize| -> io::Result<u64> {
            let s = fields
                .get(n - 3)
                .ok_or_else(|| bad(format!("/proc/PID/stat has no field {n}")))?;
            s.parse()
                .map_err(|e| bad(format!("/proc/PID/stat field {n} {s:?}: {e}")))
        };
        Ok(ProcStat {
            start_code: field(26)?,
            end_code: field(27)?,
            start_stack: field(28)?,
            start_data: field(45)?,
            end_data: field(46)?,
            start_brk: field(47)?,
            brk,
        })
    }
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_after_comm() {
        let line = "6046 (a b) c) R 6005 6002 4793 0 -1 0 60 0 1 0 0 0 0 0 20 0 1 0 \
                    106678 184320 0 18446744073709551615 4194304 4197520 \
                    140737488350768 0 0 0 0 0 1088 0 0 0 17 1 0 0 0 0 0 4201632 \
                    4201632 4210688 140737488351206 140737488351215 140737488351215 \
                    140737488351215 0\n";
        let st = ProcStat::parse(line, 0x404000).unwrap();
        assert_eq!(st.start_code, 0x400000);
        assert_eq!(st.end_code, 4197520);
        assert_eq!(st.start_stack, 140737488350768);
        assert_eq!(st.start_data, 4201632);
        assert_eq!(st.end_data, 4201632);
        assert_eq!(st.start_brk, 0x404000);
        assert_eq!(st.brk, 0x404000);
    }

    #[test]
    fn rejects_short_lines() {
        assert!(ProcStat::parse("1 (x) R 0", 0).is_err());
        assert!(ProcStat::parse("garbage", 0).is_err());
    }
}
