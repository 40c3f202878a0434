//! The core's integration tests: one test binary (like ripgrep's, just's and cargo's), each
//! module testing one area by running the real `dpe` binary in a hermetic sandbox.

#![allow(clippy::disallowed_methods, reason = "tests run the programs they check directly")]

mod completion;
mod config;
mod context;
mod dispatch;
mod hooks;
mod plugins;
mod tidy;
mod trust;
