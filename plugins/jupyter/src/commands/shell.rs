//! `dpe jupyter shell PROJECT`: an interactive shell in the running environment, as the user
//! the server runs as, in the project folder (bash when the image has it).

use crate::commands::{code, exec_prefix, running_container};
use crate::project::Project;
use dpe_plugin::sdk::Result;
use dpe_plugin::Context;

pub fn run(context: &Context, positional: Option<&str>) -> Result<i32> {
    let project = Project::from_context(context, positional)?;
    let container = running_container(context, &project)?;
    let mut args = exec_prefix(&container);
    args.extend(["sh", "-c", "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi"].map(String::from));
    let status = crate::docker::streamed(context, &args)?;
    Ok(code(status))
}
