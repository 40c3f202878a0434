//! End-to-end tests of the synced Python environment (`dpe-sync`): packages from
//! requirements.txt, `python_packages` and pyproject.toml are installed from a lock with uv into
//! the project's environment at start, never into the image, against the real engine and the real
//! package index (through the CA feature).
//!
//! Every project uses the e2e suite's configuration (Debian's Jupyter on the offline base image),
//! so the image is the one the other suites build; what differs between projects is only Python
//! packages, which must never build another image.

#![allow(clippy::disallowed_methods, reason = "tests run the programs they check directly")]

use dpe_testkit::{docker_available, DockerCleanup, Sandbox};
use serde_json::Value;
use std::process::{Command, Output, Stdio};

const PROJECT_TOML: &str = r#"image = "dpe-test/bookworm:latest"
apt_packages = ["python3-notebook", "python3-pandas", "python3-pip", "python3-venv"]
ca_certificates = ["/etc/ssl/certs/ca-certificates.crt"]
"#;

const SITE: &str = "/dpe/venv/lib/python3.11/site-packages";

fn setup(host_port_start: u16) -> Option<(Sandbox, DockerCleanup)> {
    if !docker_available() {
        return None;
    }
    let sandbox = Sandbox::new();
    sandbox.write("workspace/dpe.toml", &format!("[jupyter]\nhost_port_start = {host_port_start}\n"));
    let cleanup = DockerCleanup::new(&sandbox);
    Some((sandbox, cleanup))
}

fn dpe(sandbox: &Sandbox, args: &[&str]) -> Output {
    sandbox.dpe().args(args).stdin(Stdio::null()).output().expect("run dpe")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `dpe jupyter NAME --detach`, which must succeed; returns its stderr.
fn start(sandbox: &Sandbox, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["jupyter", name, "--detach"];
    args.extend_from_slice(extra);
    let out = dpe(sandbox, &args);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "dpe jupyter {name} --detach failed:\n{stderr}");
    stderr
}

fn stop(sandbox: &Sandbox, name: &str) {
    let out = dpe(sandbox, &["jupyter", "stop", name]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// The image and volume of a project, from its spec.
fn spec(sandbox: &Sandbox, name: &str) -> Value {
    let out = dpe(sandbox, &["jupyter", "spec", name, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The output of `sh -c SCRIPT` in a throwaway container of the project's image with its volume
/// at /dpe and, for a trusted project, the package store at /dpe-cache (where its environment
/// lives), so it works whether or not the server runs.
fn in_volume(sandbox: &Sandbox, name: &str, script: &str) -> String {
    let spec = spec(sandbox, name);
    let mut command = Command::new("docker");
    command.args(["run", "--rm", "--entrypoint", "sh"]);
    command.args(["--mount", &format!("type=volume,source={},target=/dpe", spec["volume"].as_str().unwrap())]);
    if let Some(store) = spec["store_volume"].as_str() {
        command.args(["--mount", &format!("type=volume,source={store},target=/dpe-cache")]);
    }
    let out = command.arg(spec["image"].as_str().unwrap()).args(["-c", script]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// `name==version` of every distribution in the project's environment (not the image's).
fn environment(sandbox: &Sandbox, name: &str) -> Vec<String> {
    let listing = in_volume(sandbox, name, &format!("ls {SITE} | sed -n 's/\\.dist-info$//p'"));
    let mut found: Vec<String> = listing.lines().map(|l| l.replacen('-', "==", 1).to_lowercase()).collect();
    found.sort();
    found
}

/// The images this sandbox's workspace built (dpe labels each build with its workspace), sorted:
/// the engine's whole list also changes with other suites' builds, and lists images of one
/// creation second in any order.
fn image_ids(sandbox: &Sandbox) -> Vec<String> {
    let filter = format!("label=dpe.workspace={}", sandbox.workspace().display());
    let out = Command::new("docker").args(["images", "-q", "--no-trunc", "--filter", &filter]).output().unwrap();
    let mut ids: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    ids.sort();
    ids
}

#[test]
fn requirements_sync_in_seconds_without_building_and_hand_installed_packages_stay() {
    let Some((sandbox, _cleanup)) = setup(23100) else { return };
    let dir = sandbox.project("req", PROJECT_TOML);
    std::fs::write(dir.join("requirements.txt"), "iniconfig==2.0.0\n").unwrap();
    start(&sandbox, "req", &[]);
    // The first start wrote the lock, marked with the hash of its inputs, with hashes.
    let lock = std::fs::read_to_string(dir.join("pylock.toml")).unwrap();
    assert!(lock.contains("lock-version = \"1.0\"") && lock.contains("name = \"iniconfig\""), "{lock}");
    assert!(lock.contains("hashes = { sha256 = "), "{lock}");
    assert!(lock.contains("\n# dpe-inputs: "), "{lock}");
    assert_eq!(environment(&sandbox, "req"), ["iniconfig==2.0.0"]);
    let images = image_ids(&sandbox);

    // A package added while the server runs is synced into it in place.
    std::fs::write(dir.join("requirements.txt"), "iniconfig==2.0.0\ntoolz==0.12.1\n").unwrap();
    let stderr = start(&sandbox, "req", &[]);
    assert!(stderr.contains("dpe: `req` is already running"), "{stderr}");
    assert!(stderr.contains("pylock.toml is older than its inputs"), "{stderr}");
    assert!(stderr.contains("+ toolz==0.12.1"), "{stderr}");
    let out =
        dpe(&sandbox, &["jupyter", "exec", "req", "--", "python3", "-c", "import toolz; print(toolz.__version__)"]);
    assert_eq!(text(&out.stdout).trim(), "0.12.1", "{}", text(&out.stderr));
    assert_eq!(image_ids(&sandbox), images, "adding a package built an image");

    // A package installed by hand stays; one removed from requirements goes.
    let out = dpe(&sandbox, &["jupyter", "exec", "req", "--", "pip", "install", "--quiet", "tomli-w==1.0.0"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    stop(&sandbox, "req");
    std::fs::write(dir.join("requirements.txt"), "toolz==0.12.1\n").unwrap();
    let stderr = start(&sandbox, "req", &[]);
    assert!(!stderr.contains("dpe: building"), "{stderr}");
    assert_eq!(environment(&sandbox, "req"), ["tomli_w==1.0.0", "toolz==0.12.1"]);

    // An unchanged start resolves and installs nothing.
    stop(&sandbox, "req");
    let before = std::fs::read(dir.join("pylock.toml")).unwrap();
    start(&sandbox, "req", &[]);
    assert_eq!(std::fs::read(dir.join("pylock.toml")).unwrap(), before);
    // The container's log holds the syncs of its starts: the first and the removal, not this one.
    let logs = dpe(&sandbox, &["jupyter", "logs", "req"]);
    let logs = text(&logs.stdout) + &text(&logs.stderr);
    assert_eq!(logs.matches("dpe-sync: syncing").count(), 2, "one sync per change only:\n{logs}");

    // `--exact` removes what the lock does not name.
    stop(&sandbox, "req");
    start(&sandbox, "req", &["--exact"]);
    assert_eq!(environment(&sandbox, "req"), ["toolz==0.12.1"]);

    // No requirements any more: the lock dpe wrote goes, and so does what it installed.
    stop(&sandbox, "req");
    std::fs::remove_file(dir.join("requirements.txt")).unwrap();
    let stderr = start(&sandbox, "req", &[]);
    assert!(!dir.join("pylock.toml").exists(), "{stderr}");
    assert_eq!(environment(&sandbox, "req"), Vec::<String>::new());
    assert_eq!(image_ids(&sandbox), images, "no change of Python packages built an image");
}

/// The host path of the sync log a failed start names in its `help:` line.
fn kept_sync_log(stderr: &str) -> String {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("help: its full log is `")?.split_once("`; ").map(|(path, _)| path.to_string()))
        .unwrap_or_else(|| panic!("no kept sync log named:\n{stderr}"))
}

/// `dpe jupyter NAME --detach` with no way out of the container: its proxy is a closed port.
fn start_offline(sandbox: &Sandbox, name: &str) -> Output {
    let dead = "http://127.0.0.1:9";
    let mut command = sandbox.dpe();
    command.args(["jupyter", name, "--detach"]).env("HTTPS_PROXY", dead).env("HTTP_PROXY", dead);
    command.stdin(Stdio::null()).output().unwrap()
}

/// The unpacked wheels in a trusted project's shared cache: `archive-v0` gains one entry per
/// download.
fn cached_wheels(sandbox: &Sandbox, name: &str) -> Vec<String> {
    in_volume(sandbox, name, "ls /dpe-cache/cache/archive-v0").lines().map(str::to_string).collect()
}

#[test]
fn a_second_trusted_project_downloads_nothing_from_the_shared_cache_with_or_without_the_network() {
    let Some((sandbox, _cleanup)) = setup(23150) else { return };
    let first = sandbox.project("first", PROJECT_TOML);
    let second = sandbox.project("second", PROJECT_TOML);
    let third = sandbox.project("third", PROJECT_TOML);
    for dir in [&first, &second, &third] {
        std::fs::write(dir.join("requirements.txt"), "iniconfig==2.0.0\ntoolz==0.12.1\n").unwrap();
    }
    let out = dpe(&sandbox, &["trust"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    start(&sandbox, "first", &[]);
    // Same inputs, same lock: the other projects do not resolve.
    std::fs::copy(first.join("pylock.toml"), second.join("pylock.toml")).unwrap();
    std::fs::copy(first.join("pylock.toml"), third.join("pylock.toml")).unwrap();
    // With the network on, the locked wheels come from the cache: nothing is downloaded again.
    let wheels = cached_wheels(&sandbox, "first");
    start(&sandbox, "third", &[]);
    assert_eq!(environment(&sandbox, "third"), ["iniconfig==2.0.0", "toolz==0.12.1"]);
    assert_eq!(cached_wheels(&sandbox, "third"), wheels, "the second install downloaded again");
    // No way out of the container: only the cache the first project filled can serve it.
    let out = start_offline(&sandbox, "second");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let logs = dpe(&sandbox, &["jupyter", "logs", "second"]);
    let logs = text(&logs.stdout) + &text(&logs.stderr);
    assert!(logs.contains("dpe-sync: synced in"), "{logs}");
    assert_eq!(environment(&sandbox, "second"), ["iniconfig==2.0.0", "toolz==0.12.1"]);
    assert_eq!(spec(&sandbox, "first")["image"], spec(&sandbox, "second")["image"], "one image for both");

    // A package the cache lacks is named when the index cannot be reached.
    stop(&sandbox, "second");
    std::fs::write(second.join("requirements.txt"), "iniconfig==2.0.0\ntoolz==0.12.1\nsix==1.16.0\n").unwrap();
    let out = start_offline(&sandbox, "second");
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("error: resolving the Python packages failed"), "{stderr}");
    assert!(stderr.contains("six"), "{stderr}");
    // The container goes, its sync's full log stays in the state directory.
    assert!(
        stderr.contains("error: the Python packages of `second` could not be synced, so its server was not started; its environment is as it was\n"),
        "{stderr}"
    );
    let kept = kept_sync_log(&stderr);
    assert!(kept.starts_with(&sandbox.path("state/jupyter/logs/sync-second-").display().to_string()), "{kept}");
    let log = std::fs::read_to_string(&kept).unwrap();
    assert!(log.contains("$ ") && log.contains("six"), "{log}");
    assert_eq!(environment(&sandbox, "second"), ["iniconfig==2.0.0", "toolz==0.12.1"], "left as it was");

    // The environments live in the store beside the cache, and their packages are hardlinks to
    // it: three projects with the same packages hold one copy of each file.
    let volume = |name: &str| spec(&sandbox, name)["volume"].as_str().unwrap().to_string();
    let file = format!("{SITE}/toolz/__init__.py");
    let inode = |name: &str| in_volume(&sandbox, name, &format!("readlink /dpe/venv; stat -c '%i %h' {file}"));
    let (a, b, c) = (inode("first"), inode("second"), inode("third"));
    assert_eq!(a.lines().next(), Some(format!("/dpe-cache/envs/{}", volume("first")).as_str()));
    let (a, b, c) = (a.lines().nth(1).unwrap(), b.lines().nth(1).unwrap(), c.lines().nth(1).unwrap());
    assert!(a == b && b == c, "one file for three projects: {a} / {b} / {c}");
    let links: u32 = a.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(links >= 4, "the cache and three environments link it: {a}");
    // `list --size` shows what each environment holds on its own in the store: hardlinked
    // packages are the cache's, so far less than the packages' size.
    let out = dpe(&sandbox, &["jupyter", "list", "--size", "--json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out.stderr)));
    let row = list.as_array().unwrap().iter().find(|r| r["project"] == "first").unwrap().clone();
    let own = row["store_bytes"].as_u64().unwrap_or_else(|| panic!("{row}"));
    assert!(own < 200_000, "{row}");

    // `rm` takes the project's packages out of the store; the others keep theirs.
    let envs = || in_volume(&sandbox, "first", "ls /dpe-cache/envs");
    let third_volume = volume("third");
    assert!(envs().contains(&third_volume), "{}", envs());
    let out = dpe(&sandbox, &["jupyter", "rm", "third", "--yes"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("  packages   /dpe-cache/envs/{third_volume} in the package store")), "{stderr}");
    assert!(!envs().contains(&third_volume), "{}", envs());
    assert_eq!(environment(&sandbox, "first"), ["iniconfig==2.0.0", "toolz==0.12.1"]);
    // A volume removed by hand leaves its packages in the store: `gc` finds and removes them.
    let second_volume = volume("second");
    let container = second_volume.strip_suffix("-env").unwrap();
    let removed = Command::new("sh")
        .args(["-c", &format!("docker rm -f {container} >/dev/null 2>&1; docker volume rm {second_volume}")])
        .output()
        .unwrap();
    assert!(removed.status.success(), "{}", text(&removed.stderr));
    let out = dpe(&sandbox, &["jupyter", "gc"]);
    let table = text(&out.stdout);
    let row = table.lines().find(|l| l.starts_with("packages")).unwrap_or_else(|| panic!("{table}"));
    let cells: Vec<&str> = row.split("  ").filter(|c| !c.is_empty()).map(str::trim).collect();
    assert_eq!(
        (cells[0], cells[1], cells[2], cells[4]),
        ("packages", format!("/dpe-cache/envs/{second_volume}").as_str(), "-", "its project's volume is gone"),
        "{table}"
    );
    let out = dpe(&sandbox, &["jupyter", "gc", "--yes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!envs().contains(&second_volume), "{}", envs());
    assert_eq!(environment(&sandbox, "first"), ["iniconfig==2.0.0", "toolz==0.12.1"], "first keeps its packages");

    // A first start that fails leaves no environment in the store, as it leaves no volume.
    let fourth = sandbox.project("fourth", PROJECT_TOML);
    std::fs::write(fourth.join("requirements.txt"), "this-package-does-not-exist-dpe-test==1.0\n").unwrap();
    let out = dpe(&sandbox, &["trust"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = dpe(&sandbox, &["jupyter", "fourth", "--detach"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(!envs().contains(&volume("fourth")), "{}", envs());
    // Its sync's log is state of the project: `rm` takes it with the rest.
    let kept = kept_sync_log(&text(&out.stderr));
    let out = dpe(&sandbox, &["jupyter", "rm", "fourth", "--yes"]);
    assert!(text(&out.stderr).contains(&format!("  state      {kept}\n")), "{}", text(&out.stderr));
    assert!(!std::path::Path::new(&kept).exists());
}

#[test]
fn a_lock_pins_what_it_names_and_a_tampered_one_changes_nothing() {
    let Some((sandbox, _cleanup)) = setup(23200) else { return };
    let dir = sandbox.project("pinned", PROJECT_TOML);
    std::fs::write(dir.join("requirements.txt"), "toolz==0.11.2\n").unwrap();
    let out = dpe(&sandbox, &["jupyter", "lock", "pinned"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The user's own lock (no dpe mark): installed as it is, though newer versions exist and
    // the requirements no longer pin one.
    let lock = std::fs::read_to_string(dir.join("pylock.toml")).unwrap();
    let own: String = lock.lines().filter(|l| !l.starts_with("# dpe-inputs:")).map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.join("pylock.toml"), &own).unwrap();
    std::fs::write(dir.join("requirements.txt"), "toolz\n").unwrap();
    start(&sandbox, "pinned", &[]);
    assert_eq!(environment(&sandbox, "pinned"), ["toolz==0.11.2"]);
    stop(&sandbox, "pinned");

    // A lock whose hash does not match what the index serves is refused before anything
    // changes, here in a project whose environment holds another package.
    let forged_dir = sandbox.project("forged", PROJECT_TOML);
    std::fs::write(forged_dir.join("requirements.txt"), "iniconfig==2.0.0\n").unwrap();
    start(&sandbox, "forged", &[]);
    stop(&sandbox, "forged");
    let wheel_hash = own.split("hashes = { sha256 = \"").nth(2).unwrap()[..64].to_string();
    let forged = format!("{}{}", &wheel_hash[..63], if wheel_hash.ends_with('0') { '1' } else { '0' });
    std::fs::write(forged_dir.join("pylock.toml"), own.replace(&wheel_hash, &forged)).unwrap();
    let out = dpe(&sandbox, &["jupyter", "forged", "--detach"]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("error: syncing the environment with pylock.toml failed"), "{stderr}");
    assert!(stderr.contains("Hash mismatch"), "{stderr}");
    assert_eq!(environment(&sandbox, "forged"), ["iniconfig==2.0.0"], "the environment was left as it was");
}

#[test]
fn a_pyproject_project_gets_exactly_its_uv_lock() {
    let Some((sandbox, _cleanup)) = setup(23250) else { return };
    let dir = sandbox.project("uvproj", PROJECT_TOML);
    let pyproject = |deps: &str| {
        format!("[project]\nname = \"uvproj\"\nversion = \"0.1.0\"\nrequires-python = \">=3.11\"\ndependencies = [{deps}]\n")
    };
    std::fs::write(dir.join("pyproject.toml"), pyproject("\"toolz==0.11.2\"")).unwrap();
    let out = dpe(&sandbox, &["jupyter", "lock", "uvproj"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(std::fs::read_to_string(dir.join("uv.lock")).unwrap().contains("name = \"toolz\""));
    assert!(!dir.join("pylock.toml").exists());
    // uv.lock is honoured exactly: the looser pyproject does not move it.
    std::fs::write(dir.join("pyproject.toml"), pyproject("\"toolz\"")).unwrap();
    start(&sandbox, "uvproj", &[]);
    assert_eq!(environment(&sandbox, "uvproj"), ["toolz==0.11.2"]);
}

/// Trust decides where the environment lives: in the shared store while the project is trusted,
/// in its own volume while it is not (the store is not even mounted), and a move back keeps
/// what the store held.
#[test]
fn an_untrusted_project_gets_a_private_environment_and_nothing_is_lost_when_trusted_again() {
    let Some((sandbox, _cleanup)) = setup(23250) else { return };
    let dir = sandbox.project("flap", PROJECT_TOML);
    std::fs::write(dir.join("requirements.txt"), "toolz==0.12.1\n").unwrap();
    let out = dpe(&sandbox, &["trust"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    start(&sandbox, "flap", &[]);
    let exec = |script: &str| {
        let out = dpe(&sandbox, &["jupyter", "exec", "flap", "--", "sh", "-c", script]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    exec("pip install --quiet tomli-w==1.0.0");
    let shared = format!("/dpe-cache/envs/{}", spec(&sandbox, "flap")["volume"].as_str().unwrap());
    assert_eq!(exec("readlink /dpe/venv"), format!("{shared}\n"));
    stop(&sandbox, "flap");

    // An edited workspace configuration is no longer trusted: no store, a private environment
    // synced from the lock.
    sandbox.write("workspace/dpe.toml", "[jupyter]\nhost_port_start = 23250\n# edited\n");
    assert!(spec(&sandbox, "flap").get("store_volume").is_none());
    start(&sandbox, "flap", &[]);
    let logs = dpe(&sandbox, &["jupyter", "logs", "flap"]);
    let logs = text(&logs.stdout) + &text(&logs.stderr);
    assert!(logs.contains("the shared package store is not mounted (the project is not trusted)"), "{logs}");
    assert_eq!(
        exec("readlink /dpe/venv || echo private; [ -d /dpe-cache/envs ] || echo no store"),
        "private\nno store\n"
    );
    assert_eq!(environment(&sandbox, "flap"), ["toolz==0.12.1"]);
    stop(&sandbox, "flap");
    // As a start killed in the middle of a move leaves it: the old environment renamed, no
    // link yet. The next start puts it back before moving it.
    in_volume(&sandbox, "flap", "mv /dpe/venv /dpe/venv.moved");

    // Trusted again: the private environment moves into the store, and the one the store held
    // (with the package installed by hand) is kept beside it.
    let out = dpe(&sandbox, &["trust"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    start(&sandbox, "flap", &[]);
    assert_eq!(exec("ls -d /dpe/venv.moved 2>&1 >/dev/null | wc -l"), "1\n", "the renamed one is gone");
    assert_eq!(exec("readlink /dpe/venv"), format!("{shared}\n"));
    assert_eq!(environment(&sandbox, "flap"), ["toolz==0.12.1"]);
    assert_eq!(
        exec(&format!("ls {shared}.previous/lib/python3.11/site-packages | grep -c tomli_w-1.0.0.dist-info")),
        "1\n"
    );
    let logs = dpe(&sandbox, &["jupyter", "logs", "flap"]);
    let logs = text(&logs.stdout) + &text(&logs.stderr);
    assert!(logs.contains(&format!("is kept as {shared}.previous")), "{logs}");
    assert_eq!(exec(&format!("ls -A {shared} | grep -c dpe-move-id || true")), "0\n", "a finished move leaves no mark");

    // A start killed after the copy landed in the store and the old environment was renamed,
    // before the link: the next start finishes that move instead of copying again over what
    // the store kept.
    stop(&sandbox, "flap");
    let moves = |logs: &str| logs.matches("moving the environment").count();
    let before = moves(&logs);
    in_volume(
        &sandbox,
        "flap",
        &format!(
            "rm /dpe/venv && cp -a {shared} /dpe/venv.moved && id=$(cat /proc/sys/kernel/random/uuid) && echo $id > /dpe/venv.moved/.dpe-move-id && echo $id > {shared}/.dpe-move-id"
        ),
    );
    start(&sandbox, "flap", &[]);
    assert_eq!(exec("readlink /dpe/venv; ls -d /dpe/venv.moved 2>/dev/null | wc -l"), format!("{shared}\n0\n"));
    assert_eq!(
        exec(&format!("ls {shared}.previous/lib/python3.11/site-packages | grep -c tomli_w-1.0.0.dist-info")),
        "1\n",
        "what the store kept is still kept"
    );
    let logs = dpe(&sandbox, &["jupyter", "logs", "flap"]);
    let logs = text(&logs.stdout) + &text(&logs.stderr);
    assert_eq!(moves(&logs), before, "it copied again:\n{logs}");
}

/// Requirements naming a wheel and an editable package of the project folder, by relative
/// paths, are locked and installed from the folder; an edit of the editable one shows at once.
#[test]
fn requirements_with_local_wheels_and_editable_folders_work_from_the_project_folder() {
    let Some((sandbox, _cleanup)) = setup(23300) else { return };
    let dir = sandbox.project("local", PROJECT_TOML);
    let image = spec(&sandbox, "local")["image"].as_str().unwrap().to_string();
    // The folder this test made is the host user's: the wheel is written as that user.
    let owner = std::fs::metadata(&dir).unwrap();
    let user =
        format!("{}:{}", std::os::unix::fs::MetadataExt::uid(&owner), std::os::unix::fs::MetadataExt::gid(&owner));
    let out = Command::new("docker")
        .args(["run", "--rm", "--network", "none", "--user", &user, "--entrypoint", "python3"])
        .args(["--mount", &format!("type=bind,source={},target=/work", dir.display()), "--workdir", "/work"])
        .args([image.as_str(), "-c", dpe_testkit::MAKE_WHEEL])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::create_dir_all(dir.join("mylib/mylib")).unwrap();
    std::fs::write(
        dir.join("mylib/pyproject.toml"),
        "[build-system]\nrequires = [\"flit_core>=3.2,<4\"]\nbuild-backend = \"flit_core.buildapi\"\n\n[project]\nname = \"mylib\"\nversion = \"0.1\"\ndescription = \"a package of the project\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("mylib/mylib/__init__.py"), "VALUE = 7\n").unwrap();
    std::fs::write(dir.join("requirements.txt"), "./dist/tinypkg-0.1-py3-none-any.whl\n-e ./mylib\n").unwrap();
    start(&sandbox, "local", &[]);
    let value = || {
        let code = "import tinypkg, mylib; print(tinypkg.VALUE, mylib.VALUE, mylib.__file__)";
        let out = dpe(&sandbox, &["jupyter", "exec", "local", "--", "python3", "-c", code]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    assert_eq!(value(), "42 7 /work/mylib/mylib/__init__.py\n");
    // Editable: the project's own source, not a copy.
    std::fs::write(dir.join("mylib/mylib/__init__.py"), "VALUE = 8\n").unwrap();
    assert_eq!(value(), "42 8 /work/mylib/mylib/__init__.py\n");
    // The lock names them by the same relative paths, so it works wherever the folder goes.
    let lock = std::fs::read_to_string(dir.join("pylock.toml")).unwrap();
    assert!(lock.contains("dist/tinypkg-0.1-py3-none-any.whl") && lock.contains("mylib"), "{lock}");
    assert!(!lock.contains(&dir.display().to_string()), "a host path in the lock:\n{lock}");
    // An unchanged restart keeps them without syncing again.
    stop(&sandbox, "local");
    start(&sandbox, "local", &[]);
    assert_eq!(value(), "42 8 /work/mylib/mylib/__init__.py\n");
}

/// A requirements file outside the project folder (a list several projects share) needs trust;
/// trusted, its text reaches the environment, and a change of it is synced in place.
#[test]
fn a_shared_requirements_file_outside_the_project_needs_trust_and_then_syncs() {
    let Some((sandbox, _cleanup)) = setup(23350) else { return };
    let shared = sandbox.write("workspace/shared/requirements.txt", "toolz==0.12.1\n");
    sandbox.project("outside", &format!("{PROJECT_TOML}requirements = \"../../shared/requirements.txt\"\n"));
    let out = dpe(&sandbox, &["jupyter", "outside", "--detach"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("`requirements` reads `{}` into the environment", shared.display())), "{stderr}");
    let out = dpe(&sandbox, &["trust"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    start(&sandbox, "outside", &[]);
    let import = |code: &str| {
        let out = dpe(&sandbox, &["jupyter", "exec", "outside", "--", "python3", "-c", code]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    assert_eq!(import("import toolz; print(toolz.__version__)"), "0.12.1\n");
    // Its text is not on any command line: the env file carries it.
    let inspect = Command::new("docker")
        .args([
            "inspect",
            "--format",
            "{{json .Config.Env}} {{json .Args}}",
            spec(&sandbox, "outside")["container"].as_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!text(&inspect.stdout).contains("DPE_PY_REQUIREMENTS=/"), "{}", text(&inspect.stdout));
    std::fs::write(&shared, "toolz==0.12.1\niniconfig==2.0.0\n").unwrap();
    let stderr = start(&sandbox, "outside", &[]);
    assert!(stderr.contains("+ iniconfig==2.0.0"), "{stderr}");
    assert_eq!(import("import iniconfig; print('imported')"), "imported\n");
}
