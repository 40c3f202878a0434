//! A progress line for long transfers (`docker save` into an archive, verifying and loading
//! one): bytes so far, the rate, and the share done when the total is known. It draws on stderr
//! only when stderr is a terminal, at most a few times a second, and clears itself at the end,
//! so logs and pipes never see it.

use std::io::{IsTerminal, Read, Write};
use std::time::{Duration, Instant};

/// One progress line.
pub struct Progress {
    label: String,
    total: Option<u64>,
    done: u64,
    started: Instant,
    last_draw: Option<Instant>,
    enabled: bool,
}

impl Progress {
    /// A progress line for `label`; drawn only when stderr is a terminal.
    pub fn new(label: &str, total: Option<u64>) -> Progress {
        Progress::with_output(label, total, std::io::stderr().is_terminal())
    }

    pub fn with_output(label: &str, total: Option<u64>, enabled: bool) -> Progress {
        Progress { label: label.to_string(), total, done: 0, started: Instant::now(), last_draw: None, enabled }
    }

    pub fn add(&mut self, bytes: u64) {
        self.done += bytes;
        if !self.enabled {
            return;
        }
        let due = self.last_draw.is_none_or(|at| at.elapsed() >= Duration::from_millis(200));
        if due {
            self.last_draw = Some(Instant::now());
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K{}", self.line());
            let _ = err.flush();
        }
    }

    pub fn done(&self) -> u64 {
        self.done
    }

    /// The text of the line: `saving image  412.3 MiB  85.2 MiB/s  37%`.
    pub fn line(&self) -> String {
        let seconds = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = self.done as f64 / seconds;
        let mut line = format!("{}  {}  {}/s", self.label, human_bytes(self.done), human_bytes(rate as u64));
        if let Some(total) = self.total.filter(|t| *t > 0) {
            line.push_str(&format!("  {}%", (self.done.saturating_mul(100) / total).min(100)));
        }
        line
    }

    /// Clears the line.
    pub fn finish(&mut self) {
        if self.enabled && self.last_draw.is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
        self.enabled = false;
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
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

/// `1.5 KiB`, `412.3 MiB`: binary units, one decimal.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_like_a_person_writes_them() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(412 * 1024 * 1024 + 300 * 1024), "412.3 MiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn line_shows_share_when_total_known() {
        let mut progress = Progress::with_output("loading", Some(200), false);
        progress.add(50);
        assert!(progress.line().starts_with("loading  50 B  "), "{}", progress.line());
        assert!(progress.line().ends_with("  25%"), "{}", progress.line());
    }
}
