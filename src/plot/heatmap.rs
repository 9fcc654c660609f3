//! Heatmaps of scalar fields, one panel per field, each with its own colour bar.

use std::path::Path;

use ndarray::ArrayView2;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Colormap, FAMILY, PlotError, nice_ticks, tick_label, write_atomic};

/// Panels per row of the grid drawn by [`heatmaps`].
pub const PANELS_PER_ROW: usize = 4;

/// Longest side of a panel's image, in pixels (fields up to this size get whole pixels per cell).
const PANEL: usize = 256;
const MARGIN: i32 = 14;
const TITLE_H: i32 = 30;
const BAR_GAP: i32 = 12;
const BAR_W: i32 = 16;
const LABEL_W: i32 = 70;
/// Colour of non-finite cells.
const NAN_COLOR: RGBColor = RGBColor(150, 150, 150);

/// One panel of [`heatmaps`]: a titled scalar field.
#[derive(Debug, Clone)]
pub struct Panel<'a> {
    /// Drawn above the panel.
    pub title: String,
    /// The field `f[y, x]`, shape `[ny, nx]`; row 0 (`y = 0`) is drawn at the bottom.
    pub field: ArrayView2<'a, f64>,
}

/// A pixel rectangle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rect {
    pub x: i32,
    pub y: i32,
    pub w: i32,
    pub h: i32,
}

/// Where a panel's image and colour bar are drawn.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PanelLayout {
    pub image: Rect,
    pub bar: Rect,
}

/// Image size of a `[ny, nx]` field: whole pixels per cell when the field fits in [`PANEL`],
/// else scaled down to [`PANEL`] on its longest side.
fn image_size(ny: usize, nx: usize) -> (i32, i32) {
    let longest = nx.max(ny);
    if longest <= PANEL {
        let k = PANEL / longest;
        ((nx * k) as i32, (ny * k) as i32)
    } else {
        ((nx * PANEL).div_ceil(longest) as i32, (ny * PANEL).div_ceil(longest) as i32)
    }
}

/// The picture's size and every panel's place.
pub(crate) fn layout(panels: &[Panel<'_>]) -> ((u32, u32), Vec<PanelLayout>) {
    let sizes: Vec<(i32, i32)> = panels.iter().map(|p| image_size(p.field.nrows(), p.field.ncols())).collect();
    let max_w = sizes.iter().map(|s| s.0).max().unwrap_or(0);
    let max_h = sizes.iter().map(|s| s.1).max().unwrap_or(0);
    let cell_w = MARGIN + max_w + BAR_GAP + BAR_W + LABEL_W;
    let cell_h = TITLE_H + max_h + MARGIN;
    let cols = panels.len().clamp(1, PANELS_PER_ROW) as i32;
    let rows = panels.len().div_ceil(PANELS_PER_ROW).max(1) as i32;
    let places = sizes
        .iter()
        .enumerate()
        .map(|(n, &(w, h))| {
            let (col, row) = ((n % PANELS_PER_ROW) as i32, (n / PANELS_PER_ROW) as i32);
            let x = col * cell_w + MARGIN;
            let y = row * cell_h + TITLE_H + (max_h - h) / 2;
            PanelLayout { image: Rect { x, y, w, h }, bar: Rect { x: x + w + BAR_GAP, y, w: BAR_W, h } }
        })
        .collect();
    (((cols * cell_w + MARGIN) as u32, (rows * cell_h + MARGIN / 2) as u32), places)
}

/// The colour scale `[lo, hi]` of a field: its finite range, symmetric around 0 for a diverging
/// map, widened when degenerate.
fn scale(panel: &Panel<'_>, cmap: Colormap) -> Result<(f64, f64), PlotError> {
    let (ny, nx) = panel.field.dim();
    if ny == 0 || nx == 0 {
        return Err(PlotError::EmptyField { panel: panel.title.clone(), ny, nx });
    }
    let finite = panel.field.iter().copied().filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return Err(PlotError::NonFiniteField { panel: panel.title.clone() });
    }
    if cmap.is_diverging() {
        let m = lo.abs().max(hi.abs());
        let m = if m > 0.0 { m } else { 1.0 };
        Ok((-m, m))
    } else if hi > lo {
        Ok((lo, hi))
    } else {
        let pad = if lo != 0.0 { 0.1 * lo.abs() } else { 1.0 };
        Ok((lo - pad, hi + pad))
    }
}

/// Draws `panels` as a grid of heatmaps (up to [`PANELS_PER_ROW`] per row) into the PNG `path`.
/// Each panel has its own colour scale (see [`Colormap`]; a diverging map is symmetric around 0)
/// and a colour bar with tick labels; non-finite cells are grey.
///
/// # Errors
/// [`PlotError::NoData`] without panels, [`PlotError::EmptyField`] /
/// [`PlotError::NonFiniteField`] naming the panel whose field has no cells / no finite value,
/// [`PlotError::Write`] if `path` cannot be written. Nothing is written on error.
pub fn heatmaps(path: &Path, panels: &[Panel<'_>], cmap: Colormap) -> Result<(), PlotError> {
    if panels.is_empty() {
        return Err(PlotError::NoData { path: path.to_path_buf(), reason: "no panels".into() });
    }
    let scales = panels.iter().map(|p| scale(p, cmap)).collect::<Result<Vec<_>, _>>()?;
    let (size, places) = layout(panels);
    write_atomic(path, |tmp| {
        let root = BitMapBackend::new(tmp, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| PlotError::draw(path, e))?;
        for ((panel, place), &(lo, hi)) in panels.iter().zip(&places).zip(&scales) {
            draw_panel(&root, panel, *place, (lo, hi), cmap).map_err(|e| PlotError::draw(path, e))?;
        }
        root.present().map_err(|e| PlotError::draw(path, e))
    })
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;
type DrawResult = Result<(), DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>>;

fn draw_panel(
    root: &Area<'_>,
    panel: &Panel<'_>,
    place: PanelLayout,
    (lo, hi): (f64, f64),
    cmap: Colormap,
) -> DrawResult {
    let (ny, nx) = panel.field.dim();
    let Rect { x, y, w, h } = place.image;
    let t = |v: f64| (v - lo) / (hi - lo);
    for py in 0..h {
        let i = ny - 1 - (py as usize * ny) / h as usize;
        for px in 0..w {
            let j = (px as usize * nx) / w as usize;
            let v = panel.field[[i, j]];
            let color = if v.is_finite() { cmap.color(t(v)) } else { NAN_COLOR };
            root.draw_pixel((x + px, y + py), &color)?;
        }
    }
    let frame = ShapeStyle::from(&BLACK).stroke_width(1);
    root.draw(&Rectangle::new([(x - 1, y - 1), (x + w, y + h)], frame))?;

    // Title, shrunk until it fits above the panel.
    let room = (w + BAR_GAP + BAR_W + LABEL_W - 8) as u32;
    let mut size = 18.0;
    while size > 10.0 && root.estimate_text_size(&panel.title, &TextStyle::from((FAMILY, size).into_font()))?.0 > room {
        size -= 2.0;
    }
    let title = TextStyle::from((FAMILY, size).into_font()).pos(Pos::new(HPos::Left, VPos::Bottom));
    root.draw(&Text::new(panel.title.clone(), (x, y - 8), title))?;

    // Colour bar: top pixel row is the map's top colour, bottom row its bottom colour.
    let bar = place.bar;
    for py in 0..bar.h {
        let color = cmap.color(1.0 - f64::from(py) / f64::from((bar.h - 1).max(1)));
        for px in 0..bar.w {
            root.draw_pixel((bar.x + px, bar.y + py), &color)?;
        }
    }
    root.draw(&Rectangle::new([(bar.x - 1, bar.y - 1), (bar.x + bar.w, bar.y + bar.h)], frame))?;
    let label = TextStyle::from((FAMILY, 14.0).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    let (ticks, step) = nice_ticks(lo, hi, 5);
    for v in ticks {
        let ty = bar.y + ((1.0 - t(v)) * f64::from(bar.h - 1)).round() as i32;
        root.draw(&PathElement::new(vec![(bar.x + bar.w, ty), (bar.x + bar.w + 4, ty)], BLACK))?;
        // Lifted 2 px: plotters' ab_glyph layout box sits below the glyphs' visual centre.
        root.draw(&Text::new(tick_label(v, step), (bar.x + bar.w + 7, ty - 2), label.clone()))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use ndarray::Array2;

    use super::super::tests::read_png;
    use super::*;

    fn pixel(png: &(u32, u32, Vec<u8>), x: i32, y: i32) -> RGBColor {
        let at = 3 * (y as usize * png.0 as usize + x as usize);
        RGBColor(png.2[at], png.2[at + 1], png.2[at + 2])
    }

    #[test]
    fn ramps_map_cell_by_cell_with_y_up_and_extremes_at_the_map_ends() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("ramps.png");
        let (ny, nx) = (16, 32);
        let x_ramp = Array2::from_shape_fn((ny, nx), |(_, j)| j as f64);
        let y_ramp = Array2::from_shape_fn((ny, nx), |(i, _)| i as f64 - 7.0);
        let panels = [
            Panel { title: "x ramp".into(), field: x_ramp.view() },
            Panel { title: "y ramp".into(), field: y_ramp.view() },
        ];
        heatmaps(&out, &panels, Colormap::Viridis).unwrap();
        if let Ok(keep) = std::env::var("FIELDFLOW_KEEP_PLOTS") {
            std::fs::copy(&out, Path::new(&keep).join("ramps.png")).unwrap();
        }
        let png = read_png(&out);
        let (size, places) = layout(&panels);
        assert_eq!((png.0, png.1), size);
        assert_eq!(places[0].image.w, 256);
        assert_eq!(places[0].image.h, 128);

        // x ramp: along the middle row, the colour of cell j is viridis(j / (nx − 1)), so the
        // colours run monotonically (viridis brightens) from the bottom to the top colour.
        let r = places[0].image;
        let row: Vec<RGBColor> = (0..r.w).map(|px| pixel(&png, r.x + px, r.y + r.h / 2)).collect();
        for (px, c) in row.iter().enumerate() {
            let j = px * nx / r.w as usize;
            assert_eq!(*c, Colormap::Viridis.color(j as f64 / (nx - 1) as f64), "pixel {px}");
        }
        let luma: Vec<u32> =
            row.iter().map(|c| 299 * u32::from(c.0) + 587 * u32::from(c.1) + 114 * u32::from(c.2)).collect();
        assert!(luma.windows(2).all(|w| w[1] >= w[0]) && luma[0] < luma[luma.len() - 1]);
        // The max corner (right edge) is the map's top colour, the min corner its bottom colour.
        assert_eq!(pixel(&png, r.x + r.w - 1, r.y), Colormap::Viridis.color(1.0));
        assert_eq!(pixel(&png, r.x, r.y + r.h - 1), Colormap::Viridis.color(0.0));
        // The colour bar runs from the top colour (top) to the bottom colour.
        let b = places[0].bar;
        assert_eq!(pixel(&png, b.x + b.w / 2, b.y), Colormap::Viridis.color(1.0));
        assert_eq!(pixel(&png, b.x + b.w / 2, b.y + b.h - 1), Colormap::Viridis.color(0.0));

        // y ramp: row 0 (y = 0) is at the bottom of the image, the last row at the top.
        let r = places[1].image;
        assert_eq!(pixel(&png, r.x + r.w / 2, r.y + r.h - 1), Colormap::Viridis.color(0.0));
        assert_eq!(pixel(&png, r.x + r.w / 2, r.y), Colormap::Viridis.color(1.0));
    }

    #[test]
    fn diverging_scale_is_symmetric_and_nan_cells_are_grey() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("signed.png");
        // Values in [−1, 3]: with RdBu the scale is [−3, 3], so 0 is white and −1 a pale blue.
        let mut f = Array2::from_shape_fn((8, 8), |(_, j)| if j < 4 { 0.0 } else { 3.0 });
        f[[0, 0]] = -1.0;
        f[[7, 0]] = f64::NAN;
        let panels = [Panel { title: "signed".into(), field: f.view() }];
        heatmaps(&out, &panels, Colormap::RdBu).unwrap();
        let png = read_png(&out);
        let r = layout(&panels).1[0].image;
        let cell = r.w / 8;
        let at = |i: i32, j: i32| pixel(&png, r.x + j * cell + cell / 2, r.y + (7 - i) * cell + cell / 2);
        assert_eq!(at(3, 1), Colormap::RdBu.color(0.5));
        assert_eq!(at(3, 6), Colormap::RdBu.color(1.0));
        assert_eq!(at(0, 0), Colormap::RdBu.color(1.0 / 3.0));
        assert_eq!(at(7, 0), NAN_COLOR);
    }

    #[test]
    fn bad_fields_are_named_and_write_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("bad.png");
        let good = Array2::<f64>::zeros((4, 4));
        let nan = Array2::from_elem((4, 4), f64::NAN);
        let empty = Array2::<f64>::zeros((0, 4));
        let err = heatmaps(
            &out,
            &[Panel { title: "ok".into(), field: good.view() }, Panel { title: "all nan".into(), field: nan.view() }],
            Colormap::Viridis,
        )
        .unwrap_err();
        assert!(matches!(err, PlotError::NonFiniteField { .. }) && err.to_string().contains("all nan"), "{err}");
        let err = heatmaps(&out, &[Panel { title: "hollow".into(), field: empty.view() }], Colormap::RdBu).unwrap_err();
        assert!(err.to_string().contains("hollow"), "{err}");
        assert!(matches!(heatmaps(&out, &[], Colormap::RdBu), Err(PlotError::NoData { .. })));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
