//! `fieldflow generate`: load the config, build the library's [`Sampler`] for a model trained by
//! `fieldflow train`, stream its fields into a native HDF5 file (+ XDMF sidecar and PNG
//! previews), and report the divergence of what was written and where the time went. The
//! sampling itself is [`crate::sample::sampler`].

use std::time::Instant;

use anyhow::{Context, Result};
use fieldflow_datasets::{Dtype, FieldWriter, FileSpec, Grid, Metadata, WriterOptions};

use super::{BadInput, progress};
use crate::cli::{DeviceName, GenerateOpts, GlobalOpts};
use crate::config::generate::{self, GenerateConfig};
use crate::config::{self, ConfigError};
use crate::plot::generation_previews;
use crate::sample::{GenerationSummary, Sampler, SamplerError};
use crate::train::TrainedModel;

fn load_config(opts: &GenerateOpts) -> Result<(GenerateConfig, String)> {
    let loaded = config::load_migrated::<GenerateConfig>(&opts.job.config, &opts.job.set, generate::migrate)?;
    for warning in &loaded.warnings {
        eprintln!("warning: {}: {warning}", loaded.source);
    }
    let mut cfg = loaded.value;
    if let Some(path) = &opts.output {
        cfg.output.path = path.clone();
    }
    if let Some(seed) = opts.seed {
        cfg.seed = seed;
    }
    cfg.validate(&loaded.source)?;
    let effective = toml::to_string(&cfg).map_err(|e| ConfigError::Syntax {
        path: loaded.source.clone(),
        message: format!("cannot write the effective config: {e}"),
    })?;
    Ok((cfg, effective))
}

pub fn run(opts: &GenerateOpts, global: &GlobalOpts) -> Result<()> {
    let (cfg, effective) = load_config(opts)?;
    if opts.job.dry_run {
        print!("{effective}");
        return Ok(());
    }
    let started = Instant::now();
    let config_file = opts.job.config.display();
    let device = global.device()?;
    if let Some(reference) = &cfg.preview.reference
        && cfg.preview.samples > 0
        && !reference.is_file()
    {
        let message = format!("preview.reference = {} in {config_file}: no such file", reference.display());
        return Err(BadInput(message).into());
    }
    let bad = |e: &dyn std::fmt::Display| BadInput(e.to_string());
    let model = TrainedModel::load(&cfg.model.run_dir, cfg.model.ema, &device).map_err(|e| match e {
        crate::train::LoadError::Missing(dir) => {
            BadInput(format!("model run directory {} (model.run_dir in {config_file}) does not exist", dir.display()))
        }
        other => bad(&other),
    })?;
    let grid = model.grid(cfg.resolution).map_err(|e| bad(&e))?;
    let channels = &model.data.channels;
    let constraint = cfg
        .constraint_spec()
        .build(&grid, channels)
        .map_err(|e| BadInput(format!("constraint.{} in {config_file}: {}", e.key, e.reason)))?;
    let sampler = Sampler::new(
        cfg.sampler_spec(),
        grid.clone(),
        model.source(&grid).map_err(|e| bad(&e))?,
        constraint,
        model.stats.clone(),
    )
    .map_err(|e| BadInput(format!("{config_file}: {e}")))?;
    let network = model.network(global.device == DeviceName::Cpu).map_err(|e| anyhow::anyhow!("{e}"))?;

    let mut metadata = Metadata::new(model.data.pde.clone(), &channels.iter().map(String::as_str).collect::<Vec<_>>());
    (metadata.lx, metadata.ly, metadata.seed, metadata.config) = (grid.lx(), grid.ly(), Some(cfg.seed), effective);
    metadata.flow = model.data.flow.clone();
    let dtype = cfg.output.dtype;
    let spec = FileSpec::new(metadata, Grid::periodic(grid.nx(), grid.ny(), grid.lx(), grid.ly()), dtype);
    let options = WriterOptions { gzip: cfg.output.gzip, force: opts.force, ..WriterOptions::default() };
    super::create_output_dir(&cfg.output.path)?;
    let mut writer = FieldWriter::create(&cfg.output.path, spec, &options)?;
    let bar = progress::bar(cfg.samples, "sampling", global.quiet);
    let velocity = model.physics().roles.velocity;
    let mut summary = GenerationSummary::new(grid.clone(), velocity, cfg.preview.samples);
    let sampling_started = Instant::now();
    let report =
        sampler.sample_to_writer(&network, cfg.seed, 0..cfg.samples, cfg.batch, &device, &mut writer, |end, fields| {
            summary.add(fields).map_err(SamplerError::from)?;
            bar.set_position(end);
            Ok::<(), SamplerError>(())
        });
    let report = report.context("sampling")?;
    bar.finish_and_clear();
    let sampling = sampling_started.elapsed();
    let clock = Instant::now();
    let written = writer.finish()?;
    let writing = report.writing + clock.elapsed();
    let clock = Instant::now();
    let pictures = if cfg.preview.samples > 0 {
        let reference = cfg.preview.reference.as_deref();
        generation_previews(&written.path, &grid, channels, velocity, &summary.previews, &summary.spectrum, reference)
            .context("writing the PNG previews")?
    } else {
        Vec::new()
    };
    let drawing = clock.elapsed();
    println!(
        "wrote {} samples ({}×{}, channels {channels:?}) to {} (ParaView: {}) from {}",
        written.samples,
        grid.ny(),
        grid.nx(),
        written.path.display(),
        written.xdmf.display(),
        model.checkpoint.display()
    );
    for picture in &pictures {
        println!("preview: {}", picture.display());
    }
    let (network_time, calls) = network.time();
    let secs = |d: std::time::Duration| d.as_secs_f64();
    println!(
        "time: {:.1} s total = sampling {:.1} s (network {:.1} s in {calls} evaluations, sources and constraint {:.1} s) \
         + writing {:.2} s + previews {:.2} s + loading {:.2} s",
        secs(started.elapsed()),
        secs(sampling) - secs(report.writing),
        secs(network_time),
        secs(sampling.saturating_sub(report.writing).saturating_sub(network_time)),
        secs(writing),
        secs(drawing),
        secs(started.elapsed().saturating_sub(sampling).saturating_sub(drawing).saturating_sub(writing)),
    );
    if let Some((max, relative)) = summary.divergence {
        println!("max divergence: {max:.3e} (relative {relative:.3e}, computed in f64 before writing)");
        if dtype == Dtype::F32 {
            println!("note: written as f32; rounding raises the divergence of the file to ~1e-7 relative");
        }
    }
    Ok(())
}
