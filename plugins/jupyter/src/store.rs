//! The package store a user's trusted projects share: one named volume per user
//! (`dpe-python-cache-OWNER`, mounted at [`image::SHARED_STORE_TARGET`]) holding the pinned uv,
//! its package cache, and each trusted project's Python environment in `envs/VOLUME` (VOLUME
//! being the project's own volume, which links to it from `/dpe/venv`). Environments and cache
//! share the mount so uv hardlinks packages instead of copying them: ten projects with the same
//! heavy packages cost about one.
//!
//! The store outlives every project; an environment in it goes with its project's volume
//! (`rm`, `gc`), which this module deletes through a throwaway container (the volume's files
//! are the engine's, not the host user's).

use crate::docker::{self, LABEL_OWNER};
use crate::image;
use crate::spec::Spec;
use dpe_plugin::contract::mount_value;
use dpe_plugin::sdk::{Error, Result};
use dpe_plugin::Context;

/// The folder of the store holding the environments.
const ENVS: &str = "envs";

/// The store volume's name for this user.
pub fn volume_name(context: &Context) -> String {
    format!("dpe-python-cache-{}", image::owner(context))
}

/// Where, in a container with the store mounted, the environment of the project whose volume is
/// `volume` lives.
pub fn environment_path(volume: &str) -> String {
    format!("{}/{ENVS}/{volume}", image::SHARED_STORE_TARGET)
}

/// Creates the store the spec mounts, labelled so `gc` and `rm` leave it, before a container
/// mounts it (an engine creating it on first mount would leave it unlabelled).
pub fn ensure(context: &Context, spec: &Spec) -> Result<()> {
    let Some(store) = &spec.store_volume else { return Ok(()) };
    if docker::exists(context, "volume", store)? {
        return Ok(());
    }
    let label = format!("{}=shared", crate::spec::LABEL_STORE);
    let out = docker::captured(context, &["volume", "create", "--label", &label, store])?;
    // Two first starts may race to create it; the loser finds it there.
    if out.status.success() || docker::exists(context, "volume", store)? {
        return Ok(());
    }
    Err(Error::new(format!(
        "creating the shared package cache `{store}` failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

/// The environments in the store: the name of the project volume each belongs to, and the
/// bytes its removal frees (its files no other environment or the cache links to).
pub type Environments = std::collections::BTreeMap<String, u64>;

/// The store and an image to run throwaway containers on it from, when both exist: any image
/// dpe built has a shell and the POSIX tools the scripts here use.
pub struct Store {
    volume: String,
    image: String,
}

impl Store {
    /// The store, with the first image found of: `preferred` (the images of the user's
    /// containers), the images built for this user, any image dpe built. An image is shared by
    /// every project (and sandbox) with the same inputs, and carries the owner label of
    /// whichever built it first.
    pub fn find(context: &Context, preferred: &[&str]) -> Result<Option<Store>> {
        let volume = volume_name(context);
        if !docker::exists(context, "volume", &volume)? {
            return Ok(None);
        }
        if let Some(image) = preferred.iter().find(|i| !i.is_empty()) {
            return Ok(Some(Store { volume, image: image.to_string() }));
        }
        let owned = [format!("label={LABEL_OWNER}={}", image::owner(context))];
        let mut found = docker::images(context, &owned, &[])?.into_iter().find_map(|i| i.tags.into_iter().next());
        if found.is_none() {
            let listed = docker::text(
                context,
                &["image", "ls", image::IMAGE_REPOSITORY, "--format", "{{.Repository}}:{{.Tag}}"],
                "listing images",
            )?;
            found = listed.lines().map(str::trim).find(|l| !l.is_empty() && !l.ends_with(":<none>")).map(String::from);
        }
        Ok(found.map(|image| Store { volume, image }))
    }

    /// Runs `script` (`sh -c`, with `args`) as root in a throwaway container with the store
    /// mounted at its usual place, in its folder of environments.
    fn run(&self, context: &Context, script: &str, args: &[String], doing: &str) -> Result<String> {
        let mount = mount_value("volume", &self.volume, image::SHARED_STORE_TARGET, false);
        let folder = format!("{}/{ENVS}", image::SHARED_STORE_TARGET);
        let mut command: Vec<&str> = vec!["run", "--rm", "--network", "none", "--user", "0:0", "--mount", &mount];
        command.extend(["--entrypoint", "sh", &self.image, "-c"]);
        let script = format!("mkdir -p {folder} && cd {folder} && {script}");
        command.extend([script.as_str(), "sh"]);
        command.extend(args.iter().map(String::as_str));
        let out = docker::captured(context, &command)?;
        if !out.status.success() {
            return Err(dpe_plugin::sdk::docker::failed(doing, &out));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The environments in the store, with what each holds on its own.
    pub fn environments(&self, context: &Context) -> Result<Environments> {
        // `-links 1`: a file hardlinked from the cache (or another environment) stays on disk.
        // POSIX tools only (`ls -ln`'s fifth column is the size): the image may be busybox's.
        let script = r#"for d in */; do [ -d "$d" ] || continue; n=${d%/}; b=$(find "$n" -type f -links 1 -exec ls -ln {} + | awk '{t += $5} END {printf "%d", t}'); echo "$n $b"; done"#;
        let listed = self.run(context, script, &[], "listing the environments in the package store")?;
        Ok(parse_environments(&listed))
    }

    /// Deletes the environments of the project volumes `volumes` (with an interrupted move of
    /// one and the one a move replaced); a missing one is no error.
    pub fn remove(&self, context: &Context, volumes: &[String]) -> Result<()> {
        if volumes.is_empty() {
            return Ok(());
        }
        let script = r#"for n; do rm -rf -- "./$n" "./$n.moving" "./$n.previous"; done"#;
        self.run(context, script, volumes, "removing environments from the package store").map(|_| ())
    }
}

/// `NAME BYTES` lines; names are volume names (no spaces), anything else is skipped.
fn parse_environments(text: &str) -> Environments {
    let mut environments = Environments::new();
    for line in text.lines() {
        let Some((name, bytes)) = line.trim().split_once(' ') else { continue };
        let Ok(bytes) = bytes.trim().parse::<u64>() else { continue };
        // An interrupted move, and the environment a move replaced, are the project's too.
        let volume = name.strip_suffix(".moving").or_else(|| name.strip_suffix(".previous")).unwrap_or(name);
        *environments.entry(volume.to_string()).or_default() += bytes;
    }
    environments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_environments_are_read_and_an_interrupted_move_is_its_project_s() {
        let text = "dpe-a-1234abcd-env 10\ndpe-b-1234abcd-env.moving 5\ndpe-a-1234abcd-env.previous 1\nchatter\n";
        assert_eq!(
            parse_environments(text),
            Environments::from([("dpe-a-1234abcd-env".into(), 10 + 1), ("dpe-b-1234abcd-env".into(), 5)])
        );
    }
}
