//! The PNG previews of a generation run, written beside its output file: vorticity and speed of
//! a few velocity fields (else their first channel), and the mean energy spectrum of all the
//! fields written against a reference file's.

use std::path::{Path, PathBuf};

use anyhow::Result;
use fieldflow_pde::Grid2d;
use fieldflow_pde::operators::vorticity;
use fieldflow_pde::spectrum::MeanSpectrum;
use ndarray::{Array2, Array3, Axis, s};

use super::{Colormap, Curve, Panel, RATIO_BAND, file_mean_spectrum, heatmaps, spectra, spectra_with_ratio};

/// `<dir>/<stem>-<what>.png` beside `output`.
pub fn preview_path(output: &Path, what: &str) -> PathBuf {
    let stem = output.file_stem().map_or_else(|| "generated".into(), |s| s.to_string_lossy().into_owned());
    output.with_file_name(format!("{stem}-{what}.png"))
}

/// Writes the field previews of `samples` (channels `channels` on `grid`, the velocity in
/// channels `velocity`) and the spectrum plot
/// of `spectrum` (with the first 512 samples of `reference` beside it) next to `output`;
/// returns the files written.
///
/// # Errors
/// Drawing errors, and an unreadable reference file ([`crate::error::BadInput`]).
pub fn generation_previews(
    output: &Path,
    grid: &Grid2d,
    channels: &[String],
    velocity: Option<(usize, usize)>,
    samples: &[Array3<f64>],
    spectrum: &MeanSpectrum,
    reference: Option<&Path>,
) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let maps: Vec<(String, Colormap, Vec<Array2<f64>>)> = match velocity {
        Some((u, v)) => {
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
    if let Some(generated) = spectrum.mean() {
        let generated = generated.resolved(grid);
        let reference = match reference {
            Some(path) => Some((path, file_mean_spectrum(path, Some(512))?)),
            None => None,
        };
        let label = format!("generated ({} fields)", spectrum.samples());
        let mut curves = vec![Curve { label, k: &generated.k, e: &generated.energy }];
        if let Some((path, (k, e, _, n))) = &reference {
            let name = path.file_name().map_or_else(|| "reference".into(), |n| n.to_string_lossy().into_owned());
            curves.push(Curve { label: format!("{name} ({n} fields)"), k, e });
        }
        let path = preview_path(output, "spectrum");
        match curves.len() {
            2 => spectra_with_ratio(&path, "mean energy spectrum", &curves, RATIO_BAND)?,
            _ => spectra(&path, "mean energy spectrum", &curves)?,
        }
        written.push(path);
    }
    Ok(written)
}
