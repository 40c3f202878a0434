//! The names of dpe's builtin commands, in a module of their own: the command line
//! ([`crate::cli`]) dispatches on them and the builtins themselves ([`crate::commands`]) check
//! them (`dpe help NAME`, `dpe plugin install` refusing a plugin of a builtin's name), so
//! neither side reaches into the other for them.

/// Builtin names, for dispatch, did-you-mean, completion and `dpe help`. A test in
/// [`crate::cli`] checks it lists every subcommand of the parser.
pub const BUILTINS: &[&str] = &["context", "docker", "trust", "projects", "help", "completions", "plugin"];
