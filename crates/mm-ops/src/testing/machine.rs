//! The model against the reference, as a `proptest-state-machine` test
//! ([`RefMachine`], [`MmTest`]) and as a plain [`World`] for hand-driven
//! scenarios.

use std::collections::BTreeMap;

use mm_core::{MmConfig, VmaView};
use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};

use super::reference::RFile;
use super::refmm::{RefMm, START_BRK};
use super::strategy::arb_call;
use crate::call::{Call, Outcome};
use crate::procmaps::{MapsLine, parse_maps};
use crate::task::Task;
use crate::task_mmu::render_maps;
use crate::uapi::{PAGE_SIZE, oflags::*};

/// The model and the reference, started alike: four descriptors on two
/// objects and an empty address space with the break at
/// [`START_BRK`].
pub struct World {
    /// The model.
    pub model: Task,
    /// The reference.
    pub reference: RefMm,
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

/// The reference's descriptors (see [`super::strategy`]).
pub fn reference_files() -> RefMm {
    let file = |desc, path: &str, readable, writable, inode, thp| RFile {
        desc,
        path: path.to_string(),
        readable,
        writable,
        inode,
        thp,
    };
    let mut fds = BTreeMap::new();
    fds.insert(3, file(1, "/ref/a", true, true, 1, true));
    fds.insert(4, file(2, "/ref/a", true, false, 1, true));
    fds.insert(5, file(1, "/ref/a", true, true, 1, true));
    fds.insert(6, file(3, "/memfd:m (deleted)", true, true, 2, false));
    let sizes = BTreeMap::from([(1, 6 * PAGE_SIZE), (2, 5 * PAGE_SIZE)]);
    RefMm::new(fds, sizes)
}

impl World {
    /// A fresh world.
    pub fn new() -> World {
        let mut model: Task = Task::new(MmConfig::default());
        {
            let mut w = model.mm().write();
            w.st().start_brk = START_BRK;
            w.st().brk = START_BRK;
        }
        let ok = model.open("/ref/a", O_RDWR, None) == Ok(3)
            && model.ftruncate(3, 6 * PAGE_SIZE).is_ok()
            && model.open("/ref/a", O_RDONLY, None) == Ok(4)
            && model.dup(3, None, None) == Ok(5)
            && model.memfd_create("m", 0, None) == Ok(6)
            && model.ftruncate(6, 5 * PAGE_SIZE).is_ok();
        assert!(ok, "setting up the model's descriptors");
        World {
            model,
            reference: reference_files(),
        }
    }

    /// Applies `call` to both: `(model, reference)`.
    pub fn step(&mut self, call: &Call) -> (Outcome, Outcome) {
        (self.model.apply(call, None), self.reference.apply(call))
    }

    /// Compares layout, flags and counters, and checks the model's own
    /// invariants.
    pub fn check(&self) -> Result<(), String> {
        crate::invariants::check(self.model.mm())?;
        let r = self.model.mm().read();
        let files = r.files();
        let maps = render_maps(&r, &files, false);
        drop(files);
        let keys: Vec<String> = parse_maps(&maps)
            .map_err(|e| e.to_string())?
            .iter()
            .map(MapsLine::key)
            .collect();
        let want = self.reference.maps_keys();
        if keys != want {
            return Err(format!(
                "layout differs:\nmodel:\n{}\nreference:\n{}",
                keys.join("\n"),
                want.join("\n")
            ));
        }
        let vmas = r.snapshot();
        for (v, rv) in vmas.iter().zip(self.reference.layout.vmas()) {
            if v.flags != rv.seg.flags {
                return Err(format!(
                    "flags of {:#x}: model {:?} reference {:?}",
                    v.start, v.flags, rv.seg.flags
                ));
            }
        }
        // Nothing left unmerged that the kernel would have merged (order
        // and overlaps: `invariants::check` above).
        for w in vmas.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            let mergeable = a.end == b.start
                && a.flags == b.flags
                && !a.flags.intersects(mm_core::VmFlags::SPECIAL)
                && a.file == b.file
                && b.pgoff == a.pgoff + a.pages()
                && (a.anon_vma.is_none() || b.anon_vma.is_none() || a.anon_vma == b.anon_vma);
            if mergeable && !self.reference.layout.unmerged.contains(&(b.start >> 12)) {
                return Err(format!("mergeable neighbours left at {:#x}", b.start));
            }
        }
        // Counters against those derived from the reference layout.
        let st = r.state();
        let c = self.reference.layout.counters();
        let got = (
            st.map_count as u64,
            st.total_vm,
            st.data_vm,
            st.exec_vm,
            st.stack_vm,
            st.locked_vm,
        );
        let want = (c.map_count, c.total_vm, c.data_vm, c.exec_vm, c.stack_vm, c.locked_vm);
        if got != want {
            return Err(format!(
                "counters (map_count, total, data, exec, stack, locked): model {got:?} reference {want:?}"
            ));
        }
        if st.map_count as usize != vmas.len() {
            return Err("map_count differs from the number of VMAs".into());
        }
        Ok(())
    }
}

/// The reference state machine: the reference process plus the last outcome.
pub struct RefMachine;

/// The reference state.
#[derive(Clone, Debug)]
pub struct RefState {
    /// The reference process.
    pub mm: RefMm,
    /// The outcome of the last call.
    pub last: Option<Outcome>,
}

impl ReferenceStateMachine for RefMachine {
    type State = RefState;
    type Transition = Call;

    fn init_state() -> BoxedStrategy<RefState> {
        Just(RefState {
            mm: reference_files(),
            last: None,
        })
        .boxed()
    }

    fn transitions(_: &RefState) -> BoxedStrategy<Call> {
        arb_call().boxed()
    }

    fn apply(mut state: RefState, call: &Call) -> RefState {
        state.last = Some(state.mm.apply(call));
        state
    }
}

/// The system under test: the model in a [`World`].
pub struct MmTest;

impl StateMachineTest for MmTest {
    type SystemUnderTest = World;
    type Reference = RefMachine;

    fn init_test(_: &RefState) -> World {
        World::new()
    }

    fn apply(mut w: World, state: &RefState, call: Call) -> World {
        let got = w.model.apply(&call, None);
        assert_eq!(Some(got), state.last, "{}", crate::strace::format_call(&call));
        w.reference = state.mm.clone();
        w
    }

    fn check_invariants(w: &World, _: &RefState) {
        if let Err(e) = w.check() {
            panic!("{e}");
        }
    }
}
