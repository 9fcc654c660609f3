//! `fieldflow eval GENERATED --reference REF`: how close a generated set of fields is to a
//! reference set, in distribution (the samples are not paired).
//!
//! With `g_i` (i < N) the generated and `r_j` (j < M) the reference samples of one channel, on
//! the common grid of P points:
//!
//! - MMSE `= (1/P) Σ_x (mean_i g_i(x) − mean_j r_j(x))²` and SMSE, the same for the pointwise
//!   (population) standard deviation ([`crate::metrics::mmse`], [`crate::metrics::smse`]);
//! - spectrum MSE (log) `= (1/K) Σ_k (ln(E_g(k) + ε) − ln(E_r(k) + ε))²` over all K shells of the
//!   mean shell power spectra `E(k)` ([`crate::metrics::spectrum_mse`]);
//! - spectrum relative L2 `= ‖E_g − E_r‖₂ / ‖E_r‖₂` over the resolved shells
//!   ([`crate::metrics::spectrum_relative_error`]);
//! - density MSE: the MSE between the histograms (as densities, `--bins` shared bins) of all
//!   pointwise values ([`crate::metrics::density_mse`]).
//!
//! Each is reported per channel and over all compared channels together ("all": the mean over
//! channels for MMSE/SMSE, the channel-summed spectrum — the kinetic-energy spectrum for `u, v` —
//! and the pooled values for the density). The physics of both sets is judged as `fieldflow
//! check` does (divergence of `u, v`, the Darcy residual of `(a, u)`, else finiteness), each file
//! on its own grid.
//!
//! For flows (channels `u, v` or `w` in both files, on an even periodic grid) the turbulence
//! statistics of [`crate::metrics::turbulence`] follow: the per-shell kinetic-energy ratio over
//! the shells holding at least `--min-energy` of the reference's energy (with its one-σ sampling
//! error from the per-sample spectra of both files), the vorticity PDF and
//! flatness, the velocity-increment flatness at r = 1, 2, 4, 8, the per-sample energy,
//! enstrophy and palinstrophy, and, when either file records its flow's viscosity, drag and
//! forcing (the reference's first), the energy budget. The velocity of a vorticity file is
//! derived spectrally.
//!
//! Files on different grids of the same periodic domain are compared on the coarser one (per
//! axis): the finer set is resampled by spectral truncation ([`fieldflow_pde::resample`]).

use std::path::Path;

use anyhow::{Context, Result};
use fieldflow_datasets::{Boundary, FieldSource, open_source};
use fieldflow_pde::Grid2d;
use fieldflow_pde::resample::resample;
use ndarray::{Array4, ArrayView4, Axis, s};
use rayon::prelude::*;
use serde_json::{Value, json};

use super::BadInput;
use crate::check::{Checker, CoefficientSign, Kind};
use crate::cli::EvalOpts;
use crate::metrics::turbulence::{FlowComparison, compare_flows};
use crate::metrics::{self, ErrorSummary};
use fieldflow_pde::operators::velocity_from_vorticity;

/// One file of the comparison, its first `n` samples read.
struct Side {
    role: &'static str,
    source: Box<dyn FieldSource>,
    /// `[n, C, ny, nx]`, all channels of the file.
    fields: Array4<f64>,
}

impl Side {
    fn open(role: &'static str, path: &Path, max_samples: Option<usize>) -> Result<Self> {
        let source =
            open_source(path).map_err(|e| BadInput(format!("cannot read the {role} set {}: {e}", path.display())))?;
        let n = max_samples.map_or(source.len(), |m| m.min(source.len()));
        if n == 0 {
            return Err(BadInput(format!("the {role} set {} holds no samples", path.display())).into());
        }
        let fields = source
            .read_fields(0..n)
            .map_err(|e| BadInput(format!("cannot read the fields of the {role} set {}: {e}", path.display())))?;
        let channels = &source.metadata().channels;
        if let Some(((i, c, _, _), v)) = fields.indexed_iter().find(|(_, v)| !v.is_finite()) {
            let what = if v.is_nan() { "NaN" } else { "an infinite value" };
            return Err(BadInput(format!(
                "the {role} set {} holds {what} in sample {i}, channel {}",
                path.display(),
                channels.get(c).map_or("?", String::as_str)
            ))
            .into());
        }
        Ok(Self { role, source, fields })
    }

    fn file(&self) -> String {
        self.source.path().display().to_string()
    }

    /// `(ny, nx)`.
    fn shape(&self) -> (usize, usize) {
        (self.fields.shape()[2], self.fields.shape()[3])
    }

    fn channel(&self, name: &str) -> Result<usize> {
        let channels = &self.source.metadata().channels;
        channels.iter().position(|c| c == name).ok_or_else(|| {
            BadInput(format!("the {} set {} has no channel {name:?} (channels: {channels:?})", self.role, self.file()))
                .into()
        })
    }

    /// The chosen channels, resampled to `(my, mx)` if the file's grid differs.
    fn compared(&self, channels: &[usize], my: usize, mx: usize) -> Result<Array4<f64>> {
        let picked = self.fields.select(Axis(1), channels);
        if self.shape() == (my, mx) {
            return Ok(picked);
        }
        let (n, c) = (picked.shape()[0], picked.shape()[1]);
        let resampled: Vec<_> = (0..n * c)
            .into_par_iter()
            .map(|k| resample(picked.slice(s![k / c, k % c, .., ..]), my, mx))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| {
                BadInput(format!("cannot resample the {} set {} to {my}×{mx}: {e}", self.role, self.file()))
            })?;
        let mut out = Array4::zeros((n, c, my, mx));
        for (k, field) in resampled.into_iter().enumerate() {
            out.slice_mut(s![k / c, k % c, .., ..]).assign(&field);
        }
        Ok(out)
    }

    /// The constraint residuals of the samples read, as `fieldflow check` computes them, and for
    /// Darcy the count of samples with `a ≤ 0` somewhere and the smallest `a`.
    fn constraint(&self) -> Result<Physics> {
        let checker = Checker::new(self.source.as_ref(), None, None, None)?;
        let n = self.fields.shape()[0];
        let coefficients = checker
            .coefficients(self.source.as_ref(), 0..n, self.fields.view())
            .with_context(|| format!("the {} set", self.role))?;
        let values = checker.residuals(0, self.fields.view(), coefficients.as_ref().map(|c| c.view()))?;
        let sign = checker.sign_of(coefficients.as_ref().map(|c| c.view()));
        Ok((checker.kind, ErrorSummary::from_values(values.into_iter().map(|v| v.0).collect())?, sign))
    }
}

/// What [`Side::constraint`] measures: the check, its residuals, and the Darcy coefficient's sign.
type Physics = (Kind, ErrorSummary, CoefficientSign);

/// The scores of one channel (or of all channels together).
struct Scores {
    mmse: f64,
    smse: f64,
    /// `None` when the grid does not allow a spectrum (odd sizes).
    spectrum_mse_log: Option<f64>,
    spectrum_rel_l2: Option<f64>,
    density_mse: f64,
}

impl Scores {
    fn compute(grid: Option<&Grid2d>, g: ArrayView4<f64>, r: ArrayView4<f64>, bins: usize) -> Result<Self> {
        Ok(Self {
            mmse: metrics::mmse(g.view(), r.view())?,
            smse: metrics::smse(g.view(), r.view())?,
            spectrum_mse_log: grid.map(|grid| metrics::spectrum_mse(grid, g.view(), r.view(), true)).transpose()?,
            spectrum_rel_l2: grid.map(|grid| metrics::spectrum_relative_error(grid, g.view(), r.view())).transpose()?,
            density_mse: metrics::density_mse(g.view(), r.view(), bins)?,
        })
    }

    fn json(&self) -> Value {
        json!({
            "mmse": self.mmse,
            "smse": self.smse,
            "spectrum_mse_log": self.spectrum_mse_log,
            "spectrum_rel_l2": self.spectrum_rel_l2,
            "density_mse": self.density_mse,
        })
    }

    fn row(&self, name: &str) -> String {
        let opt = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.3e}"));
        format!(
            "{name:<10} {:>12.3e} {:>12.3e} {:>18} {:>16} {:>12.3e}",
            self.mmse,
            self.smse,
            opt(self.spectrum_mse_log),
            opt(self.spectrum_rel_l2),
            self.density_mse
        )
    }
}

/// The channel names to compare and their indices in the generated and reference files.
fn pick_channels(opts: &EvalOpts, generated: &Side, reference: &Side) -> Result<(Vec<String>, Vec<usize>, Vec<usize>)> {
    let gen_names = &generated.source.metadata().channels;
    let ref_names = &reference.source.metadata().channels;
    let names: Vec<String> = if opts.channels.is_empty() {
        let same = gen_names.len() == ref_names.len() && gen_names.iter().all(|c| ref_names.contains(c));
        if !same {
            return Err(BadInput(format!(
                "channel mismatch: the generated set {} has channels {gen_names:?} but the reference set {} has \
                 {ref_names:?}; pick common ones with --channels",
                generated.file(),
                reference.file()
            ))
            .into());
        }
        gen_names.clone()
    } else {
        let mut names = Vec::new();
        for name in &opts.channels {
            if name.is_empty() {
                return Err(BadInput("--channels: empty channel name".into()).into());
            }
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    };
    let g = names.iter().map(|n| generated.channel(n)).collect::<Result<Vec<_>>>()?;
    let r = names.iter().map(|n| reference.channel(n)).collect::<Result<Vec<_>>>()?;
    Ok((names, g, r))
}

/// The velocity `[N, 2, ny, nx]` of compared channels `names` (`u, v`, or `w` inverted
/// spectrally); `None` for other fields.
fn velocity_of(grid: &Grid2d, names: &[String], fields: &Array4<f64>) -> Result<Option<Array4<f64>>> {
    let at = |name: &str| names.iter().position(|c| c == name);
    if let (Some(u), Some(v)) = (at("u"), at("v")) {
        return Ok(Some(fields.select(Axis(1), &[u, v])));
    }
    let Some(w) = at("w") else { return Ok(None) };
    let n = fields.shape()[0];
    let mut out = Array4::zeros((n, 2, grid.ny(), grid.nx()));
    for i in 0..n {
        out.slice_mut(s![i, .., .., ..]).assign(&velocity_from_vorticity(grid, fields.slice(s![i, w, .., ..]))?);
    }
    Ok(Some(out))
}

fn flow_json(c: &FlowComparison, min_energy: f64) -> Value {
    let pair = |p: &metrics::turbulence::Pair| json!({"generated": p.generated, "reference": p.reference});
    json!({
        "min_energy": min_energy,
        "spectrum": {
            "worst_abs_log10_ratio": c.worst_log10,
            "shells": c.shells.iter().map(|s| json!({"shell": s.shell, "share": s.share, "ratio": s.ratio, "error": s.error})).collect::<Vec<_>>(),
        },
        "vorticity": {
            "pdf_l1": c.vorticity_pdf_l1,
            "density_mse": c.vorticity_density_mse,
            "flatness": pair(&c.vorticity_flatness),
        },
        "increments": c.increments.iter().map(|i| json!({
            "separation": i.separation,
            "s2": pair(&i.s2),
            "flatness": pair(&i.flatness),
            "transverse_flatness": pair(&i.transverse_flatness),
        })).collect::<Vec<_>>(),
        "scalars": c.scalars.iter().map(|s| (s.name.to_owned(), json!({
            "mean": pair(&s.mean),
            "std": pair(&s.std),
            "wasserstein1": s.wasserstein1,
        }))).collect::<serde_json::Map<String, Value>>(),
        "budget": c.budget.as_ref().map(|terms| terms.iter().map(|(name, p)| ((*name).to_owned(), pair(p))).collect::<serde_json::Map<String, Value>>()),
    })
}

fn print_flow(c: &FlowComparison, min_energy: f64) {
    println!();
    println!(
        "spectrum   E_gen/E_ref on {} shells holding ≥ {min_energy:.0e} of the reference's energy; worst |log10| = {:.3}",
        c.shells.len(),
        c.worst_log10
    );
    println!("{:<10} {:>12} {:>10} {:>10}", "shell", "share", "ratio", "± (1σ)");
    for s in &c.shells {
        println!("{:<10} {:>12.3e} {:>10.3} {:>10.3}", s.shell, s.share, s.ratio, s.ratio * s.error);
    }
    println!();
    println!(
        "vorticity  PDF L1 {:.4}, density MSE {:.3e}, flatness {:.3} (reference {:.3})",
        c.vorticity_pdf_l1, c.vorticity_density_mse, c.vorticity_flatness.generated, c.vorticity_flatness.reference
    );
    println!(
        "{:<10} {:>12} {:>12} {:>14} {:>14} {:>10}",
        "r", "S2 gen", "S2 ref", "flatness gen", "flatness ref", "rel err"
    );
    for i in &c.increments {
        println!(
            "{:<10} {:>12.4e} {:>12.4e} {:>14.3} {:>14.3} {:>+10.3}",
            i.separation,
            i.s2.generated,
            i.s2.reference,
            i.flatness.generated,
            i.flatness.reference,
            i.flatness.relative_error()
        );
    }
    println!(
        "{:<13} {:>12} {:>12} {:>12} {:>12} {:>12}",
        "per sample", "mean gen", "mean ref", "std gen", "std ref", "W1"
    );
    for s in &c.scalars {
        println!(
            "{:<13} {:>12.4e} {:>12.4e} {:>12.4e} {:>12.4e} {:>12.4e}",
            s.name, s.mean.generated, s.mean.reference, s.std.generated, s.std.reference, s.wasserstein1
        );
    }
    if let Some(terms) = &c.budget {
        println!("{:<13} {:>12} {:>12} {:>10}", "budget", "generated", "reference", "rel err");
        for (name, p) in terms {
            // A term the flow does not have (no drag: α = 0) is zero in both sets.
            let rel = match p.relative_error() {
                r if r.is_finite() => format!("{r:>+10.3}"),
                _ if p.generated == 0.0 && p.reference == 0.0 => format!("{:>10}", "n/a"),
                _ => format!("{:>10}", "inf"),
            };
            println!("{:<13} {:>12.4e} {:>12.4e} {rel}", name, p.generated, p.reference);
        }
    }
}

/// Checks that both files cover the same domain.
fn check_domain(generated: &Side, reference: &Side) -> Result<(f64, f64)> {
    let (g, r) = (generated.source.metadata(), reference.source.metadata());
    let same = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs());
    if !same(g.lx, r.lx) || !same(g.ly, r.ly) {
        return Err(BadInput(format!(
            "different domain sizes: the generated set {} covers {} × {} but the reference set {} covers {} × {}",
            generated.file(),
            g.lx,
            g.ly,
            reference.file(),
            r.lx,
            r.ly
        ))
        .into());
    }
    Ok((g.lx, g.ly))
}

/// Runs `fieldflow eval`.
///
/// # Errors
/// [`BadInput`] (exit code 2) naming the file for unreadable files, channel or domain mismatches,
/// non-finite values and grids that cannot be resampled; metric failures otherwise.
pub fn run(opts: &EvalOpts) -> Result<()> {
    if opts.max_samples == Some(0) {
        return Err(BadInput("--max-samples must be at least 1".into()).into());
    }
    if opts.bins == 0 {
        return Err(BadInput("--bins must be at least 1".into()).into());
    }
    if !(opts.min_energy.is_finite() && (0.0..1.0).contains(&opts.min_energy)) {
        return Err(BadInput(format!("--min-energy {} must be in [0, 1)", opts.min_energy)).into());
    }
    let generated = Side::open("generated", &opts.generated, opts.max_samples)?;
    let reference = Side::open("reference", &opts.reference, opts.max_samples)?;
    let (names, gen_idx, ref_idx) = pick_channels(opts, &generated, &reference)?;
    let (lx, ly) = check_domain(&generated, &reference)?;

    let ((gy, gx), (ry, rx)) = (generated.shape(), reference.shape());
    let (my, mx) = (gy.min(ry), gx.min(rx));
    let resampled: Vec<&Side> = [&generated, &reference].into_iter().filter(|s| s.shape() != (my, mx)).collect();
    if !resampled.is_empty() {
        for side in [&generated, &reference] {
            if side.source.metadata().boundary != Boundary::Periodic {
                return Err(BadInput(format!(
                    "the files are on different grids ({gy}×{gx} and {ry}×{rx}) and the {} set {} is not periodic; \
                     spectral resampling needs periodic fields",
                    side.role,
                    side.file()
                ))
                .into());
            }
        }
    }
    let note = match resampled.as_slice() {
        [] => None,
        sides => Some(format!(
            "compared on the coarser grid {my}×{mx}: {} resampled by spectral truncation (generated {gy}×{gx}, \
             reference {ry}×{rx})",
            sides.iter().map(|s| format!("{} set", s.role)).collect::<Vec<_>>().join(" and ")
        )),
    };
    let g = generated.compared(&gen_idx, my, mx)?;
    let r = reference.compared(&ref_idx, my, mx)?;
    // Spectra need an even grid; Darcy node grids (odd) get none.
    let grid = Grid2d::new(mx, my, lx, ly).ok();

    let per_channel = (0..names.len())
        .map(|c| {
            Scores::compute(grid.as_ref(), g.slice(s![.., c..=c, .., ..]), r.slice(s![.., c..=c, .., ..]), opts.bins)
        })
        .collect::<Result<Vec<_>>>()?;
    let overall = Scores::compute(grid.as_ref(), g.view(), r.view(), opts.bins)?;
    let flow_params = reference.source.metadata().flow.clone().or_else(|| generated.source.metadata().flow.clone());
    let flow = match &grid {
        Some(grid) if my >= 9 && mx >= 9 => match (velocity_of(grid, &names, &g)?, velocity_of(grid, &names, &r)?) {
            (Some(gv), Some(rv)) => {
                Some(compare_flows(grid, gv.view(), rv.view(), flow_params.as_ref(), opts.min_energy, opts.bins)?)
            }
            _ => None,
        },
        _ => None,
    };
    let gen_check = generated.constraint()?;
    let ref_check = reference.constraint()?;

    let describe = |side: &Side| {
        json!({
            "file": side.file(),
            "format": side.source.format().name(),
            "samples": side.fields.shape()[0],
            "grid": [side.shape().0, side.shape().1],
        })
    };
    if opts.json {
        let constraint = |(kind, summary, sign): &Physics| {
            json!({
                "check": kind.name(),
                "measure": kind.measures().0,
                "max": summary.max,
                "mean": summary.mean,
                "worst": summary.worst(),
                "nonpositive_coefficient_samples": sign.map(|s| s.0),
                "coefficient_min": sign.map(|s| s.1),
            })
        };
        let channels: serde_json::Map<String, Value> =
            names.iter().zip(&per_channel).map(|(n, s)| (n.clone(), s.json())).collect();
        let value = json!({
            "generated": describe(&generated),
            "reference": describe(&reference),
            "grid": [my, mx],
            "lx": lx,
            "ly": ly,
            "resampled": note,
            "density_bins": opts.bins,
            "spectral_band": grid.as_ref().map(|g| {
                let band = metrics::resolved_shells(g);
                [*band.start(), *band.end()]
            }),
            "channels": channels,
            "overall": overall.json(),
            "constraint": {
                "generated": constraint(&gen_check),
                "reference": constraint(&ref_check),
            },
            "turbulence": flow.as_ref().map(|c| flow_json(c, opts.min_energy)),
        });
        println!("{value:#}");
        return Ok(());
    }
    for side in [&generated, &reference] {
        println!(
            "{:<10} {}  ({} samples, {}×{}, {})",
            side.role,
            side.file(),
            side.fields.shape()[0],
            side.shape().0,
            side.shape().1,
            side.source.format().name()
        );
    }
    match &note {
        Some(note) => println!("grid       {note}"),
        None => println!("grid       {my}×{mx} on {lx} × {ly}"),
    }
    if grid.is_none() {
        println!("spectra    n/a: the {my}×{mx} grid is not even-sized");
    }
    println!(
        "{:<10} {:>12} {:>12} {:>18} {:>16} {:>12}",
        "channel", "MMSE", "SMSE", "spectrum MSE (log)", "spectrum rel L2", "density MSE"
    );
    for (name, scores) in names.iter().zip(&per_channel) {
        println!("{}", scores.row(name));
    }
    if names.len() > 1 {
        println!("{}", overall.row("all"));
    }
    println!();
    println!("{:<10} {:<18} {:<40} {:>12} {:>12}", "physics", "check", "residual", "max", "mean");
    for (side, (kind, summary, sign)) in [(&generated, &gen_check), (&reference, &ref_check)] {
        println!(
            "{:<10} {:<18} {:<40} {:>12.3e} {:>12.3e}",
            side.role,
            kind.name(),
            kind.measures().0,
            summary.max,
            summary.mean
        );
        if let Some((count, min)) = sign {
            let n = side.fields.shape()[0];
            println!("{:<10} {:<18} {:<40} {:>12} (min a = {min:.4})", side.role, "a > 0", "samples", n - count);
        }
    }
    if let Some(c) = &flow {
        print_flow(c, opts.min_energy);
    }
    Ok(())
}
