//! Line plots: energy spectra on log–log axes and training-loss curves on a log loss axis.

use std::path::Path;

use plotters::coord::combinators::{BindKeyPoints, IntoLogRange, LogCoord, WithKeyPoints};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use super::{FAMILY, PlotError, write_atomic};

/// Picture size of the line plots.
const SIZE: (u32, u32) = (820, 560);

/// Colours of successive curves (matplotlib's tab10).
const PALETTE: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
];

/// The band of per-shell spectrum ratios the fidelity target accepts (a factor 1.25 either way).
pub const RATIO_BAND: (f64, f64) = (0.8, 1.25);

/// Fill of the target band of ratio panels.
const BAND: RGBColor = RGBColor(0xd9, 0xea, 0xd3);
/// Edges of the target band.
const BAND_EDGE: RGBColor = RGBColor(0x6a, 0xa8, 0x4f);

/// One curve of [`spectra`]: `E(k)` against `k`.
#[derive(Debug, Clone)]
pub struct Curve<'a> {
    /// The legend entry.
    pub label: String,
    /// Wavenumbers.
    pub k: &'a [f64],
    /// The spectrum at `k` (same length).
    pub e: &'a [f64],
}

/// A labelled polyline in data coordinates, with markers when `markers`.
struct Series {
    label: String,
    points: Vec<(f64, f64)>,
    markers: bool,
}

/// Draws spectra `E(k)` on log–log axes (x: "wavenumber k", y: "E(k)") with a legend into the PNG
/// `path`. Points with a non-positive or non-finite `k` or `E(k)` (the `k = 0` mean mode, empty
/// shells) are skipped.
///
/// # Errors
/// [`PlotError::CurveLength`] naming a curve whose `k` and `e` differ in length,
/// [`PlotError::NoData`] if no curve has a positive point, [`PlotError::Write`] if `path` cannot
/// be written. Nothing is written on error.
pub fn spectra(path: &Path, title: &str, curves: &[Curve<'_>]) -> Result<(), PlotError> {
    let series = spectrum_series(curves)?;
    let (x, y) = log_ranges(path, &series, "no curve has a positive (k, E(k)) point")?;
    write_atomic(path, |tmp| draw(path, tmp, title, (log_axis(x), log_axis(y)), ("wavenumber k", "E(k)"), &series))
}

/// The polylines of spectra: their positive, finite points.
fn spectrum_series(curves: &[Curve<'_>]) -> Result<Vec<Series>, PlotError> {
    curves
        .iter()
        .map(|c| {
            if c.k.len() != c.e.len() {
                return Err(PlotError::CurveLength { label: c.label.clone(), k: c.k.len(), e: c.e.len() });
            }
            let points =
                c.k.iter().zip(c.e).map(|(&k, &e)| (k, e)).filter(|&(k, e)| positive(k) && positive(e)).collect();
            Ok(Series { label: c.label.clone(), points, markers: false })
        })
        .collect()
}

/// The ratio `E₁(k) / E₂(k)` of two spectra at the wavenumbers both hold with positive values
/// (matched to a relative 1e-9, so spectra on different grids share their common shells).
pub fn spectrum_ratio(numerator: &Curve<'_>, denominator: &Curve<'_>) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    for (&k, &e) in numerator.k.iter().zip(numerator.e) {
        if !(positive(k) && positive(e)) {
            continue;
        }
        let matched = denominator.k.iter().zip(denominator.e).find(|(q, _)| (*q - k).abs() <= 1e-9 * k);
        if let Some((_, &d)) = matched
            && positive(d)
        {
            out.push((k, e / d));
        }
    }
    out
}

/// Draws spectra as [`spectra`] does in an upper panel and, below it, the ratio of the first
/// curve to the second per shell ([`spectrum_ratio`]) on a logarithmic axis with the band
/// `band = (lo, hi)` shaded (the fidelity target: 0.8–1.25).
///
/// # Errors
/// As [`spectra`]; [`PlotError::NoData`] also when the first two curves share no shell.
pub fn spectra_with_ratio(path: &Path, title: &str, curves: &[Curve<'_>], band: (f64, f64)) -> Result<(), PlotError> {
    let series = spectrum_series(curves)?;
    let (x, y) = log_ranges(path, &series, "no curve has a positive (k, E(k)) point")?;
    let ratio = match curves {
        [a, b, ..] => spectrum_ratio(a, b),
        _ => Vec::new(),
    };
    if ratio.is_empty() {
        return Err(PlotError::NoData { path: path.to_path_buf(), reason: "the spectra share no shell".into() });
    }
    let (lo, hi) = ratio.iter().fold((band.0, band.1), |(lo, hi), &(_, r)| (lo.min(r), hi.max(r)));
    let ratio_range = lo / 1.3..hi * 1.3;
    let label = match curves {
        [a, b, ..] => format!("{} / {}", short(&a.label), short(&b.label)),
        _ => String::new(),
    };
    let ratio_series = [Series { label, points: ratio, markers: true }];
    write_atomic(path, |tmp| {
        let err = |e: DrawingAreaErrorKind<_>| PlotError::draw(path, e);
        let root = BitMapBackend::new(tmp, (SIZE.0, SIZE.1 + 300)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (upper, lower) = root.split_vertically(SIZE.1);
        chart(path, &upper, title, (log_axis(x.clone()), log_axis(y)), ("wavenumber k", "E(k)"), &series, None)?;
        let lower_title = format!("per-shell ratio (shaded: {}–{})", axis_label(band.0), axis_label(band.1));
        chart(
            path,
            &lower,
            &lower_title,
            (log_axis(x), log_axis(ratio_range)),
            ("wavenumber k", "ratio"),
            &ratio_series,
            Some(band),
        )?;
        root.present().map_err(err)
    })
}

/// The part of a legend label before its parenthesised sample count.
fn short(label: &str) -> &str {
    label.split(" (").next().unwrap_or(label).trim()
}

/// Draws the training log `csv` written by `fieldflow train` (`train_log.csv`; columns `step`,
/// `train_loss` (or `loss`), and where present `val_loss`, `ema_val_loss` (empty cells: steps
/// without validation) and `residual_loss`) as loss against step, on a logarithmic loss axis, into the PNG
/// `path`. Non-positive losses are skipped; an unterminated last line (a run interrupted while
/// writing) is ignored.
///
/// # Errors
/// [`PlotError::ReadCsv`] if `csv` cannot be read, [`PlotError::MissingColumn`] without a `step`
/// or loss column, [`PlotError::BadRow`] naming the line of a malformed row, [`PlotError::NoData`]
/// without a positive loss, [`PlotError::Write`] if `path` cannot be written. Nothing is written
/// on error.
pub fn loss_curves(path: &Path, csv: &Path) -> Result<(), PlotError> {
    let series = read_loss_log(csv)?;
    let (_, y) = log_ranges(path, &series, &format!("{} has no positive loss values", csv.display()))?;
    let last = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).fold(0.0, f64::max);
    let x = 0.0..if last > 0.0 { last } else { 1.0 };
    let title = match (csv.parent().and_then(|p| p.file_name()), csv.file_name()) {
        (Some(dir), Some(file)) => format!("training loss: {}/{}", dir.to_string_lossy(), file.to_string_lossy()),
        _ => format!("training loss: {}", csv.display()),
    };
    write_atomic(path, |tmp| draw(path, tmp, &title, (x, log_axis(y)), ("step", "loss"), &series))
}

/// A logarithmic axis over `range` with ticks at round values: 1, 2, 5 × 10ⁿ over up to two
/// decades, else every decade (or every other, …, for at most about 8 labels); lighter grid lines
/// at the remaining 1–9 × 10ⁿ or decades.
fn log_axis(range: std::ops::Range<f64>) -> WithKeyPoints<LogCoord<f64>> {
    let (lo, hi) = (range.start, range.end);
    let (first, last) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let inside = |v: &f64| *v >= lo * (1.0 - 1e-12) && *v <= hi * (1.0 + 1e-12);
    let with = |mantissas: &[f64], stride: i32| -> Vec<f64> {
        (first..=last)
            .filter(|n| n.rem_euclid(stride) == 0)
            .flat_map(|n| mantissas.iter().map(move |m| m * 10f64.powi(n)))
            .filter(inside)
            .collect()
    };
    let all: Vec<f64> = (1..10).map(f64::from).collect();
    let decades = last - first;
    let (bold, light) = if (hi / lo).log10() <= 2.5 {
        let bold = with(&[1.0, 2.0, 5.0], 1);
        if bold.len() >= 3 { (bold, with(&all, 1)) } else { (with(&all, 1), Vec::new()) }
    } else {
        let stride = (decades + 7) / 8;
        let light = if stride == 1 && decades <= 8 { with(&all, 1) } else { with(&[1.0], 1) };
        (with(&[1.0], stride), light)
    };
    range.log_scale().with_key_points(bold).with_light_points(light)
}

fn positive(v: f64) -> bool {
    v.is_finite() && v > 0.0
}

/// Ranges enclosing every point, padded by a factor (log axes).
#[allow(clippy::type_complexity)]
fn log_ranges(
    path: &Path,
    series: &[Series],
    empty: &str,
) -> Result<(std::ops::Range<f64>, std::ops::Range<f64>), PlotError> {
    let points = series.iter().flat_map(|s| s.points.iter());
    let (x0, x1, y0, y1) = points.fold((f64::INFINITY, 0.0f64, f64::INFINITY, 0.0f64), |(a, b, c, d), &(x, y)| {
        (a.min(x), b.max(x), c.min(y), d.max(y))
    });
    if x0 > x1 {
        return Err(PlotError::NoData { path: path.to_path_buf(), reason: empty.into() });
    }
    let pad = |lo: f64, hi: f64, f: f64| if hi > lo { lo / f..hi * f } else { lo / 2.0..hi * 2.0 };
    Ok((pad(x0, x1, 1.05), pad(y0, y1, 1.6)))
}

/// A short label for an axis value: plain decimals between 0.01 and 10⁴, else `me±x`.
fn axis_label(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let sci = format!("{v:.2e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
    if (-2..=3).contains(&exp) {
        let decimals = mantissa.split_once('.').map_or(0, |(_, d)| d.len() as i32);
        let decimals = (decimals - exp).max(0) as usize;
        format!("{v:.decimals$}")
    } else {
        format!("{mantissa}e{exp}")
    }
}

fn draw<X, Y>(
    path: &Path,
    tmp: &Path,
    title: &str,
    ranges: (X, Y),
    desc: (&str, &str),
    series: &[Series],
) -> Result<(), PlotError>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let err = |e: DrawingAreaErrorKind<_>| PlotError::draw(path, e);
    let root = BitMapBackend::new(tmp, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    chart(path, &root, title, ranges, desc, series, None)?;
    root.present().map_err(err)
}

/// One chart of `series` on `area`, with the horizontal band `band = (lo, hi)` shaded and its
/// edges and 1 drawn when given.
#[allow(clippy::too_many_arguments)]
fn chart<DB, X, Y>(
    path: &Path,
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    (x, y): (X, Y),
    (x_desc, y_desc): (&str, &str),
    series: &[Series],
    band: Option<(f64, f64)>,
) -> Result<(), PlotError>
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| PlotError::draw(path, e);
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FAMILY, 22.0))
        .margin(18)
        .x_label_area_size(56)
        .y_label_area_size(84)
        .build_cartesian_2d(x, y)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style((FAMILY, 14.0))
        .axis_desc_style((FAMILY, 16.0))
        .x_label_formatter(&|v| axis_label(*v))
        .y_label_formatter(&|v| axis_label(*v))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(205, 205, 205))
        .draw()
        .map_err(err)?;
    if let Some((lo, hi)) = band {
        let xr = chart.x_range();
        chart
            .draw_series(std::iter::once(Rectangle::new([(xr.start, lo), (xr.end, hi)], BAND.filled())))
            .map_err(err)?;
        for level in [lo, 1.0, hi] {
            let style = if level == 1.0 { RGBColor(90, 90, 90).stroke_width(1) } else { BAND_EDGE.stroke_width(1) };
            chart.draw_series(LineSeries::new([(xr.start, level), (xr.end, level)], style)).map_err(err)?;
        }
    }
    for (n, s) in series.iter().enumerate() {
        let color = PALETTE[n % PALETTE.len()];
        let style = color.stroke_width(2);
        chart
            .draw_series(LineSeries::new(s.points.iter().copied(), style))
            .map_err(err)?
            .label(s.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 22, y)], style));
        if s.markers {
            chart.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(err)?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(160, 160, 160))
        .label_font((FAMILY, 14.0))
        .draw()
        .map_err(err)?;
    Ok(())
}

/// The loss series of a training log: training loss, then validation losses where present.
fn read_loss_log(csv: &Path) -> Result<Vec<Series>, PlotError> {
    let text = std::fs::read_to_string(csv).map_err(|source| PlotError::ReadCsv { path: csv.to_path_buf(), source })?;
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = lines.next().map(|(_, h)| h.split(',').map(str::trim).collect()).unwrap_or_default();
    let column = |name: &str| header.iter().position(|h| *h == name);
    let missing = |name: &str| PlotError::MissingColumn {
        path: csv.to_path_buf(),
        column: name.into(),
        header: header.join(","),
    };
    let step = column("step").ok_or_else(|| missing("step"))?;
    let train = column("train_loss").or_else(|| column("loss")).ok_or_else(|| missing("train_loss"))?;
    let mut columns = vec![(train, "training loss", false)];
    columns.extend(column("val_loss").map(|c| (c, "validation loss", true)));
    columns.extend(column("ema_val_loss").map(|c| (c, "validation loss (EMA weights)", true)));
    columns.extend(column("residual_loss").map(|c| (c, "residual loss (PBFM)", false)));
    let mut series: Vec<Series> = columns
        .iter()
        .map(|&(_, label, markers)| Series { label: label.into(), points: Vec::new(), markers })
        .collect();
    let unterminated = !text.ends_with('\n');
    let count = text.lines().count();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| PlotError::BadRow { path: csv.to_path_buf(), line: i + 1, reason };
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let parsed = (|| {
            if fields.len() != header.len() {
                return Err(bad(format!("{} fields, the header has {}", fields.len(), header.len())));
            }
            let s: f64 = fields[step].parse().map_err(|_| bad(format!("step {:?} is not a number", fields[step])))?;
            let mut values = Vec::with_capacity(columns.len());
            for &(c, _, _) in &columns {
                values.push(match fields[c] {
                    "" => None,
                    v => Some(v.parse::<f64>().map_err(|_| bad(format!("{} {v:?} is not a number", header[c])))?),
                });
            }
            Ok((s, values))
        })();
        match parsed {
            Ok((s, values)) => {
                for (series, v) in series.iter_mut().zip(values) {
                    if let Some(v) = v.filter(|v| positive(*v)) {
                        series.points.push((s, v));
                    }
                }
            }
            // A half-written last line of an interrupted run.
            Err(_) if unterminated && i + 1 == count => {}
            Err(e) => return Err(e),
        }
    }
    series.retain(|s| !s.points.is_empty());
    Ok(series)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::tests::read_png;
    use super::*;

    #[test]
    fn axis_labels_are_short() {
        assert_eq!(axis_label(1e-3), "1e-3");
        assert_eq!(axis_label(0.01), "0.01");
        assert_eq!(axis_label(20.0), "20");
        assert_eq!(axis_label(2.5), "2.5");
        assert_eq!(axis_label(1e5), "1e5");
        assert_eq!(axis_label(0.30000000000000004), "0.3");
    }

    /// Pixels of exactly `color`.
    fn pixels_of(png: &(u32, u32, Vec<u8>), color: RGBColor) -> Vec<(f64, f64)> {
        png.2
            .chunks(3)
            .enumerate()
            .filter(|(_, c)| c[0] == color.0 && c[1] == color.1 && c[2] == color.2)
            .map(|(n, _)| ((n % png.0 as usize) as f64, (n / png.0 as usize) as f64))
            .collect()
    }

    /// Spectra on a 16² and a 32² grid share shells 1–8; their ratio is the exact quotient, and
    /// the ratio panel below draws the band and the ratio markers at the right heights.
    #[test]
    fn ratio_panel_shows_the_per_shell_ratio_inside_the_band() {
        let (k1, k2): (Vec<f64>, Vec<f64>) = ((0..=8).map(f64::from).collect(), (0..=16).map(f64::from).collect());
        let e1: Vec<f64> = k1.iter().map(|k| 1.1 * k.powi(-3)).collect();
        let e2: Vec<f64> = k2.iter().map(|k| k.powi(-3)).collect();
        let (a, b) = (
            Curve { label: "gen (8 samples)".into(), k: &k1, e: &e1 },
            Curve { label: "ref (4 samples)".into(), k: &k2, e: &e2 },
        );
        let ratio = spectrum_ratio(&a, &b);
        assert_eq!(ratio.len(), 8);
        assert!(ratio.iter().all(|&(_, r)| (r - 1.1).abs() < 1e-12));
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("ratio.png");
        spectra_with_ratio(&out, "spectra", &[a.clone(), b.clone()], RATIO_BAND).unwrap();
        let png = read_png(&out);
        assert_eq!((png.0, png.1), (SIZE.0, SIZE.1 + 300));
        // The band is in the lower panel only; the ratio markers (first palette colour, left of
        // the legend) sit in the band's rows there.
        let band = pixels_of(&png, BAND);
        assert!(band.len() > 5000, "{} band pixels", band.len());
        assert!(band.iter().all(|p| p.1 > f64::from(SIZE.1)));
        let (top, bottom) = band.iter().fold((f64::INFINITY, 0.0_f64), |(t, b), p| (t.min(p.1), b.max(p.1)));
        let markers: Vec<_> = pixels_of(&png, PALETTE[0])
            .into_iter()
            .filter(|p| p.1 > f64::from(SIZE.1) && p.0 < 0.6 * f64::from(png.0))
            .collect();
        assert!(markers.len() > 50 && markers.iter().all(|p| p.1 > top && p.1 < bottom), "{} markers", markers.len());
        // Disjoint shells are an error, and no file is left.
        let k3 = [0.5, 1.5];
        let c = Curve { label: "c".into(), k: &k3, e: &k3 };
        let missing = dir.path().join("none.png");
        assert!(spectra_with_ratio(&missing, "t", &[a, c], RATIO_BAND).is_err());
        assert!(!missing.exists());
    }

    #[test]
    fn a_power_law_spectrum_is_a_straight_line() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("spectrum.png");
        let k: Vec<f64> = (0..=64).map(f64::from).collect();
        let e: Vec<f64> = k.iter().map(|k| k.powi(-3)).collect(); // E(0) = inf is skipped
        spectra(&out, "k^-3", &[Curve { label: "k^-3".into(), k: &k, e: &e }]).unwrap();
        let png = read_png(&out);
        assert_eq!((png.0, png.1), SIZE);
        // The curve's pixels, left of the legend (upper right): a least-squares line through them
        // misses none by more than 2 px, and it falls to the right.
        let pts: Vec<(f64, f64)> =
            pixels_of(&png, PALETTE[0]).into_iter().filter(|p| p.0 < 0.6 * f64::from(png.0)).collect();
        assert!(pts.len() > 200, "{} curve pixels", pts.len());
        let n = pts.len() as f64;
        let (mx, my) = (pts.iter().map(|p| p.0).sum::<f64>() / n, pts.iter().map(|p| p.1).sum::<f64>() / n);
        let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
        let slope = sxy / sxx;
        let worst = pts.iter().map(|p| (p.1 - my - slope * (p.0 - mx)).abs()).fold(0.0, f64::max);
        assert!(slope > 0.3, "image y grows downwards: slope {slope}");
        assert!(worst < 2.5, "largest distance from the line {worst} px");
        let span = pts.iter().map(|p| p.0).fold(0.0, f64::max) - pts.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
        assert!(span > 200.0, "the line spans {span} px");
    }

    #[test]
    fn mismatched_or_empty_curves_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("s.png");
        let err = spectra(&out, "t", &[Curve { label: "short".into(), k: &[1.0, 2.0], e: &[1.0] }]).unwrap_err();
        assert!(err.to_string().contains("short"), "{err}");
        let err = spectra(&out, "t", &[Curve { label: "zero".into(), k: &[0.0, 1.0], e: &[1.0, 0.0] }]).unwrap_err();
        assert!(matches!(err, PlotError::NoData { .. }), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn training_logs_are_read_by_column_name() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("train_log.csv");
        std::fs::write(
            &csv,
            "step,lr,train_loss,val_loss,grad_norm,seconds,ema_val_loss\n\
             10,1e-3,2.0e0,,1,0.1,\n20,1e-3,1.0e0,1.5,1,0.2,1.4\n30,1e-3,5e-1,,1,0.3,\n40,1e-3,2.5e-1,0.8,1,0.4,0.7\n45,1e-3,2",
        )
        .unwrap();
        let series = read_loss_log(&csv).unwrap();
        assert_eq!(series.len(), 3);
        assert_eq!(series[0].points, vec![(10.0, 2.0), (20.0, 1.0), (30.0, 0.5), (40.0, 0.25)]);
        assert_eq!(series[1].points, vec![(20.0, 1.5), (40.0, 0.8)]);
        let out = dir.path().join("loss.png");
        loss_curves(&out, &csv).unwrap();
        assert_eq!(read_png(&out).0, SIZE.0);
        // Training loss is drawn: its colour is in the picture.
        assert!(pixels_of(&read_png(&out), PALETTE[0]).len() > 100);

        std::fs::write(&csv, "step,lr\n1,2\n").unwrap();
        let err = loss_curves(&out, &csv).unwrap_err();
        assert!(matches!(err, PlotError::MissingColumn { .. }) && err.to_string().contains("train_loss"), "{err}");
        std::fs::write(&csv, "step,loss\n1,2\n2,x\n3,1\n").unwrap();
        let err = loss_curves(&out, &csv).unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
        let err = loss_curves(&out, &dir.path().join("none.csv")).unwrap_err();
        assert!(err.to_string().contains("none.csv"), "{err}");
    }
}
