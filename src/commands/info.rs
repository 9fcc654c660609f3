//! `fieldflow info FILE`: layout, attributes and per-channel statistics of a data file.

use anyhow::Result;
use fieldflow_datasets::{Info, info};
use serde_json::{Value, json};

use crate::cli::InfoOpts;

fn to_json(i: &Info) -> Value {
    json!({
        "path": i.path.display().to_string(),
        "file_size": i.file_size,
        "format": i.format.map(|f| format!("{f:?}")),
        "samples": i.samples,
        "sample_shape": i.sample_shape,
        "channels": i.channels,
        "coefficient_channels": i.coefficient_channels,
        "time_steps": i.time_steps,
        "attributes": i.attributes.iter().map(|a| (a.name.clone(), Value::String(a.value.clone()))).collect::<serde_json::Map<_, _>>(),
        "datasets": i.datasets.iter().map(|d| json!({
            "name": d.name, "shape": d.shape, "dtype": d.dtype, "chunks": d.chunks, "filters": d.filters,
        })).collect::<Vec<_>>(),
        "stats": i.stats.iter().map(|s| json!({
            "dataset": s.dataset, "channel": s.channel, "mean": s.mean, "std": s.std, "min": s.min, "max": s.max,
        })).collect::<Vec<_>>(),
        "checks": i.checks.iter().map(|c| json!({
            "name": c.name, "kind": c.kind, "metric": c.metric, "max": c.max, "mean": c.mean,
            "samples": c.per_sample.len(), "created_by": c.created_by, "timestamp": c.timestamp,
        })).collect::<Vec<_>>(),
        "problem": i.problem,
    })
}

pub fn run(opts: &InfoOpts) -> Result<()> {
    use std::io::Write;
    let summary = info(&opts.file)?;
    let text = if opts.json { format!("{:#}\n", to_json(&summary)) } else { summary.to_string() };
    // A reader that stops early (`fieldflow info FILE | head`) is not an error.
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
