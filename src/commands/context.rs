//! `dpe context [--json]`: the context a plugin would receive, for humans and for plugins.

use crate::context::{self, Globals};
use crate::error::Result;
use clap::Args;

#[derive(Args, Debug)]
pub struct ContextArgs {
    /// Resolve for this plugin name (as `dpe NAME` would)
    #[arg(long, value_name = "NAME")]
    pub plugin: Option<String>,
}

pub fn run(globals: &Globals, args: ContextArgs) -> Result<i32> {
    let resolved = context::resolve(globals, args.plugin.as_deref(), None)?;
    let ctx = &resolved.context;
    if globals.json {
        println!("{}", serde_json::to_string_pretty(ctx).expect("the context serialises"));
        return Ok(0);
    }
    let none = || "(none)".to_string();
    println!("workspace:  {}", ctx.workspace.as_ref().map(|w| w.display().to_string()).unwrap_or_else(none));
    match &ctx.project {
        Some(p) => println!("project:    {} ({})", p.name, p.dir.display()),
        None => println!("project:    (none)"),
    }
    let files: Vec<String> = ctx.config_files.iter().map(|f| f.display().to_string()).collect();
    println!(
        "config:     {}",
        if files.is_empty() { "(built-in defaults only)".to_string() } else { files.join(", ") }
    );
    println!("state dir:  {}", ctx.state_dir.display());
    println!("plugin dir: {}", resolved.paths.plugin_dir.display());
    println!("engine:     {}", ctx.config.engine.program);
    println!();
    println!("# resolved configuration");
    print!("{}", toml::to_string(&ctx.config).unwrap_or_default());
    Ok(0)
}
