//! Plugins: `dpe plugin install|list|uninstall`, dynamic-library plugins, manifests and semver.
//!
//! Every test runs the real `dpe` in a sandbox whose plugin directory is `<data>/plugins`.
//! Library fixtures (tests/fixtures/plugins) are real cargo packages built once per run into
//! `<target>/fixture-plugins`; the gpu plugin's `libdpe_gpu.so` comes from the workspace build.

use dpe_testkit::{bin_dir, binary, set_mode, Sandbox};
use serde_json::Value;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(command: &mut Command) -> Out {
    let output = command.output().expect("run command");
    Out {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn dpe(sb: &Sandbox, args: &[&str]) -> Out {
    run(sb.dpe().args(args))
}

fn plugin_dir(sb: &Sandbox) -> PathBuf {
    sb.path("data/plugins")
}

/// The names in a directory, sorted (hidden temp files included: none may be left).
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn sha256(path: &Path) -> String {
    let out = run(Command::new("sha256sum").arg(path));
    assert_eq!(out.code, 0, "sha256sum: {}", out.stderr);
    out.stdout.split_whitespace().next().unwrap().to_string()
}

/// A shell plugin that opts in to the manifest request with the marker comment.
fn sh_plugin(name: &str, version: &str, dpe_req: &str) -> String {
    format!(
        "#!/bin/sh\n# dpe-plugin-manifest:v1\nif [ \"$1\" = --dpe-manifest ]; then\n  echo '{{\"name\":\"{name}\",\"version\":\"{version}\",\"dpe\":\"{dpe_req}\",\"description\":\"the {name} plugin\"}}'\n  exit 0\nfi\necho \"{name} {version} ran with: $*\"\n"
    )
}

/// The receipt beside an installed file, as `key -> value` (strings unquoted). A plain reader,
/// not the toml crate, so the test also checks the file is the simple TOML users can read.
fn receipt(file: &Path) -> std::collections::HashMap<String, String> {
    let mut name = file.file_name().unwrap().to_os_string();
    name.push(".receipt.toml");
    let text = fs::read_to_string(file.with_file_name(name)).expect("a receipt beside the plugin");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (key, value) = l.split_once(" = ").unwrap_or_else(|| panic!("not `key = value`: {l}"));
            (key.to_string(), value.trim_matches('"').to_string())
        })
        .collect()
}

fn list_json(sb: &Sandbox) -> Vec<Value> {
    let out = dpe(sb, &["--json", "plugin", "list"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    serde_json::from_str::<Vec<Value>>(&out.stdout).expect("plugin list --json is a JSON array")
}

fn row<'a>(rows: &'a [Value], path: &Path) -> &'a Value {
    rows.iter()
        .find(|r| r["path"] == path.to_str().unwrap())
        .unwrap_or_else(|| panic!("no row for {} in {rows:#?}", path.display()))
}

/// The fixture plugins, built once: the directory holding `libdpe_echo.so`, `dpe-echo`, …
fn fixtures() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let target = bin_dir().join("fixture-plugins");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| option_env!("CARGO").unwrap_or("cargo").into());
        for name in ["echo", "future", "abi-mismatch", "plain"] {
            let manifest = fixture_source(name).join("Cargo.toml");
            let status = Command::new(&cargo)
                .args(["build", "--quiet", "--manifest-path"])
                .arg(&manifest)
                .arg("--target-dir")
                .arg(&target)
                .status()
                .expect("run cargo");
            assert!(status.success(), "building fixture {} failed", manifest.display());
        }
        target.join("debug")
    })
}

fn fixture_source(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plugins").join(name)
}

fn lib(name: &str) -> PathBuf {
    fixtures().join(format!("libdpe_{name}.so"))
}

// ---------------------------------------------------------------------------------------------
// install / uninstall

#[test]
fn install_copies_the_plugin_with_a_receipt_and_it_runs() {
    let sb = Sandbox::new();
    let source = sb.write_exe("src/dpe-hello", &sh_plugin("hello", "1.2.0", "^0.1"));
    let out = dpe(&sb, &["plugin", "install", source.to_str().unwrap()]);
    let installed = plugin_dir(&sb).join("dpe-hello");
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    assert_eq!(out.stdout, format!("installed `hello` 1.2.0 (executable) as `{}`\n", installed.display()));

    assert_eq!(fs::read(&installed).unwrap(), fs::read(&source).unwrap());
    assert_eq!(mode(&installed), 0o755);
    assert_eq!(mode(&plugin_dir(&sb)), 0o755, "the plugin dir is never writable by others");
    assert_eq!(listing(&plugin_dir(&sb)), ["dpe-hello", "dpe-hello.receipt.toml"]);

    let receipt = receipt(&installed);
    assert_eq!(receipt["name"], "hello");
    assert_eq!(receipt["version"], "1.2.0");
    assert_eq!(receipt["kind"], "executable");
    assert_eq!(receipt["file"], "dpe-hello");
    assert_eq!(receipt["source"], source.to_str().unwrap());
    assert_eq!(receipt["sha256"], sha256(&source));
    assert_eq!(receipt["size"], fs::metadata(&source).unwrap().len().to_string());
    assert_eq!(receipt["dpe_version"], "0.1.0");
    assert_eq!(receipt["dpe_requirement"], "^0.1");
    assert_eq!(receipt["forced"], "false");
    let installed_at = &receipt["installed"];
    assert!(
        installed_at.len() == 20 && installed_at.ends_with('Z') && installed_at.starts_with("20"),
        "{installed_at}"
    );

    let ran = dpe(&sb, &["hello", "a", "b"]);
    assert_eq!((ran.code, ran.stdout.as_str()), (0, "hello 1.2.0 ran with: a b\n"));
}

#[test]
fn reinstall_replaces_the_plugin_and_the_new_manifest_is_seen() {
    let sb = Sandbox::new();
    let v1 = sb.write_exe("v1/dpe-hello", &sh_plugin("hello", "1.0.0", "^0.1"));
    let v2 = sb.write_exe("v2/dpe-hello", &sh_plugin("hello", "2.0.0", "^0.1"));
    assert_eq!(dpe(&sb, &["plugin", "install", v1.to_str().unwrap()]).code, 0);
    assert_eq!(list_json(&sb).iter().find(|r| r["name"] == "hello").unwrap()["version"], "1.0.0");

    let out = dpe(&sb, &["plugin", "install", v2.to_str().unwrap()]);
    let installed = plugin_dir(&sb).join("dpe-hello");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        format!("installed `hello` 2.0.0 (executable) as `{}`, replacing version 1.0.0\n", installed.display())
    );
    assert_eq!(listing(&plugin_dir(&sb)), ["dpe-hello", "dpe-hello.receipt.toml"]);
    assert_eq!(dpe(&sb, &["hello"]).stdout, "hello 2.0.0 ran with: \n");
    let rows = list_json(&sb);
    let hello = row(&rows, &installed);
    assert_eq!(hello["version"], "2.0.0");
    assert_eq!(hello["receipt"]["sha256"], sha256(&v2).as_str());
}

#[test]
fn a_copy_that_fails_half_way_leaves_the_old_plugin_and_no_temp_file() {
    let sb = Sandbox::new();
    let v1 = sb.write_exe("v1/dpe-big", "#!/bin/sh\necho big 1\n");
    assert_eq!(dpe(&sb, &["plugin", "install", v1.to_str().unwrap()]).code, 0);
    let before = fs::read(plugin_dir(&sb).join("dpe-big.receipt.toml")).unwrap();
    // 200 KiB, far over the file size limit below, so the write fails in the middle.
    let padding = "# padding padding padding padding padding padding padding padding padding\n".repeat(2800);
    let v2 = sb.write_exe("v2/dpe-big", &format!("#!/bin/sh\n{padding}echo big 2\n"));
    // `ulimit -f` makes a write past 8 KiB fail with EFBIG (SIGXFSZ ignored), mid-copy.
    let out = run(sb
        .command("sh")
        .args(["-c", "ulimit -f 16; trap '' XFSZ; exec \"$0\" \"$@\""])
        .arg(binary("dpe"))
        .args(["plugin", "install", v2.to_str().unwrap()]));
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        format!(
            "error: could not copy `{}` into `{}`: File too large (os error 27)\n\
             help: nothing was installed; free some space or fix the directory, then try again\n",
            v2.display(),
            plugin_dir(&sb).display()
        )
    );
    assert_eq!(listing(&plugin_dir(&sb)), ["dpe-big", "dpe-big.receipt.toml"]);
    assert_eq!(fs::read(plugin_dir(&sb).join("dpe-big")).unwrap(), fs::read(&v1).unwrap());
    assert_eq!(fs::read(plugin_dir(&sb).join("dpe-big.receipt.toml")).unwrap(), before);
    assert_eq!(dpe(&sb, &["big"]).stdout, "big 1\n");
}

#[test]
fn ctrl_c_during_install_installs_nothing() {
    let sb = Sandbox::new();
    let v1 = sb.write_exe("v1/dpe-hello", &sh_plugin("hello", "1.0.0", "^0.1"));
    assert_eq!(dpe(&sb, &["plugin", "install", v1.to_str().unwrap()]).code, 0);
    // Asked for its manifest, this plugin interrupts dpe (its parent) as Ctrl+C would, then
    // answers: the interrupt lands after the checks, just before the copy.
    let v2 = sb.write_exe(
        "v2/dpe-hello",
        "#!/bin/sh\n# dpe-plugin-manifest:v1\nif [ \"$1\" = --dpe-manifest ]; then\n  kill -INT $PPID\n  echo '{\"name\":\"hello\",\"version\":\"2.0.0\",\"dpe\":\"^0.1\"}'\n  exit 0\nfi\necho hello 2\n",
    );
    let out = dpe(&sb, &["plugin", "install", v2.to_str().unwrap()]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (130, "", "error: interrupted: nothing was installed\n")
    );
    assert_eq!(listing(&plugin_dir(&sb)), ["dpe-hello", "dpe-hello.receipt.toml"]);
    assert_eq!(fs::read(plugin_dir(&sb).join("dpe-hello")).unwrap(), fs::read(&v1).unwrap());
    assert_eq!(receipt(&plugin_dir(&sb).join("dpe-hello"))["version"], "1.0.0");
}

#[test]
fn install_removes_temp_files_of_a_killed_install() {
    let sb = Sandbox::new();
    // What `kill -9` during an install of `hello` leaves: temp files of a process that is gone
    // (pid 0 is never a user process), and one of a live install (this test) that must stay.
    let live = format!(".dpe-hello.install-{}", std::process::id());
    for name in [".dpe-hello.install-0", ".dpe-hello.receipt.install-0", live.as_str(), ".dpe-other.install-0"] {
        sb.write(&format!("data/plugins/{name}"), "partial");
    }
    let source = sb.write_exe("src/dpe-hello", &sh_plugin("hello", "1.0.0", "^0.1"));
    assert_eq!(dpe(&sb, &["plugin", "install", source.to_str().unwrap()]).code, 0);
    let mut expected =
        vec![".dpe-other.install-0".to_string(), live, "dpe-hello".into(), "dpe-hello.receipt.toml".into()];
    expected.sort();
    assert_eq!(listing(&plugin_dir(&sb)), expected);
}

#[test]
fn a_failed_commit_leaves_no_temp_file_or_receipt() {
    let sb = Sandbox::new();
    // Something that is not a plugin file already sits where the plugin would go.
    sb.write("data/plugins/dpe-hello/keep", "");
    let source = sb.write_exe("src/dpe-hello", &sh_plugin("hello", "1.0.0", "^0.1"));
    let out = dpe(&sb, &["plugin", "install", source.to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        format!(
            "error: could not install the plugin as `{}`: Is a directory (os error 21)\n",
            plugin_dir(&sb).join("dpe-hello").display()
        )
    );
    assert_eq!(listing(&plugin_dir(&sb)), ["dpe-hello"]);
    assert_eq!(listing(&plugin_dir(&sb).join("dpe-hello")), ["keep"]);
}

#[test]
fn install_refuses_what_it_cannot_or_must_not_install() {
    let sb = Sandbox::new();
    let missing = sb.path("src/dpe-gone");
    let out = dpe(&sb, &["plugin", "install", missing.to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        format!(
            "error: `{}` does not exist\nhelp: give the plugin file (`dpe-NAME` or `libdpe_NAME.so`) or a cargo project directory\n",
            missing.display()
        )
    );

    let not_exec = sb.write("src/dpe-plain", "#!/bin/sh\necho hi\n");
    let out = dpe(&sb, &["plugin", "install", not_exec.to_str().unwrap()]);
    assert_eq!(
        out.stderr,
        format!(
            "error: `{0}` is not executable\nhelp: if it is a plugin you trust, run `chmod +x {0}` first\n",
            not_exec.display()
        )
    );

    let bad_name = sb.write_exe("src/dpe-Bad.Name", "#!/bin/sh\n");
    let out = dpe(&sb, &["plugin", "install", bad_name.to_str().unwrap()]);
    assert_eq!(
        out.stderr,
        "error: `Bad.Name` is not a valid plugin name\nhelp: names use lowercase letters, digits, `-` and `_`, and start with a letter or digit\n"
    );

    let builtin = sb.write_exe("src/dpe-docker", "#!/bin/sh\n");
    let out = dpe(&sb, &["plugin", "install", builtin.to_str().unwrap()]);
    assert_eq!(
        out.stderr,
        "error: `docker` is a builtin command, so a plugin of that name would never run\nhelp: give the plugin another name\n"
    );

    let liar = sb.write_exe("src/dpe-one", &sh_plugin("two", "1.0.0", "^0.1"));
    let out = dpe(&sb, &["plugin", "install", liar.to_str().unwrap()]);
    assert_eq!(
        out.stderr,
        format!(
            "error: `{}` calls itself `two` in its manifest, but its file name makes it `one`\nhelp: rename the file to `dpe-two`, or fix the manifest's `name`\n",
            liar.display()
        )
    );

    let empty_dir = sb.path("src");
    let out = dpe(&sb, &["plugin", "install", empty_dir.to_str().unwrap()]);
    assert_eq!(
        out.stderr,
        format!(
            "error: `{}` is a directory without a `Cargo.toml`\nhelp: give the plugin file (`dpe-NAME` or `libdpe_NAME.so`) or a cargo project directory\n",
            empty_dir.display()
        )
    );
    assert!(!plugin_dir(&sb).exists() || listing(&plugin_dir(&sb)).is_empty(), "{:?}", listing(&plugin_dir(&sb)));
}

#[test]
fn install_refuses_a_group_writable_plugin_dir() {
    let sb = Sandbox::new();
    fs::create_dir_all(plugin_dir(&sb)).unwrap();
    set_mode(&plugin_dir(&sb), 0o775);
    let source = sb.write_exe("src/dpe-hello", &sh_plugin("hello", "1.0.0", "^0.1"));
    let out = dpe(&sb, &["plugin", "install", source.to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        format!(
            "error: refusing to install into `{0}`: it is writable by its group (mode 775), so someone else could change what runs\nhelp: run `chmod go-w {0}`\n",
            plugin_dir(&sb).display()
        )
    );
    assert!(listing(&plugin_dir(&sb)).is_empty());
}

#[test]
fn semver_incompatible_plugins_are_refused_unless_forced() {
    let sb = Sandbox::new();
    let source = sb.write_exe("src/dpe-old", &sh_plugin("old", "4.0.0", ">=9"));
    let out = dpe(&sb, &["plugin", "install", source.to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        format!(
            "error: plugin `old` 4.0.0 at `{}` requires dpe >=9, but this is dpe 0.1.0\n\
             help: install a version of `old` built for dpe 0.1.0; `--force` installs it anyway, but dpe will not run it\n",
            source.display()
        )
    );
    assert!(!plugin_dir(&sb).join("dpe-old").exists());

    let out = dpe(&sb, &["plugin", "install", "--force", source.to_str().unwrap()]);
    let installed = plugin_dir(&sb).join("dpe-old");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stderr,
        format!(
            "warning: plugin `old` 4.0.0 at `{}` requires dpe >=9, but this is dpe 0.1.0\n\
             warning: installing anyway (--force); dpe will refuse to run it until that is fixed\n",
            source.display()
        )
    );
    assert_eq!(receipt(&installed)["forced"], "true");

    let ran = dpe(&sb, &["old"]);
    assert_eq!(ran.code, 1);
    assert_eq!(
        ran.stderr,
        format!(
            "error: plugin `old` 4.0.0 at `{}` requires dpe >=9, but this is dpe 0.1.0\nhelp: install a version of `old` that supports dpe 0.1.0, or upgrade dpe\n",
            installed.display()
        )
    );
    let rows = list_json(&sb);
    let old = row(&rows, &installed);
    assert_eq!(
        (old["status"].as_str(), old["reason"].as_str()),
        (Some("incompatible"), Some("requires dpe >=9, this is dpe 0.1.0"))
    );
}

#[test]
fn uninstall_removes_plugin_receipt_and_cached_manifest() {
    let sb = Sandbox::new();
    let source = sb.write_exe("src/dpe-hello", &sh_plugin("hello", "1.2.0", "^0.1"));
    assert_eq!(dpe(&sb, &["plugin", "install", source.to_str().unwrap()]).code, 0);
    assert_eq!(dpe(&sb, &["hello"]).code, 0);
    assert_eq!(listing(&sb.path("cache/manifests")).len(), 1, "dispatch cached the manifest");

    let out = dpe(&sb, &["plugin", "uninstall", "hello"]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    assert_eq!(out.stdout, format!("uninstalled `hello` 1.2.0 (`{}`)\n", plugin_dir(&sb).join("dpe-hello").display()));
    assert!(listing(&plugin_dir(&sb)).is_empty());
    assert!(listing(&sb.path("cache/manifests")).is_empty());
    assert_eq!(dpe(&sb, &["hello"]).code, 1);
}

#[test]
fn uninstall_of_an_unknown_name_suggests_and_leaves_others_alone() {
    let sb = Sandbox::new();
    let source = sb.write_exe("src/dpe-hello", &sh_plugin("hello", "1.2.0", "^0.1"));
    assert_eq!(dpe(&sb, &["plugin", "install", source.to_str().unwrap()]).code, 0);
    let dir = plugin_dir(&sb);

    let out = dpe(&sb, &["plugin", "uninstall", "helo"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        format!("error: no plugin named `helo` is installed in `{}`\nhelp: did you mean `hello`?\n", dir.display())
    );

    let out = dpe(&sb, &["plugin", "uninstall", "zzz"]);
    assert_eq!(
        out.stderr,
        format!(
            "error: no plugin named `zzz` is installed in `{}`\nhelp: `dpe plugin list` shows every plugin\n",
            dir.display()
        )
    );

    // A plugin on PATH was not installed by dpe: it is named, and left alone.
    let on_path = sb.write_exe("bin/dpe-tool", "#!/bin/sh\n");
    let out = dpe(&sb, &["plugin", "uninstall", "tool"]);
    assert_eq!(
        out.stderr,
        format!(
            "error: plugin `tool` is not installed in `{}`; the one dpe runs is `{}` (on PATH)\nhelp: dpe only removes plugins it installed; delete that file yourself if you no longer want it\n",
            dir.display(),
            on_path.display()
        )
    );
    assert!(on_path.exists());

    let out = dpe(&sb, &["plugin", "uninstall", "../x"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.starts_with("error: `../x` is not a valid plugin name\n"), "{}", out.stderr);
    assert_eq!(listing(&dir), ["dpe-hello", "dpe-hello.receipt.toml"]);
}

#[test]
fn install_builds_a_cargo_project() {
    let sb = Sandbox::new();
    let project = sb.path("hello-rs");
    for file in ["Cargo.toml", "Cargo.lock", "src/main.rs"] {
        sb.write(&format!("hello-rs/{file}"), &fs::read_to_string(fixture_source("hello-rs").join(file)).unwrap());
    }
    // The toolchain dpe runs: the cargo running these tests, with its rustc beside it.
    let cargo =
        PathBuf::from(std::env::var_os("CARGO").unwrap_or_else(|| option_env!("CARGO").unwrap_or("cargo").into()));
    let sandbox_path = sb.env().into_iter().find(|(k, _)| k == "PATH").unwrap().1;
    let path = match cargo.parent().filter(|p| p.is_absolute()) {
        Some(dir) => format!("{}:{sandbox_path}", dir.display()),
        None => sandbox_path,
    };
    let out = run(sb
        .dpe()
        .args(["plugin", "install", project.to_str().unwrap()])
        .env("PATH", path)
        .env("CARGO", &cargo)
        .env("CARGO_HOME", sb.path("cargo-home"))
        .env("CARGO_TARGET_DIR", sb.path("hello-rs/target")));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let built = project.join("target/release/dpe-hello-rs");
    assert!(
        out.stderr.starts_with(&format!("building `{}` with `cargo build --release`\n", project.display())),
        "{}",
        out.stderr
    );
    assert!(out.stderr.ends_with(&format!("built `{}` (executable)\n", built.display())), "{}", out.stderr);
    let installed = plugin_dir(&sb).join("dpe-hello-rs");
    assert_eq!(out.stdout, format!("installed `hello-rs` 0.3.0 (executable) as `{}`\n", installed.display()));
    let receipt = receipt(&installed);
    assert_eq!(receipt["built_from"], project.to_str().unwrap());
    assert_eq!(receipt["source"], built.to_str().unwrap());
    assert_eq!(receipt["sha256"], sha256(&installed));

    let ran = dpe(&sb, &["hello-rs", "x"]);
    assert_eq!((ran.code, ran.stdout.as_str()), (0, "hello from rust, project ``, args [\"x\"]\n"));
}

// ---------------------------------------------------------------------------------------------
// list

#[test]
fn list_shows_precedence_plugin_dir_then_beside_dpe_then_path() {
    let sb = Sandbox::new();
    // A dpe of our own, so "beside dpe" is a directory this test controls.
    let own_dpe = sb.private_dpe();
    let opt = own_dpe.parent().unwrap().to_path_buf();
    let script = |place: &str| format!("#!/bin/sh\necho dup from {place}\n");
    let in_dir = sb.write_exe("data/plugins/dpe-dup", &script("plugin dir"));
    let beside = sb.write_exe("opt/dpe-dup", &script("beside dpe"));
    let on_path = sb.write_exe("bin/dpe-dup", &script("PATH"));
    // dpe's own directory and `bin` twice on PATH, plus entries dpe must skip: each file is
    // still listed once.
    let (bin, opt) = (sb.path("bin"), opt.display());
    let path = format!("{opt}:{}::.:relative/bin:{}:/usr/bin:/bin", bin.display(), bin.display());
    let own = |args: &[&str]| run(sb.command(&own_dpe).args(args).env("PATH", &path));

    assert_eq!(own(&["dup"]).stdout, "dup from plugin dir\n");
    let out = own(&["plugin", "list"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (d, b, p) = (in_dir.display(), beside.display(), on_path.display());
    assert_eq!(
        out.stdout,
        format!(
            "NAME  VERSION  KIND        SOURCE      STATUS    PATH\n\
             dup   -        executable  plugin dir  ok        {d}\n\
             dup   -        executable  beside dpe  shadowed  {b}\n  └ shadowed by `{d}`\n\
             dup   -        executable  PATH        shadowed  {p}\n  └ shadowed by `{d}`\n"
        )
    );

    fs::remove_file(&in_dir).unwrap();
    assert_eq!(own(&["dup"]).stdout, "dup from beside dpe\n");
    let rows: Vec<Value> = serde_json::from_str(&own(&["--json", "plugin", "list"]).stdout).unwrap();
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert_eq!((rows[0]["source"].as_str(), rows[0]["status"].as_str()), (Some("beside-dpe"), Some("ok")));
    assert_eq!((rows[1]["source"].as_str(), rows[1]["status"].as_str()), (Some("path"), Some("shadowed")));
    assert_eq!(rows[1]["shadowed_by"].as_str(), beside.to_str());

    fs::remove_file(&beside).unwrap();
    assert_eq!(own(&["dup"]).stdout, "dup from PATH\n");
}

#[test]
fn list_explains_every_plugin_that_would_not_run_and_never_fails() {
    let sb = Sandbox::new();
    let ok = sb.write_exe("bin/dpe-fine", &sh_plugin("fine", "1.0.0", "^0.1"));
    let not_exec = sb.write("bin/dpe-noexec", "#!/bin/sh\n");
    let open = sb.write_exe("bin/dpe-open", "#!/bin/sh\n");
    set_mode(&open, 0o777);
    let grp = sb.write_exe("gbin/dpe-grp", "#!/bin/sh\n");
    set_mode(&sb.path("gbin"), 0o775);
    let old = sb.write_exe("bin/dpe-old", &sh_plugin("old", "4.0.0", ">=9"));
    let proto = sb.write_exe(
        "bin/dpe-proto",
        "#!/bin/sh\n# dpe-plugin-manifest:v1\necho '{\"name\":\"proto\",\"version\":\"1.0.0\",\"dpe\":\"*\",\"protocol\":2}'\n",
    );
    let broken = sb.write_exe("bin/dpe-broken", "#!/bin/sh\n# dpe-plugin-manifest:v1\necho 'this is not json'\n");
    // The insecure and unexecutable ones must never be run, even to ask for a manifest.
    let tripwire = sb.path("ran");
    fs::write(&open, format!("#!/bin/sh\n# dpe-plugin-manifest:v1\ntouch {}\n", tripwire.display())).unwrap();
    let path = format!("{}:{}:/usr/bin:/bin", sb.path("bin").display(), sb.path("gbin").display());

    let out = run(sb.dpe().args(["--json", "plugin", "list"]).env("PATH", &path));
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    let rows: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
    let status = |p: &Path| {
        let r = row(&rows, p);
        (r["status"].as_str().unwrap().to_string(), r["reason"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(status(&ok), ("ok".into(), "".into()));
    assert_eq!(row(&rows, &ok)["version"], "1.0.0");
    assert_eq!(row(&rows, &ok)["description"], "the fine plugin");
    assert_eq!(
        status(&not_exec),
        ("not-executable".into(), format!("not executable: run `chmod +x {}`", not_exec.display()))
    );
    assert_eq!(
        status(&open),
        ("insecure".into(), format!("`{0}` is writable by everyone (mode 777): run `chmod go-w {0}`", open.display()))
    );
    let gbin = sb.path("gbin");
    assert_eq!(
        status(&grp),
        ("insecure".into(), format!("`{0}` is writable by its group (mode 775): run `chmod go-w {0}`", gbin.display()))
    );
    assert_eq!(status(&old), ("incompatible".into(), "requires dpe >=9, this is dpe 0.1.0".into()));
    assert_eq!(status(&proto), ("incompatible".into(), "speaks plugin protocol 2, this dpe speaks protocol 1".into()));
    let (word, reason) = status(&broken);
    assert_eq!(word, "broken");
    assert!(
        reason.starts_with(&format!("plugin `broken` at `{}` gave an invalid manifest: ", broken.display())),
        "{reason}"
    );
    assert!(!tripwire.exists(), "an insecure plugin was run");

    // The human table says the same, one reason line under each plugin that would not run.
    let out = run(sb.dpe().args(["plugin", "list"]).env("PATH", &path));
    assert_eq!(out.code, 0);
    let text = out.stdout;
    assert!(text.starts_with("NAME "), "{text}");
    for expected in [
        format!("  └ not executable: run `chmod +x {}`\n", not_exec.display()),
        "  └ requires dpe >=9, this is dpe 0.1.0\n".to_string(),
        format!("  └ `{0}` is writable by everyone (mode 777): run `chmod go-w {0}`\n", open.display()),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in\n{text}");
    }
}

#[test]
fn the_manifest_cache_follows_the_file() {
    let sb = Sandbox::new();
    let file = sb.write_exe("data/plugins/dpe-ver", &sh_plugin("ver", "1.0.0", "^0.1"));
    let version = |sb: &Sandbox| row(&list_json(sb), &file)["version"].as_str().map(str::to_string);
    assert_eq!(version(&sb).as_deref(), Some("1.0.0"));

    // Same size, same path: only the modification time tells the cache it changed.
    fs::write(&file, sh_plugin("ver", "2.0.0", "^0.1")).unwrap();
    let later = fs::metadata(&file).unwrap().modified().unwrap() + std::time::Duration::from_secs(5);
    fs::File::options().write(true).open(&file).unwrap().set_modified(later).unwrap();
    assert_eq!(version(&sb).as_deref(), Some("2.0.0"));

    // A different size invalidates it too, and the dispatch path sees the new manifest.
    fs::write(&file, sh_plugin("ver", "10.0.0", ">=9")).unwrap();
    assert_eq!(version(&sb).as_deref(), Some("10.0.0"));
    let ran = dpe(&sb, &["ver"]);
    assert_eq!(ran.code, 1);
    assert!(
        ran.stderr.starts_with(&format!("error: plugin `ver` 10.0.0 at `{}` requires dpe >=9", file.display())),
        "{}",
        ran.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// script plugins in other languages, and `dpe help NAME`

#[test]
fn a_sh_plugin_and_a_python_plugin_opt_in_to_the_manifest() {
    let sb = Sandbox::new();
    sb.project("alpha", "");
    let greet = sb.write_exe(
        "src/dpe-greet",
        "#!/bin/sh\n\
         # dpe-plugin-manifest:v1\n\
         case \"$1\" in\n\
         \x20 --dpe-manifest) echo '{\"name\":\"greet\",\"version\":\"1.0.0\",\"dpe\":\"^0.1\",\"description\":\"greets\"}'; exit 0 ;;\n\
         \x20 --help) echo 'usage: dpe greet [WHO]'; exit 0 ;;\n\
         esac\n\
         echo \"hello ${1:-world} from $DPE_PLUGIN\"\n",
    );
    let python = sb.write_exe(
        "src/dpe-pyplug",
        "#!/usr/bin/env python3\n\
         # dpe-plugin-manifest:v1\n\
         import json, os, sys\n\
         if sys.argv[1:2] == ['--dpe-manifest']:\n\
         \x20   print(json.dumps({'name': 'pyplug', 'version': '2.1.0', 'dpe': '^0.1', 'description': 'a python plugin', 'takes_project': True}))\n\
         \x20   sys.exit(0)\n\
         if sys.argv[1:2] == ['--help']:\n\
         \x20   print('usage: dpe pyplug [PROJECT]')\n\
         \x20   sys.exit(0)\n\
         context = json.loads(os.environ['DPE_CONTEXT'])\n\
         print('pyplug: project', context['project']['name'], 'from the context, args', sys.argv[1:])\n\
         sys.exit(7)\n",
    );
    for source in [&greet, &python] {
        let out = dpe(&sb, &["plugin", "install", source.to_str().unwrap()]);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let rows = list_json(&sb);
    let g = row(&rows, &plugin_dir(&sb).join("dpe-greet"));
    let p = row(&rows, &plugin_dir(&sb).join("dpe-pyplug"));
    assert_eq!(
        (g["version"].as_str(), g["status"].as_str(), g["description"].as_str()),
        (Some("1.0.0"), Some("ok"), Some("greets"))
    );
    assert_eq!((p["version"].as_str(), p["status"].as_str()), (Some("2.1.0"), Some("ok")));

    assert_eq!(dpe(&sb, &["greet", "you"]).stdout, "hello you from greet\n");
    // The manifest says pyplug takes a project: `alpha` selects it.
    let ran = dpe(&sb, &["pyplug", "alpha", "--x"]);
    assert_eq!((ran.code, ran.stdout.as_str()), (7, "pyplug: project alpha from the context, args ['alpha', '--x']\n"));

    let help = dpe(&sb, &["help", "greet"]);
    assert_eq!((help.code, help.stdout.as_str()), (0, "usage: dpe greet [WHO]\n"));
    let help = dpe(&sb, &["help", "pyplug"]);
    assert_eq!((help.code, help.stdout.as_str()), (0, "usage: dpe pyplug [PROJECT]\n"));
}

#[test]
fn a_script_without_the_marker_is_never_run_for_a_manifest() {
    let sb = Sandbox::new();
    let tripwire = sb.path("ran");
    let source = sb.write_exe("src/dpe-quiet", &format!("#!/bin/sh\ntouch {}\necho quiet ran\n", tripwire.display()));
    let out = dpe(&sb, &["plugin", "install", source.to_str().unwrap()]);
    assert_eq!(
        out.stdout,
        format!("installed `quiet` (executable) as `{}`\n", plugin_dir(&sb).join("dpe-quiet").display())
    );
    let rows = list_json(&sb);
    let quiet = row(&rows, &plugin_dir(&sb).join("dpe-quiet"));
    assert_eq!((quiet["version"].clone(), quiet["status"].as_str()), (Value::Null, Some("ok")));
    assert!(!tripwire.exists(), "install or list ran a plugin that did not opt in");
    assert_eq!(dpe(&sb, &["quiet"]).stdout, "quiet ran\n");
}

// ---------------------------------------------------------------------------------------------
// dynamic-library plugins

#[test]
fn a_library_plugin_gets_the_same_context_and_hooks_as_its_executable_form() {
    let sb = Sandbox::new();
    sb.project("alpha", "");
    // A user-level hook (always trusted) that refuses the docker call, so no engine is needed.
    sb.write_exe(
        "config/hooks/pre-docker",
        "#!/bin/sh\necho \"pre-docker hook: plugin=$DPE_PLUGIN project=$DPE_PROJECT verb=$DPE_DOCKER_VERB\"\nexit 3\n",
    );
    let args = ["-v", "echo", "alpha", "docker", "version"];

    let out = dpe(&sb, &["plugin", "install", fixtures().join("dpe-echo").to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let executable = dpe(&sb, &args);

    let out = dpe(&sb, &["plugin", "install", lib("echo").to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let library_file = plugin_dir(&sb).join("libdpe_echo.so");
    assert_eq!(
        out.stdout,
        format!("installed `echo` 0.2.0 (dynamic library) as `{}`, replacing version 0.2.0\n", library_file.display())
    );
    assert_eq!(
        listing(&plugin_dir(&sb)),
        ["libdpe_echo.so", "libdpe_echo.so.receipt.toml"],
        "the executable form was replaced"
    );
    let rows = list_json(&sb);
    assert_eq!(row(&rows, &library_file)["kind"], "dynamic");
    let library = dpe(&sb, &args);

    let head = format!(
        "plugin: echo\nproject: alpha\nworkspace: {}\nargs: alpha docker version\n\
         env DPE_PLUGIN=echo\nenv DPE_PROJECT=alpha\nenv DPE_PROTOCOL=1\nenv DPE_VERBOSE=1\nenv DPE_JSON=0\n",
        sb.workspace().display()
    );
    // The pre hook refused, so `dpe docker` failed with a status the plugin passes on; the
    // last word has no newline (the library form must flush it before dpe exits).
    assert_ne!(executable.code, 0, "{}", executable.stderr);
    assert_eq!(executable.stdout, format!("{head}dpe docker exited {}\ndone", executable.code));
    // The hook's words go to stderr, never into the docker output the plugin reads.
    assert!(
        executable.stderr.starts_with("pre-docker hook: plugin=echo project=alpha verb=version\nerror: pre hook `"),
        "{}",
        executable.stderr
    );
    assert_eq!(
        (library.code, library.stdout.as_str(), library.stderr.as_str()),
        (executable.code, executable.stdout.as_str(), executable.stderr.as_str())
    );

    let plain = dpe(&sb, &["echo", "exit", "42"]);
    assert_eq!(plain.code, 42);
    let help = dpe(&sb, &["help", "echo"]);
    assert_eq!(
        help.stdout,
        "dpe echo: prints what dpe handed it\nusage: dpe echo [PROJECT] [exit N | docker ARGS...]\n"
    );
}

#[test]
fn the_gpu_plugin_runs_as_a_library_like_its_executable() {
    let sb = Sandbox::new();
    let gpu_lib = binary("libdpe_gpu.so");
    // `dpe-gpu` beside dpe in the target dir is the executable form.
    let executable = dpe(&sb, &["gpu", "check"]);
    let out = dpe(&sb, &["plugin", "install", gpu_lib.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let installed = plugin_dir(&sb).join("libdpe_gpu.so");
    assert!(out.stdout.starts_with("installed `gpu` "), "{}", out.stdout);
    assert!(out.stdout.ends_with(&format!(" (dynamic library) as `{}`\n", installed.display())), "{}", out.stdout);
    assert_eq!(out.stderr, format!("note: it takes precedence over `{}` (beside dpe)\n", binary("dpe-gpu").display()));
    let rows = list_json(&sb);
    assert_eq!(row(&rows, &installed)["status"], "ok");
    assert_eq!(row(&rows, &binary("dpe-gpu"))["status"], "shadowed");

    let library = dpe(&sb, &["gpu", "check"]);
    assert_eq!(
        (library.code, library.stdout.as_str(), library.stderr.as_str()),
        (executable.code, executable.stdout.as_str(), executable.stderr.as_str())
    );
    if !Path::new("/dev/nvidiactl").exists() && !Path::new("/usr/bin/nvidia-smi").exists() {
        assert_eq!(library.code, 1);
        let said = format!("{}{}", library.stdout, library.stderr);
        assert!(said.contains("no NVIDIA GPU driver"), "{said}");
    }
}

#[test]
fn an_abi_mismatch_is_a_clear_error_never_a_crash() {
    let sb = Sandbox::new();
    let source = lib("abi_mismatch");
    let out = dpe(&sb, &["plugin", "install", "--force", source.to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        format!(
            "error: plugin library `{}` uses plugin ABI 999, but this dpe (version 0.1.0) uses ABI 1\n\
             help: rebuild the plugin against the `dpe-plugin` crate of dpe 0.1.0 (ABI 1); `--force` cannot help, dpe cannot call a library of another ABI\n",
            source.display()
        )
    );
    assert!(listing(&plugin_dir(&sb)).is_empty());

    // Put there by hand: dispatch and list read the version first and stop.
    fs::create_dir_all(plugin_dir(&sb)).unwrap();
    let placed = plugin_dir(&sb).join("libdpe_abi_mismatch.so");
    fs::copy(&source, &placed).unwrap();
    let ran = dpe(&sb, &["abi-mismatch"]);
    assert_eq!(ran.code, 1);
    assert_eq!(
        ran.stderr,
        format!(
            "error: plugin library `{}` uses plugin ABI 999, but this dpe uses ABI 1\n\
             help: rebuild the plugin against dpe-plugin 0.1.0, or remove it with `dpe plugin uninstall abi-mismatch`\n",
            placed.display()
        )
    );
    let rows = list_json(&sb);
    let r = row(&rows, &placed);
    assert_eq!(r["status"], "incompatible");
    assert_eq!(r["reason"], "plugin ABI 999, this dpe uses ABI 1: rebuild it against this dpe's `dpe-plugin`");
    assert_eq!(dpe(&sb, &["plugin", "uninstall", "abi-mismatch"]).code, 0);
}

#[test]
fn a_library_without_the_plugin_symbols_is_refused() {
    let sb = Sandbox::new();
    let source = lib("plain");
    let out = dpe(&sb, &["plugin", "install", source.to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        format!(
            "error: `{}` is not a dpe plugin library: it does not export `DPE_PLUGIN_ABI_VERSION`\n\
             help: build it with crate-type = [\"cdylib\"] and `dpe_plugin::export_plugin!(manifest, run)`\n",
            source.display()
        )
    );
    fs::create_dir_all(plugin_dir(&sb)).unwrap();
    let placed = plugin_dir(&sb).join("libdpe_plain.so");
    fs::copy(&source, &placed).unwrap();
    let ran = dpe(&sb, &["plain"]);
    assert_eq!(ran.code, 1);
    assert!(
        ran.stderr.starts_with(&format!(
            "error: `{}` is not a dpe plugin library: symbol `DPE_PLUGIN_ABI_VERSION` is missing",
            placed.display()
        )),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.ends_with("\nhelp: export it with `dpe_plugin::export_plugin!(manifest, run)`\n"),
        "{}",
        ran.stderr
    );
    let rows = list_json(&sb);
    let r = row(&rows, &placed);
    assert_eq!(r["status"], "broken");
    assert_eq!(r["reason"], "not a dpe plugin library: it does not export `DPE_PLUGIN_ABI_VERSION`");
}

#[test]
fn a_library_for_a_future_dpe_is_refused_unless_forced_and_never_runs() {
    let sb = Sandbox::new();
    let source = lib("future");
    let out = dpe(&sb, &["plugin", "install", source.to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        format!(
            "error: plugin `future` 3.0.0 at `{}` requires dpe >=9, but this is dpe 0.1.0\n\
             help: install a version of `future` built for dpe 0.1.0; `--force` installs it anyway, but dpe will not run it\n",
            source.display()
        )
    );
    assert!(listing(&plugin_dir(&sb)).is_empty());

    let out = dpe(&sb, &["plugin", "install", "--force", source.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let installed = plugin_dir(&sb).join("libdpe_future.so");
    let ran = dpe(&sb, &["future"]);
    assert_eq!((ran.code, ran.stdout.as_str()), (1, ""));
    assert_eq!(
        ran.stderr,
        format!(
            "error: plugin `future` 3.0.0 at `{}` requires dpe >=9, but this is dpe 0.1.0\nhelp: install a version of `future` that supports dpe 0.1.0, or upgrade dpe\n",
            installed.display()
        )
    );
    let rows = list_json(&sb);
    let r = row(&rows, &installed);
    assert_eq!(
        (r["status"].as_str(), r["reason"].as_str(), r["version"].as_str()),
        (Some("incompatible"), Some("requires dpe >=9, this is dpe 0.1.0"), Some("3.0.0"))
    );
}

// ---------------------------------------------------------------------------------------------
// what a plugin's manifest may do to dpe

/// A plugin whose manifest answer never comes: it starts a child that ignores every signal it
/// can, writes the child's pid to `pid_file`, and (`wait`) waits for it or (else) exits while
/// the child keeps its standard output open.
fn hanging_manifest_plugin(pid_file: &Path, wait: bool) -> String {
    format!(
        "#!/bin/sh\n# dpe-plugin-manifest:v1\n( trap '' INT TERM HUP; exec sleep 1000 ) &\necho $! > '{}'\n{}\n",
        pid_file.display(),
        if wait { "wait" } else { "exit 0" }
    )
}

/// Whether process `pid` is gone (a zombie counts: it only waits to be reaped), within 5s.
fn process_gone(pid: &str) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let state = fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'));
        if state.unwrap_or(true) {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_manifest_request_that_times_out_stops_every_process_the_plugin_started() {
    for (name, wait) in [("waits", true), ("leaves", false)] {
        let sb = Sandbox::new();
        let pid_file = sb.path("child.pid");
        sb.write_exe(&format!("bin/dpe-{name}"), &hanging_manifest_plugin(&pid_file, wait));
        // Completion asks on a cache miss with a budget of a fraction of a second.
        let started = std::time::Instant::now();
        let out = dpe(&sb, &["__complete", "--shell", "bash", "--index", "2", "--", "dpe", name, ""]);
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{name}: took {:?}", started.elapsed());
        assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{name}");
        let pid = fs::read_to_string(&pid_file).unwrap().trim().to_string();
        assert!(process_gone(&pid), "{name}: the plugin's child {pid} is still running");
    }
}

#[test]
fn an_oversized_manifest_is_refused_naming_the_plugin_and_the_field() {
    let sb = Sandbox::new();
    let manifest_plugin = |name: &str, description: &str| {
        format!(
            "#!/bin/sh\n# dpe-plugin-manifest:v1\nif [ \"$1\" = --dpe-manifest ]; then\n\
             printf '{{\"name\":\"{name}\",\"version\":\"1.0.0\",\"dpe\":\"^0.1\",\"description\":\"'\n\
             {description}\nprintf '\"}}'\nexit 0\nfi\necho {name} ran\n"
        )
    };
    let help =
        "help: its `--dpe-manifest` answer must be the JSON described in the README, section \"Writing a plugin\"\n";
    let huge = sb.write_exe("bin/dpe-huge", &manifest_plugin("huge", "head -c 10485760 /dev/zero | tr '\\0' x"));
    let out = dpe(&sb, &["huge"]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr),
        (
            1,
            "",
            format!(
                "error: plugin `huge` at `{}` gave an invalid manifest: it printed more than 256 KiB (the most dpe reads)\n{help}",
                huge.display()
            )
        )
    );
    let long = sb.write_exe("bin/dpe-long", &manifest_plugin("long", "head -c 5000 /dev/zero | tr '\\0' x"));
    let out = dpe(&sb, &["long"]);
    assert_eq!(
        (out.code, out.stderr),
        (
            1,
            format!(
                "error: plugin `long` at `{}` gave an invalid manifest: `description` is 5000 bytes, over the limit of 4096\n{help}",
                long.display()
            )
        )
    );
    // The section the help names exists.
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(readme.lines().any(|line| line == "## Writing a plugin"));
}

#[test]
fn manifest_fields_unknown_to_this_dpe_warn_and_the_plugin_still_runs() {
    let sb = Sandbox::new();
    let file = sb.write_exe(
        "bin/dpe-newer",
        "#!/bin/sh\n# dpe-plugin-manifest:v1\nif [ \"$1\" = --dpe-manifest ]; then\n\
         echo '{\"name\":\"newer\",\"version\":\"3.0.0\",\"dpe\":\"^0.1\",\"aliases\":[\"nw\"],\
         \"subcommands\":[{\"name\":\"go\",\"hidden\":true}]}'\nexit 0\nfi\necho newer ran\n",
    );
    let out = dpe(&sb, &["newer"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "newer ran\n"), "{}", out.stderr);
    assert_eq!(
        out.stderr,
        format!(
            "warning: plugin `newer` 3.0.0 at `{}` has manifest fields this dpe 0.1.0 does not know, ignored: \
             `aliases`, `subcommands[0].hidden`\nhelp: the plugin may be made for a newer dpe; upgrade dpe if it misbehaves\n",
            file.display()
        )
    );
    // Said once, when the manifest is read; the cached manifest runs quietly.
    let out = dpe(&sb, &["newer"]);
    assert_eq!((out.code, out.stdout.as_str(), out.stderr.as_str()), (0, "newer ran\n", ""));
}

/// The code blocks of one README section, as (language, text).
fn readme_blocks(section: &str) -> Vec<(String, String)> {
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme.find(&format!("\n## {section}\n")).expect("the section exists");
    let end = readme[start + 1..].find("\n## ").map_or(readme.len(), |at| start + 1 + at);
    let mut blocks = Vec::new();
    let mut rest = &readme[start..end];
    while let Some(open) = rest.find("\n```") {
        let after = &rest[open + 4..];
        let (language, body) = after.split_once('\n').unwrap();
        let close = body.find("```").unwrap();
        blocks.push((language.to_string(), body[..close].to_string()));
        rest = &body[close + 3..];
    }
    blocks
}

#[test]
fn the_readme_plugin_examples_work_as_written() {
    let sb = Sandbox::new();
    sb.project("alpha", "");
    let blocks = readme_blocks("Writing a plugin");
    let shell_with_manifest = blocks.iter().find(|(lang, text)| lang == "sh" && text.contains("--dpe-manifest"));
    let python = blocks.iter().find(|(lang, _)| lang == "python");
    let hello = sb.write_exe("src/dpe-hello", &shell_with_manifest.expect("a sh example with a manifest").1);
    let pyhello = sb.write_exe("src/dpe-pyhello", &python.expect("a Python example").1);
    for source in [&hello, &pyhello] {
        let out = dpe(&sb, &["plugin", "install", source.to_str().unwrap()]);
        assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{}", source.display());
    }
    // The project word selects the project and stays in argv; a subcommand takes its own.
    let out = dpe(&sb, &["hello", "alpha", "--times", "2"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "hello, alpha (args: alpha --times 2)\n"), "{}", out.stderr);
    let out = dpe(&sb, &["hello", "loud", "alpha", "--exclaim"]);
    assert_eq!(out.stdout, "hello, alpha (args: loud alpha --exclaim)\n");
    let out = dpe(&sb, &["pyhello", "alpha"]);
    assert!(out.stdout.starts_with("hello from alpha image scipy\n"), "{}{}", out.stdout, out.stderr);
    let out = dpe(&sb, &["pyhello"]);
    assert!(out.stdout.starts_with("hello from no project image scipy\n"), "{}{}", out.stdout, out.stderr);

    let complete = |words: &[&str]| {
        let mut args = vec!["__complete", "--shell", "bash", "--", "dpe"];
        args.extend_from_slice(words);
        let out = dpe(&sb, &args);
        assert_eq!((out.code, out.stderr.as_str()), (0, ""));
        out.stdout.lines().map(str::to_string).collect::<Vec<_>>()
    };
    assert_eq!(complete(&["hello", ""]), ["loud", "alpha"]);
    assert_eq!(complete(&["hello", "alpha", "--"]), ["--times"]);
    assert_eq!(complete(&["hello", "loud", "alpha", "--"]), ["--exclaim"]);
    assert_eq!(complete(&["pyh"]), ["pyhello"]);
}

/// The README's Rust plugin (section "Writing a plugin", "In Rust"), built as written against
/// this checkout's `dpe-plugin`, as an executable and as a library: both answer alike, and
/// what the SDK derives (manifest, completion, usage errors, help) is what a user gets.
#[test]
fn the_readme_rust_plugin_builds_and_runs_as_an_executable_and_a_library() {
    let sb = Sandbox::new();
    sb.project("alpha", "");
    let blocks = readme_blocks("Writing a plugin");
    let block = |lang: &str, needle: &str| {
        let found = blocks.iter().find(|(l, text)| l == lang && text.contains(needle));
        found.unwrap_or_else(|| panic!("a {lang} block with `{needle}`")).1.clone()
    };
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/dpe-plugin");
    let cargo_toml = block("toml", "[package]")
        .replace(r#"path = "../dpe/plugins/dpe-plugin""#, &format!("path = {:?}", sdk.to_str().unwrap()));
    assert!(cargo_toml.contains(sdk.to_str().unwrap()), "the README's dependency line changed:\n{cargo_toml}");
    sb.write("hello/Cargo.toml", &cargo_toml);
    sb.write("hello/src/lib.rs", &block("rust", "impl Plugin for"));
    sb.write("hello/src/main.rs", &block("rust", "fn main()"));
    // The fixtures' lock: the same dependency versions, already built in the same target dir.
    fs::copy(fixture_source("echo").join("Cargo.lock"), sb.path("hello/Cargo.lock")).unwrap();
    fixtures();
    let target = bin_dir().join("fixture-plugins");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(&cargo)
        .args(["build", "--quiet", "--manifest-path"])
        .arg(sb.path("hello/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .status()
        .expect("run cargo");
    assert!(status.success(), "the README's Rust plugin does not build");
    fs::copy(target.join("debug/dpe-hello"), sb.path("bin/dpe-hello")).unwrap();

    let manifest: Value =
        serde_json::from_str(&run(Command::new(sb.path("bin/dpe-hello")).arg("--dpe-manifest")).stdout)
            .expect("the manifest is JSON");
    assert_eq!(
        manifest,
        serde_json::json!({"name": "hello", "version": "0.1.0", "dpe": "^0.1", "protocol": 1, "description": "Say hello",
            "takes_project": true, "options": [{"name": "--times", "description": "How often", "takes_value": true}],
            "complete": false})
    );
    let out = dpe(&sb, &["__complete", "--shell", "bash", "--", "dpe", "hello", "alpha", "--"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "--times\n"), "{}", out.stderr);
    // Run by hand, not by dpe, with a context path holding a control character.
    let out = run(sb.command(sb.path("bin/dpe-hello")).env("DPE_CONTEXT_FILE", "/nowhere/\u{1b}[2J"));
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            2,
            "error: cannot read the dpe context from `/nowhere/\\u{1b}[2J` (`DPE_CONTEXT_FILE`): No such file or directory (os error 2)\n\
             help: `dpe-hello` is a dpe plugin; run it as `dpe hello …`\n"
        )
    );

    let cases: [&[&str]; 4] =
        [&["hello", "alpha", "--times", "2"], &["hello"], &["hello", "alpha", "--bogus"], &["hello", "--help"]];
    let exe: Vec<Out> = cases.iter().map(|args| dpe(&sb, args)).collect();
    assert!(exe[0].stdout.starts_with("hello, alpha\nhello, alpha\n"), "{}{}", exe[0].stdout, exe[0].stderr);
    assert_eq!(
        (exe[1].code, exe[1].stderr.as_str()),
        (1, "error: no project selected\nhelp: name one (`dpe hello PROJECT`), pass `--project PROJECT`, or run inside a project folder\n")
    );
    assert_eq!(
        (exe[2].code, exe[2].stderr.as_str()),
        (2, "error: unknown option `--bogus` for `dpe hello`\nhelp: `dpe hello --help` lists what it takes\n")
    );
    assert_eq!(exe[3].code, 0);
    assert!(exe[3].stdout.starts_with("Say hello\n\nUsage: dpe hello [OPTIONS] [PROJECT]\n"), "{}", exe[3].stdout);
    assert_eq!(to_a_closed_pipe(&sb, &["hello", "alpha"]), (Some(libc::SIGPIPE), String::new()));

    // Installed into the plugin directory, the library is found before the executable.
    fs::create_dir_all(plugin_dir(&sb)).unwrap();
    fs::copy(target.join("debug/libdpe_hello.so"), plugin_dir(&sb).join("libdpe_hello.so")).unwrap();
    let listed = list_json(&sb);
    assert_eq!(row(&listed, &plugin_dir(&sb).join("libdpe_hello.so"))["kind"], "dynamic", "{listed:#?}");
    for (args, exe) in cases.iter().zip(exe) {
        let lib = dpe(&sb, args);
        assert_eq!((lib.code, lib.stdout, lib.stderr), (exe.code, exe.stdout, exe.stderr), "{args:?}");
    }
    assert_eq!(to_a_closed_pipe(&sb, &["hello", "alpha"]), (Some(libc::SIGPIPE), String::new()));
}

/// Runs `dpe ARGS…` with stdout a pipe whose reader is already gone (`dpe … | head` once
/// `head` has quit): the signal that ended it, and its stderr. A plugin must end quietly by
/// SIGPIPE, as Unix tools do, not panic on the failed write.
fn to_a_closed_pipe(sb: &Sandbox, args: &[&str]) -> (Option<i32>, String) {
    use std::os::unix::process::ExitStatusExt;
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = sb.dpe().args(args).stdout(writer).output().unwrap();
    (output.status.signal(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn the_context_config_holds_every_key_with_a_fixed_default() {
    let sb = Sandbox::new();
    sb.project("alpha", "");
    let out = dpe(&sb, &["-p", "alpha", "--json", "context"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let context: Value = serde_json::from_str(&out.stdout).unwrap();
    let config = &context["config"];
    let expected = serde_json::json!({
        "python_packages": [], "apt_packages": [], "env": {}, "ports": [], "gpu": "off", "ca_certificates": [],
        "engine": {"program": "docker", "compose": "auto"},
        "jupyter": {"port": 8888, "bind": "127.0.0.1", "host_port_start": 8888, "ready_timeout": 120},
        "hooks": {"timeout": 300}, "services": {}, "compose": {"projects": []}, "plugins": {}
    });
    assert_eq!(config, &expected);
}

#[test]
fn ctrl_c_while_a_plugin_is_asked_for_its_manifest_stops_it_and_what_it_started() {
    use std::os::unix::process::CommandExt;
    let sb = Sandbox::new();
    let pid_file = sb.path("child.pid");
    sb.write_exe("bin/dpe-waits", &hanging_manifest_plugin(&pid_file, true));
    // To a file, not a pipe: a process left behind would hold a pipe open and hang the test.
    let stderr_file = sb.path("stderr");
    let mut child =
        sb.dpe().arg("waits").stderr(fs::File::create(&stderr_file).unwrap()).process_group(0).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !fs::read_to_string(&pid_file).is_ok_and(|text| text.ends_with('\n')) {
        assert!(std::time::Instant::now() < deadline, "the plugin never started its child");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pid = fs::read_to_string(&pid_file).unwrap().trim().to_string();
    let started = std::time::Instant::now();
    // What a terminal does on Ctrl+C: SIGINT to its foreground process group, dpe's.
    let kill = Command::new("kill").args(["-INT", "--", &format!("-{}", child.id())]).status().unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());
    assert_eq!(status.code(), Some(130));
    assert_eq!(
        fs::read_to_string(&stderr_file).unwrap(),
        "error: interrupted while asking plugin `waits` for its manifest\n"
    );
    assert!(process_gone(&pid), "the plugin's child {pid} is still running");
}
