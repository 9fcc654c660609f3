//! Errors of the `fieldflow-pde` crate: one enum, each variant naming what was wrong.

use thiserror::Error;

/// Everything that can go wrong in the numerics when the input is at fault.
///
/// Messages name the offending quantity so that callers (the CLI, the data pipelines) can pass
/// them on to a user unchanged.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PdeError {
    /// A grid size is odd, zero or otherwise unusable.
    #[error("invalid grid: {0}")]
    InvalidGrid(String),
    /// An array has the wrong shape for the grid or operator it was given to.
    #[error("shape mismatch for {what}: expected {expected:?}, got {got:?}")]
    Shape {
        /// Which argument had the wrong shape.
        what: &'static str,
        /// The shape that was expected.
        expected: Vec<usize>,
        /// The shape that was passed.
        got: Vec<usize>,
    },
    /// A field holds NaN or infinite values.
    #[error("non-finite value in {what} at flat index {index}")]
    NonFinite {
        /// Which field was at fault.
        what: &'static str,
        /// The first flat (row-major) index holding a non-finite value.
        index: usize,
    },
    /// A scalar parameter is outside its valid range.
    #[error("invalid parameter `{name}` = {value}: {reason}")]
    Parameter {
        /// The parameter name, as it appears in configs.
        name: &'static str,
        /// The rejected value.
        value: f64,
        /// Why the value is rejected.
        reason: &'static str,
    },
    /// A time step exceeds the stability bound of the scheme (e.g. CFL for explicit advection).
    #[error(
        "time step dt = {dt:e} exceeds the stability bound {bound:e} (CFL number {cfl:.3} > {cfl_max}); lower dt or enable adaptive dt"
    )]
    Unstable {
        /// The requested step.
        dt: f64,
        /// The largest stable step for the current state.
        bound: f64,
        /// The CFL number dt would give.
        cfl: f64,
        /// The CFL limit of the scheme.
        cfl_max: f64,
    },
    /// A simulation produced non-finite values (blow-up).
    #[error("simulation blew up at t = {time}: non-finite vorticity")]
    BlowUp {
        /// Simulation time at which the blow-up was detected.
        time: f64,
    },
    /// A linear solve or factorisation failed.
    #[error("linear solver failed: {0}")]
    Solver(String),
    /// An iterative method did not reach its tolerance.
    #[error("{method} did not converge in {iterations} iterations (residual {residual:e} > tolerance {tolerance:e})")]
    NotConverged {
        /// The method that failed.
        method: &'static str,
        /// Iterations performed.
        iterations: usize,
        /// The residual reached.
        residual: f64,
        /// The residual required.
        tolerance: f64,
    },
}

/// Result alias for the crate.
pub type Result<T, E = PdeError> = std::result::Result<T, E>;

/// Returns an error naming `what` if `data` holds a NaN or an infinity.
///
/// # Errors
/// [`PdeError::NonFinite`] with the first offending flat index.
pub fn ensure_finite<'a>(what: &'static str, data: impl IntoIterator<Item = &'a f64>) -> Result<()> {
    match data.into_iter().position(|v| !v.is_finite()) {
        Some(index) => Err(PdeError::NonFinite { what, index }),
        None => Ok(()),
    }
}

/// Returns an error unless `got == expected`.
///
/// # Errors
/// [`PdeError::Shape`] naming `what`.
pub fn ensure_shape(what: &'static str, expected: &[usize], got: &[usize]) -> Result<()> {
    if expected == got { Ok(()) } else { Err(PdeError::Shape { what, expected: expected.to_vec(), got: got.to_vec() }) }
}
