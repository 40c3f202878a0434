//! `dpe trust`: allow this workspace's hooks (and its projects' hooks) to run.

use crate::context::{self, Globals};
use crate::error::{Error, Result};
use crate::hooks;
use crate::trust::TrustStore;
use clap::Args;

/// Records the sha256 of every hook file of the workspace; a hook that changes later needs
/// trusting again. Read the hooks before trusting them: they run on your machine.
#[derive(Args, Debug)]
pub struct TrustArgs {
    /// Only list the hooks and whether each is trusted
    #[arg(long)]
    pub list: bool,
}

pub fn run(globals: &Globals, args: TrustArgs) -> Result<i32> {
    let resolved = context::resolve(globals, None, None)?;
    let Some(ws) = resolved.workspace else {
        return Err(Error::new("not in a dpe workspace (no `dpe.toml` here or above)")
            .with_help("run `dpe trust` inside the workspace whose hooks you trust"));
    };
    let files = hooks::workspace_hook_files(&ws.root, &ws.project_names());
    if args.list {
        let store = TrustStore::load(&resolved.context.state_dir);
        for file in &files {
            let state = if store.is_trusted(file) { "trusted" } else { "not trusted" };
            println!("{state:12} {}", file.display());
        }
        return Ok(0);
    }
    if files.is_empty() {
        println!("no hooks in `{}`", ws.root.display());
        return Ok(0);
    }
    for file in &files {
        crate::fsutil::check_not_writable_by_others("hook", file)?;
    }
    TrustStore::trust(&resolved.context.state_dir, &files)?;
    for file in &files {
        println!("trusted {}", file.display());
    }
    Ok(0)
}
