//! A progress line for long transfers (`docker save` into an archive, verifying and loading
//! one): bytes so far, the rate, and the share done when the total is known. It draws through
//! the plugins' shared [`StatusLine`] only when stderr is a terminal, at most a few times a
//! second, and clears itself at the end, so logs and pipes never see it.

use dpe_plugin::progress::StatusLine;
use dpe_plugin::sdk::units;
use std::io::Read;
use std::time::{Duration, Instant};

/// One progress line.
pub struct Progress {
    label: String,
    total: Option<u64>,
    done: u64,
    started: Instant,
    last_draw: Option<Instant>,
    status: StatusLine<std::io::Stderr>,
    enabled: bool,
}

impl Progress {
    /// A progress line for `label`; drawn only when stderr is a terminal.
    pub fn new(label: &str, total: Option<u64>) -> Progress {
        Progress::with_output(label, total, StatusLine::stderr())
    }

    /// A progress line drawn on `status` (clearing it is the status line's job, also when dropped).
    pub fn with_output(label: &str, total: Option<u64>, status: StatusLine<std::io::Stderr>) -> Progress {
        let enabled = status.is_terminal();
        Progress { label: label.to_string(), total, done: 0, started: Instant::now(), last_draw: None, status, enabled }
    }

    pub fn add(&mut self, bytes: u64) {
        self.done += bytes;
        if !self.enabled {
            return;
        }
        let due = self.last_draw.is_none_or(|at| at.elapsed() >= Duration::from_millis(200));
        if due {
            self.last_draw = Some(Instant::now());
            let line = self.line();
            self.status.draw(&line);
        }
    }

    pub fn done(&self) -> u64 {
        self.done
    }

    /// The text of the line: `saving image  412.3 MiB  85.2 MiB/s  37%`.
    pub fn line(&self) -> String {
        let seconds = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = self.done as f64 / seconds;
        let mut line = format!("{}  {}  {}/s", self.label, units::binary(self.done), units::binary(rate as u64));
        if let Some(total) = self.total.filter(|t| *t > 0) {
            line.push_str(&format!("  {}%", (self.done.saturating_mul(100) / total).min(100)));
        }
        line
    }

    /// Clears the line.
    pub fn finish(&mut self) {
        self.status.clear();
        self.enabled = false;
    }
}

/// A reader that counts what passes through it into a [`Progress`].
pub struct ProgressReader<'a, R> {
    pub inner: R,
    pub progress: &'a mut Progress,
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.add(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shows_share_when_total_known() {
        let mut progress = Progress::with_output("loading", Some(200), StatusLine::new(std::io::stderr(), false, None));
        progress.add(50);
        assert!(progress.line().starts_with("loading  50 B  "), "{}", progress.line());
        assert!(progress.line().ends_with("  25%"), "{}", progress.line());
    }
}
