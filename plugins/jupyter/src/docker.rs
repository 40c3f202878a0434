//! The engine calls the plugin makes, all through `dpe docker …` (so hooks run and the core adds
//! its `dpe.*` labels), and the parsing of what they print.

use dpe_plugin::containers::{self, ListError};
use dpe_plugin::sdk::{Error, Result};
use dpe_plugin::Context;

/// Labels this plugin adds (the core adds `dpe.workspace`, `dpe.project` and `dpe.plugin`).
pub const LABEL_PORT: &str = "dpe.jupyter.port";
pub const LABEL_BASE_URL: &str = "dpe.jupyter.base_url";
pub const LABEL_KEY: &str = "dpe.jupyter.key";
pub const LABEL_USER: &str = "dpe.jupyter.user";
pub const LABEL_WORKDIR: &str = "dpe.jupyter.workdir";
/// On images the plugin builds: who built them (see [`crate::image::owner`]), so a `gc` only
/// ever weighs the images of its own user.
pub const LABEL_OWNER: &str = "dpe.jupyter.owner";
/// The host its URL names (see [`crate::spec::url_host`]); absent on containers older than it.
pub const LABEL_URL_HOST: &str = "dpe.jupyter.url_host";

/// The SDK's `dpe docker` client, which every engine call here goes through.
pub use dpe_plugin::sdk::docker::{captured, exists, streamed, text};

/// One container, with what this plugin reads from its labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Container {
    pub id: String,
    pub name: String,
    /// `running`, `exited`, `created`, …
    pub state: String,
    pub workspace: String,
    pub project: String,
    pub plugin: String,
    /// The host port the plugin recorded, when it is one of ours.
    pub port: Option<u16>,
    pub base_url: String,
    /// The host its URL names; empty on a container made before dpe recorded it.
    pub url_host: String,
    pub key: String,
    /// The user and folder commands run as (`exec`, `shell`, `pip`).
    pub user: String,
    pub workdir: String,
    /// The hash of the arguments it was created with.
    pub config: String,
    pub image: String,
    /// The ID of the image it runs (without `sha256:`).
    pub image_id: String,
    /// e.g. `Up 3 minutes`.
    pub status: String,
    /// Host ports it publishes (only while running).
    pub host_ports: Vec<u16>,
}

impl Container {
    pub fn running(&self) -> bool {
        self.state == "running"
    }
}

impl From<containers::Container> for Container {
    fn from(c: containers::Container) -> Container {
        let label = |key: &str| c.label(key).to_string();
        Container {
            workspace: label("dpe.workspace"),
            project: label("dpe.project"),
            plugin: label("dpe.plugin"),
            port: c.label(LABEL_PORT).parse().ok(),
            base_url: label(LABEL_BASE_URL),
            url_host: label(LABEL_URL_HOST),
            key: label(LABEL_KEY),
            user: label(LABEL_USER),
            workdir: label(LABEL_WORKDIR),
            config: label(crate::spec::LABEL_CONFIG),
            id: c.id,
            name: c.name,
            state: c.state,
            image: c.image,
            image_id: c.image_id,
            status: c.status,
            host_ports: c.host_ports,
        }
    }
}

/// Every container of the engine, running or not, in two engine calls whatever their number
/// (the same on Docker and Podman, see [`dpe_plugin::containers`]): the plugin needs both its
/// own containers and the host ports all others publish.
pub fn containers(context: &Context) -> Result<Vec<Container>> {
    containers_matching(context, &[])
}

/// The containers, running or not, that every `ps --filter` of `filters` selects
/// (`label=dpe.jupyter.key`), in two engine calls whatever their number.
pub fn containers_matching(context: &Context, filters: &[&str]) -> Result<Vec<Container>> {
    let query = containers::Query { all: true, filters: filters.iter().map(|f| f.to_string()).collect() };
    match containers::list(context, &query) {
        Ok(list) => Ok(list.into_iter().map(Container::from).collect()),
        Err(ListError::Spawn(err)) => Err(dpe_plugin::sdk::docker::not_run(context, err)),
        Err(ListError::Engine { message, code }) => {
            Err(Error::new(format!("listing containers failed: {message}")).with_code(code.max(1)))
        }
    }
}

/// The `image inspect` template: fields Docker and Podman both print, one JSON object a line
/// (as [`containers::TEMPLATE`] does for containers). `.ID` is the Go field both have (Podman
/// refuses `.Id`, its JSON name); `.Size` is in bytes on both.
const IMAGE_TEMPLATE: &str =
    r#"{"id":{{json .ID}},"tags":{{json .RepoTags}},"size":{{json .Size}},"labels":{{json .Config.Labels}}}"#;

/// One image, with its tags (Podman's `localhost/` removed), size in bytes and labels.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct Image {
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub size: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: std::collections::BTreeMap<String, String>,
}

impl Image {
    pub fn label(&self, key: &str) -> &str {
        self.labels.get(key).map(String::as_str).unwrap_or("")
    }
}

fn null_as_default<'de, D: serde::Deserializer<'de>, T: Default + serde::Deserialize<'de>>(
    deserializer: D,
) -> std::result::Result<T, D::Error> {
    use serde::Deserialize;
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// The images `image ls` selects with `filters` (`label=…`), dangling ones included, or the
/// images `names` names when `filters` is empty: two engine calls whatever their number. An
/// image removed between the calls is left out.
pub fn images(context: &Context, filters: &[String], names: &[String]) -> Result<Vec<Image>> {
    let ids: Vec<String> = if filters.is_empty() {
        names.to_vec()
    } else {
        let mut ls = vec!["image".to_string(), "ls".into(), "--no-trunc".into()];
        for filter in filters {
            ls.extend(["--filter".to_string(), filter.clone()]);
        }
        ls.extend(["--format".to_string(), "{{.ID}}".to_string()]);
        let mut ids: Vec<String> =
            text(context, &ls, "listing images")?.lines().map(|l| l.trim().to_string()).collect();
        // One line per tag: an image with two tags is listed twice.
        ids.retain(|id| !id.is_empty());
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut inspect = vec!["image".to_string(), "inspect".into(), "--format".into(), IMAGE_TEMPLATE.into()];
    inspect.extend(ids);
    let out = inspected(context, &inspect, "inspecting images")?;
    Ok(parse_images(&out))
}

/// The stdout of an `inspect` of several objects. Both engines print the ones they find and
/// fail for the others; a missing one (removed meanwhile, or asked for by a name nothing has)
/// is left out rather than failing the whole call.
fn inspected(context: &Context, args: &[String], doing: &str) -> Result<String> {
    let out = captured(context, args)?;
    if !out.status.success() && !only_missing(&String::from_utf8_lossy(&out.stderr)) {
        return Err(dpe_plugin::sdk::docker::failed(doing, &out));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether every line of an engine's stderr says an object does not exist: Docker's `No such
/// image: x`, Podman's `…: image not known` (and `no such volume`).
pub fn only_missing(stderr: &str) -> bool {
    stderr.lines().map(str::trim).filter(|l| !l.is_empty()).all(|line| {
        let line = line.to_lowercase();
        line.contains("no such") || line.contains("not known")
    })
}

/// The lines of [`IMAGE_TEMPLATE`]'s output; others (a hook's chatter) are skipped.
pub fn parse_images(text: &str) -> Vec<Image> {
    let mut images: Vec<Image> = text.lines().filter_map(|l| serde_json::from_str::<Image>(l.trim()).ok()).collect();
    for image in &mut images {
        image.id = containers::image_id(&image.id).to_string();
        for tag in &mut image.tags {
            *tag = containers::image_name(tag).to_string();
        }
    }
    images
}

/// One volume and its labels.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct Volume {
    pub name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: std::collections::BTreeMap<String, String>,
}

/// The volumes `volume ls` selects with `filter` (`label=…`), with their labels, in two engine
/// calls whatever their number (`volume ls --format '{{.Labels}}'` is a lossy `a=b,c=d`).
pub fn volumes(context: &Context, filter: &str) -> Result<Vec<Volume>> {
    let ls = ["volume", "ls", "--filter", filter, "--format", "{{.Name}}"];
    let names: Vec<String> = text(context, &ls, "listing volumes")?
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut inspect: Vec<String> =
        ["volume", "inspect", "--format", r#"{"name":{{json .Name}},"labels":{{json .Labels}}}"#]
            .map(String::from)
            .to_vec();
    inspect.extend(names);
    let out = inspected(context, &inspect, "inspecting volumes")?;
    Ok(out.lines().filter_map(|l| serde_json::from_str(l.trim()).ok()).collect())
}

/// The exit status of a stopped container. Asked of the engine, not read from the listing's
/// status text (`Exited (85) …`): that text comes from an earlier call than the state, so a
/// container that stopped in between reads `Up 2 minutes` there.
pub fn exit_code(context: &Context, id: &str) -> Option<i32> {
    let out = captured(context, &["container", "inspect", "--format", "{{.State.ExitCode}}", id]).ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Podman's real listing of a dpe-like Jupyter container (recorded by
    /// `plugins/dpe-plugin/tests/fixtures/engine/record.sh`) gives every field this plugin reads.
    #[test]
    fn a_podman_listing_gives_the_labels_the_plugin_reads() {
        let list = containers::parse(
            include_str!("../../dpe-plugin/tests/fixtures/engine/podman-4.3.1-ps.txt"),
            include_str!("../../dpe-plugin/tests/fixtures/engine/podman-4.3.1-inspect.txt"),
        );
        let c = Container::from(list.into_iter().find(|c| c.name == "dpe-fixture-running").unwrap());
        assert!(c.running());
        assert_eq!(
            (c.workspace.as_str(), c.project.as_str(), c.plugin.as_str()),
            ("/home/me/work", "project_a", "jupyter")
        );
        assert_eq!(c.port, Some(23180));
        assert_eq!((c.base_url.as_str(), c.key.as_str()), ("/project_a/", "project_a-0123abcd"));
        assert_eq!((c.user.as_str(), c.workdir.as_str(), c.config.as_str()), ("1000:1000", "/work", "c0ffee"));
        assert_eq!(c.image, "dpe-test/bookworm:latest");
        assert_eq!(c.host_ports, vec![23180, 23181, 23182]);
    }

    /// Both engines' `image inspect` lines (Docker's `sha256:` IDs, Podman's `localhost/` tags
    /// and `null` for no tags or labels) read the same.
    #[test]
    fn image_lines_of_both_engines_read_the_same() {
        let docker =
            r#"{"id":"sha256:ab12","tags":["dpe-jupyter:1f"],"size":812345678,"labels":{"dpe.jupyter.owner":"o"}}"#;
        let podman =
            r#"{"id":"ab12","tags":["localhost/dpe-jupyter:1f"],"size":812345678,"labels":{"dpe.jupyter.owner":"o"}}"#;
        for line in [docker, podman] {
            let images = parse_images(&format!("hook chatter\n{line}\n"));
            assert_eq!(images.len(), 1, "{line}");
            assert_eq!(
                (images[0].id.as_str(), images[0].tags.as_slice()),
                ("ab12", &["dpe-jupyter:1f".to_string()][..])
            );
            assert_eq!((images[0].size, images[0].label("dpe.jupyter.owner")), (812345678, "o"));
        }
        let dangling = parse_images(r#"{"id":"cd34","tags":null,"size":5,"labels":null}"#);
        assert!(only_missing("Error: No such image: dpe-jupyter:1f\n"));
        assert!(only_missing(
            "error inspecting object: 2571a696: image not known\nError: inspecting object: dpe-jupyter:1f: image not known\n"
        ));
        assert!(!only_missing("Cannot connect to the Docker daemon at unix:///var/run/docker.sock\n"));
        assert!(dangling[0].tags.is_empty() && dangling[0].labels.is_empty());
    }
}
