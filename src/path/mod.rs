//! Probability paths of flow matching: schedulers, affine paths and minibatch couplings.
//!
//! A coupling `(x0, x1) ~ π` of the source measure (noise, `t = 0`) and the data (`t = 1`) and a
//! scheduler `(α_t, σ_t)` define the conditional paths
//!
//! ```text
//! x_t = α_t x1 + σ_t x0,        ẋ_t = α̇_t x1 + σ̇_t x0,
//! ```
//!
//! and flow matching regresses a network `v_θ(x_t, t)` onto the conditional velocity `ẋ_t`
//! (Lipman et al. 2023; the `flow_matching` library's `AffineProbPath`). The marginal velocity
//! `E[ẋ_t | x_t]` then transports the source to the data.
//!
//! - [`scheduler`]: `(α_t, σ_t, α̇_t, σ̇_t)` for CondOT, polynomial, VP, linear VP, cosine and VE.
//! - [`affine`]: [`AffinePath`] turns `(x0, x1, t)` into a [`PathSample`] and converts between
//!   the velocity, `x1` ("target") and `x0` ("epsilon") parameterisations of a prediction.
//! - [`coupling`]: the exact minibatch optimal-transport coupling (OT-CFM, Tong et al. 2024),
//!   pairing each noise sample with a data sample so that `Σ ‖x0_i − x1_π(i)‖²` is minimal.

pub mod affine;
pub mod coupling;
pub mod scheduler;

use thiserror::Error;

pub use affine::{AffinePath, PathSample};
pub use coupling::{cost_matrix, couple, couple_array, ot_permutation, ot_permutation_array, solve_assignment};
pub use scheduler::{
    AnyScheduler, CondOtScheduler, CosineScheduler, LinearVpScheduler, PolynomialScheduler, Scheduler, SchedulerOutput,
    SchedulerValues, VeScheduler, VpScheduler,
};

/// What can go wrong building or using a path.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PathError {
    /// A scheduler parameter is outside its valid range.
    #[error("invalid parameter `{name}` = {value}: {reason}")]
    Parameter {
        /// The parameter name, as it appears in configs.
        name: &'static str,
        /// The rejected value.
        value: f64,
        /// Why the value is rejected.
        reason: &'static str,
    },
    /// Tensors or arrays that must agree in shape do not.
    #[error("shape mismatch for {what}: expected {expected:?}, got {got:?}")]
    Shape {
        /// Which argument had the wrong shape.
        what: &'static str,
        /// The shape that was expected.
        expected: Vec<usize>,
        /// The shape that was passed.
        got: Vec<usize>,
    },
    /// An input holds NaN or infinite values where finite ones are required.
    #[error("non-finite value in {what}")]
    NonFinite {
        /// Which input was at fault.
        what: &'static str,
    },
    /// A tensor could not be read back from its device.
    #[error("could not read {what} back from the device: {reason}")]
    Readback {
        /// Which tensor.
        what: &'static str,
        /// The backend's message.
        reason: String,
    },
}
