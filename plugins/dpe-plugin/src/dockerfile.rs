//! Writing Dockerfiles from a project's configuration, for every plugin that does: the images
//! `dpe jupyter` builds and the standalone Dockerfile `dpe export` writes read alike because
//! they quote, check and add CA certificates with these very functions.
//!
//! The values come from other people's `dpe.toml`: every word is quoted for the shell or for
//! Dockerfile's own `ENV` syntax, and [`check_values`] refuses what no quoting can carry.

use crate::reach::Refusal;
use crate::Config;
use std::path::PathBuf;

/// The proxy variables passed to builds (by name, so values never reach a command line) and to
/// containers (through a private env file).
pub const PROXY_VARS: &[&str] =
    &["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "no_proxy", "all_proxy"];

/// The environment variable naming extra CA certificates (colon-separated files or folders).
pub const CA_ENV: &str = "DPE_CA_CERTIFICATES";
/// The script that builds the combined CA bundle inside an image.
pub const CA_BUNDLE_SCRIPT: &str = include_str!("dpe-ca-bundle.sh");
/// Where the combined CA bundle lives in an image.
pub const CA_BUNDLE: &str = "/usr/local/share/dpe/ca-bundle.pem";

/// The `ENV` line pointing OpenSSL, requests, pip and curl at [`CA_BUNDLE`].
pub fn ca_bundle_env() -> String {
    format!("ENV SSL_CERT_FILE={CA_BUNDLE} REQUESTS_CA_BUNDLE={CA_BUNDLE} PIP_CERT={CA_BUNDLE} CURL_CA_BUNDLE={CA_BUNDLE}\n")
}

/// One extra CA certificate to copy into an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// Where it was read.
    pub source: PathBuf,
    /// Its file name in the image's certificate folder: numbered in reading order, so the
    /// bundle's order is the configuration's, and spelt safely whatever the source was called.
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Reads the extra CA certificates: the configured entries first, then `from_env` (the value of
/// [`CA_ENV`], colon-separated). A folder contributes its `.crt` and `.pem` files, sorted.
pub fn collect_certificates(configured: &[String], from_env: Option<&str>) -> Result<Vec<Certificate>, Refusal> {
    let mut sources: Vec<(PathBuf, &str)> =
        configured.iter().map(|p| (PathBuf::from(p), "`ca_certificates`")).collect();
    if let Some(list) = from_env {
        sources.extend(list.split(':').filter(|p| !p.is_empty()).map(|p| (PathBuf::from(p), "`DPE_CA_CERTIFICATES`")));
    }
    let unreadable = |path: &std::path::Path, origin: &str, e: std::io::Error| Refusal {
        message: format!("reading `{}`: {e}", path.display()),
        help: format!("make it readable, or leave it out of {origin}"),
    };
    let mut out: Vec<Certificate> = Vec::new();
    for (path, origin) in sources {
        let mut paths = Vec::new();
        if path.is_dir() {
            // The listing `crate::reach::check` judged, file by file, before this runs.
            paths = crate::reach::certificate_files(&path).map_err(|e| unreadable(&path, origin, e))?;
        } else if path.is_file() {
            paths.push(path.clone());
        } else {
            return Err(Refusal {
                message: format!("CA certificate `{}` (from {origin}) does not exist", path.display()),
                help: "name PEM files or directories holding `.crt`/`.pem` files".into(),
            });
        }
        for p in paths {
            let bytes = std::fs::read(&p).map_err(|e| unreadable(&p, origin, e))?;
            if !String::from_utf8_lossy(&bytes).contains("-----BEGIN CERTIFICATE-----") {
                return Err(Refusal {
                    message: format!("`{}` (from {origin}) holds no PEM certificate", p.display()),
                    help: "convert it with `openssl x509 -inform der -in FILE -out FILE.crt`".into(),
                });
            }
            if !out.iter().any(|c| c.source == p) {
                let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("ca");
                let stem: String = stem
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
                    .collect();
                out.push(Certificate { name: format!("{:02}-{stem}.crt", out.len()), source: p, bytes });
            }
        }
    }
    Ok(out)
}

/// Refuses a configuration holding a value no Dockerfile line can carry safely (an env name
/// that is not one, a package or image that would be read as an option or end the line). dpe
/// refuses these when it reads `dpe.toml`; a Dockerfile writer checks again rather than trust a
/// `Config` built some other way.
pub fn check_values(config: &Config) -> Result<(), Refusal> {
    config.check_values().map_err(|invalid| Refusal {
        message: format!("the configuration cannot go into a Dockerfile: {}", invalid.message),
        help: invalid.help,
    })
}

/// Quotes a word for `sh` (left bare when it needs no quoting, so generated files stay readable).
pub fn shell_quote(word: &str) -> String {
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_.+:=/~,@".contains(c)) {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// A Dockerfile `ENV` line. The name must have passed [`check_values`]: it is written as it is.
pub fn env_instruction(key: &str, value: &str) -> String {
    format!("ENV {key}={}\n", dockerfile_quote(value))
}

/// Quotes a value for a Dockerfile `ENV` line (which substitutes `$VARS`). Inside double quotes
/// docker's parser unescapes only `\\`, `\"` and `\$`; a line break cannot be written at all
/// (the check refuses it), so one that slips through becomes a visible `\n`, never a new line.
pub fn dockerfile_quote(value: &str) -> String {
    let escaped =
        value.replace('\\', "\\\\").replace('"', "\\\"").replace('$', "\\$").replace('\n', "\\n").replace('\r', "\\r");
    format!("\"{escaped}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_but_valid_env_values_are_quoted_for_docker() {
        assert_eq!(env_instruction("A", r#"say "hi" $HOME \ 'q'"#), "ENV A=\"say \\\"hi\\\" \\$HOME \\\\ 'q'\"\n");
        assert_eq!(dockerfile_quote("a\nb"), "\"a\\nb\"");
    }

    #[test]
    fn words_are_quoted_for_the_shell_only_when_needed() {
        assert_eq!(shell_quote("python3-pandas=1.5.3+dfsg-2"), "python3-pandas=1.5.3+dfsg-2");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn certificates_are_read_in_order_and_named_safely() {
        let dir = tempfile::tempdir().unwrap();
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let corp = dir.path().join("corp root.crt");
        std::fs::write(&corp, pem).unwrap();
        let folder = dir.path().join("more");
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join("b.pem"), pem).unwrap();
        std::fs::write(folder.join("notes.txt"), "ignored").unwrap();
        let configured = [corp.to_string_lossy().into_owned()];
        let env = format!("{}:{}", folder.display(), corp.display());
        let names: Vec<String> =
            collect_certificates(&configured, Some(&env)).unwrap().into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["00-corp_root.crt", "01-b.crt"]);

        let err = collect_certificates(&[], Some("/nowhere/ca.crt")).unwrap_err();
        assert_eq!(err.message, "CA certificate `/nowhere/ca.crt` (from `DPE_CA_CERTIFICATES`) does not exist");
        std::fs::write(folder.join("c.crt"), "not a certificate").unwrap();
        let err = collect_certificates(&[folder.to_string_lossy().into_owned()], None).unwrap_err();
        assert_eq!(
            err.message,
            format!("`{}` (from `ca_certificates`) holds no PEM certificate", folder.join("c.crt").display())
        );
    }
}
