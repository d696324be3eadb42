//! Speculative lockless VMA lookups validated by mm_lock_seq (see the speculation issue).
