//! Progress bars on a terminal, nothing when stderr is piped or redirected.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar counting `unit`s up to `len`, drawn only on a terminal.
pub fn bar(len: u64, message: &str, bytes: bool) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
    }
    let template = if bytes {
        "{msg:>12} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})"
    } else {
        "{msg:>12} [{bar:30}] {human_pos}/{human_len} ({per_sec}, {eta})"
    };
    let style =
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> ");
    let bar = ProgressBar::new(len).with_style(style).with_message(message.to_owned());
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar
}

/// A step of a command whose wall time (and the peak memory so far) goes to stderr when it ends,
/// if `LEADSCORE_TIMINGS` is set: the profile `BENCHMARKS.md` quotes.
pub struct Step {
    name: &'static str,
    started: std::time::Instant,
    on: bool,
}

pub fn step(name: &'static str) -> Step {
    Step { name, started: std::time::Instant::now(), on: std::env::var_os("LEADSCORE_TIMINGS").is_some() }
}

impl Drop for Step {
    fn drop(&mut self) {
        if !self.on {
            return;
        }
        let peak = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l["VmHWM:".len()..].trim().to_owned()))
            .unwrap_or_default();
        eprintln!("timing: {:<12} {:>7.2} s   peak RSS {peak}", self.name, self.started.elapsed().as_secs_f64());
    }
}
