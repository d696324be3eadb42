//! What checkers expect, stated independently of the model's code: the
//! expected outcome of a user page fault on a VMA, from the x86 rules
//! (`arch/x86/mm/fault.c` `access_error`, and the exec check after the
//! fault). For the stress oracle and the loom scenarios, whose VMAs have
//! no special mappings, guard markers or file ends.

use mm_core::VmFlags;
use mm_ops::call::{Access, Signal};

/// The outcome of an `access` to a page of a VMA with `flags` (`None`: no
/// VMA there).
pub fn expected_fault(flags: Option<VmFlags>, access: Access) -> Result<(), Signal> {
    let Some(f) = flags else {
        return Err(Signal::Segv);
    };
    let denied = match access {
        Access::Write => !f.contains(VmFlags::WRITE),
        Access::Read | Access::Exec => !f.is_accessible(),
    };
    if denied || (access == Access::Exec && !f.contains(VmFlags::EXEC)) {
        Err(Signal::Segv)
    } else {
        Ok(())
    }
}
