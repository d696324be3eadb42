//! `mmsim`: the mm-sim command line.

fn main() {
    println!("mmsim");
}
