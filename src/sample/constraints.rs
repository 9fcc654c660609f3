//! The hard constraints of a sampling job, described without a config ([`ConstraintSpec`]) and
//! built for a model's grid and channels into one [`Constraint`] (a [`Stack`] when there are
//! several): the PDE constraint (`∇·u = 0`, or the Darcy equation on an `(a, u)` pair), fixed
//! channel means, a fixed kinetic energy, and observed values pinned on a sub-grid.

use std::path::PathBuf;

use fieldflow_datasets::Physics;
use fieldflow_pde::Grid2d;
use fieldflow_pde::constraints::{Constraint, DarcyPde, DivergenceFree, FixedEnergy, FixedMean, MaskValues, Stack};
use fieldflow_pde::darcy::{DarcyOperator, FaceAverage, Forcing as DarcyForcing};
use ndarray::{Array3, Axis};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// How a Darcy pair is projected onto the equation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DarcyProjection {
    /// Gauss–Newton on the pair: the nearest pair in the Euclidean norm.
    #[default]
    Pair,
    /// The generated coefficient is kept and `u` is the solution of the equation.
    Solve,
}

/// The PDE constraint of a job.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum PdeConstraint {
    /// None.
    #[default]
    None,
    /// `∇·u = 0` for a model of the channels `[u, v]`.
    DivergenceFree,
    /// `−∇·(a∇u) = f` with a constant `f` on a generated pair `(a, u)` (channels `[a, u]`, square
    /// grid of nodes with zero Dirichlet values).
    Darcy {
        /// The constant forcing `f`.
        forcing: f64,
        /// How a pair is projected.
        projection: DarcyProjection,
    },
}

/// Observed values pinned at every `stride`-th grid point in x and y (all channels), taken from
/// one sample of a file on the generation grid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Any readable HDF5 file with the model's channels on the generation grid.
    pub path: PathBuf,
    /// The observed sample.
    pub sample: usize,
    /// Grid points between observations, at least 1.
    pub stride: usize,
}

/// The constraints of a job, stacked in this order: `pde`, `mean`, `kinetic_energy`, `observe`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConstraintSpec {
    /// The PDE constraint.
    pub pde: PdeConstraint,
    /// Fixed mean of each channel, in data units.
    pub mean: Option<Vec<f64>>,
    /// Fixed kinetic energy `½ ∫ (u² + v²) dx dy` of a velocity model.
    pub kinetic_energy: Option<f64>,
    /// Observed values.
    pub observe: Option<Observation>,
}

/// A constraint that does not fit the model, naming the part of the [`ConstraintSpec`] (as the
/// config key under `[constraint]`: `kind`, `mean`, `kinetic_energy`, `observe.path`, …).
#[derive(Debug, Error)]
#[error("{key}: {reason}")]
pub struct ConstraintSpecError {
    /// The key at fault.
    pub key: &'static str,
    /// What is wrong.
    pub reason: String,
}

impl ConstraintSpec {
    /// Whether any constraint is asked for.
    pub fn any(&self) -> bool {
        self.pde != PdeConstraint::None
            || self.mean.is_some()
            || self.kinetic_energy.is_some()
            || self.observe.is_some()
    }

    /// The constraint for fields with `channels` on `grid`; `None` when nothing is asked for.
    ///
    /// # Errors
    /// [`ConstraintSpecError`] when a constraint does not fit the channels or grid, a value is
    /// infeasible, or the observed file cannot be read or has another shape.
    pub fn build(
        &self,
        grid: &Grid2d,
        channels: &[String],
    ) -> Result<Option<Box<dyn Constraint>>, ConstraintSpecError> {
        let c = channels.len();
        let shape = [c, grid.ny(), grid.nx()];
        let bad = |key: &'static str, reason: String| ConstraintSpecError { key, reason };
        // `Physics` names the roles; these constraints need the channels to be exactly them.
        let roles = Physics::of("", channels, &[]).roles;
        let velocity = c == 2 && roles.velocity == Some((0, 1));
        let mut parts: Vec<Box<dyn Constraint>> = Vec::new();
        match self.pde {
            PdeConstraint::None => {}
            PdeConstraint::DivergenceFree => {
                if !velocity {
                    let reason =
                        format!("\"divergence_free\" needs a model of exactly the channels [u, v], not {channels:?}");
                    return Err(bad("kind", reason));
                }
                parts.push(Box::new(DivergenceFree::new(grid.clone())));
            }
            PdeConstraint::Darcy { forcing, projection } => {
                let (s, nx) = (grid.ny(), grid.nx());
                if !(c == 2 && roles.darcy_pair == Some((0, 1))) || s != nx {
                    let reason = format!(
                        "\"darcy\" needs a model of the pair [a, u] (datagen darcy.output = \"pair\") on a square grid, \
                         not {channels:?} on {s}×{nx}"
                    );
                    return Err(bad("kind", reason));
                }
                let op = DarcyOperator::new(s, FaceAverage::Arithmetic).map_err(|e| bad("kind", e.to_string()))?;
                let f = DarcyForcing::Constant(forcing).field(s).map_err(|e| bad("darcy_forcing", e.to_string()))?;
                let pde = match projection {
                    DarcyProjection::Pair => DarcyPde::new(op, f),
                    DarcyProjection::Solve => DarcyPde::with_fixed_coefficient(op, f),
                };
                parts.push(Box::new(pde.map_err(|e| bad("darcy_forcing", e.to_string()))?));
            }
        }
        if let Some(means) = &self.mean {
            if means.len() != c {
                return Err(bad(
                    "mean",
                    format!("has {} values, the model has {c} channels {channels:?}", means.len()),
                ));
            }
            let targets = means.iter().copied().enumerate().collect();
            parts.push(Box::new(FixedMean::with_targets(shape, targets).map_err(|e| bad("mean", e.to_string()))?));
        }
        if let Some(energy) = self.kinetic_energy {
            if !velocity {
                let reason = format!("needs a model of exactly the channels [u, v], not {channels:?}");
                return Err(bad("kinetic_energy", reason));
            }
            parts.push(Box::new(FixedEnergy::kinetic(grid, energy).map_err(|e| bad("kinetic_energy", e.to_string()))?));
        }
        if let Some(o) = &self.observe {
            let source = fieldflow_datasets::open_source(&o.path)
                .map_err(|e| bad("observe.path", format!("cannot read {}: {e}", o.path.display())))?;
            if source.sample_shape() != shape {
                let reason = format!(
                    "{} holds fields of shape {:?}, the generated ones are {shape:?} (channels, ny, nx)",
                    o.path.display(),
                    source.sample_shape()
                );
                return Err(bad("observe.path", reason));
            }
            if o.sample >= source.len() {
                let reason = format!("= {} but {} holds {} samples", o.sample, o.path.display(), source.len());
                return Err(bad("observe.sample", reason));
            }
            if o.stride == 0 {
                return Err(bad("observe.stride", "must be at least 1".into()));
            }
            let values = source
                .read_fields(o.sample..o.sample + 1)
                .map_err(|e| bad("observe.path", format!("reading {}: {e}", o.path.display())))?
                .index_axis_move(Axis(0), 0);
            let mask =
                Array3::from_shape_fn((c, grid.ny(), grid.nx()), |(_, y, x)| y % o.stride == 0 && x % o.stride == 0);
            parts.push(Box::new(MaskValues::new(mask, values).map_err(|e| bad("observe", e.to_string()))?));
        }
        Ok(match parts.len() {
            0 => None,
            1 => parts.pop(),
            _ => Some(Box::new(Stack::new(parts).map_err(|e| bad("kind", e.to_string()))?)),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn stacks_what_is_asked_and_checks_the_channels() {
        let grid = Grid2d::square(16, 1.0).unwrap();
        let uv = names(&["u", "v"]);
        assert!(ConstraintSpec::default().build(&grid, &uv).unwrap().is_none());
        let div = ConstraintSpec { pde: PdeConstraint::DivergenceFree, ..Default::default() };
        let one = div.build(&grid, &uv).unwrap().unwrap();
        assert_eq!((one.shape(), one.is_linear()), ([2, 16, 16], true));
        let stacked = ConstraintSpec { kinetic_energy: Some(0.5), mean: Some(vec![0.0, 0.0]), ..div.clone() };
        let c = stacked.build(&grid, &uv).unwrap().unwrap();
        // 16² divergences (all but the mean mode) + 2 means + 1 energy, and not linear.
        assert!(!c.is_linear());
        assert_eq!(c.len(), one.len() + 3);
        let err = |spec: &ConstraintSpec, ch: &[&str]| spec.build(&grid, &names(ch)).err().unwrap().key;
        assert_eq!(err(&div, &["w"]), "kind");
        assert_eq!(err(&ConstraintSpec { mean: Some(vec![0.0]), ..Default::default() }, &["u", "v"]), "mean");
        assert_eq!(
            err(&ConstraintSpec { kinetic_energy: Some(1.0), ..Default::default() }, &["a", "u"]),
            "kinetic_energy"
        );
        let darcy = PdeConstraint::Darcy { forcing: 1.0, projection: DarcyProjection::Pair };
        assert_eq!(err(&ConstraintSpec { pde: darcy, ..Default::default() }, &["u", "v"]), "kind");
        let missing = Observation { path: "no/such/file.h5".into(), sample: 0, stride: 4 };
        assert_eq!(err(&ConstraintSpec { observe: Some(missing), ..Default::default() }, &["u", "v"]), "observe.path");
    }
}
