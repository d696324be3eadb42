//! The host kernel as a test oracle.
