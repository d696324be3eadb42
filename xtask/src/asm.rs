//! `cargo xtask asm`: what each registered barrier policy compiles to on
//! this machine, disassembled from `mm-core/examples/barrier_asm.rs` (which
//! prints where each step's function lies relative to an anchor symbol).

use std::process::Command;

use crate::{cargo, root, step, target_dir};

/// One step of one policy: `(policy, step, instructions up to ret)`.
pub type Listing = Vec<(String, String, String)>;

/// Builds and runs the example, disassembles each step. `None` (with a
/// message on stderr) when a tool is missing.
pub fn listing() -> Option<Listing> {
    let mut b = cargo();
    b.args(["build", "--release", "-p", "mm-core", "--example", "barrier_asm"]);
    if !step("build the barrier_asm example", b) {
        return None;
    }
    let bin = target_dir().join("release/examples/barrier_asm");
    let run = Command::new(&bin).output().ok()?;
    let offsets = String::from_utf8_lossy(&run.stdout).into_owned();
    let nm = Command::new("nm").arg(&bin).output();
    let dump = Command::new("objdump")
        .args(["-d", "--no-show-raw-insn"])
        .arg(&bin)
        .output();
    let (Ok(nm), Ok(dump)) = (nm, dump) else {
        eprintln!("xtask: nm or objdump not found (binutils)");
        return None;
    };
    let nm = String::from_utf8_lossy(&nm.stdout);
    let anchor = nm.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let a = f.next()?;
        let _kind = f.next()?;
        (f.next()? == "mm_barrier_asm_anchor").then(|| u64::from_str_radix(a, 16).ok())?
    })?;
    let dump = String::from_utf8_lossy(&dump.stdout);
    let insns: Vec<(u64, String)> = dump
        .lines()
        .filter_map(|l| {
            let (a, rest) = l.trim_start().split_once(':')?;
            let a = u64::from_str_radix(a, 16).ok()?;
            let i = rest.split_whitespace().collect::<Vec<_>>().join(" ");
            (!i.is_empty()).then_some((a, i))
        })
        .collect();
    let mut out = vec![];
    for l in offsets.lines() {
        let f: Vec<&str> = l.split('\t').collect();
        let [policy, st, off] = f.as_slice() else { continue };
        let Ok(off) = off.parse::<i64>() else { continue };
        let addr = anchor.wrapping_add_signed(off);
        let start = insns.iter().position(|(x, _)| *x == addr);
        let code = match start {
            Some(s) => {
                let mut v = vec![];
                for (_, i) in &insns[s..] {
                    v.push(i.clone());
                    if i.starts_with("ret") {
                        break;
                    }
                }
                v.join("; ")
            }
            None => "(not found)".into(),
        };
        out.push((policy.to_string(), st.to_string(), code));
    }
    Some(out)
}

/// Prints the listing.
pub fn asm() -> bool {
    let Some(l) = listing() else { return false };
    println!(
        "{:<12} {:<14} {} instructions (up to ret)",
        "POLICY",
        "STEP",
        std::env::consts::ARCH
    );
    for (p, s, code) in &l {
        println!("{p:<12} {s:<14} {code}");
    }
    let _ = root();
    !l.is_empty()
}
