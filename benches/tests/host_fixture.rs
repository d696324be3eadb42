//! The host fixture (alone in its process: other test threads would map
//! and unmap their stacks while it counts VMAs).
use mm_benches::*;
use mm_core::Upstream;

fn fixture_lines(maps: &str) -> Vec<String> {
    maps.lines()
        .filter(|l| l.starts_with("7e"))
        .map(str::to_string)
        .collect()
}

#[test]
fn host_fixture_matches_the_model_and_goes_away() {
    let files = BenchFiles::create(&std::env::temp_dir()).unwrap();
    let before = host_vma_count();
    {
        let n = (before + 40).max(64);
        let h = HostFixture::new(n, &files);
        assert_eq!(host_vma_count(), total_vmas(n));
        let host = fixture_lines(&std::fs::read_to_string("/proc/self/maps").unwrap());
        // The model with the same number of fixture VMAs shows the same lines.
        let m: ModelFixture<Upstream> = ModelFixture::new(h.spots.fill + 2, &files);
        assert_eq!(m.spots.fill, h.spots.fill);
        let r = m.mm().read();
        let model = fixture_lines(&mm_ops::kernel::task_mmu::render_maps(&r, &r.files(), false));
        assert_eq!(model, host);
        let toggle = format!("{:x}-", h.spots.toggle);
        let line = host.iter().find(|l| l.starts_with(&toggle)).expect("toggle VMA");
        assert!(line.contains(" r--s "), "{line}");
    }
    assert_eq!(host_vma_count(), before);
}
