//! The command line of `dpe jupyter`, written once: the `///` comments are the `--help` text,
//! and the SDK derives the manifest dpe reads for help and completion from it (plus the one
//! thing clap cannot say, below). Behaviour lives in `commands/`.

use clap::{Args, CommandFactory, Parser, Subcommand};
use dpe_plugin::sdk::{self, Plugin, Result};
use dpe_plugin::{Context, Manifest};

/// Run a project's isolated Jupyter: stable port, kept packages, your file owner, real URL.
#[derive(Debug, Parser)]
#[command(name = "dpe jupyter", version, args_conflicts_with_subcommands = true, disable_help_subcommand = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub start: StartArgs,
}

/// `dpe jupyter PROJECT`: build if needed, start, wait until it answers, print the URL.
#[derive(Debug, Clone, Default, Args)]
pub struct StartArgs {
    /// The project (default: the one dpe selected, e.g. from the current folder).
    pub project: Option<String>,
    /// Run in the background and return once the server answers.
    #[arg(short, long)]
    pub detach: bool,
    /// Publish on every network address, not only 127.0.0.1 (anyone who can reach this machine
    /// and has the token can run code as you).
    #[arg(long)]
    pub lan: bool,
    /// Open the URL in a browser once the server answers.
    #[arg(long)]
    pub open: bool,
    /// Rebuild the image even when its inputs did not change (no layer cache).
    #[arg(long)]
    pub rebuild: bool,
    /// Sync the environment exactly: also remove packages the lock does not name (those
    /// installed by hand with pip). By default they are kept.
    #[arg(long)]
    pub exact: bool,
    #[command(flatten)]
    pub lock: LockArgs,
}

/// Which lock the image installs; shared by the commands that build it.
#[derive(Debug, Clone, Default, Args)]
pub struct LockArgs {
    /// Install this complete `pip freeze` (`dpe export PROJECT --to lock FILE`) after the
    /// configured packages, with `--no-deps`; remembered for the project's later builds.
    #[arg(long, value_name = "FILE")]
    pub from_lock: Option<std::path::PathBuf>,
    /// Forget the lock given with `--from-lock`: build from the configuration alone.
    #[arg(long, conflicts_with = "from_lock")]
    pub no_lock: bool,
}

impl Plugin for Cli {
    const DPE: &'static str = "^0.1";

    fn run(self, context: &Context) -> Result<()> {
        crate::commands::run(context, self).and_then(sdk::status)
    }

    /// The derived manifest, with `pip` taking a project: its project is the first of its free
    /// arguments (`dpe jupyter pip PROJECT install X`), which clap cannot tell from pip's own.
    fn manifest() -> Manifest {
        let mut manifest = sdk::manifest_from_clap(&Self::command(), Self::DPE);
        for sub in manifest.subcommands.iter_mut().filter(|sub| sub.name == "pip") {
            sub.takes_project = true;
        }
        manifest
    }
}

/// The names of the subcommands, as the user types them (for did-you-mean).
pub fn subcommands() -> Vec<String> {
    Cli::command().get_subcommands().filter(|sub| !sub.is_hide_set()).map(|sub| sub.get_name().to_string()).collect()
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the run specification as JSON (builds the image and reserves ports as needed).
    Spec {
        project: Option<String>,
        /// Print JSON (the only format; accepted for clarity).
        #[arg(long)]
        json: bool,
        /// Rebuild the image even when its inputs did not change (no layer cache).
        #[arg(long)]
        rebuild: bool,
        /// Publish on every network address, not only 127.0.0.1.
        #[arg(long)]
        lan: bool,
        #[command(flatten)]
        lock: LockArgs,
        /// Make this loaded image (by ID) the project's environment, for this project alone,
        /// instead of building one: what `dpe import` does with the image an archive brought.
        #[arg(long, value_name = "IMAGE_ID", conflicts_with = "rebuild")]
        adopt: Option<String>,
    },
    /// Stop the project's server; its files and installed packages are kept.
    Stop { project: Option<String> },
    /// Show whether the project's server runs, on which port and URL.
    Status {
        project: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the server's log.
    Logs {
        project: Option<String>,
        /// Keep following the log.
        #[arg(short, long)]
        follow: bool,
        /// Only the last N lines.
        #[arg(long, value_name = "N")]
        tail: Option<u32>,
    },
    /// Print the URL (with token) of the running server.
    Url { project: Option<String> },
    /// Open a shell in the running environment, as your user, in the project folder.
    Shell { project: Option<String> },
    /// Run a command in the running environment: `dpe jupyter exec PROJECT -- CMD…`.
    Exec {
        project: Option<String>,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Resolve the project's Python packages into its lock, then sync the environment.
    ///
    /// The lock is `pylock.toml` (PEP 751) in the project folder, from requirements.txt and
    /// `python_packages`, or `uv.lock` for a project with a pyproject.toml. Starts resolve a
    /// missing lock or one older than its inputs by themselves; this resolves again now (newer
    /// versions where the inputs allow them). Commit the lock with the project.
    Lock { project: Option<String> },
    /// Run pip in the environment; packages land in the project's volume and persist:
    /// `dpe jupyter pip PROJECT install X`.
    Pip {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        args: Vec<String>,
    },
    /// Remove the project's container, environment volume and state; never its folder.
    ///
    /// Removes the container (a running server is stopped first), the volume holding the
    /// packages installed with pip, and the token, env file, port reservation and remembered lock
    /// in dpe's state folder. It lists them first, asks on a terminal and needs `--yes`
    /// elsewhere. The project folder is never touched; a project whose folder is already gone is
    /// found by its name in the workspace.
    Rm {
        /// The project (its folder may already be gone).
        project: Option<String>,
        /// Remove without asking.
        #[arg(short, long)]
        yes: bool,
    },
    /// List what dpe made that nothing needs any more, with sizes (`--yes` removes it).
    ///
    /// Your images that no project's current inputs build and no container uses, untagged
    /// builds whose tag a rebuild moved on, and the stopped containers and volumes of
    /// projects whose folder or workspace is gone. Only what carries your dpe labels is weighed:
    /// never a running project's image, an image dpe did not make, another user's, or a volume of
    /// a project that still exists. Without `--yes` it is a dry run.
    Gc {
        /// Remove what is listed, and say how much it freed.
        #[arg(short, long)]
        yes: bool,
    },
    /// List your Jupyter environments of every workspace, running or stopped, with what they use.
    ///
    /// Each environment whose token lies in your state folder: its status (running, stopped,
    /// stopped-idle when `idle_timeout` stopped it, exited N, created), port, uptime, idle time
    /// (from the server's own last activity), the GPU memory its processes hold (where
    /// `nvidia-smi` runs), and whether its image is stale (its project's current
    /// configuration plans another one; `?` when that cannot be worked out). The URL is in
    /// `--json` and `dpe jupyter url`.
    List {
        /// Print JSON: every field, `null` when unknown or not asked for.
        #[arg(long)]
        json: bool,
        /// Also show CPU and memory, from one `docker stats` snapshot (about 2 s).
        #[arg(long)]
        stats: bool,
        /// Also show disk use: the image, and the environment volume and container layer from
        /// `docker system df -v` (slow on a large engine).
        #[arg(long)]
        size: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `dpe-jupyter --dpe-manifest` is [`Cli`]: clap parses each subcommand and option it lists
    /// as listed, and it lists them all, so completion and `--help` cannot disagree. (The
    /// hand-written manifest offered `spec --exact`, which clap refused, and not `--exact`.)
    #[test]
    fn the_manifest_is_the_command_line() {
        sdk::assert_manifest::<Cli>(&[
            "jupyter [PROJECT] --detach --lan --open --rebuild --exact --from-lock VALUE --no-lock",
            "jupyter spec [PROJECT] --json --rebuild --lan --from-lock VALUE --no-lock --adopt VALUE",
            "jupyter stop [PROJECT]",
            "jupyter status [PROJECT] --json",
            "jupyter logs [PROJECT] --follow --tail VALUE",
            "jupyter url [PROJECT]",
            "jupyter shell [PROJECT]",
            "jupyter exec [PROJECT]",
            "jupyter lock [PROJECT]",
            "jupyter pip [PROJECT]",
            "jupyter rm [PROJECT] --yes",
            "jupyter gc --yes",
            "jupyter list --json --stats --size",
        ]);
        let manifest = sdk::manifest::<Cli>();
        assert_eq!((manifest.name.as_str(), manifest.version.as_str()), ("jupyter", env!("CARGO_PKG_VERSION")));
        assert_eq!(
            manifest.description,
            "Run a project's isolated Jupyter: stable port, kept packages, your file owner, real URL"
        );
    }

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("dpe jupyter").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn project_or_subcommand() {
        let cli = parse(&["project_a", "--detach", "--lan"]);
        assert!(cli.command.is_none());
        assert_eq!(cli.start.project.as_deref(), Some("project_a"));
        assert!(cli.start.detach && cli.start.lan);
        assert!(matches!(parse(&["stop", "project_a"]).command, Some(Command::Stop { project: Some(_) })));
        match parse(&["exec", "project_a", "--", "ls", "-l"]).command {
            Some(Command::Exec { project, command }) => {
                assert_eq!(project.as_deref(), Some("project_a"));
                assert_eq!(command, ["ls", "-l"]);
            }
            other => panic!("{other:?}"),
        }
        match parse(&["pip", "project_a", "install", "-U", "six"]).command {
            Some(Command::Pip { args }) => assert_eq!(args, ["project_a", "install", "-U", "six"]),
            other => panic!("{other:?}"),
        }
        assert!(parse(&[]).start.project.is_none());
        let cli = parse(&["project_a", "--rebuild", "--from-lock", "env.lock"]);
        assert_eq!(cli.start.lock.from_lock.as_deref(), Some(std::path::Path::new("env.lock")));
        match parse(&["spec", "project_a", "--json", "--no-lock"]).command {
            Some(Command::Spec { lock, .. }) => assert!(lock.no_lock && lock.from_lock.is_none()),
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["dpe jupyter", "p", "--from-lock", "x", "--no-lock"]).is_err());
        assert!(matches!(
            parse(&["rm", "project_a", "--yes"]).command,
            Some(Command::Rm { project: Some(_), yes: true })
        ));
        assert!(matches!(parse(&["gc"]).command, Some(Command::Gc { yes: false })));
        assert!(matches!(parse(&["gc", "-y"]).command, Some(Command::Gc { yes: true })));
        assert!(matches!(
            parse(&["list", "--size", "--stats"]).command,
            Some(Command::List { json: false, stats: true, size: true })
        ));
    }
}
