//! `fieldflow plot`: PNG pictures of data files and training runs.
//!
//! - `plot fields FILE`: heatmaps of one channel of a few samples. Besides the file's channels,
//!   `vorticity` (`ω = ∂v/∂x − ∂u/∂y`, spectral derivatives) and `speed` (`√(u² + v²)`) are
//!   computed from velocity channels `u`, `v`.
//! - `plot spectrum FILE [--reference REF]`: the sample-mean isotropic spectrum of the velocity
//!   (`E(k) = ½ Σ_{|k'|≈k} |û(k')|²`, kinetic energy) or, without velocity channels, of all
//!   channels together, on each file's own grid, up to the Nyquist wavenumber (the shells past it
//!   hold only the corners of the square of resolved modes). With a reference, a second panel
//!   shows the per-shell ratio FILE / REF on a log scale with the 0.8–1.25 band shaded.
//! - `plot loss RUN_DIR | LOG.csv`: training and validation loss against step.
//!
//! Every input is checked before anything is drawn, and the picture is written to a temporary file
//! that is renamed into place, so bad input (exit code 2) leaves no output behind.

use std::path::Path;

use anyhow::{Context, Result};
use fieldflow_datasets::{FieldSource, open_source};
use fieldflow_pde::Grid2d;
use fieldflow_pde::operators::vorticity;
use ndarray::{Array2, Axis};

use super::BadInput;
use crate::cli::{FieldsOpts, LossOpts, PlotKind, PlotOpts, SpectrumOpts};
use crate::plot::{Colormap, Curve, Panel, PlotError, file_mean_spectrum};

/// Most panels of `plot fields`.
const MAX_PANELS: usize = 16;

/// Runs `fieldflow plot`.
///
/// # Errors
/// [`BadInput`] naming the file or flag at fault; other errors for failures while drawing.
pub fn run(opts: &PlotOpts) -> Result<()> {
    let output = match &opts.kind {
        PlotKind::Fields(o) => &o.output,
        PlotKind::Spectrum(o) => &o.output,
        PlotKind::Loss(o) => &o.output,
    };
    check_output(output)?;
    let result = match &opts.kind {
        PlotKind::Fields(o) => fields(o),
        PlotKind::Spectrum(o) => spectrum(o),
        PlotKind::Loss(o) => loss(o),
    };
    result?;
    println!("wrote {}", output.display());
    Ok(())
}

/// The output must be a file in an existing directory.
fn check_output(output: &Path) -> Result<()> {
    let bad = |why: &str| Err(BadInput(format!("cannot write --output {}: {why}", output.display())).into());
    if output.is_dir() {
        return bad("it is a directory");
    }
    let parent = output.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return bad(&format!("directory {} does not exist", parent.display()));
    }
    Ok(())
}

/// Maps a plotting error to an exit code: the user's input (2) or a drawing failure (1).
fn plot_error(e: PlotError) -> anyhow::Error {
    if e.is_bad_input() { BadInput(e.to_string()).into() } else { e.into() }
}

fn open(path: &Path) -> Result<Box<dyn FieldSource>> {
    let source = open_source(path).map_err(|e| BadInput(format!("cannot read {}: {e}", path.display())))?;
    if source.is_empty() {
        return Err(BadInput(format!("{} holds no samples", path.display())).into());
    }
    Ok(source)
}

/// What `plot fields` draws of each sample.
#[derive(Debug, Clone, Copy)]
enum Quantity {
    Channel(usize),
    Vorticity { u: usize, v: usize },
    Speed { u: usize, v: usize },
}

fn quantity(source: &dyn FieldSource, name: Option<&str>) -> Result<(Quantity, String)> {
    let channels = &source.metadata().channels;
    let uv = source.metadata().physics().roles.velocity;
    let Some(name) = name else {
        return Ok(match uv {
            Some((u, v)) => (Quantity::Vorticity { u, v }, "vorticity".into()),
            None => (Quantity::Channel(0), channels.first().cloned().unwrap_or_else(|| "channel 0".into())),
        });
    };
    if let Some(c) = channels.iter().position(|c| c == name) {
        return Ok((Quantity::Channel(c), name.into()));
    }
    match (name, uv) {
        ("vorticity", Some((u, v))) => Ok((Quantity::Vorticity { u, v }, name.into())),
        ("speed", Some((u, v))) => Ok((Quantity::Speed { u, v }, name.into())),
        _ => {
            let derived = if uv.is_some() { ", or vorticity, speed" } else { "" };
            Err(BadInput(format!(
                "--channel {name:?}: {} has no such channel (channels: {}{derived})",
                source.path().display(),
                channels.join(", ")
            ))
            .into())
        }
    }
}

fn fields(opts: &FieldsOpts) -> Result<()> {
    let file = &opts.file;
    let source = open(file)?;
    let n = source.len();
    let samples: Vec<usize> = if opts.samples.is_empty() { (0..n.min(4)).collect() } else { opts.samples.clone() };
    if let Some(&i) = samples.iter().find(|&&i| i >= n) {
        return Err(
            BadInput(format!("--samples: sample {i} is out of range, {} holds {n} samples", file.display())).into()
        );
    }
    if samples.len() > MAX_PANELS {
        return Err(
            BadInput(format!("--samples: at most {MAX_PANELS} samples per picture, not {}", samples.len())).into()
        );
    }
    let (quantity, name) = quantity(source.as_ref(), opts.channel.as_deref())?;
    let cmap = opts
        .cmap
        .as_deref()
        .map(|c| c.parse::<Colormap>().map_err(|e| BadInput(format!("--cmap: {e}"))))
        .transpose()?;
    let [_, ny, nx] = source.sample_shape();
    let meta = source.metadata();
    let grid = match quantity {
        Quantity::Vorticity { .. } => Some(
            Grid2d::new(nx, ny, meta.lx, meta.ly)
                .map_err(|e| BadInput(format!("{}: cannot compute the vorticity on this grid: {e}", file.display())))?,
        ),
        _ => None,
    };
    let mut maps: Vec<Array2<f64>> = Vec::with_capacity(samples.len());
    for &i in &samples {
        let batch =
            source.read_fields(i..i + 1).with_context(|| format!("reading sample {i} of {}", file.display()))?;
        let sample = batch.index_axis(Axis(0), 0);
        maps.push(match quantity {
            Quantity::Channel(c) => sample.index_axis(Axis(0), c).to_owned(),
            Quantity::Speed { u, v } => {
                let (u, v) = (sample.index_axis(Axis(0), u), sample.index_axis(Axis(0), v));
                ndarray::Zip::from(&u).and(&v).map_collect(|a, b| a.hypot(*b))
            }
            Quantity::Vorticity { u, v } => {
                let grid = grid.as_ref().context("no grid for the vorticity")?;
                let uv = ndarray::stack(Axis(0), &[sample.index_axis(Axis(0), u), sample.index_axis(Axis(0), v)])?;
                vorticity(grid, uv.view()).with_context(|| format!("vorticity of sample {i} of {}", file.display()))?
            }
        });
    }
    let cmap = cmap.unwrap_or_else(|| {
        let signed = |f: &Array2<f64>| f.iter().any(|v| *v < 0.0) && f.iter().any(|v| *v > 0.0);
        if matches!(quantity, Quantity::Vorticity { .. }) || maps.iter().any(signed) {
            Colormap::RdBu
        } else {
            Colormap::Viridis
        }
    });
    let panels: Vec<Panel<'_>> = samples
        .iter()
        .zip(&maps)
        .map(|(i, f)| Panel { title: format!("{name}, sample {i}"), field: f.view() })
        .collect();
    crate::plot::heatmaps(&opts.output, &panels, cmap).map_err(|e| plot_error(e).context(format!("{}", file.display())))
}

fn spectrum(opts: &SpectrumOpts) -> Result<()> {
    let mut files = vec![&opts.file];
    files.extend(&opts.reference);
    let spectra = files.iter().map(|f| file_mean_spectrum(f, opts.max_samples)).collect::<Result<Vec<_>>>()?;
    let name = |f: &Path| f.file_name().map_or_else(|| f.display().to_string(), |n| n.to_string_lossy().into_owned());
    let same_names = files.len() == 2 && name(files[0]) == name(files[1]);
    let curves: Vec<Curve<'_>> = files
        .iter()
        .zip(&spectra)
        .map(|(f, (k, e, _, n))| Curve {
            label: format!("{} ({n} samples)", if same_names { f.display().to_string() } else { name(f) }),
            k,
            e,
        })
        .collect();
    let title = if spectra.iter().all(|s| s.2) { "kinetic-energy spectrum" } else { "power spectrum" };
    match curves.len() {
        2 => crate::plot::spectra_with_ratio(&opts.output, title, &curves, crate::plot::RATIO_BAND),
        _ => crate::plot::spectra(&opts.output, title, &curves),
    }
    .map_err(plot_error)
}

fn loss(opts: &LossOpts) -> Result<()> {
    let csv = if opts.run.is_dir() { opts.run.join(crate::train::log::LOG_FILE) } else { opts.run.clone() };
    if !csv.is_file() {
        return Err(BadInput(format!("no training log at {}", csv.display())).into());
    }
    crate::plot::loss_curves(&opts.output, &csv).map_err(plot_error)
}
