//! `dpe jupyter spec PROJECT --json`: builds the image if needed, reserves the host ports,
//! ensures the token and prints the run specification (the contract compose and export use).
//! Build output goes to stderr; stdout holds exactly one JSON object.
//!
//! `--adopt IMAGE_ID` first makes a loaded image the project's environment (what `dpe import`
//! asks for, see [`crate::imported`]); the spec then names that image and nothing is built.

use crate::cli::LockArgs;
use crate::commands::{own_container, port_owners};
use crate::docker;
use crate::lock::Choice;
use crate::project::Project;
use crate::spec::{prepare, Options};
use dpe_plugin::sdk::Result;
use dpe_plugin::Context;

pub fn run(
    context: &Context,
    positional: Option<&str>,
    rebuild: bool,
    lan: bool,
    lock: &LockArgs,
    adopt: Option<&str>,
) -> Result<i32> {
    let project = Project::from_context(context, positional)?;
    let choice = Choice::from_args(lock.from_lock.as_deref(), lock.no_lock)?;
    if let Some(id) = adopt {
        Project::check_reach(context)?;
        let built_with = crate::lock::for_build(&context.state_dir, &project, &choice)?;
        let plan = crate::image::plan_with_lock(&project, &crate::image::Host::current(), built_with.as_ref())?;
        crate::imported::take_over(context, &project, &plan, id)?;
    }
    let containers = docker::containers(context)?;
    let own = own_container(&containers, &project);
    let (published, mine) = port_owners(&containers, &project, own.as_ref());
    let options = Options { rebuild, lan, published, mine, lock: choice.clone(), ..Options::default() };
    let prepared = prepare(context, &project, &options)?;
    // Consumers (compose) mount the shared package cache as an existing volume.
    crate::store::ensure(context, &prepared.spec)?;
    // Only a lock that built is remembered for later builds.
    choice.persist(&context.state_dir, &project.key())?;
    for reservation in &prepared.reservations {
        if let Some(old) = reservation.moved_from {
            eprintln!("dpe: port {old} of `{}` is in use by another program; now {}", project.name, reservation.port);
        }
    }
    println!("{}", serde_json::to_string_pretty(&prepared.spec).expect("spec serialises"));
    Ok(0)
}
