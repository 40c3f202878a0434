//! `dpe projects`: the workspace's projects.

use crate::context::{self, Globals};
use crate::error::{Error, Result};
use clap::Args;

#[derive(Args, Debug)]
pub struct ProjectsArgs {}

pub fn run(globals: &Globals, _args: ProjectsArgs) -> Result<i32> {
    let resolved = context::resolve(globals, None, None)?;
    let Some(ws) = resolved.workspace else {
        return Err(Error::new("not in a dpe workspace (no `dpe.toml` here or above)")
            .with_help("create a `dpe.toml` at the root of your projects folder, or pass `--workspace DIR`"));
    };
    let names = ws.project_names();
    if globals.json {
        let list: Vec<serde_json::Value> =
            names.iter().map(|n| serde_json::json!({"name": n, "dir": ws.projects_dir().join(n)})).collect();
        println!("{}", serde_json::to_string_pretty(&list).expect("serialises"));
    } else {
        for name in names {
            println!("{name}");
        }
    }
    Ok(0)
}
