//! `fieldflow train`: train an FNO flow-matching model on a native data file.
//!
//! The first `train_fraction` of the samples train, the rest validate; both are standardised per
//! channel with the training statistics, which are saved with every checkpoint together with the
//! data file's metadata (PDE, channel names, domain, grid, source measure), so that
//! `fieldflow generate` needs only the run directory. With `[train.pbfm]` the model is trained
//! with PBFM's residual loss on the file's grid and domain, in physical units.

use std::path::Path;

use anyhow::{Context, Result};
use fieldflow_datasets::FieldReader;
use fieldflow_pde::Grid2d;

use super::BadInput;
use crate::cli::{GlobalOpts, TrainOpts};
use crate::config::train::TrainJobConfig;
use crate::config::{self, ConfigError};
use crate::model::{Fno, FnoConfig};
use crate::train::{
    Checkpoint, FieldDataOptions, TrainError, TrainedData, Trainer, latest_checkpoint, load_field_dataset,
};

fn load_config(opts: &TrainOpts) -> Result<(TrainJobConfig, String)> {
    let mut loaded = config::load::<TrainJobConfig>(&opts.job.config, &opts.job.set)?;
    if let Some(seed) = opts.seed {
        loaded.value.train.seed = seed;
    }
    loaded.value.validate(&loaded.source)?;
    let effective = toml::to_string(&loaded.value).map_err(|e| ConfigError::Syntax {
        path: loaded.source.clone(),
        message: format!("cannot write the effective config: {e}"),
    })?;
    Ok((loaded.value, effective))
}

/// Removes what a run leaves in `dir` (not the directory itself, which may hold other files).
fn clear_run(dir: &Path) -> Result<()> {
    let checkpoints = dir.join("checkpoints");
    if checkpoints.exists() {
        std::fs::remove_dir_all(&checkpoints).with_context(|| format!("removing {}", checkpoints.display()))?;
    }
    for name in ["train_log.csv", "normalization.json"] {
        let path = dir.join(name);
        if path.exists() {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}

/// User-fixable training errors become [`BadInput`] (exit 2).
fn classify(e: TrainError) -> anyhow::Error {
    match e {
        TrainError::Config { .. }
        | TrainError::ExistingRun { .. }
        | TrainError::Checkpoint { .. }
        | TrainError::NonFiniteData { .. }
        | TrainError::Noise(_) => BadInput(e.to_string()).into(),
        other => other.into(),
    }
}

pub fn run(opts: &TrainOpts, global: &GlobalOpts) -> Result<()> {
    let (cfg, effective) = load_config(opts)?;
    if opts.job.dry_run {
        print!("{effective}");
        return Ok(());
    }
    let data_path = &cfg.data.path;
    if !data_path.is_file() {
        return Err(BadInput(format!(
            "data file {} (data.path in {}) does not exist",
            data_path.display(),
            opts.job.config.display()
        ))
        .into());
    }
    let reader = FieldReader::open(data_path)
        .map_err(|e| BadInput(format!("cannot read data file {}: {e}", data_path.display())))?;
    let n = reader.len();
    let n_train = ((n as f64 * cfg.data.train_fraction).round() as usize).clamp(1, n.max(1));
    if n == 0 {
        return Err(BadInput(format!("data file {} holds no samples", data_path.display())).into());
    }
    let [channels, ny, nx] = reader.sample_shape();
    let meta = reader.metadata().clone();
    if cfg.model.leray && meta.channels != ["u", "v"] {
        return Err(BadInput(format!(
            "model.leray = true in {} needs velocity data with channels [u, v]; {} has {:?}",
            opts.job.config.display(),
            data_path.display(),
            meta.channels
        ))
        .into());
    }
    let grid = Grid2d::new(nx, ny, meta.lx, meta.ly)
        .map_err(|e| BadInput(format!("{}: unusable grid {ny}×{nx}: {e}", data_path.display())))?;
    let device = global.device()?;
    // The velocity components share one scale, so that normalising keeps ∇·u = 0.
    let physics = meta.physics();
    let shared_scale = match physics.roles.velocity {
        Some((u, v)) => vec![u, v],
        None => Vec::new(),
    };
    if let Some(pbfm) = &cfg.train.pbfm
        && let Err(reason) = crate::train::pbfm_fits(pbfm.residual, &physics, meta.channels.len())
    {
        return Err(BadInput(format!(
            "train.pbfm.residual = {:?} in {}: {reason} ({} has channels {:?})",
            pbfm.residual.name(),
            opts.job.config.display(),
            data_path.display(),
            meta.channels
        ))
        .into());
    }
    // A resumed run keeps the normalisation it started with (the weights were trained on it).
    let run_dir = &cfg.output.run_dir;
    let resumed_normalization = match (opts.force, opts.resume, run_dir.is_dir()) {
        (false, true, true) => latest_checkpoint(run_dir)
            .map_err(|e| BadInput(e.to_string()))?
            .and_then(|ck| Checkpoint::read(&ck.dir).ok())
            .and_then(|ck| ck.meta.normalization),
        _ => None,
    };
    let snapshots = cfg.data.snapshots;
    let options = FieldDataOptions {
        shared_scale,
        normalization: resumed_normalization,
        snapshots,
        mean_field: cfg.data.mean_field,
        ..FieldDataOptions::default()
    };
    let (train, normalization) = load_field_dataset(&reader, 0..n_train, &options, &device).map_err(classify)?;
    let validation = if n_train < n {
        let options =
            FieldDataOptions { normalization: Some(normalization.clone()), snapshots, ..FieldDataOptions::default() };
        Some(load_field_dataset(&reader, n_train..n, &options, &device).map_err(classify)?.0)
    } else {
        None
    };
    let source_spectrum = crate::train::fit_source(&cfg.noise, &grid, &train).map_err(classify)?;
    let noise = cfg
        .noise
        .measure(source_spectrum.as_ref())
        .and_then(|m| m.sampler(&grid, channels))
        .map_err(|e| BadInput(format!("[noise]: {e}")))?;
    let m = &cfg.model;
    let fno = FnoConfig::new(channels, channels)
        .with_width(m.width)
        .with_modes((m.modes, m.modes))
        .with_layers(m.layers)
        .with_time_embedding_dim(m.time_embedding_dim)
        .with_projection_width(m.projection_width)
        .with_seed(m.seed);
    let fno = if m.leray { fno.with_leray_domain(Some((meta.lx, meta.ly))) } else { fno };
    let trained = TrainedData {
        data: data_path.display().to_string(),
        pde: meta.pde.clone(),
        channels: meta.channels.clone(),
        lx: meta.lx,
        ly: meta.ly,
        nx,
        ny,
        noise: cfg.noise,
        source_spectrum,
        flow: meta.flow.clone(),
        config: effective,
    };
    if opts.force {
        clear_run(run_dir)?;
    }
    let trainer = Trainer::<4, Fno>::new(cfg.train.clone(), fno, &device)
        .map_err(classify)?
        .with_run_dir(run_dir.clone())
        .with_quiet(global.quiet)
        .with_resume(opts.resume)
        .with_normalization(normalization)
        .with_domain(meta.lx, meta.ly)
        .with_metadata(serde_json::to_value(&trained).context("recording the data's metadata")?);
    let outcome = trainer.fit(&train, validation.as_ref(), &noise).map_err(classify)?;
    let train_loss = outcome.losses.last().copied().or_else(|| outcome.log.last().map(|r| r.train_loss));
    let val_loss = outcome.log.iter().rev().find_map(|r| r.val_loss);
    let show = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.4e}"));
    if let Some(from) = outcome.resumed_from {
        println!("resumed from step {from}");
    }
    let residual = outcome.residual_losses.last().copied().or_else(|| outcome.log.last().and_then(|r| r.residual_loss));
    let residual = match (&cfg.train.pbfm, residual) {
        (Some(p), r) => format!(", {} residual loss {}", p.residual.name(), show(r)),
        (None, _) => String::new(),
    };
    println!(
        "trained {} steps on {n_train} samples ({} validation): train loss {}, val loss {}{residual}",
        outcome.step,
        n - n_train,
        show(train_loss),
        show(val_loss)
    );
    match &outcome.checkpoint {
        Some(dir) => println!("checkpoint: {}", dir.display()),
        None => println!("no checkpoint written"),
    }
    Ok(())
}
