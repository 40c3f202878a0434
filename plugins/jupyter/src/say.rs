//! Lines for the user, written without dying or panicking when the reader has gone.
//!
//! `println!`/`eprintln!` panic when a write fails, and with SIGPIPE at its default a write to a
//! closed pipe ends the process. `dpe jupyter P 2>&1 | tee log` then Ctrl+C ends `tee` together
//! with dpe's own turn to speak ("stopping…"), so a start that must still stop its container
//! ignores SIGPIPE and writes through these: a line nobody can read any more is dropped.

use std::io::Write;

/// A status line on stderr.
pub fn err(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// A result line (the URL) on stdout.
pub fn out(line: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}
