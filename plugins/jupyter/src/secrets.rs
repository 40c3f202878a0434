//! The per-project token and the env file that carries it into the container.
//!
//! The token is random, made once per project and kept in `$DPE_STATE_DIR/jupyter/tokens/KEY`
//! (mode 0600), so a bookmarked URL keeps working. It reaches the server only through an env
//! file (`--env-file`, also 0600) together with the proxy variables, which may hold
//! credentials: never through a command line, which every user of the host can read.

use dpe_plugin::sdk::{self, Error, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

fn tokens_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("jupyter").join("tokens")
}

/// Reads the project's token, making one on first use.
pub fn ensure_token(state_dir: &Path, key: &str) -> Result<String> {
    if let Some(token) = read_token(state_dir, key) {
        return Ok(token);
    }
    let token = random_hex(24)?;
    let path = tokens_dir(state_dir).join(key);
    write_private(&path, format!("{token}\n").as_bytes())?;
    // Two starts may race to create it; whichever file won is the token.
    Ok(read_token(state_dir, key).unwrap_or(token))
}

/// The project's token, if one was made.
pub fn read_token(state_dir: &Path, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(tokens_dir(state_dir).join(key)).ok()?;
    let token = text.trim().to_string();
    (!token.is_empty()).then_some(token)
}

/// Writes the env file for a container: `JUPYTER_TOKEN` and the proxy variables that are set.
pub fn write_env_file(state_dir: &Path, key: &str, token: &str, proxies: &[(String, String)]) -> Result<PathBuf> {
    let mut variables = vec![("JUPYTER_TOKEN".to_string(), token.to_string())];
    variables.extend(proxies.iter().cloned());
    write_variables(state_dir, key, &variables)
}

/// Writes an env file of `variables` alone (`KEY.env` in the same private folder).
pub fn write_variables(state_dir: &Path, key: &str, variables: &[(String, String)]) -> Result<PathBuf> {
    let text: String = variables
        .iter()
        // An env file has one variable a line and no quoting; a newline would split it.
        .filter(|(_, value)| !value.contains('\n'))
        .map(|(name, value)| format!("{name}={value}\n"))
        .collect();
    let path = state_dir.join("jupyter").join("env").join(format!("{key}.env"));
    write_private(&path, text.as_bytes())?;
    Ok(path)
}

pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(format!("creating `{}`", dir.display()), e))
}

/// Writes a file readable by its owner only, replacing it atomically (`sdk::fs`), in folders
/// only its owner can enter.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    sdk::fs::write_private(path, bytes).map_err(|e| Error::io(format!("writing `{}`", path.display()), e))
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut buffer = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buffer))
        .map_err(|e| Error::io("reading `/dev/urandom`", e))?;
    Ok(buffer.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn token_is_stable_private_and_random() {
        let state = tempfile::tempdir().unwrap();
        let a = ensure_token(state.path(), "a-1").unwrap();
        assert_eq!(a.len(), 48);
        assert_eq!(ensure_token(state.path(), "a-1").unwrap(), a);
        assert_ne!(ensure_token(state.path(), "b-1").unwrap(), a);
        let mode = std::fs::metadata(tokens_dir(state.path()).join("a-1")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    /// A start killed between creating its temporary file and renaming it leaves the file
    /// behind; a later start with the same pid must not publish the token with that file's
    /// mode. (jupyter's own copy reopened it, so the token came out 0644; `sdk::fs` creates it
    /// afresh.) Planted under both the old and the SDK's temporary names.
    #[test]
    fn a_stale_temporary_file_never_makes_the_token_readable_by_others() {
        let state = tempfile::tempdir().unwrap();
        let dir = tokens_dir(state.path());
        std::fs::create_dir_all(&dir).unwrap();
        let pid = std::process::id();
        for stale in [dir.join(format!("a-1.tmp{pid}")), dir.join(format!(".a-1.tmp-{pid}"))] {
            std::fs::write(&stale, "old").unwrap();
            std::fs::set_permissions(&stale, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let token = ensure_token(state.path(), "a-1").unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("a-1")).unwrap(), format!("{token}\n"));
        let mode = std::fs::metadata(dir.join("a-1")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn env_file_is_private_and_holds_token_and_proxies() {
        let state = tempfile::tempdir().unwrap();
        let proxies = vec![("HTTPS_PROXY".to_string(), "http://u:p@proxy:3128".to_string())];
        let path = write_env_file(state.path(), "a-1", "tok", &proxies).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "JUPYTER_TOKEN=tok\nHTTPS_PROXY=http://u:p@proxy:3128\n");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
