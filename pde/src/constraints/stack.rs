//! Several constraints at once: `h(u) = (h₁(u), h₂(u), …)` concatenated; projection by generic
//! Gauss–Newton onto the intersection.

use ndarray::{Array1, Array2, Array3, ArrayView1, ArrayView3, Axis, concatenate};

use super::{Constraint, GaussNewtonParams, GnReport, gauss_newton_project};
use crate::error::{PdeError, Result, ensure_shape};

/// The intersection of several constraints on the same field shape, e.g. divergence-free and
/// fixed energy: residuals are concatenated in order, `J` stacks the members' Jacobians, and
/// `Jᵀ w` sums the members' `Jᵢᵀ wᵢ`.
///
/// [`project`](Constraint::project) is [`gauss_newton_project`] (the members' closed forms do not
/// compose in general); [`scaled_violation`](Constraint::scaled_violation) judges each member
/// against its own [`residual_scale`](Constraint::residual_scale) and returns the worst. The
/// members should be independent (`J Jᵀ` nonsingular) for the projection to be well posed.
#[derive(Debug)]
pub struct Stack(Vec<Box<dyn Constraint>>);

impl Stack {
    /// Stacks `parts`, in order.
    ///
    /// # Errors
    /// [`PdeError::Parameter`] naming `constraints` for an empty list; [`PdeError::Shape`]
    /// naming `constraint shape` if the members disagree on the field shape.
    pub fn new(parts: Vec<Box<dyn Constraint>>) -> Result<Self> {
        let Some(first) = parts.first() else {
            let reason = "a stack needs at least one constraint";
            return Err(PdeError::Parameter { name: "constraints", value: 0.0, reason });
        };
        let shape = first.shape();
        for part in &parts[1..] {
            ensure_shape("constraint shape", &shape, &part.shape())?;
        }
        Ok(Self(parts))
    }

    /// The members, in row order.
    pub fn parts(&self) -> &[Box<dyn Constraint>] {
        &self.0
    }

    /// Projects with explicit Gauss–Newton parameters and reports the iteration.
    ///
    /// # Errors
    /// As [`gauss_newton_project`].
    pub fn project_with(&self, u: ArrayView3<f64>, params: &GaussNewtonParams) -> Result<(Array3<f64>, GnReport)> {
        gauss_newton_project(self, u, params)
    }

    /// The row ranges of the members in the stacked residual.
    fn ranges(&self) -> impl Iterator<Item = (&dyn Constraint, std::ops::Range<usize>)> {
        self.0.iter().scan(0, |start, part| {
            let range = *start..*start + part.len();
            *start = range.end;
            Some((part.as_ref(), range))
        })
    }

    fn concat(parts: Vec<Array1<f64>>) -> Result<Array1<f64>> {
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        concatenate(Axis(0), &views).map_err(|e| PdeError::Solver(format!("stacking residuals: {e}")))
    }
}

impl Constraint for Stack {
    fn name(&self) -> String {
        let names: Vec<String> = self.0.iter().map(|p| p.name()).collect();
        format!("stack [{}]", names.join(", "))
    }

    fn shape(&self) -> [usize; 3] {
        self.0.first().map_or([0; 3], |p| p.shape())
    }

    fn len(&self) -> usize {
        self.0.iter().map(|p| p.len()).sum()
    }

    fn is_linear(&self) -> bool {
        self.0.iter().all(|p| p.is_linear())
    }

    /// The members' residuals, concatenated.
    ///
    /// # Errors
    /// The first member error.
    fn residual(&self, u: ArrayView3<f64>) -> Result<Array1<f64>> {
        Self::concat(self.0.iter().map(|p| p.residual(u)).collect::<Result<_>>()?)
    }

    /// The members' `Jᵢ v`, concatenated.
    ///
    /// # Errors
    /// The first member error.
    fn jvp(&self, u: ArrayView3<f64>, v: ArrayView3<f64>) -> Result<Array1<f64>> {
        Self::concat(self.0.iter().map(|p| p.jvp(u, v)).collect::<Result<_>>()?)
    }

    /// `Σᵢ Jᵢᵀ wᵢ` over the members' slices of `w`.
    ///
    /// # Errors
    /// [`PdeError::Shape`] naming `multiplier` for a wrong length; the first member error.
    fn vjp(&self, u: ArrayView3<f64>, w: ArrayView1<f64>) -> Result<Array3<f64>> {
        super::check_field(self.shape(), u)?;
        super::check_multiplier(self.len(), w)?;
        let mut out = Array3::zeros(self.shape());
        for (part, range) in self.ranges() {
            out += &part.vjp(u, w.slice(ndarray::s![range]))?;
        }
        Ok(out)
    }

    /// The members' dense Jacobians stacked, when every member offers one.
    fn dense_jacobian(&self, u: ArrayView3<f64>) -> Option<Result<Array2<f64>>> {
        let blocks: Option<Result<Vec<Array2<f64>>>> = self.0.iter().map(|p| p.dense_jacobian(u)).collect();
        blocks.map(|blocks| {
            let blocks = blocks?;
            let views: Vec<_> = blocks.iter().map(|b| b.view()).collect();
            concatenate(Axis(0), &views).map_err(|e| PdeError::Solver(format!("stacking Jacobians: {e}")))
        })
    }

    /// The largest member scale (used only through [`scaled_violation`](Self::scaled_violation),
    /// which compares each member with its own scale).
    ///
    /// # Errors
    /// The first member error.
    fn residual_scale(&self, u: ArrayView3<f64>) -> Result<f64> {
        self.0.iter().try_fold(0.0_f64, |m, p| Ok(m.max(p.residual_scale(u)?)))
    }

    /// The worst member violation `‖hᵢ‖∞ / scaleᵢ`.
    ///
    /// # Errors
    /// [`PdeError::Shape`] naming `residual` for a wrong length; the first member error.
    fn scaled_violation(&self, u: ArrayView3<f64>, h: ArrayView1<f64>) -> Result<f64> {
        ensure_shape("residual", &[self.len()], h.shape())?;
        self.ranges()
            .try_fold(0.0_f64, |m, (part, range)| Ok(m.max(part.scaled_violation(u, h.slice(ndarray::s![range]))?)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::constraints::gauss_newton::rel_diff;
    use crate::constraints::testing::*;
    use crate::constraints::{DivergenceFree, FixedEnergy, FixedMean, MaskValues};
    use crate::grid::Grid2d;
    use std::f64::consts::PI;

    fn divergence_free_energy(g: Grid2d, energy: f64) -> (Stack, DivergenceFree, FixedEnergy) {
        let div = DivergenceFree::new(g.clone());
        let e = FixedEnergy::kinetic(&g, energy).unwrap();
        (Stack::new(vec![Box::new(div.clone()), Box::new(e.clone())]).unwrap(), div, e)
    }

    #[test]
    fn divergence_free_with_fixed_energy_matches_the_closed_form() {
        // The closest point of {∇·u = 0} ∩ sphere is the Leray projection scaled onto the sphere:
        // ‖u − z‖² = ‖u − P u‖² + ‖P u − z‖² for every divergence-free z.
        for (k, g) in
            [Grid2d::square(32, 2.0 * PI).unwrap(), Grid2d::new(48, 24, 2.0, 1.0).unwrap()].into_iter().enumerate()
        {
            let (stack, div, e) = divergence_free_energy(g, 0.7);
            let u = uniform_field(stack.shape(), 1, k as u64);
            let (p, report) = stack.project_with(u.view(), &GaussNewtonParams::default()).unwrap();
            let exact = e.project(div.project(u.view()).unwrap().view()).unwrap();
            let diff = rel_diff(p.view(), exact.view());
            assert!(diff <= 1e-9, "{diff:e} {report:?}");
            assert!(!stack.is_linear() && report.iterations <= 10, "{report:?}");
            assert!(stack.relative_violation(p.view()).unwrap() <= 1e-10);
            assert!(e.max_violation(p.view()).unwrap() <= 1e-8 && div.relative_violation(p.view()).unwrap() <= 1e-10);
            assert_adjoint(&stack, u.view(), 2);
            assert_jvp_matches_differences(&stack, u.view(), 3, 1e-4, 1e-8);
        }
    }

    #[test]
    fn linear_stack_projects_in_one_step_onto_the_intersection() {
        for (k, shape) in [[2, 10, 12], [2, 16, 16]].into_iter().enumerate() {
            let mean = FixedMean::new(shape, 0, 0.25).unwrap();
            let ring = MaskValues::boundary(uniform_field(shape, 4, k as u64), &[1]).unwrap();
            let stack = Stack::new(vec![Box::new(mean), Box::new(ring)]).unwrap();
            assert!(stack.is_linear() && stack.len() == 1 + 2 * (shape[1] + shape[2]) - 4);
            let u = uniform_field(shape, 5, k as u64);
            let p = assert_projects(&stack, u.view(), 1e-10);
            assert_orthogonal(&stack, u.view(), uniform_field(shape, 6, k as u64).view());
            // Channel 0 only needs its mean, channel 1 only its ring: the closed forms compose.
            let exact = stack.parts()[1].project(stack.parts()[0].project(u.view()).unwrap().view()).unwrap();
            assert!(rel_diff(p.view(), exact.view()) <= 1e-12);
            assert_adjoint(&stack, u.view(), 7);
        }
    }

    #[test]
    fn rejects_bad_stacks_and_input() {
        assert!(matches!(Stack::new(vec![]), Err(PdeError::Parameter { name: "constraints", .. })));
        let mixed = Stack::new(vec![
            Box::new(FixedMean::new([1, 4, 4], 0, 0.0).unwrap()),
            Box::new(FixedEnergy::new([1, 4, 5], 1.0).unwrap()),
        ]);
        assert!(matches!(mixed, Err(PdeError::Shape { what: "constraint shape", .. })));
        let (stack, _, _) = divergence_free_energy(Grid2d::square(8, 1.0).unwrap(), 0.1);
        assert_rejects_bad_input(&stack, uniform_field(stack.shape(), 8, 0).view());
    }
}
