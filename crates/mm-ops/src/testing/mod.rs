//! Testing support (feature `proptest`): a deliberately simple reference
//! model, proptest strategies for calls, and a `proptest-state-machine`
//! harness that runs the model against the reference.
//!
//! * [`reference`](mod@reference): the page-granular layout and the merge rules over it;
//! * [`refmm`]: the reference process and its system calls;
//! * [`strategy`]: strategies for [`Call`](crate::call::Call)s;
//! * [`machine`]: [`RefMachine`](machine::RefMachine) (the reference state
//!   machine) and [`MmTest`](machine::MmTest) (the system under test).
//!
//! Drive your own scenario with the exported strategies:
//!
//! ```
//! use mm_ops::testing::strategy::arb_call;
//! use mm_ops::testing::machine::{RefMachine, World};
//! use proptest::prelude::*;
//! use proptest::test_runner::TestRunner;
//!
//! let mut runner = TestRunner::default();
//! let calls = prop::collection::vec(arb_call(), 1..20);
//! runner
//!     .run(&calls, |calls| {
//!         let mut w = World::new();
//!         for c in &calls {
//!             let (model, reference) = w.step(c);
//!             prop_assert_eq!(model, reference, "{}", mm_ops::strace::format_call(c));
//!         }
//!         w.check().map_err(TestCaseError::fail)?;
//!         Ok(())
//!     })
//!     .unwrap();
//! # let _ = RefMachine;
//! ```

pub mod machine;
pub mod reference;
pub mod refmm;
pub mod strategy;
