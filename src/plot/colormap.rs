//! Colour maps: piecewise-linear interpolation between tabulated anchor colours.

use plotters::style::RGBColor;

/// A colour map from `t ∈ [0, 1]` to a colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colormap {
    /// Perceptually uniform, dark violet (low) to yellow (high): for magnitudes (speed,
    /// permeability, pressure).
    Viridis,
    /// Diverging, blue (low) through white (middle) to red (high), ColorBrewer's RdBu run from its
    /// blue end (matplotlib's `RdBu_r`): for signed fields (vorticity, velocity components), drawn
    /// symmetric around 0.
    RdBu,
}

/// matplotlib's viridis at t = 0, 1/8, …, 1.
const VIRIDIS: [[u8; 3]; 9] = [
    [0x44, 0x01, 0x54],
    [0x47, 0x2c, 0x7a],
    [0x3b, 0x51, 0x8b],
    [0x2c, 0x71, 0x8e],
    [0x21, 0x90, 0x8d],
    [0x27, 0xad, 0x81],
    [0x5c, 0xc8, 0x63],
    [0xaa, 0xdc, 0x32],
    [0xfd, 0xe7, 0x25],
];

/// ColorBrewer's 11-class RdBu, blue end first, at t = 0, 1/10, …, 1.
const RDBU: [[u8; 3]; 11] = [
    [0x05, 0x30, 0x61],
    [0x21, 0x66, 0xac],
    [0x43, 0x93, 0xc3],
    [0x92, 0xc5, 0xde],
    [0xd1, 0xe5, 0xf0],
    [0xf7, 0xf7, 0xf7],
    [0xfd, 0xdb, 0xc7],
    [0xf4, 0xa5, 0x82],
    [0xd6, 0x60, 0x4d],
    [0xb2, 0x18, 0x2b],
    [0x67, 0x00, 0x1f],
];

impl Colormap {
    fn anchors(self) -> &'static [[u8; 3]] {
        match self {
            Self::Viridis => &VIRIDIS,
            Self::RdBu => &RDBU,
        }
    }

    /// The colour at `t`, clamped to `[0, 1]`; NaN gives the middle colour.
    pub fn color(self, t: f64) -> RGBColor {
        let anchors = self.anchors();
        let t = if t.is_nan() { 0.5 } else { t.clamp(0.0, 1.0) };
        let x = t * (anchors.len() - 1) as f64;
        let i = (x.floor() as usize).min(anchors.len() - 2);
        let w = x - i as f64;
        let mix = |c: usize| (f64::from(anchors[i][c]) * (1.0 - w) + f64::from(anchors[i + 1][c]) * w).round() as u8;
        RGBColor(mix(0), mix(1), mix(2))
    }

    /// Whether the map is diverging (drawn on a range symmetric around 0).
    pub fn is_diverging(self) -> bool {
        matches!(self, Self::RdBu)
    }
}

impl std::str::FromStr for Colormap {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "viridis" => Ok(Self::Viridis),
            "rdbu" => Ok(Self::RdBu),
            other => Err(format!("unknown colour map {other:?} (expected viridis or rdbu)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_and_anchors_are_exact_and_rdbu_is_white_at_zero() {
        assert_eq!(Colormap::Viridis.color(0.0), RGBColor(0x44, 0x01, 0x54));
        assert_eq!(Colormap::Viridis.color(1.0), RGBColor(0xfd, 0xe7, 0x25));
        assert_eq!(Colormap::Viridis.color(7.0), Colormap::Viridis.color(1.0));
        assert_eq!(Colormap::Viridis.color(0.5), RGBColor(0x21, 0x90, 0x8d));
        assert_eq!(Colormap::RdBu.color(0.5), RGBColor(0xf7, 0xf7, 0xf7));
        let (lo, hi) = (Colormap::RdBu.color(0.0), Colormap::RdBu.color(1.0));
        assert!(lo.2 > lo.0 && hi.0 > hi.2, "blue low, red high: {lo:?} {hi:?}");
    }

    #[test]
    fn viridis_brightens_monotonically() {
        let luma = |c: RGBColor| 0.299 * f64::from(c.0) + 0.587 * f64::from(c.1) + 0.114 * f64::from(c.2);
        let values: Vec<f64> = (0..=100).map(|i| luma(Colormap::Viridis.color(f64::from(i) / 100.0))).collect();
        assert!(values.windows(2).all(|w| w[1] >= w[0]), "{values:?}");
    }
}
