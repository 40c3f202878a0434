//! The SDK's entry point and derived manifest, on a small plugin defined here.

use super::*;
use crate::manifest::{OptionSpec, Subcommand};
use clap::CommandFactory;

/// Greets projects.
#[derive(Debug, clap::Parser)]
#[command(name = "dpe hello", version, disable_help_subcommand = true)]
struct Hello {
    /// How often.
    #[arg(long)]
    times: Option<u32>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Shout at a project.
    Loud {
        /// The project.
        project: Option<String>,
        /// Add a `!`.
        #[arg(long)]
        exclaim: bool,
        #[arg(long, hide = true)]
        secret: bool,
    },
    /// Greet several projects.
    Many { projects: Vec<String> },
    #[command(hide = true)]
    Internal,
}

impl Plugin for Hello {
    const DPE: &'static str = "^0.1";
    fn run(self, _context: &Context) -> Result<()> {
        Err(Error::new("ran").with_help("as asked").with_code(3))
    }
}

fn args(words: &[&str]) -> Vec<String> {
    words.iter().map(|word| word.to_string()).collect()
}

/// What parsing `words` stopped with: (code, stdout, stderr).
fn stopped(words: &[&str]) -> (i32, String, String) {
    let stop = parse::<Hello>(&args(words)).unwrap_err();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = stop.write(&mut out, &mut err);
    (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}

#[test]
fn the_manifest_is_the_clap_definition() {
    let option = OptionSpec::new;
    let expected = Manifest {
        name: "hello".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        dpe: "^0.1".into(),
        description: "Greets projects".into(),
        options: vec![option("--times", "How often", true)],
        subcommands: vec![
            Subcommand {
                name: "loud".into(),
                description: "Shout at a project".into(),
                takes_project: true,
                options: vec![option("--exclaim", "Add a `!`", false)],
            },
            Subcommand {
                name: "many".into(),
                description: "Greet several projects".into(),
                takes_project: false,
                options: vec![],
            },
        ],
        ..Manifest::default_for("hello")
    };
    assert_eq!(manifest::<Hello>(), expected);
    assert_manifest::<Hello>(&["hello --times VALUE", "hello loud [PROJECT] --exclaim", "hello many"]);
}

#[test]
fn a_manifest_that_drifted_from_the_parser_is_named() {
    let mut drifted = manifest::<Hello>();
    drifted.options[0].takes_value = false;
    drifted.subcommands[0].options.push(OptionSpec::new("--whisper", "", false));
    drifted.subcommands.remove(1);
    drifted.subcommands.push(Subcommand { name: "gone".into(), ..drifted.subcommands[0].clone() });
    assert_eq!(
        cli::mismatches(&Hello::command(), &drifted),
        [
            "subcommand `many` is not in the manifest",
            "option `--times` does not parse as listed (takes_value: false)",
            "option `--whisper` of `loud` does not parse as listed (takes_value: false)",
            "subcommand `gone` does not parse",
        ]
    );
}

#[test]
fn usage_errors_read_like_the_cores() {
    assert_eq!(
        stopped(&["lodu"]),
        (
            2,
            String::new(),
            "error: no `dpe hello` command named `lodu`\nhelp: the commands are `loud` and `many`\n".into()
        )
    );
    assert_eq!(
        stopped(&["loud", "--exclam"]),
        (
            2,
            String::new(),
            "error: unknown option `--exclam` for `dpe hello loud`\nhelp: did you mean `--exclaim`?\n".into()
        )
    );
    assert_eq!(
        stopped(&["loud", "a", "b"]),
        (
            2,
            String::new(),
            "error: unexpected argument `b` for `dpe hello loud`\nhelp: `dpe hello loud --help` lists what it takes\n"
                .into()
        )
    );
    let (code, out, err) = stopped(&["--times", "x", "many"]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.starts_with("error: invalid value 'x' for '--times <TIMES>'"), "{err}");
}

#[test]
fn help_goes_to_stdout_and_a_missing_subcommand_to_stderr() {
    let (code, out, err) = stopped(&["--help"]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(out.starts_with("Greets projects\n\nUsage: dpe hello [OPTIONS] <COMMAND>\n"), "{out}");
    let (code, out, err) = stopped(&[]);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.contains("Usage: dpe hello [OPTIONS] <COMMAND>"), "{err}");
}

#[test]
fn a_parsed_command_runs_and_its_error_is_its_exit_code() {
    let context = Context::from_json(
        r#"{"protocol":1,"dpe_version":"0.1.0","dpe_bin":"/dpe","plugin":"hello","workspace":null,"project":null,
            "config":{},"config_files":[],"state_dir":"/s","data_dir":"/d","config_dir":"/c","cache_dir":"/k",
            "verbosity":0,"color":"never","json":false,"no_hooks":false}"#,
    )
    .unwrap();
    assert_eq!(run::<Hello>(&context, &args(&["loud", "alpha", "--exclaim"])), 3);
    assert_eq!(run::<Hello>(&context, &args(&["nope"])), 2);
    assert_eq!(
        project(&context).unwrap_err().to_string(),
        "error: no project selected\nhelp: name one (`dpe hello PROJECT`), pass `--project PROJECT`, or run inside a project folder"
    );
}

/// The shape of `dpe jupyter`: the plugin's own command takes a project and options at the
/// top level (flattened), beside subcommands that take their own.
#[derive(Debug, clap::Parser)]
#[command(name = "dpe lab", version, args_conflicts_with_subcommands = true)]
struct Lab {
    #[command(subcommand)]
    command: Option<LabCommand>,
    #[command(flatten)]
    start: LabStart,
}

#[derive(Debug, clap::Args)]
struct LabStart {
    /// The project.
    project: Option<String>,
    /// Run in the background.
    #[arg(short, long)]
    detach: bool,
    /// Install this lock.
    #[arg(long, value_name = "FILE")]
    from_lock: Option<std::path::PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum LabCommand {
    /// Stop a project's server.
    Stop { project: Option<String> },
    /// List every server.
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

impl Plugin for Lab {
    const DPE: &'static str = "^0.1";
    fn run(self, _context: &Context) -> Result<()> {
        Ok(())
    }
}

#[test]
fn a_plugin_that_takes_a_project_and_options_beside_its_subcommands() {
    assert_manifest::<Lab>(&["lab [PROJECT] --detach --from-lock VALUE", "lab stop [PROJECT]", "lab list --json"]);
    let manifest = manifest::<Lab>();
    assert_eq!((manifest.takes_project, manifest.options[0].description.as_str()), (true, "Run in the background"));
}
