//! Physics checks of data files: the check a file's physics descriptor calls for (or the one
//! asked for), run on its samples in batches.
//!
//! - Navier–Stokes / Kolmogorov files with velocity channels `u`, `v`: the spectral divergence of
//!   every velocity field ([`divergence_residual`]); the judged value is the scale-free relative
//!   divergence `‖∇·u‖₂ / ‖∇u‖_F`.
//! - Darcy files with coefficients `a` and solution `u` (or pairs `(a, u)`): the discrete Darcy
//!   residual ([`DarcyOperator::residual_summary`]) with a constant forcing (default: the file's
//!   config, else 1); the judged value is `‖A(a)u − f‖₂ / ‖f‖₂`.
//! - Anything else (e.g. vorticity-only files): only finiteness is checked.
//!
//! A sample holding a non-finite value gets an infinite residual. `fieldflow check` and
//! `fieldflow eval` both run these.

use anyhow::{Context, Result};
use fieldflow_datasets::{FieldSource, PdeKind};
use fieldflow_pde::Grid2d;
use fieldflow_pde::darcy::{DarcyOperator, FaceAverage, Forcing};
use fieldflow_pde::residuals::divergence_residual;
use ndarray::{Array2, Array4, ArrayView4, Axis, s};
use rayon::prelude::*;

use crate::error::BadInput;

/// Samples read per batch.
const BATCH: usize = 64;

/// What is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Divergence of the velocity in channels `u`, `v`.
    Divergence { u: usize, v: usize },
    /// Darcy residual of solution channel `u` with coefficient channel `a`.
    Darcy { u: usize, a: usize },
    /// Only finiteness.
    Finite,
}

impl Kind {
    /// The check's name: `divergence-free`, `darcy` or `finite`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Divergence { .. } => "divergence-free",
            Self::Darcy { .. } => "darcy",
            Self::Finite => "finite",
        }
    }

    /// What the judged (relative) and the absolute residual measure.
    pub fn measures(self) -> (&'static str, &'static str) {
        match self {
            Self::Divergence { .. } => ("relative divergence |div u|/|grad u|", "max |div u|"),
            Self::Darcy { .. } => ("relative residual |A(a)u - f|/|f|", "|A(a)u - f|_2"),
            Self::Finite => ("none", "none"),
        }
    }
}

/// Picks the check from the flags (`--constraint`, `--pde`), else from the file's physics
/// descriptor ([`fieldflow_datasets::Physics`]).
fn infer(source: &dyn FieldSource, pde: Option<&str>, constraint: Option<&str>) -> Result<Kind> {
    let meta = source.metadata();
    let physics = meta.physics();
    let file = source.path().display();
    let constraint = match (constraint, pde) {
        (Some(c), _) => c.to_owned(),
        (None, Some(p)) => match PdeKind::parse(p) {
            PdeKind::NavierStokes | PdeKind::Kolmogorov => "divergence-free".into(),
            PdeKind::Darcy => "darcy".into(),
            PdeKind::Other(other) => {
                return Err(BadInput(format!(
                    "unknown --pde {other:?} (expected navier_stokes, ns2d, kolmogorov or darcy) for {file}"
                ))
                .into());
            }
        },
        (None, None) => match physics.pde {
            PdeKind::NavierStokes | PdeKind::Kolmogorov if physics.roles.velocity.is_some() => "divergence-free".into(),
            PdeKind::Darcy => "darcy".into(),
            _ => return Ok(Kind::Finite),
        },
    };
    match constraint.as_str() {
        "divergence-free" => {
            let (u, v) = match physics.roles.velocity {
                Some(uv) => uv,
                None if meta.channels.len() == 2 => (0, 1),
                None => {
                    return Err(BadInput(format!(
                        "{file} has no velocity channels u, v (channels: {:?}); nothing to check for divergence",
                        meta.channels
                    ))
                    .into());
                }
            };
            Ok(Kind::Divergence { u, v })
        }
        "darcy" => {
            // A pair file: (a, u) both in /fields; the checker takes a from there.
            if let Some((_, u)) = physics.roles.darcy_pair {
                return Ok(Kind::Darcy { u, a: 0 });
            }
            // Forced on a file of another PDE: a single channel is the solution, and a
            // coefficient named `a` the permeability.
            let forced = || {
                let u = meta.channels.iter().position(|c| c == "u").or((meta.channels.len() == 1).then_some(0));
                u.zip(meta.coefficient_channels.iter().position(|c| c == "a"))
            };
            match physics.roles.darcy_solution.or_else(forced) {
                Some((u, a)) => Ok(Kind::Darcy { u, a }),
                _ => Err(BadInput(format!(
                    "{file} needs a solution channel u and a coefficient channel a for the Darcy check \
                     (channels: {:?}, coefficients: {:?})",
                    meta.channels, meta.coefficient_channels
                ))
                .into()),
            }
        }
        other => {
            Err(BadInput(format!("unknown --constraint {other:?} (expected divergence-free or darcy) for {file}"))
                .into())
        }
    }
}

/// The Darcy forcing: `--forcing`, else the `[darcy]` section of the config stored in the file
/// (`forcing`, `forcing_right`, `forcing_split`), else 1. Also says where it came from.
fn darcy_forcing(flag: Option<f64>, config: &str) -> (Forcing, &'static str) {
    if let Some(value) = flag {
        return (Forcing::Constant(value), "--forcing");
    }
    let darcy = config.parse::<toml::Table>().ok().and_then(|t| t.get("darcy").and_then(|d| d.as_table()).cloned());
    let number = |key: &str| {
        darcy.as_ref().and_then(|d| d.get(key)).and_then(|v| v.as_float().or_else(|| v.as_integer().map(|i| i as f64)))
    };
    match (number("forcing"), number("forcing_right")) {
        (Some(left), Some(right)) => {
            (Forcing::Piecewise { left, right, split: number("forcing_split").unwrap_or(0.5) }, "the file's config")
        }
        (Some(value), None) => (Forcing::Constant(value), "the file's config"),
        (None, _) => (Forcing::Constant(1.0), "default"),
    }
}

/// The forcing in words.
pub fn describe(forcing: Forcing) -> String {
    match forcing {
        Forcing::Constant(v) => format!("{v}"),
        Forcing::Piecewise { left, right, split } => format!("{left} for x < {split}, {right} elsewhere"),
    }
}

/// For a Darcy check: the number of samples whose coefficient `a` is `≤ 0` somewhere, and the
/// smallest finite `a`; `None` for other checks.
pub type CoefficientSign = Option<(usize, f64)>;

/// A check ready to run on the samples of one file: what is checked and the operators it needs.
#[derive(Debug)]
pub struct Checker {
    /// What is checked.
    pub kind: Kind,
    file: String,
    grid: Option<Grid2d>,
    darcy: Option<(DarcyOperator, Array2<f64>)>,
    /// For a Darcy pair file, the channel of `/fields` that holds the coefficient `a`.
    pair_a: Option<usize>,
    /// The Darcy forcing.
    pub forcing: Forcing,
    /// Where the forcing came from (`--forcing`, the file's config, default).
    pub forcing_source: &'static str,
}

impl Checker {
    /// The check of `source`: forced by `pde` / `constraint` (the `--pde` / `--constraint`
    /// flags) or inferred from the metadata, with the Darcy forcing `forcing` (else the file's
    /// config, else 1).
    ///
    /// # Errors
    /// [`BadInput`] naming the file for unknown flags, missing channels or grids the check
    /// cannot run on.
    pub fn new(
        source: &dyn FieldSource,
        pde: Option<&str>,
        constraint: Option<&str>,
        forcing: Option<f64>,
    ) -> Result<Self> {
        let kind = infer(source, pde, constraint)?;
        let path = source.path();
        let meta = source.metadata();
        let [_, ny, nx] = source.sample_shape();
        let grid =
            match kind {
                Kind::Divergence { .. } => Some(Grid2d::new(nx, ny, meta.lx, meta.ly).map_err(|e| {
                    BadInput(format!("{}: cannot check the divergence on this grid: {e}", path.display()))
                })?),
                _ => None,
            };
        let (forcing, forcing_source) = darcy_forcing(forcing, &meta.config);
        let darcy = match kind {
            Kind::Darcy { .. } => {
                if nx != ny {
                    return Err(BadInput(format!(
                        "{}: the Darcy check needs a square grid, not {ny}×{nx}",
                        path.display()
                    ))
                    .into());
                }
                let op = DarcyOperator::new(nx, FaceAverage::Arithmetic)
                    .map_err(|e| BadInput(format!("{}: cannot check the Darcy residual: {e}", path.display())))?;
                let f = forcing
                    .field(nx)
                    .map_err(|e| BadInput(format!("{}: bad Darcy forcing ({forcing_source}): {e}", path.display())))?;
                Some((op, f))
            }
            _ => None,
        };
        let pair_a = match kind {
            Kind::Darcy { .. } => meta.physics().roles.darcy_pair.map(|(a, _)| a),
            _ => None,
        };
        Ok(Self { kind, file: path.display().to_string(), grid, darcy, pair_a, forcing, forcing_source })
    }

    /// Per-sample (judged, absolute) residuals of the first `n` samples of `source` (the file
    /// the checker was made for), read in batches; for a Darcy check also how many samples have
    /// a coefficient `a ≤ 0` somewhere and the smallest finite `a` (generated pairs can stray
    /// below 0, where the PDE is no longer elliptic; the residual is still defined).
    ///
    /// # Errors
    /// Read errors naming the file; a Darcy file without coefficients is [`BadInput`].
    pub fn run_source(&self, source: &dyn FieldSource, n: usize) -> Result<(Vec<(f64, f64)>, CoefficientSign)> {
        let file = &self.file;
        let mut values = Vec::with_capacity(n);
        let mut sign: CoefficientSign = None;
        for start in (0..n).step_by(BATCH) {
            let range = start..(start + BATCH).min(n);
            let fields = source.read_fields(range.clone()).with_context(|| format!("reading the fields of {file}"))?;
            let coefficients = self.coefficients(source, range, fields.view())?;
            let coefficients = coefficients.as_ref().map(|c| c.view());
            values.extend(self.residuals(start, fields.view(), coefficients)?);
            if let Some((count, min)) = self.sign_of(coefficients) {
                let (c0, m0) = sign.unwrap_or((0, f64::INFINITY));
                sign = Some((c0 + count, m0.min(min)));
            }
        }
        Ok((values, sign))
    }

    /// For a Darcy check, how many samples of coefficients `[B, Ca, ny, nx]` have `a ≤ 0`
    /// somewhere, and the smallest finite `a` (`None` for other checks or without coefficients).
    pub fn sign_of(&self, coefficients: Option<ArrayView4<f64>>) -> CoefficientSign {
        let (Kind::Darcy { a, .. }, Some(coefficients)) = (self.kind, coefficients) else { return None };
        let minima = coefficients.axis_iter(Axis(0)).map(|sample| {
            sample.index_axis(Axis(0), a).iter().copied().filter(|v| v.is_finite()).fold(f64::INFINITY, f64::min)
        });
        Some(minima.fold((0, f64::INFINITY), |(count, min), m| (count + usize::from(m <= 0.0), min.min(m))))
    }

    /// The Darcy coefficients of samples `range` of `source`, whose fields are `fields`: channel
    /// `a` of the fields for a pair file, `/coefficients` otherwise; `None` for other checks.
    ///
    /// # Errors
    /// Read errors naming the file; a Darcy file without coefficients is [`BadInput`].
    pub fn coefficients(
        &self,
        source: &dyn FieldSource,
        range: std::ops::Range<usize>,
        fields: ArrayView4<f64>,
    ) -> Result<Option<Array4<f64>>> {
        let file = &self.file;
        Ok(match (self.kind, self.pair_a) {
            (Kind::Darcy { .. }, Some(a)) => Some(fields.slice(s![.., a..a + 1, .., ..]).to_owned()),
            (Kind::Darcy { .. }, None) => Some(
                source
                    .read_coefficients(range)
                    .with_context(|| format!("reading the coefficients of {file}"))?
                    .ok_or_else(|| BadInput(format!("{file} has no /coefficients for the Darcy check")))?,
            ),
            _ => None,
        })
    }

    /// Per-sample (judged, absolute) residuals of `fields` `[B, C, ny, nx]` (with the Darcy
    /// coefficients `[B, Ca, ny, nx]`), whose first sample is sample `first` of the file. A sample
    /// holding a non-finite value gets `(+∞, +∞)`.
    ///
    /// # Errors
    /// [`BadInput`] naming the sample for a Darcy check without coefficients or with wrong shapes.
    pub fn residuals(
        &self,
        first: usize,
        fields: ArrayView4<f64>,
        coefficients: Option<ArrayView4<f64>>,
    ) -> Result<Vec<(f64, f64)>> {
        let file = &self.file;
        if matches!(self.kind, Kind::Darcy { .. }) && coefficients.is_none() {
            return Err(BadInput(format!("{file} has no /coefficients for the Darcy check")).into());
        }
        fields
            .axis_iter(Axis(0))
            .into_par_iter()
            .enumerate()
            .map(|(i, sample)| {
                let index = first + i;
                let finite = sample.iter().all(|v| v.is_finite())
                    && coefficients.as_ref().is_none_or(|c| c.slice(s![i, .., .., ..]).iter().all(|v| v.is_finite()));
                if !finite {
                    return Ok((f64::INFINITY, f64::INFINITY));
                }
                match self.kind {
                    Kind::Finite => Ok((0.0, 0.0)),
                    Kind::Divergence { u, v } => {
                        let grid = self.grid.as_ref().context("no grid for the divergence check")?;
                        let uv =
                            ndarray::stack(Axis(0), &[sample.index_axis(Axis(0), u), sample.index_axis(Axis(0), v)])?;
                        let r = divergence_residual(grid, uv.view())
                            .with_context(|| format!("sample {index} of {file}"))?;
                        Ok((r.relative, r.max))
                    }
                    Kind::Darcy { u, a } => {
                        let (op, f) = self.darcy.as_ref().context("no operator for the Darcy check")?;
                        let coefficients = coefficients.as_ref().context("no coefficients")?;
                        let r = op
                            .residual_summary(
                                coefficients.slice(s![i, a, .., ..]),
                                sample.index_axis(Axis(0), u),
                                f.view(),
                            )
                            .map_err(|e| BadInput(format!("sample {index} of {file}: {e}")))?;
                        Ok((r.relative, r.norm))
                    }
                }
            })
            .collect()
    }
}
