//! `dpe compose logs [-f] [SERVICE…]`: a SERVICE is a project (all its services), a service
//! key (`project_a-db`) or a short service name when only one project has it (`db`).

use super::current;
use crate::model::Fragment;
use clap::Args;
use dpe_plugin::sdk::{Error, Result};
use dpe_plugin::Context;

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep following the output.
    #[arg(short, long)]
    pub follow: bool,
    /// Show only this many lines from the end of each log.
    #[arg(long, value_name = "LINES")]
    pub tail: Option<String>,
    /// Projects or services (default: all).
    pub services: Vec<String>,
}

pub fn run(context: &Context, args: &LogsArgs) -> Result<()> {
    let (stack, fragments) = current(context)?;
    if !stack.file().exists() {
        return Err(Error::new("nothing was started with `dpe compose up` in this workspace")
            .with_help("start projects with `dpe compose up`"));
    }
    let mut keys = Vec::new();
    for name in &args.services {
        keys.extend(service_keys_for(&fragments, name)?);
    }
    let mut compose_args = vec!["logs".to_string()];
    if args.follow {
        compose_args.push("--follow".into());
    }
    if let Some(tail) = &args.tail {
        compose_args.extend(["--tail".to_string(), tail.clone()]);
    }
    compose_args.extend(keys);
    let refs: Vec<&str> = compose_args.iter().map(String::as_str).collect();
    stack.run_compose(context, &refs)
}

/// The service keys a name stands for.
pub fn service_keys_for(fragments: &[Fragment], name: &str) -> Result<Vec<String>> {
    if let Some(fragment) = fragments.iter().find(|f| f.project == name) {
        return Ok(fragment.services.iter().map(|s| s.key.clone()).collect());
    }
    let services = fragments.iter().flat_map(|f| &f.services);
    let matches: Vec<String> =
        services.filter(|s| s.key == name || s.short.as_deref() == Some(name)).map(|s| s.key.clone()).collect();
    if matches.len() == 1 {
        return Ok(matches);
    }
    let all: Vec<String> = fragments.iter().flat_map(|f| &f.services).map(|s| format!("`{}`", s.key)).collect();
    let help = if all.is_empty() {
        "no project is up; start some with `dpe compose up`".to_string()
    } else {
        format!("the services are {}", all.join(", "))
    };
    Err(Error::new(format!("no project or service `{name}` is up in this workspace")).with_help(help))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ServiceDef;

    fn fragment(project: &str, shorts: &[&str]) -> Fragment {
        let mut services = vec![ServiceDef { key: project.into(), ..ServiceDef::default() }];
        for short in shorts {
            services.push(ServiceDef {
                key: format!("{project}-{short}"),
                short: Some(short.to_string()),
                ..ServiceDef::default()
            });
        }
        Fragment { project: project.into(), services, volumes: vec![], url: None, ready_url: None, ready_timeout: 60 }
    }

    #[test]
    fn names_map_to_service_keys() {
        let fragments = [fragment("a", &["db", "web"]), fragment("c", &["cache"])];
        assert_eq!(service_keys_for(&fragments, "a").unwrap(), ["a", "a-db", "a-web"]);
        assert_eq!(service_keys_for(&fragments, "db").unwrap(), ["a-db"]);
        assert_eq!(service_keys_for(&fragments, "c-cache").unwrap(), ["c-cache"]);
        let err = service_keys_for(&fragments, "nope").unwrap_err();
        assert_eq!(
            err.to_string(),
            "error: no project or service `nope` is up in this workspace\nhelp: the services are `a`, `a-db`, `a-web`, `c`, `c-cache`"
        );
    }
}
