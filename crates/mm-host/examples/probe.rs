//! Ad-hoc exploration: runs calls given as strace lines on stdin against the
//! host and the model side by side, printing both results and any maps diff.
use std::io::BufRead;

use mm_host::Twin;
use mm_ops::strace;

fn main() -> std::io::Result<()> {
    let mut twin = Twin::spawn()?;
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let parsed = match strace::parse_line(&line) {
            Ok(strace::Line::Call(t)) => t,
            Ok(_) => continue,
            Err(e) => {
                eprintln!("parse error: {e}: {line}");
                continue;
            }
        };
        let (h, m) = twin.step(&parsed.call)?;
        let mark = if h == m { "  " } else { "!!" };
        println!(
            "{mark} {} = host {} / model {}",
            strace::format_call(&parsed.call),
            h.render(true),
            m.render(true)
        );
    }
    match twin.diff_maps()? {
        None => println!(
            "maps identical ({} VMAs):\n{}",
            twin.model_vma_count(),
            twin.model_maps()
        ),
        Some(d) => println!("MAPS DIFFER:\n{d}"),
    }
    Ok(())
}
