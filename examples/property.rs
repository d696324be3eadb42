//! A proptest property with the exported strategies (feature `proptest`
//! of mm-ops): random call sequences run on the model and on the
//! reference model (`mm_ops::testing`), which must give the same results
//! and the same layout.
//!
//! 1. Take the strategies: `arb_call()` (or `arb_addr`, `arb_len`,
//!    `arb_prot`, `arb_mmap_flags` to build your own calls).
//! 2. Run each sequence in a `World` (model + reference) and compare.
//! 3. A failure is shrunk to a minimal sequence and printed in strace
//!    syntax.
//!
//! Set `PROPTEST_CASES` for more cases (default here: 256).

use std::process::ExitCode;

use mm_ops::strace::format_call;
use mm_ops::testing::machine::World;
use mm_ops::testing::strategy::arb_call;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn main() -> ExitCode {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(256);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let calls = prop::collection::vec(arb_call(), 1..40);
    let steps = std::cell::Cell::new(0usize);
    let result = runner.run(&calls, |calls| {
        let mut w = World::new();
        for c in &calls {
            let (model, reference) = w.step(c);
            prop_assert_eq!(model, reference, "{}", format_call(c));
        }
        w.check().map_err(TestCaseError::fail)?;
        steps.set(steps.get() + calls.len());
        Ok(())
    });
    match result {
        Ok(()) => {
            println!(
                "{cases} sequences, {} calls: the model and the reference agree",
                steps.get()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("property failed: {e}");
            ExitCode::FAILURE
        }
    }
}
