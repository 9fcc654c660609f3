//! `fieldflow datagen`: run a generation pipeline into a native HDF5 file (+ XDMF sidecar).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use fieldflow_datasets::generate::{GenerateError, Shard, generate, stack};
use fieldflow_datasets::{FieldWriter, FileSpec, Grid, Metadata, WriterOptions};

use super::progress;
use crate::cli::{DatagenOpts, GlobalOpts};
use crate::config::datagen::{DatagenConfig, PdeKind};
use crate::config::{self, ConfigError};

/// Loads the config with the command-line overrides applied, fills in the PDE section's
/// defaults, and validates it.
fn load_config(opts: &DatagenOpts) -> Result<(DatagenConfig, String)> {
    let loaded = config::load::<DatagenConfig>(&opts.job.config, &opts.job.set)?;
    let mut cfg = loaded.value;
    if let Some(seed) = opts.seed {
        cfg.seed = seed;
    }
    if let Some(path) = &opts.output {
        cfg.output.path = path.clone();
    }
    cfg.validate(&loaded.source)?;
    match cfg.pde {
        PdeKind::Ns2d => cfg.ns2d = Some(cfg.ns2d.take().unwrap_or_default()),
        PdeKind::Kolmogorov => cfg.kolmogorov = Some(cfg.kolmogorov.take().unwrap_or_default()),
        PdeKind::Darcy => cfg.darcy = Some(cfg.darcy.take().unwrap_or_default()),
    }
    let effective = toml::to_string(&cfg).map_err(|e| ConfigError::Syntax {
        path: loaded.source.clone(),
        message: format!("cannot write the effective config: {e}"),
    })?;
    Ok((cfg, effective))
}

/// `data/x.h5` → `data/x.shard-1-of-4.h5`.
fn shard_path(path: &Path, shard: Shard) -> PathBuf {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let ext = path.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    path.with_file_name(format!("{stem}.shard-{}-of-{}{ext}", shard.index, shard.count))
}

pub fn run(opts: &DatagenOpts, global: &GlobalOpts) -> Result<()> {
    let (cfg, effective) = load_config(opts)?;
    if opts.job.dry_run {
        print!("{effective}");
        return Ok(());
    }
    let shard = opts.shard.as_deref().map(Shard::parse).transpose()?;
    let generator = cfg.generator().with_context(|| format!("in config {}", opts.job.config.display()))?;
    let d = generator.describe();
    let mut metadata = Metadata::new(d.pde, &d.channels.iter().map(String::as_str).collect::<Vec<_>>());
    metadata.coefficient_channels = d.coefficient_channels.clone();
    metadata.lx = d.lx;
    metadata.ly = d.ly;
    metadata.boundary = d.boundary;
    metadata.seed = Some(cfg.seed);
    metadata.config = effective;
    metadata.flow = d.flow.clone();
    let dtype = cfg.output.dtype;
    let mut spec = FileSpec::new(metadata, Grid { x: d.x.clone(), y: d.y.clone() }, dtype);
    if !d.times.is_empty() {
        spec = spec.with_time(d.times.clone());
    }
    let (path, range) = match shard {
        Some(s) => (shard_path(&cfg.output.path, s), s.range(cfg.samples)),
        None => (cfg.output.path.clone(), 0..cfg.samples),
    };
    let options = WriterOptions { gzip: cfg.output.gzip, force: opts.force, ..WriterOptions::default() };
    super::create_output_dir(&path)?;
    let mut writer = FieldWriter::create(&path, spec, &options)?;
    let bar = progress::bar(range.end - range.start, "generating", global.quiet);
    generate(
        generator.as_ref(),
        cfg.seed,
        range,
        cfg.batch,
        |_, samples| {
            let (fields, coefficients, trajectories) = stack(&samples);
            writer
                .append(fields.view(), coefficients.as_ref().map(|c| c.view()))
                .map_err(|e| GenerateError::Sink(Box::new(e)))?;
            if let Some(t) = trajectories {
                writer.append_trajectories(t.view()).map_err(|e| GenerateError::Sink(Box::new(e)))?;
            }
            Ok(())
        },
        |done| bar.set_position(done),
    )?;
    bar.finish_and_clear();
    let written = writer.finish()?;
    println!("wrote {} samples to {} (ParaView: {})", written.samples, written.path.display(), written.xdmf.display());
    Ok(())
}
