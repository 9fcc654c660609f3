//! The physics descriptor of a file: which PDE its fields come from and what each channel is,
//! read once from the metadata ([`Metadata::physics`]) so that no command matches PDE names or
//! looks channels up by string.
//!
//! PDE names: `navier_stokes`, `ns2d`, `incompressible_navier_stokes` (PDEBench) →
//! [`PdeKind::NavierStokes`]; `kolmogorov` → [`PdeKind::Kolmogorov`]; `darcy` →
//! [`PdeKind::Darcy`]; anything else, including an empty name, is [`PdeKind::Other`]. Channel
//! roles: `u` and `v` are a velocity, `w` a vorticity, `a` (in `/fields` or `/coefficients`) a
//! Darcy coefficient, and `u` with a coefficient `a` (or in a Darcy file) a Darcy solution.

use crate::metadata::Metadata;

/// The PDE of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PdeKind {
    /// 2D incompressible Navier–Stokes (FNO's setting, PDEBench's).
    NavierStokes,
    /// Kolmogorov flow (forced Navier–Stokes).
    Kolmogorov,
    /// Darcy flow `−∇·(a∇u) = f`.
    Darcy,
    /// Another PDE, by its name (empty when unknown).
    Other(String),
}

impl PdeKind {
    /// The kind of a PDE name.
    #[must_use]
    pub fn parse(name: &str) -> Self {
        match name {
            "navier_stokes" | "ns2d" | "incompressible_navier_stokes" => Self::NavierStokes,
            "kolmogorov" => Self::Kolmogorov,
            "darcy" => Self::Darcy,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Whether the fields are an incompressible flow (Navier–Stokes or Kolmogorov).
    #[must_use]
    pub fn is_flow(&self) -> bool {
        matches!(self, Self::NavierStokes | Self::Kolmogorov)
    }
}

/// Where the physical quantities are among the channels of `/fields` (indices) and
/// `/coefficients`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChannelRoles {
    /// The velocity `(u, v)`.
    pub velocity: Option<(usize, usize)>,
    /// The vorticity `w`.
    pub vorticity: Option<usize>,
    /// A Darcy pair `(a, u)` in `/fields`: the coefficient's and the solution's channels.
    pub darcy_pair: Option<(usize, usize)>,
    /// A Darcy solution `u` in `/fields` whose coefficient is channel `a` of `/coefficients`:
    /// `(u, a)`.
    pub darcy_solution: Option<(usize, usize)>,
}

/// The physics descriptor of a file; see the [module documentation](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Physics {
    /// The PDE.
    pub pde: PdeKind,
    /// What the channels are.
    pub roles: ChannelRoles,
}

impl Physics {
    /// The descriptor of fields with `channels` (and `/coefficients` channels `coefficients`)
    /// from the PDE named `pde`.
    #[must_use]
    pub fn of(pde: &str, channels: &[String], coefficients: &[String]) -> Self {
        let kind = PdeKind::parse(pde);
        let at = |names: &[String], name: &str| names.iter().position(|c| c == name);
        let velocity = at(channels, "u").zip(at(channels, "v"));
        let darcy_pair = at(channels, "a").zip(at(channels, "u"));
        // An unnamed single coefficient is a permeability only in a Darcy (or unlabelled) file:
        // the initial vorticity `w0` of a Navier–Stokes file is not one.
        let darcy_file = matches!(&kind, PdeKind::Darcy) || pde.is_empty();
        let solution = at(channels, "u").or((darcy_file && channels.len() == 1).then_some(0));
        let coefficient = at(coefficients, "a").or((darcy_file && coefficients.len() == 1).then_some(0));
        let darcy_solution = if darcy_pair.is_some() { None } else { solution.zip(coefficient) };
        let roles = ChannelRoles { velocity, vorticity: at(channels, "w"), darcy_pair, darcy_solution };
        Self { pde: kind, roles }
    }
}

impl Metadata {
    /// The physics descriptor of these fields.
    #[must_use]
    pub fn physics(&self) -> Physics {
        Physics::of(&self.pde, &self.channels, &self.coefficient_channels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn roles_of_the_files_fieldflow_reads_and_writes() {
        let velocity = Physics::of("navier_stokes", &names(&["u", "v"]), &names(&["w0"]));
        assert_eq!(velocity.pde, PdeKind::NavierStokes);
        assert_eq!(velocity.roles, ChannelRoles { velocity: Some((0, 1)), ..ChannelRoles::default() });
        let both = Physics::of("ns2d", &names(&["w", "u", "v"]), &[]);
        assert_eq!((both.roles.velocity, both.roles.vorticity), (Some((1, 2)), Some(0)));
        let pair = Physics::of("darcy", &names(&["a", "u"]), &[]);
        assert_eq!((pair.roles.darcy_pair, pair.roles.darcy_solution), (Some((0, 1)), None));
        let solution = Physics::of("darcy", &names(&["u"]), &names(&["a"]));
        assert_eq!(solution.roles.darcy_solution, Some((0, 0)));
        // PDEBench's unnamed coefficient counts in a Darcy file, a NS file's w0 never.
        assert_eq!(Physics::of("darcy", &names(&["sol"]), &names(&["nu"])).roles.darcy_solution, Some((0, 0)));
        assert_eq!(Physics::of("navier_stokes", &names(&["w"]), &names(&["w0"])).roles.darcy_solution, None);
        let kolmogorov = Physics::of("kolmogorov", &names(&["u", "v"]), &[]);
        assert!(kolmogorov.pde.is_flow() && !PdeKind::parse("darcy").is_flow());
        assert_eq!(PdeKind::parse("burgers"), PdeKind::Other("burgers".into()));
    }
}
