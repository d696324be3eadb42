//! Runnable examples of embedding mm-sim, one per use the README names.
//! Each is a program that checks what it shows and exits non-zero when a
//! check fails; `cargo xtask ci` runs them all.
//!
//! | example | what it shows |
//! |---|---|
//! | `snapshot` | start a model from this process's `/proc/self/maps`, with its break and stack, and get the same maps back |
//! | `readers` | speculative readers on threads beside a writer, every validated answer checked |
//! | `custom_policy` | a barrier policy of your own (a full fence at write begin only), used by the model and the readers |
//! | `property` | a proptest property over the exported call strategies, model against reference |
//!
//! Run one with `cargo run -p mm-examples --example snapshot`.
