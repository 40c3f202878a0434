//! `dpe jupyter exec PROJECT -- CMD…`: runs a command in the running environment, as the
//! server's user, in the project folder, with the venv first on PATH; passes its status through.

use crate::commands::{code, exec_prefix, running_container};
use crate::project::Project;
use dpe_plugin::sdk::Result;
use dpe_plugin::Context;

pub fn run(context: &Context, positional: Option<&str>, command: &[String]) -> Result<i32> {
    let project = Project::from_context(context, positional)?;
    let container = running_container(context, &project)?;
    let mut args = exec_prefix(&container);
    args.extend(command.iter().cloned());
    let status = crate::docker::streamed(context, &args)?;
    Ok(code(status))
}
