//! The gpu plugin's tests: the parsers and the layered check on recorded real outputs
//! (`fixtures`), and the commands end to end through the built `dpe` (`cli`).

mod cli;
mod fixtures;
