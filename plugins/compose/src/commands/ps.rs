//! `dpe compose ps`: the stack's containers, as compose lists them.

use super::current;
use dpe_plugin::sdk::Result;
use dpe_plugin::Context;

pub fn run(context: &Context) -> Result<()> {
    let (stack, _) = current(context)?;
    if !stack.file().exists() {
        eprintln!("nothing was started with `dpe compose up` in this workspace");
        return Ok(());
    }
    stack.run_compose(context, &["ps"])
}
