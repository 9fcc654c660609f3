//! # fieldflow-pde
//!
//! The numerics of fieldflow, in `f64` on [`ndarray`]: periodic spectral grids and operators,
//! random fields, 2D incompressible Navier–Stokes in vorticity form (including Kolmogorov flow),
//! Darcy flow, PDE residuals, and constraint projections for physics-constrained sampling.
//!
//! No neural networks and no file I/O live here.
//!
//! Conventions (shared with the whole project): arrays are `[batch, channel, y, x]`, row-major,
//! x fastest. A periodic grid covers `[0, Lx) × [0, Ly)` with `x_j = j Lx / nx`. Velocity
//! channels are `(u, v)`; vorticity `ω = ∂v/∂x − ∂u/∂y`; streamfunction `u = ∂ψ/∂y`,
//! `v = −∂ψ/∂x`, `Δψ = −ω`.

pub mod constraints;
pub mod darcy;
pub mod error;
pub mod filter;
pub mod grid;
pub mod kolmogorov;
pub mod leray;
pub mod navier_stokes;
pub mod operators;
pub mod random;
pub mod resample;
pub mod residuals;
pub mod rng;
pub mod spectrum;
pub mod turbulence;

pub use error::{PdeError, Result};
pub use grid::Grid2d;
pub use num_complex::Complex64;
