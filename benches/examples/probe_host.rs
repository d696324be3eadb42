//! Host kernel timing of the same loops (exploration).
fn main() {
    unsafe {
        let n: usize = std::env::var("N").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
        let base = libc::mmap(
            std::ptr::null_mut(),
            n * 8192,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        ) as usize;
        for i in (1..n).step_by(2) {
            libc::mprotect((base + i * 8192) as *mut _, 8192, libc::PROT_READ | libc::PROT_WRITE);
        }
        let mid = base + (n / 2) * 8192;
        let iters = 200_000;
        let s = std::time::Instant::now();
        for _ in 0..iters {
            libc::mprotect(mid as *mut _, 4096, libc::PROT_READ | libc::PROT_WRITE);
            libc::mprotect(mid as *mut _, 4096, libc::PROT_READ);
        }
        println!(
            "host mprotect: {:.0} ns per call",
            s.elapsed().as_nanos() as f64 / iters as f64 / 2.0
        );
        let s = std::time::Instant::now();
        for _ in 0..iters {
            let a = libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            libc::munmap(a, 4096);
        }
        println!(
            "host mmap+munmap 4K: {:.0} ns per pair",
            s.elapsed().as_nanos() as f64 / iters as f64
        );
    }
}
