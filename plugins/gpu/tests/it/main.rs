//! The gpu plugin's tests: the parsers and the layered check on recorded real outputs
//! (`fixtures`), and the commands end to end through the built `dpe` (`cli`).

#![allow(clippy::disallowed_methods, reason = "tests run the programs they check directly")]

mod cli;
mod fixtures;
