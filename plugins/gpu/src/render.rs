//! How findings and the image table read on a terminal: one ✓/!/✗ line per finding with its
//! `help:` line, then a one-line verdict.

use crate::check::{Finding, Report, Status};
use crate::compat::{self, STACK_VARIANTS};
use serde::Serialize;

/// Where the image table comes from, printed under it and included in `--json`.
pub const TABLE_SOURCE: &str = "NVIDIA CUDA minor version compatibility (docs.nvidia.com/deploy/cuda-compatibility) and Jupyter Docker Stacks \"CUDA enabled variants\" (docs/using/selecting.md), read 2026-11-23";

fn mark(status: Status, color: bool) -> String {
    let (symbol, code) = match status {
        Status::Ok => ("✓", "32"),
        Status::Warn => ("!", "33"),
        Status::Fail => ("✗", "31"),
        Status::Skip => ("-", "2"),
    };
    if color {
        format!("\x1b[{code}m{symbol}\x1b[0m")
    } else {
        symbol.to_string()
    }
}

/// One finding: its mark and message, then its fix as a `help:` line (a passing check needs
/// none). Messages quote what tools printed and what workspaces name, so control characters
/// are escaped, as in the core's errors.
pub fn finding(finding: &Finding, color: bool) -> String {
    let mut text = format!("{} {}\n", mark(finding.status, color), dpe_plugin::terminal_safe(&finding.message));
    if let Some(fix) = finding.fix.as_deref().filter(|_| finding.status != Status::Ok) {
        text.push_str(&format!("  help: {}\n", dpe_plugin::terminal_safe(fix)));
    }
    text
}

/// The `dpe gpu check` text.
pub fn report(report: &Report, color: bool) -> String {
    let mut text = String::new();
    for one in &report.findings {
        text.push_str(&finding(one, color));
    }
    text.push('\n');
    let verdict = if report.driver.is_none() {
        "containers cannot use a GPU on this host".to_string()
    } else if report.usable {
        let how = match report.mechanism {
            Some(crate::check::Mechanism::Cdi) => "through CDI (`--device nvidia.com/gpu=…`)",
            _ => "with `--gpus`",
        };
        if report.probed {
            format!("containers can use the GPU {how}")
        } else {
            format!("containers should be able to use the GPU {how}; `dpe gpu check --probe` tries it")
        }
    } else {
        "containers cannot use the GPU yet: fix the ✗ lines above, then run `dpe gpu check --probe`".to_string()
    };
    text.push_str(&verdict);
    text.push('\n');
    text
}

/// Arguments joined for a shell, quoted where needed (`--gpus '"device=0,1"'`).
pub fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            if !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || "-_=./,:".contains(c)) {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One row of `dpe gpu images`.
#[derive(Debug, Clone, Serialize)]
pub struct ImageRow {
    pub image: String,
    pub cuda: &'static str,
    pub min_driver: Option<&'static str>,
    pub fits: bool,
    /// Why it does not fit (or what it means that it does).
    pub note: String,
    /// Whether new tags are still built.
    pub maintained: bool,
}

pub fn image_rows(report: &Report) -> Vec<ImageRow> {
    STACK_VARIANTS
        .iter()
        .map(|variant| {
            let min_driver = variant.min_driver();
            let (fits, note) = match (variant.cuda_major, &report.driver) {
                (None, _) => (true, "runs anywhere, uses no GPU".to_string()),
                (Some(_), None) => (false, "needs an NVIDIA driver; this host has none".to_string()),
                (Some(_), Some(driver)) => {
                    let too_old = min_driver.is_some_and(|min| !compat::driver_at_least(&driver.version, min));
                    let old_gpu = variant.min_capability.and_then(|min| {
                        report.gpus.iter().find(|g| g.compute_capability.is_some_and(|cap| cap < min)).map(|g| (g, min))
                    });
                    if too_old {
                        (
                            false,
                            format!("needs driver ≥ {}; this host has {}", min_driver.unwrap_or("?"), driver.version),
                        )
                    } else if let Some((gpu, min)) = old_gpu {
                        (
                            false,
                            format!(
                                "needs compute capability ≥ {}.{}; GPU {} ({}) is older",
                                min.0, min.1, gpu.index, gpu.name
                            ),
                        )
                    } else {
                        (true, format!("driver {} ≥ {}", driver.version, min_driver.unwrap_or("?")))
                    }
                }
            };
            let note = if variant.maintained { note } else { format!("{note}; no longer built, older tags only") };
            ImageRow {
                image: variant.reference(),
                cuda: variant.cuda_label,
                min_driver,
                fits,
                note,
                maintained: variant.maintained,
            }
        })
        .collect()
}

/// The `dpe gpu images` text.
pub fn images(report: &Report, rows: &[ImageRow]) -> String {
    let mut text = String::new();
    match &report.driver {
        Some(driver) => {
            let cuda = driver.cuda.as_deref().map(|c| format!(" (CUDA ≤ {c})")).unwrap_or_default();
            text.push_str(&format!("NVIDIA driver {}{cuda}\n\n", driver.version));
        }
        None => {
            let why =
                report.findings.first().map(|f| f.message.as_str()).unwrap_or("no NVIDIA GPU driver on this host");
            text.push_str(&format!("{why}: only the CPU images run here\n\n"));
        }
    }
    let width = rows.iter().map(|r| r.image.len()).max().unwrap_or(0);
    for row in rows {
        let mark = if row.fits { "✓" } else { "✗" };
        text.push_str(&format!("{mark} {:width$}  {}: {}\n", row.image, row.cuda, row.note));
    }
    text.push_str(&format!("\nAny dated tag works the same way (e.g. `cuda12-2026-11-16`).\nsource: {TABLE_SOURCE}\n"));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(message: &str, fix: Option<&str>) -> Finding {
        Finding {
            layer: "driver",
            check: "nvidia-smi",
            status: Status::Fail,
            message: message.into(),
            fix: fix.map(str::to_string),
        }
    }

    #[test]
    fn a_finding_reads_as_its_mark_its_message_and_its_help_line() {
        assert_eq!(finding(&fail("no driver", Some("install it")), false), "✗ no driver\n  help: install it\n");
        assert_eq!(finding(&fail("no driver", None), false), "✗ no driver\n");
        assert_eq!(finding(&fail("no driver", None), true), "\x1b[31m✗\x1b[0m no driver\n");
        let passed = Finding { status: Status::Ok, ..fail("driver 570", Some("not shown")) };
        assert_eq!(finding(&passed, false), "✓ driver 570\n");
    }

    #[test]
    fn control_characters_from_tools_and_workspaces_are_escaped() {
        let shown = finding(&fail("image `a\u{1b}]0;owned\u{7}` is not here", Some("pull \u{1b}[2J")), false);
        assert_eq!(shown, "✗ image `a\\u{1b}]0;owned\\u{7}` is not here\n  help: pull \\u{1b}[2J\n");
    }
}
