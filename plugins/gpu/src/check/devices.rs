//! The project's `gpu_devices` selection: whether it names GPUs this host has, and the engine
//! flags and Compose device entry that give a container exactly those GPUs.

use super::{Check, Finding, Mechanism, Report};
use crate::parse::Gpu;
use dpe_plugin::config::GpuDevices;

const GPU_DEVICES: Check = Check::new("driver", "gpu_devices");

/// Checks `gpu_devices` against the GPUs present. Returns whether the selection is usable.
pub(super) fn layer(report: &mut Report, devices: Option<&GpuDevices>) -> bool {
    let Some(finding) = selection(devices, &report.gpus) else { return true };
    report.findings.push(finding);
    false
}

/// The finding for a selection that names no GPU, or more or other GPUs than `gpus`.
fn selection(devices: Option<&GpuDevices>, gpus: &[Gpu]) -> Option<Finding> {
    let count = gpus.len();
    let problem = match devices {
        None | Some(GpuDevices::All) => None,
        Some(GpuDevices::Count(0)) => Some("`gpu_devices = 0` asks for no GPU".to_string()),
        Some(GpuDevices::Count(n)) if *n as usize > count => {
            Some(format!("`gpu_devices = {n}` asks for {n} GPUs but this host has {count}"))
        }
        Some(GpuDevices::Indices(list)) if list.is_empty() => Some("`gpu_devices = []` names no GPU".to_string()),
        Some(GpuDevices::Indices(list)) => list
            .iter()
            .find(|i| !gpus.iter().any(|g| g.index == **i))
            .map(|i| format!("`gpu_devices` names GPU {i} but this host's GPUs are {}", indices(gpus))),
        Some(GpuDevices::Count(_)) => None,
    }?;
    Some(GPU_DEVICES.fail(problem).help(format!(
        "set `gpu_devices` in the project's dpe.toml to \"all\", a count up to {count}, or indices from {}",
        indices(gpus)
    )))
}

fn indices(gpus: &[Gpu]) -> String {
    gpus.iter().map(|g| g.index.to_string()).collect::<Vec<_>>().join(", ")
}

/// The engine flags that give a container the selected GPUs.
pub fn docker_args(mechanism: Mechanism, devices: Option<&GpuDevices>, gpus: &[Gpu]) -> Vec<String> {
    match mechanism {
        Mechanism::Gpus => {
            let value = match devices {
                None | Some(GpuDevices::All) => "all".to_string(),
                Some(GpuDevices::Count(n)) => n.to_string(),
                // docker reads `--gpus` as CSV, so a list of devices needs literal quotes.
                Some(GpuDevices::Indices(list)) if list.len() == 1 => format!("device={}", list[0]),
                Some(GpuDevices::Indices(list)) => format!("\"device={}\"", join(list)),
            };
            vec!["--gpus".into(), value]
        }
        Mechanism::Cdi => {
            cdi_names(devices, gpus).into_iter().flat_map(|name| ["--device".to_string(), name]).collect()
        }
    }
}

/// The CDI device names (`nvidia.com/gpu=0`) of the selected GPUs.
pub(super) fn cdi_names(devices: Option<&GpuDevices>, gpus: &[Gpu]) -> Vec<String> {
    let names: Vec<String> = match devices {
        None | Some(GpuDevices::All) => vec!["all".into()],
        Some(GpuDevices::Count(n)) => gpus.iter().take(*n as usize).map(|g| g.index.to_string()).collect(),
        Some(GpuDevices::Indices(list)) => list.iter().map(u32::to_string).collect(),
    };
    names.into_iter().map(|n| format!("nvidia.com/gpu={n}")).collect()
}

/// The Compose `deploy.resources.reservations.devices` entry for the same selection.
pub fn compose_device(mechanism: Mechanism, devices: Option<&GpuDevices>, gpus: &[Gpu]) -> serde_json::Value {
    use serde_json::json;
    match mechanism {
        Mechanism::Gpus => match devices {
            None | Some(GpuDevices::All) => json!({"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}),
            Some(GpuDevices::Count(n)) => json!({"driver": "nvidia", "count": n, "capabilities": ["gpu"]}),
            Some(GpuDevices::Indices(list)) => {
                let ids: Vec<String> = list.iter().map(u32::to_string).collect();
                json!({"driver": "nvidia", "device_ids": ids, "capabilities": ["gpu"]})
            }
        },
        Mechanism::Cdi => json!({"driver": "cdi", "device_ids": cdi_names(devices, gpus), "capabilities": ["gpu"]}),
    }
}

fn join(list: &[u32]) -> String {
    list.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::test_support::gpus;
    use crate::check::Status;

    #[test]
    fn all_gpus_or_a_count_or_indices_present_are_fine() {
        let two = gpus(&[0, 1]);
        assert_eq!(selection(None, &two), None);
        assert_eq!(selection(Some(&GpuDevices::All), &two), None);
        assert_eq!(selection(Some(&GpuDevices::Count(2)), &two), None);
        assert_eq!(selection(Some(&GpuDevices::Indices(vec![1])), &two), None);
    }

    #[test]
    fn too_many_gpus_fail_with_what_the_host_has() {
        let finding = selection(Some(&GpuDevices::Count(3)), &gpus(&[0, 1])).unwrap();
        assert_eq!((finding.layer, finding.check), ("driver", "gpu_devices"));
        assert_eq!(
            finding.parts(),
            (
                Status::Fail,
                "`gpu_devices = 3` asks for 3 GPUs but this host has 2",
                Some("set `gpu_devices` in the project's dpe.toml to \"all\", a count up to 2, or indices from 0, 1")
            )
        );
    }

    #[test]
    fn no_gpu_or_an_absent_index_fails() {
        let two = gpus(&[0, 1]);
        assert_eq!(selection(Some(&GpuDevices::Count(0)), &two).unwrap().message, "`gpu_devices = 0` asks for no GPU");
        assert_eq!(
            selection(Some(&GpuDevices::Indices(vec![])), &two).unwrap().message,
            "`gpu_devices = []` names no GPU"
        );
        assert_eq!(
            selection(Some(&GpuDevices::Indices(vec![0, 4])), &two).unwrap().message,
            "`gpu_devices` names GPU 4 but this host's GPUs are 0, 1"
        );
    }

    #[test]
    fn a_failed_selection_is_recorded_and_stops_the_probe() {
        let mut report = Report { gpus: gpus(&[0]), ..Report::default() };
        assert!(layer(&mut report, None));
        assert!(report.findings.is_empty());
        assert!(!layer(&mut report, Some(&GpuDevices::Count(2))));
        assert_eq!(report.findings.len(), 1);
    }

    #[test]
    fn cdi_names_follow_the_selection() {
        let three = gpus(&[0, 1, 2]);
        assert_eq!(cdi_names(None, &three), vec!["nvidia.com/gpu=all"]);
        assert_eq!(cdi_names(Some(&GpuDevices::Count(2)), &three), vec!["nvidia.com/gpu=0", "nvidia.com/gpu=1"]);
        assert_eq!(cdi_names(Some(&GpuDevices::Indices(vec![2])), &three), vec!["nvidia.com/gpu=2"]);
    }
}
