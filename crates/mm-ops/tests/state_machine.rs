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
