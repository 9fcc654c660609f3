//! `fieldflow generate`: sample a model trained by `fieldflow train` into a native HDF5 file
//! (+ XDMF sidecar), optionally with the divergence-free constraint enforced (PCFM or projection
//! after sampling), then report the divergence of what was written.
//!
//! The network learned the velocity `ṽ(x̃, t)` of standardised fields `x̃ = (x − μ)/s`. Plain
//! sampling integrates it and maps the result back, `x = μ + s ⊙ x̃`. Constrained sampling works
//! in data units with the pushed-forward field `v(x, t) = s ⊙ ṽ((x − μ)/s, t)` started from
//! `x₀ = μ + s ⊙ x̃₀`: the two flows are the same map, and the constraint `∇·u = 0` then holds for
//! the fields written (a per-channel scaling does not preserve the divergence).

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use burn::tensor::{Device, Tensor, TensorData};
use fieldflow_datasets::{Dtype, FieldWriter, FileSpec, Grid, Metadata, WriterOptions};
use fieldflow_pde::Complex64;
use fieldflow_pde::Grid2d;
use fieldflow_pde::constraints::{Constraint, DarcyPde, DivergenceFree, FixedEnergy, FixedMean, MaskValues, Stack};
use fieldflow_pde::darcy::{DarcyOperator, FaceAverage, Forcing as DarcyForcing};
use fieldflow_pde::grid::signed_index;
use fieldflow_pde::operators::vorticity;
use fieldflow_pde::residuals::divergence_residual;
use fieldflow_pde::spectrum::{Spectrum, mean_power_spectrum};
use ndarray::{Array2, Array3, Array4, Axis, Ix4, s};
use rayon::prelude::*;

use super::train::TrainedData;
use super::{BadInput, progress};
use crate::cli::{DeviceName, GlobalOpts, JobOpts};
use crate::config::datagen::DtypeName;
use crate::config::generate::{ConstraintKind, ConstraintMethod, DarcyProjection, GenerateConfig, SolverName};
use crate::config::{self, ConfigError};
use crate::constraint::{project_array, to_array};
use crate::model::{Fno, FnoCpu};
use crate::plot::{Colormap, Curve, Panel, heatmaps, spectra};
use crate::sample::eci::{EciOptions, eci_sample};
use crate::sample::pcfm::{PcfmOptions, Predictor, pcfm_sample, project_after_sampling};
use crate::sample::stochastic::{StochasticOptions, sample_stochastic};
use crate::sample::{SolveOptions, Solver, solve};
use crate::train::{ChannelStats, Checkpoint, FlowModel, latest_checkpoint, load_checkpoint_model};

/// `fieldflow generate`.
#[derive(Debug, Clone, clap::Args)]
pub struct GenerateOpts {
    /// Config and overrides.
    #[command(flatten)]
    pub job: JobOpts,
    /// Output file (overrides `output.path`).
    #[arg(long, short, value_name = "FILE.h5")]
    pub output: Option<PathBuf>,
    /// Overwrite an existing output file (and its previews).
    #[arg(long)]
    pub force: bool,
    /// Seed of the source samples (overrides `seed`).
    #[arg(long)]
    pub seed: Option<u64>,
}

fn load_config(opts: &GenerateOpts) -> Result<(GenerateConfig, String)> {
    let loaded = config::load::<GenerateConfig>(&opts.job.config, &opts.job.set)?;
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

/// The checkpoint directory: `dir` itself if it is one, else the run directory's newest.
fn checkpoint_of(dir: &Path, config: &Path) -> Result<PathBuf> {
    if !dir.is_dir() {
        return Err(BadInput(format!(
            "model run directory {} (model.run_dir in {}) does not exist",
            dir.display(),
            config.display()
        ))
        .into());
    }
    if dir.join("checkpoint.json").is_file() {
        return Ok(dir.to_path_buf());
    }
    match latest_checkpoint(dir).map_err(|e| BadInput(e.to_string()))? {
        Some(Checkpoint { dir, .. }) => Ok(dir),
        None => Err(BadInput(format!("{} holds no checkpoint; run `fieldflow train` first", dir.display())).into()),
    }
}

/// `[1, C, 1, 1]` tensors of the per-channel means and scales.
fn stats_tensors(stats: &ChannelStats, device: &Device) -> (Tensor<4>, Tensor<4>) {
    let c = stats.channels();
    let mean: Vec<f32> = stats.mean.iter().map(|&m| m as f32).collect();
    let scale: Vec<f32> = (0..c).map(|i| stats.scale(i) as f32).collect();
    let make = |v: Vec<f32>| Tensor::<4>::from_data(TensorData::new(v, [1, c, 1, 1]), device);
    (make(mean), make(scale))
}

/// Max over samples of (max |∇·u|, relative divergence) of channels `u`, `v`.
fn divergence_report(grid: &Grid2d, fields: &Array4<f64>, u: usize, v: usize) -> Result<(f64, f64)> {
    let mut worst = (0.0_f64, 0.0_f64);
    for (i, sample) in fields.axis_iter(Axis(0)).enumerate() {
        let uv = ndarray::stack(Axis(0), &[sample.index_axis(Axis(0), u), sample.index_axis(Axis(0), v)])?;
        let r = divergence_residual(grid, uv.view()).with_context(|| format!("divergence of sample {i}"))?;
        worst = (worst.0.max(r.max), worst.1.max(r.relative));
    }
    Ok(worst)
}

pub fn run(opts: &GenerateOpts, global: &GlobalOpts) -> Result<()> {
    let (cfg, effective) = load_config(opts)?;
    if opts.job.dry_run {
        print!("{effective}");
        return Ok(());
    }
    let started = Instant::now();
    let ck_dir = checkpoint_of(&cfg.model.run_dir, &opts.job.config)?;
    let device = global.device()?;
    if let Some(reference) = &cfg.preview.reference
        && cfg.preview.samples > 0
        && !reference.is_file()
    {
        return Err(BadInput(format!(
            "preview.reference = {} in {}: no such file",
            reference.display(),
            opts.job.config.display()
        ))
        .into());
    }
    let (model, meta) = load_checkpoint_model::<4, Fno>(&ck_dir, cfg.model.ema, &device)
        .map_err(|e| BadInput(format!("cannot load the model: {e}")))?;
    let trained: TrainedData = meta.metadata.clone().and_then(|m| serde_json::from_value(m).ok()).ok_or_else(|| {
        BadInput(format!("{} was not written by `fieldflow train` (no data metadata)", ck_dir.display()))
    })?;
    let channels = trained.channels.len();
    let stats = match &meta.normalization {
        Some(n) => n.fields.clone(),
        None => ChannelStats { mean: vec![0.0; channels], std: vec![1.0; channels] },
    };
    let (nx, ny) = match cfg.resolution {
        None => (trained.nx, trained.ny),
        Some(_) if trained.nx == 0 => {
            return Err(BadInput(format!("{}: the recorded training grid is empty", ck_dir.display())).into());
        }
        Some(n) => {
            let ny = n * trained.ny / trained.nx;
            if !(n * trained.ny).is_multiple_of(trained.nx) || !ny.is_multiple_of(2) || ny < 4 {
                return Err(BadInput(format!(
                    "resolution = {n} does not keep the training grid's aspect ratio {}×{} on an even grid",
                    trained.ny, trained.nx
                ))
                .into());
            }
            (n, ny)
        }
    };
    let grid = Grid2d::new(nx, ny, trained.lx, trained.ly).map_err(|e| BadInput(format!("grid {ny}×{nx}: {e}")))?;
    let sampler =
        trained.noise.measure().sampler(&grid, channels).map_err(|e| BadInput(format!("source measure: {e}")))?;
    let velocity_channels =
        match (trained.channels.iter().position(|c| c == "u"), trained.channels.iter().position(|c| c == "v")) {
            (Some(u), Some(v)) => Some((u, v)),
            _ => None,
        };
    let constraint = build_constraint(&cfg, &opts.job.config, &grid, &trained.channels, velocity_channels)?;

    // The network's velocity at a shared time t, by the CPU inference engine on the CPU; a model
    // error (only possible for shapes, which are fixed above) yields NaN, which the samplers
    // report as a non-finite velocity.
    let engine = if global.device == DeviceName::Cpu {
        Some(FnoCpu::new(&model).map_err(|e| anyhow::anyhow!("preparing the model for the CPU: {e}"))?)
    } else {
        None
    };
    let timer = NetworkTimer::default();
    let network = |x: Tensor<4>, t: f64| {
        let clock = Instant::now();
        let tt = Tensor::<1>::from_data(TensorData::new(vec![t as f32], [1]), &x.device());
        let v = match &engine {
            Some(engine) => engine.forward(x.clone(), tt, None, None),
            None => model.velocity(x.clone(), tt, None),
        };
        let v = v.unwrap_or_else(|_| x.zeros_like().add_scalar(f32::NAN));
        timer.add(clock.elapsed());
        v
    };
    let predictor = match cfg.solver.method {
        SolverName::Heun => Predictor::Heun,
        _ => Predictor::Euler,
    };
    let (mean, scale) = stats_tensors(&stats, &device);
    let physical = |y: Tensor<4>, t: f64| network((y - mean.clone()).div(scale.clone()), t).mul(scale.clone());
    // The stochastic sampler has no ODE solver; `solver` is then unused (the config allows it only
    // unconstrained or with a projection after sampling).
    let solver: Solver = cfg.solver.method.ode().unwrap_or(Solver::Euler);
    let steps = cfg.solver.steps;
    let stochastic = (cfg.solver.method == SolverName::Stochastic).then_some(StochasticOptions {
        steps,
        threshold: cfg.solver.renoise_threshold,
        seed: cfg.seed,
        first_index: 0,
    });

    let mut metadata =
        Metadata::new(trained.pde.clone(), &trained.channels.iter().map(String::as_str).collect::<Vec<_>>());
    metadata.lx = trained.lx;
    metadata.ly = trained.ly;
    metadata.seed = Some(cfg.seed);
    metadata.config = effective;
    let dtype = match cfg.output.dtype {
        DtypeName::F32 => Dtype::F32,
        DtypeName::F64 => Dtype::F64,
    };
    let spec = FileSpec::new(metadata, Grid::periodic(nx, ny, trained.lx, trained.ly), dtype);
    let options = WriterOptions { gzip: cfg.output.gzip, force: opts.force, ..WriterOptions::default() };
    super::create_output_dir(&cfg.output.path)?;
    let mut writer = FieldWriter::create(&cfg.output.path, spec, &options)?;
    let bar = progress::bar(cfg.samples, "sampling", global.quiet);
    let mut worst = (0.0_f64, 0.0_f64);
    let mut preview: Vec<Array3<f64>> = Vec::new();
    let mut spectrum = MeanSpectrum::default();
    let mut writing = Duration::ZERO;
    let sampling_started = Instant::now();
    let mut start = 0_u64;
    while start < cfg.samples {
        let end = (start + cfg.batch as u64).min(cfg.samples);
        let x0 =
            sampler.sample(cfg.seed, start..end, &device).with_context(|| format!("source samples {start}..{end}"))?;
        // PBFM's sampler (allowed unconstrained or before a projection) runs in normalised units:
        // its re-noising draws come from the normalised source.
        let renoised = match stochastic {
            Some(o) => Some(
                sample_stochastic(&network, x0.clone(), &sampler, &StochasticOptions { first_index: start, ..o })
                    .with_context(|| format!("sampling {start}..{end}"))?,
            ),
            None => None,
        };
        let fields = match (&constraint, cfg.constraint.method) {
            (None, _) => {
                let x1 = match renoised {
                    Some(x1) => x1,
                    None => {
                        solve(&network, x0, &solver, &SolveOptions::uniform(steps))
                            .with_context(|| format!("sampling {start}..{end}"))?
                            .x
                    }
                };
                let mut x = to_array(x1)
                    .map_err(|e| anyhow::anyhow!("reading samples back: {e}"))?
                    .into_dimensionality::<Ix4>()?;
                stats.denormalize(&mut x);
                x
            }
            (Some(c), method) => {
                let c = c.as_ref();
                let y0 = x0.mul(scale.clone()) + mean.clone();
                match method {
                    ConstraintMethod::Pcfm => {
                        let anchor = cfg.constraint.anchor.into();
                        let options = PcfmOptions { predictor, anchor, ..PcfmOptions::uniform(steps) };
                        pcfm_sample(&physical, c, y0, &options)
                    }
                    ConstraintMethod::Eci => {
                        let options = EciOptions { mixing: cfg.constraint.mixing, ..EciOptions::uniform(steps) };
                        eci_sample(&physical, c, y0, &options)
                    }
                    ConstraintMethod::Project => match renoised {
                        Some(x1) => project_array(c, x1.mul(scale.clone()) + mean.clone()).map_err(Into::into),
                        None => project_after_sampling(&physical, c, y0, &solver, &SolveOptions::uniform(steps)),
                    },
                }
                .with_context(|| format!("constrained sampling {start}..{end}"))?
            }
        };
        let mut fields = fields;
        if let Some(m) = cfg.solver.band_limit {
            band_limit(&grid, &mut fields, m)?;
        }
        if let Some((u, v)) = velocity_channels {
            let w = divergence_report(&grid, &fields, u, v)?;
            worst = (worst.0.max(w.0), worst.1.max(w.1));
        }
        if preview.len() < cfg.preview.samples {
            let take = (cfg.preview.samples - preview.len()).min(fields.dim().0);
            preview.extend(fields.axis_iter(Axis(0)).take(take).map(|f| f.to_owned()));
        }
        spectrum.add(&grid, &fields)?;
        let clock = Instant::now();
        writer.append(fields.view(), None)?;
        writing += clock.elapsed();
        bar.set_position(end);
        start = end;
    }
    bar.finish_and_clear();
    let sampling = sampling_started.elapsed();
    let clock = Instant::now();
    let written = writer.finish()?;
    writing += clock.elapsed();
    let clock = Instant::now();
    let pictures = if cfg.preview.samples > 0 {
        write_previews(&cfg, &written.path, &grid, &trained.channels, &preview, &spectrum)
            .context("writing the PNG previews")?
    } else {
        Vec::new()
    };
    let drawing = clock.elapsed();
    println!(
        "wrote {} samples ({}×{}, channels {:?}) to {} (ParaView: {}) from {}",
        written.samples,
        ny,
        nx,
        trained.channels,
        written.path.display(),
        written.xdmf.display(),
        ck_dir.display()
    );
    for picture in &pictures {
        println!("preview: {}", picture.display());
    }
    let (network_time, calls) = timer.total();
    println!(
        "time: {:.1} s total = sampling {:.1} s (network {:.1} s in {calls} evaluations, sources and constraint {:.1} s) \
         + writing {:.2} s + previews {:.2} s + loading {:.2} s",
        started.elapsed().as_secs_f64(),
        sampling.as_secs_f64() - writing.as_secs_f64(),
        network_time.as_secs_f64(),
        (sampling.saturating_sub(writing).saturating_sub(network_time)).as_secs_f64(),
        writing.as_secs_f64(),
        drawing.as_secs_f64(),
        (started.elapsed().saturating_sub(sampling).saturating_sub(drawing).saturating_sub(writing)).as_secs_f64(),
    );
    if velocity_channels.is_some() {
        println!("max divergence: {:.3e} (relative {:.3e}, computed in f64 before writing)", worst.0, worst.1);
        if dtype == Dtype::F32 {
            println!("note: written as f32; rounding raises the divergence of the file to ~1e-7 relative");
        }
    }
    Ok(())
}

/// The constraint `[constraint]` asks for: `kind`, `mean`, `kinetic_energy` and `observe`, stacked
/// in that order when there are several; `None` for plain sampling.
fn build_constraint(
    cfg: &GenerateConfig,
    config: &Path,
    grid: &Grid2d,
    channels: &[String],
    velocity: Option<(usize, usize)>,
) -> Result<Option<Box<dyn Constraint>>> {
    let c = channels.len();
    let shape = [c, grid.ny(), grid.nx()];
    let bad = |key: &str, reason: String| BadInput(format!("constraint.{key} in {}: {reason}", config.display()));
    let mut parts: Vec<Box<dyn Constraint>> = Vec::new();
    if cfg.constraint.kind == ConstraintKind::DivergenceFree {
        match velocity {
            Some((0, 1)) if c == 2 => parts.push(Box::new(DivergenceFree::new(grid.clone()))),
            _ => {
                let reason =
                    format!("\"divergence_free\" needs a model of exactly the channels [u, v], not {channels:?}");
                return Err(bad("kind", reason).into());
            }
        }
    }
    if cfg.constraint.kind == ConstraintKind::Darcy {
        let (s, nx) = (grid.ny(), grid.nx());
        if channels != ["a", "u"] || s != nx {
            let reason = format!(
                "\"darcy\" needs a model of the pair [a, u] (datagen darcy.output = \"pair\") on a square grid, not \
                 {channels:?} on {s}×{nx}"
            );
            return Err(bad("kind", reason).into());
        }
        let op = DarcyOperator::new(s, FaceAverage::Arithmetic).map_err(|e| bad("kind", e.to_string()))?;
        let f = DarcyForcing::Constant(cfg.constraint.darcy_forcing)
            .field(s)
            .map_err(|e| bad("darcy_forcing", e.to_string()))?;
        let pde = match cfg.constraint.darcy_projection {
            DarcyProjection::Pair => DarcyPde::new(op, f),
            DarcyProjection::Solve => DarcyPde::with_fixed_coefficient(op, f),
        };
        parts.push(Box::new(pde.map_err(|e| bad("darcy_forcing", e.to_string()))?));
    }
    if let Some(means) = &cfg.constraint.mean {
        if means.len() != c {
            let reason = format!("has {} values, the model has {c} channels {channels:?}", means.len());
            return Err(bad("mean", reason).into());
        }
        let targets = means.iter().copied().enumerate().collect();
        parts.push(Box::new(FixedMean::with_targets(shape, targets).map_err(|e| bad("mean", e.to_string()))?));
    }
    if let Some(energy) = cfg.constraint.kinetic_energy {
        if !(velocity == Some((0, 1)) && c == 2) {
            let reason = format!("needs a model of exactly the channels [u, v], not {channels:?}");
            return Err(bad("kinetic_energy", reason).into());
        }
        parts.push(Box::new(FixedEnergy::kinetic(grid, energy).map_err(|e| bad("kinetic_energy", e.to_string()))?));
    }
    if let Some(o) = &cfg.constraint.observe {
        let source = fieldflow_datasets::open_source(&o.path)
            .map_err(|e| bad("observe.path", format!("cannot read {}: {e}", o.path.display())))?;
        if source.sample_shape() != shape {
            let reason = format!(
                "{} holds fields of shape {:?}, the generated ones are {shape:?} (channels, ny, nx)",
                o.path.display(),
                source.sample_shape()
            );
            return Err(bad("observe.path", reason).into());
        }
        if o.sample >= source.len() {
            let reason = format!("= {} but {} holds {} samples", o.sample, o.path.display(), source.len());
            return Err(bad("observe.sample", reason).into());
        }
        let values = source
            .read_fields(o.sample..o.sample + 1)
            .with_context(|| format!("reading {}", o.path.display()))?
            .index_axis_move(Axis(0), 0);
        let mask = Array3::from_shape_fn((c, grid.ny(), grid.nx()), |(_, y, x)| y % o.stride == 0 && x % o.stride == 0);
        parts.push(Box::new(MaskValues::new(mask, values).map_err(|e| bad("observe", e.to_string()))?));
    }
    Ok(match parts.len() {
        0 => None,
        1 => parts.pop(),
        _ => Some(Box::new(Stack::new(parts).map_err(|e| bad("kind", e.to_string()))?)),
    })
}

/// Wall time spent in the network and the number of evaluations.
#[derive(Default)]
struct NetworkTimer {
    time: Cell<Duration>,
    calls: Cell<usize>,
}

impl NetworkTimer {
    fn add(&self, d: Duration) {
        self.time.set(self.time.get() + d);
        self.calls.set(self.calls.get() + 1);
    }

    fn total(&self) -> (Duration, usize) {
        (self.time.get(), self.calls.get())
    }
}

/// The running sum of per-sample power spectra (`½ Σ_c |f̂_c|²` per shell).
#[derive(Default)]
struct MeanSpectrum {
    sum: Option<Spectrum>,
    samples: usize,
}

impl MeanSpectrum {
    fn add(&mut self, grid: &Grid2d, fields: &Array4<f64>) -> Result<()> {
        let n = fields.dim().0;
        let batch = mean_power_spectrum(grid, fields.view())?;
        match &mut self.sum {
            None => {
                self.sum = Some(Spectrum { k: batch.k, energy: batch.energy.iter().map(|e| e * n as f64).collect() })
            }
            Some(sum) => sum.energy.iter_mut().zip(&batch.energy).for_each(|(s, e)| *s += e * n as f64),
        }
        self.samples += n;
        Ok(())
    }

    fn mean(&self) -> Option<Spectrum> {
        let sum = self.sum.as_ref()?;
        let n = self.samples.max(1) as f64;
        Some(Spectrum { k: sum.k.clone(), energy: sum.energy.iter().map(|e| e / n).collect() })
    }
}

/// `<dir>/<stem>-<what>.png` beside `output`.
fn preview_path(output: &Path, what: &str) -> PathBuf {
    let stem = output.file_stem().map_or_else(|| "generated".into(), |s| s.to_string_lossy().into_owned());
    output.with_file_name(format!("{stem}-{what}.png"))
}

/// Field previews (vorticity and speed for velocity models, else the first channel) and the
/// spectrum plot; returns the files written.
fn write_previews(
    cfg: &GenerateConfig,
    output: &Path,
    grid: &Grid2d,
    channels: &[String],
    samples: &[Array3<f64>],
    spectrum: &MeanSpectrum,
) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let velocity = (channels.iter().position(|c| c == "u"), channels.iter().position(|c| c == "v"));
    let maps: Vec<(String, Colormap, Vec<Array2<f64>>)> = match velocity {
        (Some(u), Some(v)) => {
            let uv = |f: &Array3<f64>| ndarray::stack(Axis(0), &[f.index_axis(Axis(0), u), f.index_axis(Axis(0), v)]);
            let mut vort = Vec::new();
            let mut speed = Vec::new();
            for f in samples {
                let uv = uv(f)?;
                vort.push(vorticity(grid, uv.view())?);
                speed.push(uv.map_axis(Axis(0), |c| c.iter().map(|x| x * x).sum::<f64>().sqrt()));
            }
            vec![("vorticity".into(), Colormap::RdBu, vort), ("speed".into(), Colormap::Viridis, speed)]
        }
        _ => {
            let fields = samples.iter().map(|f| f.slice(s![0, .., ..]).to_owned()).collect();
            vec![(channels.first().cloned().unwrap_or_else(|| "field".into()), Colormap::Viridis, fields)]
        }
    };
    for (name, cmap, fields) in &maps {
        let panels: Vec<Panel<'_>> = fields
            .iter()
            .enumerate()
            .map(|(i, f)| Panel { title: format!("{name}, sample {i}"), field: f.view() })
            .collect();
        let path = preview_path(output, name);
        heatmaps(&path, &panels, *cmap)?;
        written.push(path);
    }
    if let Some(mut generated) = spectrum.mean() {
        // Shells past the Nyquist wavenumber hold only the corners of the square of modes.
        let nyquist = grid.kx()[grid.nx() / 2].min(grid.ky()[grid.ny() / 2].abs()) * (1.0 + 1e-9);
        let resolved = generated.k.iter().take_while(|k| **k <= nyquist).count();
        generated.k.truncate(resolved);
        generated.energy.truncate(resolved);
        let reference = match &cfg.preview.reference {
            Some(path) => Some((path, super::plot::mean_spectrum(path, Some(512))?)),
            None => None,
        };
        let label = format!("generated ({} fields)", spectrum.samples);
        let mut curves = vec![Curve { label, k: &generated.k, e: &generated.energy }];
        if let Some((path, (k, e, _, n))) = &reference {
            let name = path.file_name().map_or_else(|| "reference".into(), |n| n.to_string_lossy().into_owned());
            curves.push(Curve { label: format!("{name} ({n} fields)"), k, e });
        }
        let path = preview_path(output, "spectrum");
        spectra(&path, "mean energy spectrum", &curves)?;
        written.push(path);
    }
    Ok(written)
}

/// Keeps only the Fourier modes `|m_x|, |m_y| ≤ m` of every field (zeroes the others in the real
/// FFT); nothing changes if the grid has no higher modes. This is the orthogonal projection onto
/// band-limited fields, a Fourier multiplier like the Leray projection, so divergence-free fields
/// stay divergence-free.
fn band_limit(grid: &Grid2d, a: &mut Array4<f64>, m: usize) -> Result<()> {
    let (b, c, ny, nx) = a.dim();
    if m >= nx.min(ny) / 2 {
        return Ok(());
    }
    let m = m as isize;
    let mut flat = a.view_mut().into_shape_with_order((b * c, ny, nx))?;
    flat.outer_iter_mut().into_par_iter().try_for_each(|mut f| -> Result<()> {
        let mut spec = grid.spectral_zeros();
        grid.forward(f.view(), spec.view_mut())?;
        for ((i, j), z) in spec.indexed_iter_mut() {
            if signed_index(i, ny).abs() > m || j as isize > m {
                *z = Complex64::new(0.0, 0.0);
            }
        }
        grid.inverse_consuming(spec.view_mut(), f.view_mut())?;
        Ok(())
    })
}
