//! Which settings of a `dpe.toml` reach outside the project, and the one rule every plugin
//! applies to them: from a workspace that is not trusted, they are refused before anything runs.
//!
//! A cloned workspace is someone else's text. Most of what it may say stays inside the
//! project's containers, but some settings make the engine (root, on the user's machine) touch
//! the host: a service volume that bind-mounts a folder outside the project, a build context,
//! a Dockerfile, a requirements file or a CA certificate read from outside it, a `[jupyter]
//! bind` that publishes the notebook and every port beyond this machine. Those run only once
//! the user has read the configuration and run `dpe trust`, exactly like hooks
//! ([`crate::Context::config_trusted`]). Named volumes and paths inside the project are free.
//! Paths are judged where they really lead: relative to the project, `..` removed, symlinks
//! followed through every part that exists, each time, trusted or not. Trust is given to what
//! the user saw: `dpe trust` records these findings ([`findings`], [`Finding::reach`]), and a
//! trusted workspace may reach only those ([`crate::Context::accepted_reaches`]); a folder it
//! names that became a link to `~` since is a new finding, refused until trusted again. Files
//! read into an image that no setting names (the default `requirements.txt`, the certificates
//! of a `ca_certificates` folder) are listed by [`default_requirements`] and
//! [`certificate_files`], for the readers and for the judgement alike.
//!
//! What the schema cannot express cannot be set at all: `privileged`, `devices`, `cap_add`,
//! `network_mode`, `pid`, `ipc`, `userns_mode`, `security_opt` and the like are unknown keys of
//! `[services.NAME]` (see the test below, which fails the day one becomes a key, so that it is
//! classified here first). The user's own `config.toml` is trusted: what it sets is never
//! refused. Third-party plugins read their `[plugins.NAME]` settings themselves; they can judge
//! paths with [`outside`] and must check `config_trusted` for anything that reaches the host.

use crate::config::Config;
use crate::Context;
use std::path::{Component, Path, PathBuf};

/// The name of the user's own configuration file in `Context::config_dir`.
pub const USER_CONFIG_FILE: &str = "config.toml";

/// The host's public certificate stores: `ca_certificates` may name files there freely (the
/// tests and a corporate proxy's users add the system bundle), since they hold nothing secret
/// and only root writes them. Private keys live beside them (`/etc/ssl/private`), not in them.
const PUBLIC_CERTIFICATE_DIRS: &[&str] = &[
    "/etc/ssl/certs",
    "/etc/ca-certificates",
    "/usr/share/ca-certificates",
    "/usr/local/share/ca-certificates",
    "/etc/pki/ca-trust",
    "/etc/pki/tls/certs",
];

/// One setting that reaches outside the project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The dotted key, e.g. `services.db.volumes`.
    pub key: String,
    /// What it does, for the message: ``bind-mounts `/etc` ``.
    pub what: String,
    /// The file that sets it (the highest layer defining the key); `None` until attributed.
    pub file: Option<PathBuf>,
    /// Whether it leads out only through the project's own tree (a relative volume source
    /// such as `./data`, whose folder is a link): the project decides where it goes, so even a
    /// value of the user's own file is the workspace's doing.
    pub through_project: bool,
}

impl Finding {
    /// The finding as `dpe trust` records it and `--list` shows it: the key and what it does,
    /// with the real path it leads to (not the file, which `check` fills in afterwards).
    pub fn reach(&self) -> String {
        if self.key.is_empty() {
            return self.what.clone();
        }
        format!("`{}` {}", self.key, self.what)
    }
}

/// A refusal: the message and the `help:` line, for the plugin's own error type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub message: String,
    pub help: String,
}

/// Refuses the context's configuration when a workspace or project file sets something that
/// reaches outside the project, unless the workspace is trusted and `dpe trust` saw that very
/// reach (the same setting leading to the same real place) when the user trusted it. Call it
/// before building or starting anything.
pub fn check(context: &Context) -> Result<(), Refusal> {
    let Some(boundary) = boundary(context) else { return Ok(()) };
    let found = findings_within(context, &boundary);
    if found.is_empty() {
        return Ok(());
    }
    let user = context.config_dir.join(USER_CONFIG_FILE);
    let layers: Vec<(PathBuf, toml::Table)> = context
        .config_files
        .iter()
        .filter_map(|file| Some((file.clone(), std::fs::read_to_string(file).ok()?.parse().ok()?)))
        .collect();
    let mut refused = Vec::new();
    for mut finding in found {
        // A trusted workspace keeps what the user saw when trusting; a folder it names that
        // became a link since (a `git pull`) leads somewhere else, and is a new reach.
        if context.config_trusted && context.accepted_reaches.contains(&finding.reach()) {
            continue;
        }
        attribute(&mut finding, &layers, &user);
        if finding.file.as_ref() != Some(&user) || finding.through_project {
            refused.push(finding);
        }
    }
    if refused.is_empty() {
        return Ok(());
    }
    Err(refusal(context, &boundary, &refused))
}

/// Every setting of the context that reaches outside its project (or workspace), and a
/// project folder linked out of the workspace: what `dpe trust` records as accepted.
pub fn findings(context: &Context) -> Vec<Finding> {
    boundary(context).map(|boundary| findings_within(context, &boundary)).unwrap_or_default()
}

fn findings_within(context: &Context, boundary: &Path) -> Vec<Finding> {
    let mut found: Vec<Finding> = linked_project(context, boundary).into_iter().collect();
    found.extend(classify(&context.config, boundary));
    found
}

/// Names the file whose value was used: the highest layer that defines the key. A value the
/// user's own file sets is the user's choice, but only for a service no other file touches: a
/// workspace that sets `image` or `command` of the user's service would run its own program
/// with the user's mounts. One no file can be found for (a file changed since dpe read it) is
/// refused: better a needless `dpe trust` than a hole.
fn attribute(finding: &mut Finding, layers: &[(PathBuf, toml::Table)], user: &Path) {
    if finding.file.is_some() {
        return;
    }
    let path: Vec<&str> = finding.key.split('.').collect();
    finding.file = layers.iter().rev().find(|(_, table)| defines(table, &path)).map(|(file, _)| file.clone());
    if finding.file.as_deref() != Some(user) {
        return;
    }
    if let ["services", name, ..] = path[..] {
        let service = ["services", name];
        if let Some((file, _)) = layers.iter().rev().find(|(file, table)| file != user && defines(table, &service)) {
            finding.what.push_str(&format!(" (set in your `{USER_CONFIG_FILE}`, for a service this file changes)"));
            finding.file = Some(file.clone());
        }
    }
}

/// A project folder that is a link leading out of the workspace (`projects/a -> /`): the
/// project folder is mounted into its container, so this is a bind mount of that place.
fn linked_project(context: &Context, boundary: &Path) -> Option<Finding> {
    let (project, workspace) = (context.project.as_ref()?, context.workspace.as_ref()?);
    if boundary.starts_with(resolve(workspace)) {
        return None;
    }
    Some(Finding {
        through_project: true,
        key: String::new(),
        what: format!(
            "is a link to `{}`, outside the workspace, and is mounted into the container",
            boundary.display()
        ),
        file: Some(project.dir.clone()),
    })
}

/// The folder settings may use freely: the project's, else the workspace's.
fn boundary(context: &Context) -> Option<PathBuf> {
    let dir = context.project.as_ref().map(|p| p.dir.clone()).or_else(|| context.workspace.clone())?;
    Some(resolve(&dir))
}

fn refusal(context: &Context, boundary: &Path, found: &[Finding]) -> Refusal {
    let mut message = if context.config_trusted {
        format!(
            "this workspace's configuration now reaches outside the project folder `{}` where it did not when you trusted it:",
            boundary.display()
        )
    } else {
        format!(
            "this workspace's configuration is not trusted, and it reaches outside the project folder `{}`:",
            boundary.display()
        )
    };
    for finding in found {
        let file = finding.file.as_ref().map(|file| format!("`{}`: ", file.display())).unwrap_or_default();
        let key = if finding.key.is_empty() { String::new() } else { format!("`{}` ", finding.key) };
        message.push_str(&format!("\n  {file}{key}{}", finding.what));
    }
    let command = match &context.workspace {
        Some(root) => format!("cd {} && dpe trust", shell_word(&root.to_string_lossy())),
        None => "dpe trust".to_string(),
    };
    let help = if context.config_trusted {
        format!(
            "what it reaches is not what you trusted (a folder or file it names leads somewhere else now, or this dpe describes a reach differently than the one you trusted with); see what it reaches with `dpe trust --list`, and if you trust that run `{command}` again"
        )
    } else {
        format!(
            "settings that reach your machine run only in a trusted workspace; read those files, and if you trust them run `{command}`"
        )
    };
    Refusal { message, help }
}

/// Every setting of `config` that reaches outside `boundary` (an already resolved folder).
pub fn classify(config: &Config, boundary: &Path) -> Vec<Finding> {
    let mut found = Vec::new();
    let finding = |key: String, what: String| Finding { key, what, file: None, through_project: false };
    for (name, service) in &config.services {
        for volume in &service.volumes {
            let source = volume.split(':').next().unwrap_or_default();
            if let Some(path) = host_source(source, boundary).filter(|p| !p.starts_with(boundary)) {
                let what = format!("bind-mounts `{}` (`{volume}`)", path.display());
                let through_project = source.starts_with('.');
                found.push(Finding { through_project, ..finding(format!("services.{name}.volumes"), what) });
            }
        }
        if let Some(path) = service.build.as_deref().and_then(|b| outside(Path::new(b), boundary)) {
            found.push(finding(format!("services.{name}.build"), format!("builds from `{}`", path.display())));
        }
    }
    let public = |path: &Path| PUBLIC_CERTIFICATE_DIRS.iter().any(|dir| path.starts_with(dir));
    for certificate in &config.ca_certificates {
        let resolved = resolve(&boundary.join(certificate));
        if certificate.starts_with('~') || !(public(&resolved) || resolved.starts_with(boundary)) {
            found.push(finding(
                "ca_certificates".into(),
                format!("copies `{}` into the image", outside_shown(certificate, &resolved)),
            ));
        } else if resolved.is_dir() {
            // The folder is inside, but each certificate in it is read through its own links.
            for file in certificate_files(&resolved).unwrap_or_default() {
                let real = resolve(&file);
                if !public(&real) && !real.starts_with(boundary) {
                    let what = format!("copies `{}` into the image (`{}`)", real.display(), file.display());
                    found.push(finding("ca_certificates".into(), what));
                }
            }
        }
    }
    let requirements = config.requirements.as_ref().map(PathBuf::from).or_else(|| default_requirements(boundary));
    if let Some(path) = requirements.as_deref().and_then(|r| outside(r, boundary)) {
        found.push(finding("requirements".into(), format!("reads `{}` into the environment", path.display())));
    }
    if let Some(path) = config.dockerfile.as_deref().and_then(|d| outside(Path::new(d), boundary)) {
        found.push(finding(
            "dockerfile".into(),
            format!("builds with `{}` and its folder as the build context", path.display()),
        ));
    }
    let bind = config.jupyter.bind.as_str();
    // The schema admits only IP addresses here (a host name would be looked up, and could
    // resolve anywhere), so anything that does not parse as a loopback address reaches out.
    if !bind.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
        found.push(finding(
            "jupyter.bind".into(),
            format!("publishes the notebook and every port on `{bind}`, beyond this machine"),
        ));
    }
    found
}

/// How a path outside the project is shown: `~` as written (it is the user's home whatever
/// follows), anything else where it really leads.
fn outside_shown(written: &str, resolved: &Path) -> String {
    if written.starts_with('~') {
        return written.to_string();
    }
    resolved.display().to_string()
}

/// The project's own `requirements.txt`, synced into the environment when `requirements` is not set:
/// the file every reader uses, so that what is judged here is what is read.
pub fn default_requirements(project_dir: &Path) -> Option<PathBuf> {
    Some(project_dir.join("requirements.txt")).filter(|file| file.is_file())
}

/// The certificates a `ca_certificates` folder contributes: its `.crt` and `.pem` files, sorted.
/// The one listing the readers and [`classify`] share, so each file read is a file judged.
pub fn certificate_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)?.flatten() {
        let path = entry.path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if path.is_file() && (ext == "crt" || ext == "pem") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Where a volume source leads when it is a host path (compose's rule: it starts with `.`, `/`
/// or `~`; anything else names a volume). Relative ones are taken from `boundary`, `..`
/// removed as compose does before docker follows the links.
fn host_source(source: &str, boundary: &Path) -> Option<PathBuf> {
    if source.starts_with('~') {
        // The user's home, whatever follows: never inside a project.
        return Some(PathBuf::from(source));
    }
    if !source.starts_with('.') && !source.starts_with('/') {
        return None;
    }
    Some(resolve(&normalize(&boundary.join(source))))
}

/// `path` resolved (symlinks followed, `..` applied) when it leads outside `boundary`.
pub fn outside(path: &Path, boundary: &Path) -> Option<PathBuf> {
    if path.starts_with("~") {
        return Some(path.to_path_buf());
    }
    let resolved = resolve(&boundary.join(path));
    (!resolved.starts_with(boundary)).then_some(resolved)
}

/// The real path: the longest part that exists is canonicalised (following every symlink), the
/// rest (which does not exist yet, and which the engine would create) appended with `..` removed.
pub fn resolve(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(&existing) {
            let mut out = real;
            out.extend(rest.iter().rev());
            return normalize(&out);
        }
        match (existing.file_name().map(PathBuf::from), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            // `..` as the last part, or the root itself: fall back to the lexical path.
            _ => return normalize(path),
        }
    }
}

/// Removes `.` and `..` without touching the filesystem.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Whether `table` sets the dotted `path`.
fn defines(table: &toml::Table, path: &[&str]) -> bool {
    let Some((first, rest)) = path.split_first() else { return true };
    match (table.get(*first), rest.is_empty()) {
        (Some(_), true) => true,
        (Some(toml::Value::Table(inner)), false) => defines(inner, rest),
        _ => false,
    }
}

/// `text` as one shell word: as it is when it is plain, else single-quoted.
fn shell_word(text: &str) -> String {
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+=:@%,".contains(c)) {
        return text.to_string();
    }
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        toml::from_str(text).unwrap()
    }

    fn keys(config: &Config, boundary: &Path) -> Vec<String> {
        classify(config, boundary).into_iter().map(|f| format!("{} {}", f.key, f.what)).collect()
    }

    #[test]
    fn host_paths_are_found_wherever_they_lead() {
        let tmp = tempfile::tempdir().unwrap();
        let project = resolve(&tmp.path().join("projects/a"));
        std::fs::create_dir_all(project.join("data")).unwrap();
        std::os::unix::fs::symlink("/etc", project.join("etc-link")).unwrap();
        let c = config(
            r#"
            [services.db]
            image = "x"
            volumes = ["/:/host", "../../..:/up", "./etc-link/ssl:/ssl", "~/.ssh:/k", "./data:/d", "./new/dir:/n", "pg:/var"]
            "#,
        );
        let root = tmp.path().parent().unwrap().to_path_buf();
        let found = keys(&c, &project);
        assert_eq!(
            found,
            [
                "services.db.volumes bind-mounts `/` (`/:/host`)".to_string(),
                format!("services.db.volumes bind-mounts `{}` (`../../..:/up`)", resolve(&root).display()),
                format!(
                    "services.db.volumes bind-mounts `{}` (`./etc-link/ssl:/ssl`)",
                    resolve(Path::new("/etc/ssl")).display()
                ),
                "services.db.volumes bind-mounts `~/.ssh` (`~/.ssh:/k`)".to_string(),
            ]
        );
    }

    #[test]
    fn files_read_from_outside_and_a_public_bind_are_found() {
        let tmp = tempfile::tempdir().unwrap();
        let project = resolve(tmp.path());
        let inside = project.join("certs/corp.crt").to_string_lossy().into_owned();
        let c = config(&format!(
            "ca_certificates = [\"{inside}\", \"/etc/ssl/certs/ca-certificates.crt\", \"/etc/ssl/private\"]\nrequirements = \"/home/u/.ssh/id_rsa\"\n\
             dockerfile = \"/Dockerfile\"\n[jupyter]\nbind = \"0.0.0.0\"\n[services.web]\nbuild = \"/\"\n"
        ));
        let found: Vec<String> = classify(&c, &project).into_iter().map(|f| f.key).collect();
        assert_eq!(found, ["services.web.build", "ca_certificates", "requirements", "dockerfile", "jupyter.bind"]);
        for bind in ["127.0.0.1", "::1", "127.0.0.2"] {
            let c = config(&format!("[jupyter]\nbind = \"{bind}\"\n"));
            assert!(classify(&c, &project).is_empty(), "{bind}");
        }
    }

    #[test]
    fn only_untrusted_workspace_files_are_refused_with_the_trust_command() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = resolve(tmp.path()).join("my lab");
        let project = ws.join("projects/a");
        std::fs::create_dir_all(&project).unwrap();
        let user_dir = resolve(tmp.path()).join("config");
        std::fs::create_dir_all(&user_dir).unwrap();
        let user = user_dir.join(USER_CONFIG_FILE);
        std::fs::write(&user, "[services.db]\nimage = \"postgres\"\nvolumes = [\"/srv/shared:/shared\"]\n").unwrap();
        let ws_file = ws.join("dpe.toml");
        std::fs::write(&ws_file, "[services.web]\nimage = \"nginx\"\n").unwrap();
        let mut context = crate::context::tests::sample();
        context.workspace = Some(ws.clone());
        context.project = Some(crate::ProjectRef { name: "a".into(), dir: project.clone() });
        context.config_dir = user_dir;
        context.config_files = vec![user.clone(), ws_file.clone()];
        context.config = config(
            "[services.db]\nimage = \"postgres\"\nvolumes = [\"/srv/shared:/shared\"]\n[services.web]\nimage = \"nginx\"\n",
        );
        assert_eq!(check(&context), Ok(()), "the user's own service is trusted");

        // A workspace that changes any key of the user's service runs its own program with the
        // user's mount: the service is judged whole.
        std::fs::write(&ws_file, "[services.db]\ncommand = [\"sh\", \"-c\", \"tar c /shared\"]\n").unwrap();
        let refusal = check(&context).unwrap_err();
        assert_eq!(
            refusal.message,
            format!(
                "this workspace's configuration is not trusted, and it reaches outside the project folder `{}`:\n  `{}`: `services.db.volumes` bind-mounts `/srv/shared` (`/srv/shared:/shared`) (set in your `config.toml`, for a service this file changes)",
                project.display(),
                ws_file.display()
            )
        );

        std::fs::write(&ws_file, "[services.db]\nimage = \"postgres\"\nvolumes = [\"/:/host\"]\n").unwrap();
        context.config = config("[services.db]\nimage = \"postgres\"\nvolumes = [\"/:/host\"]\n");
        let refusal = check(&context).unwrap_err();
        assert_eq!(
            refusal.message,
            format!(
                "this workspace's configuration is not trusted, and it reaches outside the project folder `{}`:\n  `{}`: `services.db.volumes` bind-mounts `/` (`/:/host`)",
                project.display(),
                ws_file.display()
            )
        );
        assert_eq!(
            refusal.help,
            format!("settings that reach your machine run only in a trusted workspace; read those files, and if you trust them run `cd '{}' && dpe trust`", ws.display())
        );
        // A value no file can be found for (changed since dpe read it) is refused, not let by.
        context.config = config("[jupyter]\nbind = \"0.0.0.0\"\n");
        let refusal = check(&context).unwrap_err();
        assert!(
            refusal.message.ends_with(
                ":\n  `jupyter.bind` publishes the notebook and every port on `0.0.0.0`, beyond this machine"
            ),
            "{}",
            refusal.message
        );
        // Trusted, it runs once `dpe trust` saw it (and only then).
        context.config_trusted = true;
        assert!(check(&context).is_err());
        context.accepted_reaches = findings(&context).iter().map(Finding::reach).collect();
        assert_eq!(check(&context), Ok(()));
    }

    #[test]
    fn a_project_folder_linked_out_of_the_workspace_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = resolve(tmp.path()).join("ws");
        std::fs::create_dir_all(ws.join("projects")).unwrap();
        std::fs::create_dir_all(tmp.path().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("elsewhere"), ws.join("projects/a")).unwrap();
        let mut context = crate::context::tests::sample();
        context.workspace = Some(ws.clone());
        context.project = Some(crate::ProjectRef { name: "a".into(), dir: ws.join("projects/a") });
        let refusal = check(&context).unwrap_err();
        assert!(
            refusal.message.ends_with(&format!(
                ":\n  `{}`: is a link to `{}`, outside the workspace, and is mounted into the container",
                ws.join("projects/a").display(),
                resolve(&tmp.path().join("elsewhere")).display()
            )),
            "{}",
            refusal.message
        );
        // A link that stays inside the workspace is an ordinary project.
        std::fs::remove_file(ws.join("projects/a")).unwrap();
        std::fs::create_dir_all(ws.join("shared/a")).unwrap();
        std::os::unix::fs::symlink(ws.join("shared/a"), ws.join("projects/a")).unwrap();
        assert_eq!(check(&context), Ok(()));
    }

    #[test]
    fn a_trusted_workspace_reaches_only_what_the_user_saw_when_trusting() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = resolve(tmp.path()).join("ws");
        let project = ws.join("projects/a");
        std::fs::create_dir_all(project.join("data")).unwrap();
        std::fs::create_dir_all(tmp.path().join("home")).unwrap();
        let ws_file = ws.join("dpe.toml");
        std::fs::write(&ws_file, "[services.web]\nimage = \"x\"\nvolumes = [\"./data:/data\", \"/srv:/srv\"]\n")
            .unwrap();
        let mut context = crate::context::tests::sample();
        context.workspace = Some(ws.clone());
        context.project = Some(crate::ProjectRef { name: "a".into(), dir: project.clone() });
        context.config_files = vec![ws_file.clone()];
        context.config = config("[services.web]\nimage = \"x\"\nvolumes = [\"./data:/data\", \"/srv:/srv\"]\n");
        // What `dpe trust` recorded: the one reach that existed then.
        let seen: Vec<String> = findings(&context).iter().map(Finding::reach).collect();
        assert_eq!(seen, ["`services.web.volumes` bind-mounts `/srv` (`/srv:/srv`)"]);
        context.config_trusted = true;
        context.accepted_reaches = seen;
        assert_eq!(check(&context), Ok(()));

        // A `git pull` turns `data` into a link to the home folder: same text, new reach.
        std::fs::remove_dir(project.join("data")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("home"), project.join("data")).unwrap();
        let refusal = check(&context).unwrap_err();
        assert_eq!(
            refusal.message,
            format!(
                "this workspace's configuration now reaches outside the project folder `{}` where it did not when you trusted it:\n  `{}`: `services.web.volumes` bind-mounts `{}` (`./data:/data`)",
                project.display(),
                ws_file.display(),
                resolve(&tmp.path().join("home")).display()
            )
        );
        assert_eq!(
            refusal.help,
            format!("what it reaches is not what you trusted (a folder or file it names leads somewhere else now, or this dpe describes a reach differently than the one you trusted with); see what it reaches with `dpe trust --list`, and if you trust that run `cd {} && dpe trust` again", ws.display())
        );
        // The same holds for the project folder itself turned into a link out of the workspace.
        std::fs::remove_file(project.join("data")).unwrap();
        std::fs::rename(&project, tmp.path().join("moved")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("moved"), &project).unwrap();
        let refusal = check(&context).unwrap_err();
        assert!(refusal.message.contains("is a link to"), "{}", refusal.message);
    }

    #[test]
    fn a_relative_mount_of_the_users_own_config_leads_where_the_project_says() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = resolve(tmp.path()).join("ws");
        let project = ws.join("projects/a");
        std::fs::create_dir_all(&project).unwrap();
        // The cloned project's `data` is a link to /etc; the user's own service mounts `./data`.
        std::os::unix::fs::symlink("/etc", project.join("data")).unwrap();
        let user_dir = resolve(tmp.path()).join("config");
        std::fs::create_dir_all(&user_dir).unwrap();
        let user = user_dir.join(USER_CONFIG_FILE);
        let text = "[services.logs]\nimage = \"x\"\nvolumes = [\"./data:/data\"]\n";
        std::fs::write(&user, text).unwrap();
        let mut context = crate::context::tests::sample();
        context.workspace = Some(ws.clone());
        context.project = Some(crate::ProjectRef { name: "a".into(), dir: project.clone() });
        context.config_dir = user_dir;
        context.config_files = vec![user.clone()];
        context.config = config(text);
        let refusal = check(&context).unwrap_err();
        assert!(
            refusal.message.ends_with(&format!(
                ":\n  `{}`: `services.logs.volumes` bind-mounts `{}` (`./data:/data`)",
                user.display(),
                resolve(Path::new("/etc")).display()
            )),
            "{}",
            refusal.message
        );
    }

    #[test]
    fn files_read_into_the_image_through_links_are_judged_where_they_lead() {
        let tmp = tempfile::tempdir().unwrap();
        let project = resolve(tmp.path()).join("p");
        std::fs::create_dir_all(project.join("certs")).unwrap();
        std::fs::write(tmp.path().join("token"), "secret").unwrap();
        std::fs::write(project.join("certs/corp.crt"), "-----BEGIN CERTIFICATE-----").unwrap();
        // No setting names these: the default requirements file and a file in a CA folder.
        std::os::unix::fs::symlink(tmp.path().join("token"), project.join("requirements.txt")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("token"), project.join("certs/z.pem")).unwrap();
        std::os::unix::fs::symlink("/etc/ssl/certs/ca-certificates.crt", project.join("certs/system.crt")).unwrap();
        let certs = project.join("certs").to_string_lossy().into_owned();
        let c = config(&format!("ca_certificates = [\"{certs}\"]\n"));
        let token = resolve(&tmp.path().join("token"));
        assert_eq!(
            keys(&c, &project),
            [
                format!("ca_certificates copies `{}` into the image (`{}/z.pem`)", token.display(), certs),
                format!("requirements reads `{}` into the environment", token.display()),
            ]
        );
        // The readers list exactly the files judged.
        assert_eq!(
            certificate_files(&project.join("certs")).unwrap(),
            ["corp.crt", "system.crt", "z.pem"].map(|f| project.join("certs").join(f))
        );
        assert_eq!(default_requirements(&project), Some(project.join("requirements.txt")));
    }

    #[test]
    fn host_reaching_compose_keys_are_not_in_the_schema() {
        // A key accepted here must first be classified above, then removed from this list.
        for key in [
            "privileged = true",
            "devices = [\"/dev/sda\"]",
            "cap_add = [\"ALL\"]",
            "network_mode = \"host\"",
            "pid = \"host\"",
            "ipc = \"host\"",
            "userns_mode = \"host\"",
            "security_opt = [\"seccomp=unconfined\"]",
            "cgroup_parent = \"/\"",
            "volumes_from = [\"x\"]",
            "env_file = [\"/etc/shadow\"]",
            "extra_hosts = [\"a:1.2.3.4\"]",
            "sysctls = { a = \"1\" }",
            "user = \"0\"",
        ] {
            let text = format!("[services.db]\nimage = \"x\"\n{key}\n");
            assert!(toml::from_str::<Config>(&text).is_err(), "`{key}` became a key of [services.NAME]");
        }
    }
}
