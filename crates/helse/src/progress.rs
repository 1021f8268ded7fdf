//! Progress lines for long-running commands, rewritten in place on stderr.

use std::io::Write as _;
use std::time::Duration;

/// `[#####     ] text`, with the bar filled to `fraction` (0–1).
pub fn bar(fraction: f64, text: &str) {
    let width = 30usize;
    let filled = ((fraction.clamp(0.0, 1.0) * width as f64) as usize).min(width);
    eprint!("\r[{}{}] {text} ", "#".repeat(filled), " ".repeat(width - filled));
    let _ = std::io::stderr().flush();
}

/// Ends the progress line.
pub fn done() {
    eprintln!();
}

pub fn seconds(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}
