//! PNG plots: field heatmaps, energy spectra and training-loss curves (plotters, bitmap backend).
//!
//! - [`heatmaps`]: a grid of panels (up to [`PANELS_PER_ROW`] per row), each a field `f[y, x]`
//!   drawn cell by cell (nearest neighbour) with row 0 (`y = 0`) at the bottom, and its own colour
//!   bar. A value maps to the colour map at `t = (f − lo) / (hi − lo)` with `[lo, hi]` the panel's
//!   finite range; for the diverging [`Colormap::RdBu`] the range is symmetric, `[−m, m]` with
//!   `m = max |f|`, so that 0 is white.
//! - [`spectra`]: shell-averaged spectra `E(k)` on log–log axes.
//! - [`loss_curves`]: the training log of `fieldflow train` (`train_log.csv`), loss against step on
//!   a logarithmic loss axis.
//!
//! Text is drawn with DejaVu Sans, embedded in the binary (`assets/fonts/`, Bitstream Vera
//! licence), so plotting needs no system fonts and no fontconfig. Every plot is drawn into a
//! temporary file next to its destination and renamed into place: a failed plot leaves no file
//! behind.

mod colormap;
mod data;
mod heatmap;
mod lines;
mod previews;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use colormap::Colormap;
pub use data::file_mean_spectrum;
pub use heatmap::{PANELS_PER_ROW, Panel, heatmaps};
pub use lines::{Curve, RATIO_BAND, loss_curves, spectra, spectra_with_ratio, spectrum_ratio};
pub use previews::{generation_previews, preview_path};

/// The embedded font (DejaVu Sans).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The family name under which [`FONT`] is registered.
const FAMILY: &str = "sans-serif";
// Text sizes are even: plotters' ab_glyph renderer puts a glyph's top at `size / 2 + top` rounded
// toward zero, which for odd sizes shifts glyphs of different heights by a pixel against each other.

/// Errors of the plotting functions; each names the file, field or column at fault.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// A field with no cells.
    #[error("field {panel:?} is empty ({ny}×{nx} cells)")]
    EmptyField {
        /// The panel title.
        panel: String,
        /// Rows.
        ny: usize,
        /// Columns.
        nx: usize,
    },
    /// A field with no finite value to scale the colours by.
    #[error("field {panel:?} has no finite values (all NaN or infinite)")]
    NonFiniteField {
        /// The panel title.
        panel: String,
    },
    /// Nothing to draw.
    #[error("nothing to plot into {path}: {reason}")]
    NoData {
        /// The output file.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// A curve whose `k` and `E(k)` have different lengths.
    #[error("curve {label:?} has {k} wavenumbers but {e} values")]
    CurveLength {
        /// The curve's label.
        label: String,
        /// `k.len()`.
        k: usize,
        /// `e.len()`.
        e: usize,
    },
    /// A CSV file that cannot be read.
    #[error("cannot read {path}: {source}")]
    ReadCsv {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A CSV file without a required column.
    #[error("{path} has no column {column:?} (header: {header:?})")]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column looked for.
        column: String,
        /// The header found.
        header: String,
    },
    /// A malformed CSV row.
    #[error("{path}, line {line}: {reason}")]
    BadRow {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The output file cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The output file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// plotters failed to draw.
    #[error("drawing {path} failed: {reason}")]
    Draw {
        /// The output file.
        path: PathBuf,
        /// plotters' message.
        reason: String,
    },
}

impl PlotError {
    /// Whether the error is the caller's input at fault (bad field, CSV or output path) rather
    /// than a failure of the drawing itself.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, Self::Draw { .. })
    }

    fn draw(path: &Path, e: impl std::fmt::Display) -> Self {
        Self::Draw { path: path.to_path_buf(), reason: e.to_string() }
    }
}

/// Registers the embedded font with plotters (once per process).
fn register_font() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FAMILY, plotters::style::FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(PlotError::Draw { path: PathBuf::new(), reason: "the embedded font cannot be parsed".into() })
    }
}

/// Draws into a temporary PNG next to `path` with `draw`, then renames it to `path`; on any
/// error the temporary file is removed and `path` is left untouched.
fn write_atomic(path: &Path, draw: impl FnOnce(&Path) -> Result<(), PlotError>) -> Result<(), PlotError> {
    register_font()?;
    let write_error = |source| PlotError::Write { path: path.to_path_buf(), source };
    if path.is_dir() {
        return Err(write_error(std::io::Error::new(std::io::ErrorKind::IsADirectory, "it is a directory")));
    }
    let as_io = |e: fieldflow_datasets::DatasetError| write_error(std::io::Error::other(e.to_string()));
    // The bitmap encoder picks the format from the extension: the temporary name ends in `.png`.
    let target = fieldflow_datasets::AtomicTarget::with_suffix(path, true, ".png").map_err(as_io)?;
    // Fail early (and with the user's path in the message) if the directory is not writable.
    std::fs::File::create(target.temp()).map_err(write_error)?;
    draw(target.temp())?;
    target.commit().map_err(as_io)
}

/// Axis and colour-bar tick positions: "nice" multiples (1, 2, 2.5, 5 × 10ⁿ) of a step that puts
/// about `target` ticks into `[lo, hi]`.
fn nice_ticks(lo: f64, hi: f64, target: usize) -> (Vec<f64>, f64) {
    let span = hi - lo;
    if span.is_nan() || span <= 0.0 || span.is_infinite() {
        return (vec![lo], 1.0);
    }
    let raw = span / target.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(10.0 * magnitude);
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    let ticks = (first..=last).map(|i| i as f64 * step).map(|t| if t.abs() < step * 1e-9 { 0.0 } else { t }).collect();
    (ticks, step)
}

/// A tick label with as many digits as the tick step needs.
fn tick_label(value: f64, step: f64) -> String {
    let scale = value.abs().max(step);
    if !(1e-3..1e5).contains(&scale) {
        let digits = ((scale.log10().floor() - step.log10().floor()).max(0.0) as usize).min(4);
        return format!("{value:.digits$e}");
    }
    // The fewest decimals that write the step exactly (0.25 needs 2, 5 needs 0).
    let decimals = (0..=8usize)
        .find(|&d| {
            let s = step * 10f64.powi(d as i32);
            (s - s.round()).abs() < 1e-6 * s.max(1.0)
        })
        .unwrap_or(8);
    format!("{value:.decimals$}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod tests {
    use super::*;

    /// Decodes a PNG: (width, height, RGB bytes).
    pub(crate) fn read_png(path: &Path) -> (u32, u32, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb, "plotters writes RGB");
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    #[test]
    fn nice_ticks_are_round_and_inside_the_range() {
        let (ticks, step) = nice_ticks(-0.93, 2.7, 5);
        assert_eq!(step, 1.0);
        assert_eq!(ticks, vec![0.0, 1.0, 2.0]);
        let (ticks, step) = nice_ticks(0.0, 1.0, 4);
        assert_eq!(step, 0.25);
        assert_eq!(ticks.len(), 5);
        assert_eq!(tick_label(0.25, 0.25), "0.25");
        assert_eq!(tick_label(2.0, 1.0), "2");
        assert_eq!(tick_label(-0.4, 0.2), "-0.4");
        assert_eq!(tick_label(2.5, 2.5), "2.5");
        assert_eq!(tick_label(2e-5, 1e-5), "2e-5");
    }

    #[test]
    fn a_failed_plot_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.png");
        let err = write_atomic(&out, |_| Err(PlotError::draw(&out, "boom"))).unwrap_err();
        assert!(matches!(err, PlotError::Draw { .. }));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let missing = dir.path().join("no-such-dir").join("out.png");
        let err = write_atomic(&missing, |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("no-such-dir"), "{err}");
    }
}
