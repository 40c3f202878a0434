//! A status line for long work (an image build, a transfer), shared by the plugins that show
//! one. On a terminal it is one line redrawn in place and fitted to the terminal's width; on a
//! pipe or a file nothing is redrawn and only the lines meant to stay are written, plain (no
//! carriage return, no escape sequence), so a CI log reads cleanly. Text from elsewhere (a
//! Dockerfile line, a build's output) goes through [`crate::terminal_safe`] first, so it can
//! never move the cursor or retitle the terminal. Behind the `progress` feature, so a plugin
//! that shows no progress builds none of it (`cargo test -p dpe-plugin --features progress`).

use std::io::{IsTerminal, Write};
use std::time::Duration;

/// One status line on a writer (stderr in use, a buffer in tests).
pub struct StatusLine<W: Write> {
    out: W,
    terminal: bool,
    /// The width to fit lines to; `None` asks the terminal at each draw, so a resized
    /// window never wraps the line (a wrapped line cannot be redrawn in place).
    width: Option<usize>,
    /// Whether a status is on the screen (to be erased before anything else is written).
    shown: bool,
}

impl StatusLine<std::io::Stderr> {
    /// The status line on stderr: redrawn in place when stderr is a terminal that understands
    /// it (not `TERM=dumb`), plain lines otherwise.
    pub fn stderr() -> StatusLine<std::io::Stderr> {
        let terminal = std::io::stderr().is_terminal() && std::env::var_os("TERM").is_none_or(|term| term != "dumb");
        StatusLine::new(std::io::stderr(), terminal, None)
    }
}

impl<W: Write> StatusLine<W> {
    /// A status line on `out`; `terminal` chooses in-place redraws, `width` fixes the width
    /// (`None`: the terminal's, else 80).
    pub fn new(out: W, terminal: bool, width: Option<usize>) -> StatusLine<W> {
        StatusLine { out, terminal, width, shown: false }
    }

    /// Whether the line is redrawn in place.
    pub fn is_terminal(&self) -> bool {
        self.terminal
    }

    /// The width lines are fitted to: one column short of the terminal's, since a line
    /// filling it moves some terminals' cursor on to the next.
    pub fn width(&self) -> usize {
        let columns = self
            .width
            .or_else(|| terminal_size::terminal_size_of(std::io::stderr()).map(|(width, _)| usize::from(width.0)))
            .unwrap_or(80);
        columns.saturating_sub(1)
    }

    /// Replaces the status with `text` on a terminal; does nothing elsewhere, where a
    /// changing status would be a page of lines.
    pub fn draw(&mut self, text: &str) {
        if !self.terminal {
            return;
        }
        let line = fit(&one_line(text), self.width());
        let _ = write!(self.out, "\r\x1b[2K{line}");
        let _ = self.out.flush();
        self.shown = true;
    }

    /// Writes a line that stays, erasing the status first (the next draw brings it back below).
    pub fn line(&mut self, text: &str) {
        self.clear();
        let _ = writeln!(self.out, "{}", one_line(text));
        let _ = self.out.flush();
    }

    /// Erases the status, if one is shown.
    pub fn clear(&mut self) {
        if self.shown {
            let _ = write!(self.out, "\r\x1b[2K");
            let _ = self.out.flush();
            self.shown = false;
        }
    }
}

impl<W: Write> Drop for StatusLine<W> {
    fn drop(&mut self) {
        self.clear();
    }
}

/// `text` on one line and safe to show: escape sequences (a program's colours) removed, line
/// breaks and tabs made spaces, any other control character escaped.
fn one_line(text: &str) -> String {
    crate::terminal_safe(&without_escapes(text).replace(['\n', '\r', '\t'], " "))
}

/// `text` without its escape sequences: `docker build` colours a step's stderr, which a log
/// file or a pipe should get as words (`E: Unable to locate package`), not codes.
pub fn without_escapes(text: &str) -> String {
    anstream::adapter::strip_str(text).to_string()
}

/// `text` cut to `width` characters, the cut marked with `…`.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.truncate(cut.trim_end().len());
    if width > 0 {
        cut.push('…');
    }
    cut
}

/// An elapsed time as people say it: `4s`, `1m05s`, `2h03m`.
pub fn elapsed(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h{:02}m", seconds / 3600, seconds % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(terminal: bool, width: usize, run: impl FnOnce(&mut StatusLine<&mut Vec<u8>>)) -> String {
        let mut buffer = Vec::new();
        let mut status = StatusLine::new(&mut buffer, terminal, Some(width));
        run(&mut status);
        drop(status);
        String::from_utf8(buffer).unwrap()
    }

    #[test]
    fn a_terminal_sees_one_line_redrawn_in_place_and_erased_at_the_end() {
        let out = written(true, 20, |status| {
            status.draw("step 1/2 FROM debian");
            status.draw("step 2/2");
            status.line("built in 3s");
            status.draw("again");
        });
        assert_eq!(out, "\r\x1b[2Kstep 1/2 FROM debi…\r\x1b[2Kstep 2/2\r\x1b[2Kbuilt in 3s\n\r\x1b[2Kagain\r\x1b[2K");
    }

    #[test]
    fn a_pipe_sees_only_plain_lines_that_stay() {
        let out = written(false, 20, |status| {
            status.draw("step 1/2 FROM debian");
            status.line("step 2/2 RUN \u{1b}[2J\u{1b}]0;title\u{7}echo\r\nhi");
            status.clear();
        });
        assert_eq!(out, "step 2/2 RUN echo  hi\n", "escape sequences go, line breaks become spaces");
        assert!(!out.contains('\r') && !out.contains('\u{1b}'), "{out:?}");
    }

    #[test]
    fn colours_go_and_stray_control_characters_are_escaped() {
        assert_eq!(without_escapes("\u{1b}[91mE\u{1b}[0m\u{1b}[91m: \u{1b}[0mUnable"), "E: Unable");
        let out = written(false, 80, |status| status.line("a\u{7}b\u{9b}c"));
        assert_eq!(out, "ab\\u{9b}c\n", "the bell goes, a C1 control is escaped");
    }

    #[test]
    fn long_text_is_cut_with_a_mark() {
        assert_eq!(fit("RUN apt-get update", 100), "RUN apt-get update");
        assert_eq!(fit("RUN apt-get update", 18), "RUN apt-get update");
        assert_eq!(fit("RUN apt-get update", 12), "RUN apt-get…");
        assert_eq!(fit("RUN apt-get update", 5), "RUN…", "no space before the mark");
        assert_eq!(fit("ééééé", 3), "éé…", "characters, not bytes");
        assert_eq!(fit("abc", 0), "");
    }

    #[test]
    fn elapsed_time_reads_like_a_person_says_it() {
        assert_eq!(elapsed(Duration::from_millis(400)), "0s");
        assert_eq!(elapsed(Duration::from_secs(59)), "59s");
        assert_eq!(elapsed(Duration::from_secs(65)), "1m05s");
        assert_eq!(elapsed(Duration::from_secs(3599)), "59m59s");
        assert_eq!(elapsed(Duration::from_secs(7380)), "2h03m");
    }
}
