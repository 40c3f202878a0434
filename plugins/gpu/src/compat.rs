//! The compatibility tables: which driver runs which CUDA, and which CUDA variants of the
//! Jupyter Docker Stacks images fit a driver.
//!
//! Sources, as read on 2026-11-23:
//! - NVIDIA CUDA Toolkit Release Notes, "CUDA Toolkit and Corresponding Driver Versions"
//!   (Linux x86_64, the driver each toolkit release ships with):
//!   <https://docs.nvidia.com/cuda/cuda-toolkit-release-notes/index.html>
//! - NVIDIA CUDA Compatibility, "Minor Version Compatibility", Table 1 (the oldest driver a
//!   whole CUDA major family runs on: 13.x ≥ 580, 12.x ≥ 525, 11.x ≥ 450, with the exact
//!   versions 580.65.06, 525.60.13 and 450.80.02 from the release notes):
//!   <https://docs.nvidia.com/deploy/cuda-compatibility/minor-version-compatibility.html>
//! - NVIDIA CUDA 13.0 release notes: CUDA 13 no longer builds for Maxwell, Pascal and Volta
//!   (compute capability below 7.5).
//! - Jupyter Docker Stacks, docs/using/selecting.md, "CUDA enabled variants": the prefix
//!   `cuda12-`/`cuda13-` for `pytorch-notebook` (built for the last two CUDA majors) and `cuda-`
//!   for `tensorflow-notebook`; images/pytorch-notebook/cuda13/Dockerfile installs torch from
//!   `download.pytorch.org/whl/cu130`, the cuda12 one from a `cu12x` index:
//!   <https://github.com/jupyter/docker-stacks/blob/main/docs/using/selecting.md>
//!
//! Pip-installed torch and TensorFlow wheels carry their own CUDA runtime, so they run on any
//! driver of their CUDA major's family (minor version compatibility); images built on
//! `nvidia/cuda` declare `NVIDIA_REQUIRE_CUDA`, which the container toolkit enforces against the
//! exact toolkit/driver table instead.

use crate::parse::parse_major_minor;

/// (CUDA major.minor, oldest Linux x86_64 driver of that toolkit's GA release).
pub const TOOLKIT_DRIVERS: &[((u32, u32), &str)] = &[
    ((13, 0), "580.65.06"),
    ((12, 9), "575.51.03"),
    ((12, 8), "570.26"),
    ((12, 6), "560.28.03"),
    ((12, 5), "555.42.02"),
    ((12, 4), "550.54.14"),
    ((12, 3), "545.23.06"),
    ((12, 2), "535.54.03"),
    ((12, 1), "530.30.02"),
    ((12, 0), "525.60.13"),
    ((11, 8), "520.61.05"),
    ((11, 7), "515.43.04"),
    ((11, 6), "510.39.01"),
    ((11, 5), "495.29.05"),
    ((11, 4), "470.42.01"),
    ((11, 3), "465.19.01"),
    ((11, 2), "460.27.03"),
    ((11, 1), "455.23"),
    ((11, 0), "450.36.06"),
    ((10, 2), "440.33"),
];

/// (CUDA major, oldest driver running the whole family through minor version compatibility).
pub const FAMILY_DRIVERS: &[(u32, &str)] = &[(13, "580.65.06"), (12, "525.60.13"), (11, "450.80.02")];

/// A driver version as comparable numbers: `570.133.20` → [570, 133, 20].
pub fn driver_key(version: &str) -> Vec<u32> {
    version.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

pub fn driver_at_least(driver: &str, minimum: &str) -> bool {
    driver_key(driver) >= driver_key(minimum)
}

/// The highest CUDA version a driver supports according to the toolkit table, for when
/// `nvidia-smi` does not print it.
pub fn max_cuda_for_driver(driver: &str) -> Option<(u32, u32)> {
    TOOLKIT_DRIVERS.iter().find(|(_, minimum)| driver_at_least(driver, minimum)).map(|(cuda, _)| *cuda)
}

/// The oldest driver for CUDA `version` exactly (toolkit table), if listed.
pub fn driver_for_cuda(version: (u32, u32)) -> Option<&'static str> {
    TOOLKIT_DRIVERS.iter().find(|(cuda, _)| *cuda == version).map(|(_, d)| *d)
}

/// The oldest driver for a CUDA major family, if listed.
pub fn driver_for_family(major: u32) -> Option<&'static str> {
    FAMILY_DRIVERS.iter().find(|(m, _)| *m == major).map(|(_, d)| *d)
}

/// How an image's CUDA relates to this host's driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CudaFit {
    /// The driver supports this CUDA version directly.
    Direct,
    /// Older driver, same family: runs through minor version compatibility (pip wheels).
    MinorCompat,
    /// The driver is too old; `needs` is the oldest driver that would do.
    TooOld { needs: Option<&'static str> },
}

/// Whether CUDA `image` runs on a driver that supports up to `driver_max`. `strict` is for
/// images whose `NVIDIA_REQUIRE_CUDA` the toolkit enforces: no minor version compatibility.
pub fn cuda_fit(image: (u32, u32), driver: &str, driver_max: (u32, u32), strict: bool) -> CudaFit {
    if image <= driver_max {
        return CudaFit::Direct;
    }
    if !strict && image.0 == driver_max.0 {
        if let Some(family) = driver_for_family(image.0) {
            if driver_at_least(driver, family) {
                return CudaFit::MinorCompat;
            }
        }
    }
    let needs = if strict { driver_for_cuda(image) } else { driver_for_family(image.0) };
    CudaFit::TooOld { needs: needs.or_else(|| driver_for_cuda(image)) }
}

/// One CUDA variant of a Docker Stacks image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackVariant {
    pub image: &'static str,
    /// The tag prefix; the image is `quay.io/jupyter/IMAGE:PREFIXlatest` (or a dated tag).
    pub prefix: &'static str,
    /// The CUDA major its wheels are built for (`None` for the CPU image).
    pub cuda_major: Option<u32>,
    /// What the wheels are built with, for display.
    pub cuda_label: &'static str,
    /// Lowest compute capability the CUDA major still builds for.
    pub min_capability: Option<(u32, u32)>,
    /// Whether new tags are still built.
    pub maintained: bool,
}

/// The Docker Stacks images with CUDA variants, newest first, then the CPU images.
pub const STACK_VARIANTS: &[StackVariant] = &[
    StackVariant {
        image: "pytorch-notebook",
        prefix: "cuda13-",
        cuda_major: Some(13),
        cuda_label: "CUDA 13.0 (torch cu130 wheels)",
        min_capability: Some((7, 5)),
        maintained: true,
    },
    StackVariant {
        image: "pytorch-notebook",
        prefix: "cuda12-",
        cuda_major: Some(12),
        cuda_label: "CUDA 12.x (torch cu12x wheels)",
        min_capability: None,
        maintained: true,
    },
    StackVariant {
        image: "pytorch-notebook",
        prefix: "cuda11-",
        cuda_major: Some(11),
        cuda_label: "CUDA 11.8 (torch cu118 wheels)",
        min_capability: None,
        maintained: false,
    },
    StackVariant {
        image: "tensorflow-notebook",
        prefix: "cuda-",
        cuda_major: Some(12),
        cuda_label: "CUDA 12.x (tensorflow[and-cuda] wheels)",
        min_capability: None,
        maintained: true,
    },
    StackVariant {
        image: "pytorch-notebook",
        prefix: "",
        cuda_major: None,
        cuda_label: "CPU only",
        min_capability: None,
        maintained: true,
    },
    StackVariant {
        image: "tensorflow-notebook",
        prefix: "",
        cuda_major: None,
        cuda_label: "CPU only",
        min_capability: None,
        maintained: true,
    },
];

impl StackVariant {
    pub fn reference(&self) -> String {
        format!("quay.io/jupyter/{}:{}latest", self.image, self.prefix)
    }

    /// The oldest driver this variant runs on.
    pub fn min_driver(&self) -> Option<&'static str> {
        self.cuda_major.and_then(driver_for_family)
    }
}

/// The CUDA major a Docker Stacks tag promises, from its prefix (`cuda12-python-3.11` → 12,
/// `cuda-latest` → 12 for tensorflow-notebook).
pub fn stack_tag_cuda(reference: &str) -> Option<(u32, u32)> {
    let (repository, tag) = reference.rsplit_once(':')?;
    if repository.contains('/') && tag.contains('/') {
        return None;
    }
    let name = repository.rsplit('/').next()?;
    STACK_VARIANTS
        .iter()
        .filter(|v| v.cuda_major.is_some() && v.image == name)
        .find(|v| tag.starts_with(v.prefix))
        .and_then(|v| v.cuda_major.map(|m| (m, 0)))
}

/// `12.8` from `"12.8"`; used on `nvidia-smi`'s CUDA field and `torch.version.cuda`.
pub fn cuda_version(text: &str) -> Option<(u32, u32)> {
    parse_major_minor(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_comparison_is_numeric() {
        assert!(driver_at_least("570.133.20", "570.26"));
        assert!(driver_at_least("1000.1", "999.99.99"));
        assert!(!driver_at_least("525.60.12", "525.60.13"));
    }

    #[test]
    fn max_cuda_from_table() {
        assert_eq!(max_cuda_for_driver("535.104.05"), Some((12, 2)));
        assert_eq!(max_cuda_for_driver("580.82.07"), Some((13, 0)));
        assert_eq!(max_cuda_for_driver("470.182.03"), Some((11, 4)));
        assert_eq!(max_cuda_for_driver("390.1"), None);
    }

    #[test]
    fn fits() {
        // A 12.6 wheel on a 535 driver (CUDA 12.2): minor version compatibility.
        assert_eq!(cuda_fit((12, 6), "535.104.05", (12, 2), false), CudaFit::MinorCompat);
        // The same CUDA in an nvidia/cuda image whose requirement the toolkit enforces.
        assert_eq!(cuda_fit((12, 6), "535.104.05", (12, 2), true), CudaFit::TooOld { needs: Some("560.28.03") });
        // CUDA 13 on a 12.x driver: a driver update is the only way.
        assert_eq!(cuda_fit((13, 0), "570.133.20", (12, 8), false), CudaFit::TooOld { needs: Some("580.65.06") });
        assert_eq!(cuda_fit((12, 1), "570.133.20", (12, 8), false), CudaFit::Direct);
    }

    #[test]
    fn stack_tags() {
        assert_eq!(stack_tag_cuda("quay.io/jupyter/pytorch-notebook:cuda12-python-3.11.8"), Some((12, 0)));
        assert_eq!(stack_tag_cuda("quay.io/jupyter/pytorch-notebook:cuda13-latest"), Some((13, 0)));
        assert_eq!(stack_tag_cuda("quay.io/jupyter/tensorflow-notebook:cuda-latest"), Some((12, 0)));
        assert_eq!(stack_tag_cuda("quay.io/jupyter/pytorch-notebook:latest"), None);
        assert_eq!(stack_tag_cuda("localhost:5000/x"), None);
    }
}
