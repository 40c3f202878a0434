//! Parsers for what the GPU tools print: `nvidia-smi` (its CSV query mode, its plain table
//! header, `-L`), `nvidia-ctk --version`, `docker info`'s runtimes, CDI spec files, image
//! environments and the failures a GPU container prints.
//!
//! Everything here is pure text in, data out, so it is tested on recorded real outputs
//! (`tests/fixtures/`). None of it runs a program.

use serde::Serialize;

/// One GPU as `nvidia-smi --query-gpu` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gpu {
    pub index: u32,
    pub name: String,
    /// `GPU-…`, when the query included it.
    pub uuid: Option<String>,
    pub memory_mib: Option<u64>,
    /// `(major, minor)`, absent on drivers older than the `compute_cap` field (R510).
    #[serde(serialize_with = "serialize_capability")]
    pub compute_capability: Option<(u32, u32)>,
}

fn serialize_capability<S: serde::Serializer>(cap: &Option<(u32, u32)>, s: S) -> Result<S::Ok, S::Error> {
    match cap {
        Some((major, minor)) => s.serialize_str(&format!("{major}.{minor}")),
        None => s.serialize_none(),
    }
}

/// What the CSV query answered: the GPUs and the driver version they share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuQuery {
    pub gpus: Vec<Gpu>,
    pub driver_version: Option<String>,
}

/// Parses `nvidia-smi --query-gpu=… --format=csv[,nounits]` output *with* its header line.
///
/// We ask for the header on purpose: columns are then found by name, so the parser reads any
/// field order and any recorded output, and a driver that renames or drops a field degrades to
/// "unknown" instead of shifting every value one column over.
pub fn gpu_query_csv(text: &str) -> Result<GpuQuery, String> {
    let mut lines = text.lines().map(str::trim).filter(|line| !line.is_empty());
    let header = lines.next().ok_or("`nvidia-smi` printed nothing")?;
    let columns: Vec<String> =
        header.split(',').map(|c| c.split('[').next().unwrap_or("").trim().to_string()).collect();
    let column = |name: &str| columns.iter().position(|c| c == name || c == &format!("gpu_{name}"));
    let Some(name_col) = column("name") else {
        return Err(format!("unexpected `nvidia-smi` output: {header}"));
    };
    let index_col = column("index");
    let uuid_col = column("uuid");
    let memory_col = column("memory.total");
    let cap_col = column("compute_cap");
    let driver_col = column("driver_version");

    let mut query = GpuQuery { gpus: Vec::new(), driver_version: None };
    for (row, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let cell = |col: Option<usize>| col.and_then(|c| cells.get(c)).copied().filter(|v| !not_available(v));
        let name = cell(Some(name_col)).ok_or_else(|| format!("unexpected `nvidia-smi` line: {line}"))?;
        let index = cell(index_col).and_then(|v| v.parse().ok()).unwrap_or(row as u32);
        let gpu = Gpu {
            index,
            name: name.to_string(),
            uuid: cell(uuid_col).map(str::to_string),
            memory_mib: cell(memory_col).and_then(parse_mib),
            compute_capability: cell(cap_col).and_then(parse_capability),
        };
        if query.driver_version.is_none() {
            query.driver_version = cell(driver_col).map(str::to_string);
        }
        query.gpus.push(gpu);
    }
    Ok(query)
}

fn not_available(value: &str) -> bool {
    value.is_empty() || value.starts_with('[') || value == "N/A"
}

/// `24576 MiB` or `24576` (with `nounits`).
fn parse_mib(value: &str) -> Option<u64> {
    let number = value.split_whitespace().next()?;
    let unit = value.split_whitespace().nth(1).unwrap_or("MiB");
    let n: u64 = number.parse().ok()?;
    match unit {
        "MiB" => Some(n),
        "GiB" => Some(n * 1024),
        _ => None,
    }
}

/// `8.6` → `(8, 6)`; `12.0` → `(12, 0)`.
pub fn parse_capability(value: &str) -> Option<(u32, u32)> {
    let (major, minor) = value.trim().split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// A `major.minor` version (CUDA 12.8, driver branch numbers are compared separately).
pub fn parse_major_minor(value: &str) -> Option<(u32, u32)> {
    let mut parts = value.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map(|m| m.parse().ok()).unwrap_or(Some(0))?;
    Some((major, minor))
}

/// Whether the query failed because this driver predates the `compute_cap` field (R470 says
/// `Field "compute_cap" is not a valid field to query.`).
pub fn unknown_query_field(text: &str) -> bool {
    text.contains("is not a valid field to query")
}

/// The driver version and the highest CUDA version it supports, from the header of plain
/// `nvidia-smi`: `| NVIDIA-SMI 570.133.20   Driver Version: 570.133.20   CUDA Version: 12.8 |`.
/// R610 renamed the fields (`KMD Version: 610.43.02   CUDA UMD Version: 13.3`); both read.
pub fn smi_header(text: &str) -> (Option<String>, Option<String>) {
    let mut driver = None;
    let mut cuda = None;
    for line in text.lines() {
        if driver.is_none() {
            driver = value_after(line, "Driver Version:").or_else(|| value_after(line, "KMD Version:"));
        }
        if cuda.is_none() {
            cuda = value_after(line, "CUDA Version:").or_else(|| value_after(line, "CUDA UMD Version:"));
        }
        if driver.is_some() && cuda.is_some() {
            break;
        }
    }
    (driver, cuda)
}

fn value_after(line: &str, label: &str) -> Option<String> {
    let rest = &line[line.find(label)? + label.len()..];
    let token = rest.split_whitespace().next()?.trim_end_matches('|');
    (!token.is_empty() && token != "N/A").then(|| token.to_string())
}

/// How `nvidia-smi` failed, from what it printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SmiFailure {
    /// The kernel module is not loaded (after a kernel update, or nouveau holds the GPU).
    DriverNotLoaded,
    /// The user-space library and the kernel module differ (driver upgraded, no reboot yet).
    VersionMismatch,
    /// The driver answers but sees no GPU.
    NoDevices,
    /// NVML cannot reach the devices: inside a container, the container lost its GPU.
    NvmlUnknownError,
    /// Something else; the text is shown as is.
    Other,
}

pub fn smi_failure(text: &str) -> SmiFailure {
    if text.contains("couldn't communicate with the NVIDIA driver")
        || text.contains("couldn‘t communicate with the NVIDIA driver")
    {
        SmiFailure::DriverNotLoaded
    } else if text.contains("Driver/library version mismatch") {
        SmiFailure::VersionMismatch
    } else if text.contains("No devices were found") {
        SmiFailure::NoDevices
    } else if text.contains("Failed to initialize NVML: Unknown Error") {
        SmiFailure::NvmlUnknownError
    } else {
        SmiFailure::Other
    }
}

/// The GPUs `nvidia-smi -L` lists: `GPU 0: NVIDIA A10 (UUID: GPU-f15ae561-…)`. MIG lines,
/// indented below their GPU, are not GPUs of their own.
pub fn smi_list(text: &str) -> Vec<(u32, String)> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("GPU ")?;
            let (index, rest) = rest.split_once(": ")?;
            let name = rest.rsplit_once(" (UUID:").map(|(name, _)| name).unwrap_or(rest);
            Some((index.trim().parse().ok()?, name.trim().to_string()))
        })
        .collect()
}

/// The version in `nvidia-ctk --version`: `NVIDIA Container Toolkit CLI version 1.17.8`.
pub fn ctk_version(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let rest = line.split_once("version")?.1.trim();
        let token = rest.split_whitespace().next()?;
        token.chars().next()?.is_ascii_digit().then(|| token.to_string())
    })
}

/// The runtime names in `docker info --format '{{json .Runtimes}}'` (a JSON object keyed by
/// name). The plain `docker info` line ` Runtimes: io.containerd.runc.v2 nvidia runc` reads too,
/// so a wrapper that ignores `--format` still gives an answer.
pub fn docker_runtimes(text: &str) -> Result<Vec<String>, String> {
    let trimmed = text.trim();
    if !trimmed.starts_with('{') {
        if let Some(line) = trimmed.lines().find_map(|l| l.trim().strip_prefix("Runtimes:")) {
            return Ok(line.split_whitespace().map(str::to_string).collect());
        }
    }
    let value: serde_json::Value =
        serde_json::from_str(trimmed).map_err(|e| format!("`docker info` printed runtimes that are not JSON: {e}"))?;
    let map = value.as_object().ok_or("`docker info` printed runtimes that are not a JSON object")?;
    Ok(map.keys().cloned().collect())
}

/// What one CDI spec file declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CdiSpec {
    /// `vendor/class`, e.g. `nvidia.com/gpu`.
    pub kind: String,
    /// Device names: `0`, `GPU-…`, `all`.
    pub devices: Vec<String>,
}

/// Parses a CDI spec (`/etc/cdi/nvidia.yaml` or `.json`), reading only `kind` and the device
/// names. CDI specs are written by tools (`nvidia-ctk cdi generate`) in a regular shape, so a
/// line reader for the two keys we need serves better than a YAML dependency: top-level
/// `kind:`, and the `name:` of each item of the top-level `devices:` list (no other CDI object
/// has a `name` key; hooks have `hookName`).
pub fn cdi_spec(text: &str) -> Result<CdiSpec, String> {
    if text.trim_start().starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let kind = value["kind"].as_str().ok_or("no `kind`")?.to_string();
        let devices = value["devices"]
            .as_array()
            .map(|list| list.iter().filter_map(|d| d["name"].as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        return Ok(CdiSpec { kind, devices });
    }
    let mut kind = None;
    let mut devices = Vec::new();
    let mut in_devices = false;
    for line in text.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') || line.starts_with("---") {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if indent == 0 && !line.starts_with('-') {
            in_devices = line.trim_end() == "devices:";
            if let Some(value) = line.strip_prefix("kind:") {
                kind = Some(unquote(value));
            }
            continue;
        }
        if in_devices {
            // `- name: x` at indent 0, or `  name: x` at indent 2 inside a list item.
            let item = line.trim_start().trim_start_matches("- ");
            let key_indent = line.len() - item.len();
            if key_indent <= 2 {
                if let Some(value) = item.strip_prefix("name:") {
                    devices.push(unquote(value));
                }
            }
        }
    }
    Ok(CdiSpec { kind: kind.ok_or("no `kind`")?, devices })
}

fn unquote(value: &str) -> String {
    value.trim().trim_matches('"').trim_matches('\'').to_string()
}

/// The CUDA version an image declares in its environment (`docker image inspect --format
/// '{{json .Config.Env}}'`): `CUDA_VERSION=12.4.1` in NVIDIA's `nvidia/cuda` bases, and whether
/// `NVIDIA_REQUIRE_CUDA` makes the container toolkit refuse older drivers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageCuda {
    pub cuda_version: Option<String>,
    /// `cuda>=12.4` from `NVIDIA_REQUIRE_CUDA`, enforced by the toolkit at start.
    pub required: Option<String>,
    /// `NVIDIA_DISABLE_REQUIRE` is set: the toolkit skips the check.
    pub require_disabled: bool,
}

pub fn image_env_cuda(env_json: &str) -> Result<ImageCuda, String> {
    let env: Vec<String> = serde_json::from_str(env_json.trim()).or_else(|e| {
        if env_json.trim() == "null" {
            Ok(Vec::new())
        } else {
            Err(format!("image environment is not a JSON list: {e}"))
        }
    })?;
    let mut cuda = ImageCuda::default();
    for entry in &env {
        let Some((key, value)) = entry.split_once('=') else { continue };
        match key {
            "CUDA_VERSION" => cuda.cuda_version = Some(value.to_string()),
            "NVIDIA_REQUIRE_CUDA" => {
                cuda.required = value.split_whitespace().find_map(|t| t.strip_prefix("cuda>=")).map(str::to_string)
            }
            "NVIDIA_DISABLE_REQUIRE" => cuda.require_disabled = !value.is_empty() && value != "false" && value != "0",
            _ => {}
        }
    }
    // Some bases carry only the cudart package version (`NV_CUDA_CUDART_VERSION=12.4.127-1`).
    if cuda.cuda_version.is_none() {
        cuda.cuda_version = env.iter().find_map(|e| {
            let value = e.strip_prefix("NV_CUDA_CUDART_VERSION=")?;
            let (major, minor) = parse_major_minor(value.split('-').next()?)?;
            Some(format!("{major}.{minor}"))
        });
    }
    Ok(cuda)
}

/// What the torch inside an image was built for, as printed by the probe script
/// `{"torch": "2.5.1+cu121", "cuda": "12.1", "arch": "sm_50 sm_60 … compute_90"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct TorchBuild {
    pub torch: String,
    /// `torch.version.cuda`; null for a CPU-only build.
    pub cuda: Option<String>,
    /// The compiled architectures (`torch._C._cuda_getArchFlags()`), null for a CPU build.
    pub arch: Option<String>,
}

pub fn torch_build(text: &str) -> Result<TorchBuild, String> {
    let line = text.lines().rev().find(|l| l.trim_start().starts_with('{')).ok_or("no JSON line")?;
    serde_json::from_str(line).map_err(|e| format!("torch probe printed unexpected output: {e}"))
}

/// The architectures of a torch build as numbers: `sm_86` → (86, false), `compute_90` → (90, true).
pub fn torch_arches(arch_flags: &str) -> Vec<(u32, bool)> {
    arch_flags
        .split(|c: char| c.is_whitespace() || c == ';' || c == ',')
        .filter_map(|token| {
            let token = token.rsplit('=').next()?;
            let (digits, ptx) = if let Some(rest) = token.strip_prefix("sm_") {
                (rest, false)
            } else if let Some(rest) = token.strip_prefix("compute_") {
                (rest, true)
            } else {
                return None;
            };
            let digits: String = digits.chars().take_while(char::is_ascii_digit).collect();
            Some((digits.parse().ok()?, ptx))
        })
        .collect()
}

/// Whether a GPU of compute capability `cap` can run a torch build with these architectures:
/// it needs a cubin for the same major and a minor no higher (an sm_80 cubin runs on 8.6, not
/// on 9.0). PTX entries (`compute_XY`) do not count: torch's own check ignores them too, because
/// most of its kernels (and cuDNN's) ship no PTX, so a GPU newer than every cubin ends in "no
/// kernel image is available for execution on the device".
pub fn arch_supports(arches: &[(u32, bool)], cap: (u32, u32)) -> bool {
    arches.iter().any(|&(arch, ptx)| !ptx && arch / 10 == cap.0 && arch % 10 <= cap.1)
}

/// What a failed GPU container start printed, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeFailure {
    /// `could not select device driver "" with capabilities: [[gpu]]`: docker has no GPU
    /// support (toolkit missing, or dockerd not restarted after installing it).
    NoDeviceDriver,
    /// `unknown or invalid runtime name: nvidia` / `Unknown runtime specified nvidia`.
    RuntimeUnknown,
    /// `unresolvable CDI devices nvidia.com/gpu=…`: no or stale CDI spec.
    CdiUnresolvable,
    /// CDI device names are not understood: the engine's CDI support is off or too old.
    CdiUnsupported,
    /// `requirement error: unsatisfied condition: cuda>=12.4`: driver too old for the image.
    CudaRequirement,
    /// `Failed to initialize NVML: Unknown Error`.
    NvmlUnknownError,
    /// The driver is not loaded (`driver not loaded`, `couldn't communicate`).
    DriverNotLoaded,
    /// The probe image is not here and could not be pulled.
    ImageUnavailable,
    /// The image has no `nvidia-smi` and the runtime did not inject one.
    NoSmiInContainer,
    Other,
}

pub fn probe_failure(text: &str) -> ProbeFailure {
    if text.contains("could not select device driver") {
        ProbeFailure::NoDeviceDriver
    } else if text.contains("unknown or invalid runtime name") || text.contains("Unknown runtime specified") {
        ProbeFailure::RuntimeUnknown
    } else if text.contains("unresolvable CDI devices") {
        ProbeFailure::CdiUnresolvable
    } else if text.contains("CDI")
        && (text.contains("not enabled") || text.contains("no such file or directory: nvidia.com/gpu"))
    {
        ProbeFailure::CdiUnsupported
    } else if text.contains("unsatisfied condition: cuda") {
        ProbeFailure::CudaRequirement
    } else if text.contains("Failed to initialize NVML: Unknown Error") {
        ProbeFailure::NvmlUnknownError
    } else if text.contains("driver not loaded") || text.contains("couldn't communicate with the NVIDIA driver") {
        ProbeFailure::DriverNotLoaded
    } else if text.contains("Unable to find image")
        || text.contains("pull access denied")
        || text.contains("manifest unknown")
        || (text.contains("No such image") && !text.contains("nvidia-smi"))
    {
        ProbeFailure::ImageUnavailable
    } else if text.contains("\"nvidia-smi\": executable file not found") || text.contains("nvidia-smi: not found") {
        ProbeFailure::NoSmiInContainer
    } else {
        ProbeFailure::Other
    }
}

/// The last non-empty line of a program's output, for one-line summaries of failures.
pub fn last_line(text: &str) -> String {
    text.lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_and_versions() {
        assert_eq!(parse_capability("8.6"), Some((8, 6)));
        assert_eq!(parse_capability("12.0"), Some((12, 0)));
        assert_eq!(parse_capability("[N/A]"), None);
        assert_eq!(parse_major_minor("12.4.1"), Some((12, 4)));
        assert_eq!(parse_major_minor("13"), Some((13, 0)));
    }

    #[test]
    fn arch_rules() {
        let arches = torch_arches("sm_50 sm_60 sm_70 sm_75 sm_80 sm_86 sm_90 compute_90");
        assert!(arch_supports(&arches, (8, 9)), "an sm_86 cubin runs on 8.9");
        assert!(!arch_supports(&arches, (12, 0)), "PTX for 9.0 does not make a 12.0 GPU supported");
        assert!(arch_supports(&arches, (9, 0)));
        assert!(!arch_supports(&arches, (3, 7)));
        assert!(!arch_supports(&torch_arches("sm_87"), (8, 6)), "a newer minor's cubin does not run");
        // The older nvcc flag form.
        let flags = torch_arches("-gencode compute=compute_70,code=sm_70 -gencode compute=compute_80,code=sm_80");
        assert!(flags.contains(&(70, false)) && flags.contains(&(80, false)));
    }

    #[test]
    fn header_tolerates_missing_cuda() {
        let (driver, cuda) = smi_header("| NVIDIA-SMI 331.62     Driver Version: 331.62         |");
        assert_eq!(driver.as_deref(), Some("331.62"));
        assert_eq!(cuda, None);
    }
}
