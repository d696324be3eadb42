//! The model against the reference model, on random call sequences
//! (proptest-state-machine): results, layout, flags, counters and the
//! invariants checked after every call.
#![cfg(feature = "proptest")]

use mm_ops::testing::machine::MmTest;
use proptest::prelude::*;
use proptest_state_machine::prop_state_machine;

prop_state_machine! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]
    #[test]
    fn model_matches_reference(sequential 1..60 => MmTest);
}

/// Reports the configuration for the CI summary (the property itself is
/// the test above).
#[test]
fn report_for_ci() {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256u32);
    let line =
        format!("state machine: model vs reference model, {cases} cases of 1..60 calls (see model_matches_reference)");
    println!("{line}");
    if let Some(dir) = std::env::var_os("MM_CI_SUMMARY_DIR") {
        let _ = std::fs::write(
            std::path::Path::new(&dir).join("state_machine.txt"),
            format!("{line}\n"),
        );
    }
    assert!(cases > 0);
}
