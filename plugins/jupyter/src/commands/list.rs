//! `dpe jupyter list [--json]`: every running dpe Jupyter environment of every workspace of
//! this user, found by the labels the core and the plugin put on the containers.

use crate::commands::url_of;
use crate::docker;
use crate::error::Result;
use dpe_plugin::Context;

pub fn run(context: &Context, json: bool) -> Result<i32> {
    let containers: Vec<docker::Container> = docker::containers(context)?
        .into_iter()
        // The key label marks a Jupyter environment, whoever started it (`dpe jupyter` or
        // `dpe compose`, which runs the same specification).
        .filter(|c| c.running() && !c.key.is_empty())
        .collect();
    let rows: Vec<serde_json::Value> = containers
        .iter()
        .map(|c| {
            serde_json::json!({
                "project": c.project,
                "workspace": c.workspace,
                "port": c.port,
                "url": url_of(context, c),
                "image": c.image,
                "uptime": c.status.strip_prefix("Up ").unwrap_or(&c.status),
                "container": c.name,
            })
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows).expect("json"));
        return Ok(0);
    }
    if rows.is_empty() {
        eprintln!("dpe: no Jupyter environment is running");
        return Ok(0);
    }
    let cell = |row: &serde_json::Value, key: &str| match &row[key] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".to_string(),
        other => other.to_string(),
    };
    let header = ["PROJECT", "WORKSPACE", "PORT", "UPTIME", "IMAGE", "URL"];
    let keys = ["project", "workspace", "port", "uptime", "image", "url"];
    let table: Vec<Vec<String>> = std::iter::once(header.iter().map(|h| h.to_string()).collect())
        .chain(rows.iter().map(|row| keys.iter().map(|k| cell(row, k)).collect()))
        .collect();
    let widths: Vec<usize> =
        (0..header.len()).map(|i| table.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    for row in table {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(
                |(i, cell)| {
                    if i + 1 == row.len() {
                        cell.clone()
                    } else {
                        format!("{cell:<width$}", width = widths[i])
                    }
                },
            )
            .collect();
        println!("{}", line.join("  "));
    }
    Ok(0)
}
