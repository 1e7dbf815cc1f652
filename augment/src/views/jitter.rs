//! Colour jitter: random changes of brightness, contrast, saturation and
//! hue, applied in a random order, each followed by clipping to `[0, 1]`.
//! BYOL's Table 6: p = 0.8 on both views, with strengths brightness 0.4,
//! contrast 0.4, saturation 0.2, hue 0.1.
//!
//! With `Y(x)` the luma of a pixel (see [`super::grayscale`]):
//!
//! ```text
//! brightness  x' = x + d                      d ~ U[-0.4, 0.4]      (additive, as in the paper's code)
//!    or       x' = b x                        b ~ U[0.6, 1.4]       (multiplicative, torchvision's)
//! contrast    x' = m + c (x - m)              c ~ U[0.6, 1.4],  m = mean of Y over the image
//! saturation  x' = Y(x) + s (x - Y(x))        s ~ U[0.8, 1.2],  per pixel
//! hue         H' = (H + h) mod 1 in HSV       h ~ U[-0.1, 0.1]  (turns of the colour wheel)
//! then        x' = clip(x', 0, 1)
//! ```
//!
//! The four are applied in an order drawn afresh for every image (a uniform
//! random permutation). Saturation and hue need colour: on a one-channel
//! image they do nothing, and contrast uses the image itself as `Y`.

use super::grayscale::luma;
use rng::Rng;
use serde::{Deserialize, Serialize};

/// How brightness changes. Written and read (JSON, TOML, flags) as
/// `additive` and `multiplicative`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum BrightnessMode {
    /// `x + d`, `d ~ U[-b, b]`: the official BYOL code's. On a dark
    /// background (Fashion-MNIST, MNIST) it lifts the background to gray.
    Additive,
    /// `x · f`, `f ~ U[1 - b, 1 + b]`: torchvision's `ColorJitter`, which
    /// most PyTorch re-implementations use; black stays black.
    Multiplicative,
}

impl std::fmt::Display for BrightnessMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BrightnessMode::Additive => "additive",
            BrightnessMode::Multiplicative => "multiplicative",
        })
    }
}

/// The strengths of the four parts, as in torchvision's `ColorJitter`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JitterSettings {
    /// Brightness: the delta is drawn from `U[-brightness, brightness]`
    /// (additive) or the factor from `U[1 - brightness, 1 + brightness]`
    /// (multiplicative).
    pub brightness: f32,
    /// Whether brightness adds a delta (the paper's) or multiplies.
    pub brightness_mode: BrightnessMode,
    /// Contrast: the factor is drawn from `U[1 - contrast, 1 + contrast]`.
    pub contrast: f32,
    /// Saturation: the factor is drawn from `U[1 - saturation, 1 + saturation]`.
    pub saturation: f32,
    /// Hue: the shift is drawn from `U[-hue, hue]`, in turns (at most 0.5).
    pub hue: f32,
}

impl JitterSettings {
    /// The paper's strengths: 0.4, 0.4, 0.2, 0.1.
    pub fn byol() -> Self {
        JitterSettings {
            brightness: 0.4,
            brightness_mode: BrightnessMode::Additive,
            contrast: 0.4,
            saturation: 0.2,
            hue: 0.1,
        }
    }
}

/// One of the four parts of the jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JitterOp {
    /// Add a delta (or multiply by a factor).
    Brightness,
    /// Scale around the mean luma.
    Contrast,
    /// Blend with the pixel's luma.
    Saturation,
    /// Rotate the hue.
    Hue,
}

/// The drawn parameters of one jitter: the order and the four amounts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JitterDraw {
    /// The order the four parts run in.
    pub order: [JitterOp; 4],
    /// Brightness delta `d` (additive) or factor `b` (multiplicative).
    pub brightness: f32,
    /// Which of the two `brightness` is.
    pub brightness_mode: BrightnessMode,
    /// Contrast factor `c`.
    pub contrast: f32,
    /// Saturation factor `s`.
    pub saturation: f32,
    /// Hue shift `h`, in turns.
    pub hue: f32,
}

impl JitterDraw {
    /// Draws the amounts, then a random order.
    pub fn sample(rng: &mut Rng, s: &JitterSettings) -> Self {
        let brightness = match s.brightness_mode {
            BrightnessMode::Additive => rng.uniform(-s.brightness, s.brightness),
            BrightnessMode::Multiplicative => {
                rng.uniform((1.0 - s.brightness).max(0.0), 1.0 + s.brightness)
            }
        };
        let contrast = rng.uniform(1.0 - s.contrast, 1.0 + s.contrast);
        let saturation = rng.uniform(1.0 - s.saturation, 1.0 + s.saturation);
        let hue = rng.uniform(-s.hue, s.hue);
        let mut order = [
            JitterOp::Brightness,
            JitterOp::Contrast,
            JitterOp::Saturation,
            JitterOp::Hue,
        ];
        rng.shuffle(&mut order);
        JitterDraw {
            order,
            brightness,
            brightness_mode: s.brightness_mode,
            contrast,
            saturation,
            hue,
        }
    }

    /// Applies the four parts in order to a CHW image of `channels` planes
    /// of `plane` values, clipping after each.
    pub fn apply(&self, data: &mut [f32], channels: usize, plane: usize) {
        for op in self.order {
            match op {
                JitterOp::Brightness => match self.brightness_mode {
                    BrightnessMode::Additive => adjust_brightness(data, self.brightness),
                    BrightnessMode::Multiplicative => scale_brightness(data, self.brightness),
                },
                JitterOp::Contrast => adjust_contrast(data, channels, plane, self.contrast),
                JitterOp::Saturation => adjust_saturation(data, channels, plane, self.saturation),
                JitterOp::Hue => adjust_hue(data, channels, plane, self.hue),
            }
        }
    }
}

/// `x' = clip(x + delta, 0, 1)` for every value.
pub fn adjust_brightness(data: &mut [f32], delta: f32) {
    for v in data {
        *v = (*v + delta).clamp(0.0, 1.0);
    }
}

/// `x' = clip(b·x, 0, 1)` for every value: torchvision's brightness.
pub fn scale_brightness(data: &mut [f32], factor: f32) {
    for v in data {
        *v = (*v * factor).clamp(0.0, 1.0);
    }
}

/// The mean luma of a CHW image (the mean value, for one channel).
pub fn mean_luma(data: &[f32], channels: usize, plane: usize) -> f32 {
    let sum: f32 = if channels == 3 {
        let (r, rest) = data.split_at(plane);
        let (g, b) = rest.split_at(plane);
        r.iter()
            .zip(g)
            .zip(b)
            .map(|((r, g), b)| luma(*r, *g, *b))
            .sum()
    } else {
        data[..plane].iter().sum()
    };
    sum / plane as f32
}

/// `x' = clip(m + factor (x - m), 0, 1)`, `m` the mean luma of the image.
pub fn adjust_contrast(data: &mut [f32], channels: usize, plane: usize, factor: f32) {
    let m = mean_luma(data, channels, plane);
    for v in data {
        *v = (m + factor * (*v - m)).clamp(0.0, 1.0);
    }
}

/// `x' = clip(Y + factor (x - Y), 0, 1)` per pixel, `Y` the pixel's luma.
/// No effect on a one-channel image.
pub fn adjust_saturation(data: &mut [f32], channels: usize, plane: usize, factor: f32) {
    if channels != 3 {
        return;
    }
    let (r, rest) = data.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
        let y = luma(*r, *g, *b);
        *r = (y + factor * (*r - y)).clamp(0.0, 1.0);
        *g = (y + factor * (*g - y)).clamp(0.0, 1.0);
        *b = (y + factor * (*b - y)).clamp(0.0, 1.0);
    }
}

/// Rotates the hue of every pixel by `shift` turns. No effect on a
/// one-channel image.
pub fn adjust_hue(data: &mut [f32], channels: usize, plane: usize, shift: f32) {
    if channels != 3 {
        return;
    }
    let (r, rest) = data.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
        let (h, s, v) = rgb_to_hsv(*r, *g, *b);
        let h = wrap_turn(h + shift);
        let (nr, ng, nb) = hsv_to_rgb(h, s, v);
        *r = nr.clamp(0.0, 1.0);
        *g = ng.clamp(0.0, 1.0);
        *b = nb.clamp(0.0, 1.0);
    }
}

/// RGB in `[0, 1]` to hue (in turns, `[0, 1)`), saturation and value.
///
/// `V = max`, `S = (max - min) / max`, and the hue is the position on the
/// colour wheel of six sectors, measured from red:
/// `H = ((G - B) / C) / 6` when red is largest, `(2 + (B - R) / C) / 6` when
/// green is, `(4 + (R - G) / C) / 6` when blue is (`C = max - min`).
pub fn rgb_to_hsv(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let chroma = max - min;
    let s = if max > 0.0 { chroma / max } else { 0.0 };
    if chroma <= 0.0 {
        return (0.0, s, max);
    }
    let sector = if max == r {
        (g - b) / chroma
    } else if max == g {
        2.0 + (b - r) / chroma
    } else {
        4.0 + (r - g) / chroma
    };
    (wrap_turn(sector / 6.0), s, max)
}

/// `x` brought into `[0, 1)` by adding or subtracting one turn. Enough for
/// every `x` in `[-1, 2)`, which is all this module produces (a hue in
/// `[0, 1)` plus a shift of at most half a turn); cheaper than `rem_euclid`.
#[inline]
fn wrap_turn(x: f32) -> f32 {
    if x < 0.0 {
        x + 1.0
    } else if x >= 1.0 {
        x - 1.0
    } else {
        x
    }
}

/// Hue (turns, in `[0, 1]`), saturation and value back to RGB.
///
/// With `i = floor(6H)`, `f = 6H - i`, `p = V(1 - S)`, `q = V(1 - S f)`,
/// `t = V(1 - S (1 - f))`, sector `i` is `(V,t,p) (q,V,p) (p,V,t) (p,q,V)
/// (t,p,V) (V,p,q)` for `i = 0..5`.
pub fn hsv_to_rgb(h: f32, s: f32, v: f32) -> (f32, f32, f32) {
    // h is in [0, 1], so 6h is non-negative and truncation is the floor;
    // h = 1 (a hue just below 0 can round up to it) is the end of sector 5,
    // the same colour as the start of sector 0.
    let h6 = h * 6.0;
    let i = (h6 as i32).min(5);
    let f = h6 - i as f32;
    let p = v * (1.0 - s);
    let q = v * (1.0 - s * f);
    let t = v * (1.0 - s * (1.0 - f));
    match i {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-5
    }

    #[test]
    fn brightness_is_additive_and_clipped() {
        let mut x = [0.1, 0.5, 0.9];
        adjust_brightness(&mut x, 0.2);
        assert!(close(x[0], 0.3) && close(x[1], 0.7) && x[2] == 1.0);
        adjust_brightness(&mut x, -0.5);
        assert!(x[0] == 0.0 && close(x[1], 0.2) && close(x[2], 0.5));
    }

    #[test]
    fn multiplicative_brightness_keeps_black_and_draws_factors() {
        let mut x = [0.0, 0.5, 0.9];
        scale_brightness(&mut x, 1.2);
        assert!(x[0] == 0.0 && close(x[1], 0.6) && x[2] == 1.0);
        let s = JitterSettings {
            brightness_mode: BrightnessMode::Multiplicative,
            ..JitterSettings::byol()
        };
        let mut rng = Rng::from_seed(3);
        for _ in 0..200 {
            let d = JitterDraw::sample(&mut rng, &s);
            assert!((0.6..=1.4).contains(&d.brightness), "{}", d.brightness);
            assert_eq!(d.brightness_mode, BrightnessMode::Multiplicative);
        }
        // The same seed draws the same amounts in either mode, bar the
        // brightness: switching modes changes nothing else in a run.
        let a = JitterDraw::sample(&mut Rng::from_seed(9), &JitterSettings::byol());
        let b = JitterDraw::sample(&mut Rng::from_seed(9), &s);
        assert_eq!((a.order, a.contrast, a.hue), (b.order, b.contrast, b.hue));
    }

    #[test]
    fn contrast_scales_around_the_mean_luma() {
        // Gray: two pixels 0.2 and 0.6, mean 0.4; factor 0.5 pulls them to 0.3, 0.5.
        let mut x = [0.2, 0.6];
        adjust_contrast(&mut x, 1, 2, 0.5);
        assert!(close(x[0], 0.3) && close(x[1], 0.5));
        // RGB: the mean is that of the luma, shared by all channels.
        let mut rgb = [0.8, 0.2, 0.4, 0.6, 0.0, 1.0];
        let m = (luma(0.8, 0.4, 0.0) + luma(0.2, 0.6, 1.0)) / 2.0;
        adjust_contrast(&mut rgb, 3, 2, 1.2);
        assert!(close(rgb[0], m + 1.2 * (0.8 - m)));
        assert!(close(rgb[5], (m + 1.2 * (1.0 - m)).min(1.0)));
    }

    #[test]
    fn saturation_blends_with_the_pixel_luma() {
        let (r, g, b) = (0.9, 0.3, 0.1);
        let y = luma(r, g, b);
        let mut x = [r, g, b];
        adjust_saturation(&mut x, 3, 1, 0.5);
        assert!(close(x[0], y + 0.5 * (r - y)));
        assert!(close(x[1], y + 0.5 * (g - y)));
        assert!(close(x[2], y + 0.5 * (b - y)));
        // Factor 0 is the grayscale image; one channel is untouched.
        let mut x = [r, g, b];
        adjust_saturation(&mut x, 3, 1, 0.0);
        assert!(x.iter().all(|&v| close(v, y)));
        let mut gray = [0.3];
        adjust_saturation(&mut gray, 1, 1, 0.0);
        assert_eq!(gray, [0.3]);
    }

    #[test]
    fn hsv_round_trips_on_known_colours() {
        let known = [
            ((1.0, 0.0, 0.0), (0.0, 1.0, 1.0)),                          // red
            ((0.0, 1.0, 0.0), (1.0 / 3.0, 1.0, 1.0)),                    // green
            ((0.0, 0.0, 1.0), (2.0 / 3.0, 1.0, 1.0)),                    // blue
            ((1.0, 1.0, 0.0), (1.0 / 6.0, 1.0, 1.0)),                    // yellow
            ((0.0, 0.5, 0.5), (0.5, 1.0, 0.5)),                          // dark cyan
            ((0.5, 0.5, 0.5), (0.0, 0.0, 0.5)),                          // gray
            ((1.0, 0.5, 0.5), (0.0, 0.5, 1.0)),                          // pink
            ((0.6, 0.2, 0.4), (5.0 / 6.0 + 1.0 / 12.0, 2.0 / 3.0, 0.6)), // plum
        ];
        for ((r, g, b), (h, s, v)) in known {
            let (h2, s2, v2) = rgb_to_hsv(r, g, b);
            assert!(
                close(h2, h) && close(s2, s) && close(v2, v),
                "{r} {g} {b}: {h2} {s2} {v2}"
            );
            let (r2, g2, b2) = hsv_to_rgb(h2, s2, v2);
            assert!(close(r2, r) && close(g2, g) && close(b2, b));
        }
    }

    #[test]
    fn hue_rotation_moves_round_the_wheel() {
        // A third of a turn takes red to green and green to blue.
        let mut x = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0];
        adjust_hue(&mut x, 3, 2, 1.0 / 3.0);
        let want = [0.0, 0.0, 1.0, 0.0, 0.0, 1.0];
        assert!(x.iter().zip(want).all(|(a, b)| close(*a, b)), "{x:?}");
        // Shifting by h and then by -h gives the colour back.
        let mut y = [0.7, 0.2, 0.4];
        adjust_hue(&mut y, 3, 1, 0.08);
        adjust_hue(&mut y, 3, 1, -0.08);
        assert!(close(y[0], 0.7) && close(y[1], 0.2) && close(y[2], 0.4));
        // Hue 1 is hue 0: red either way.
        let (r, g, b) = hsv_to_rgb(1.0, 1.0, 1.0);
        assert!(close(r, 1.0) && close(g, 0.0) && close(b, 0.0));
        let mut gray = [0.3];
        adjust_hue(&mut gray, 1, 1, 0.25);
        assert_eq!(gray, [0.3]);
    }

    #[test]
    fn draws_stay_in_range_and_every_order_occurs() {
        let mut rng = Rng::from_seed(4);
        let s = JitterSettings::byol();
        let mut firsts = [0usize; 4];
        for _ in 0..2000 {
            let d = JitterDraw::sample(&mut rng, &s);
            assert!(d.brightness.abs() <= 0.4 && (0.6..=1.4).contains(&d.contrast));
            assert!((0.8..=1.2).contains(&d.saturation) && d.hue.abs() <= 0.1);
            firsts[d.order[0] as usize] += 1;
        }
        // Each part comes first a quarter of the time: mean 500, sd ~19.
        assert!(
            firsts.iter().all(|&n| (420..580).contains(&n)),
            "{firsts:?}"
        );
    }
}
