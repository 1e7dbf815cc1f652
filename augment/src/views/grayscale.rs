//! Grayscale: replace the colour by its luma, kept as three equal channels
//! so the network's input shape does not change. BYOL's Table 6: p = 0.2 on
//! both views.
//!
//! Luma (ITU-R BT.601 weights, as torchvision and PIL use them):
//!
//! ```text
//! Y = 0.2989 R + 0.5870 G + 0.1140 B
//! ```
//!
//! written to all three channels. A one-channel image is gray already: no
//! effect.

/// Weight of red in the luma.
pub const LUMA_R: f32 = 0.2989;
/// Weight of green in the luma.
pub const LUMA_G: f32 = 0.5870;
/// Weight of blue in the luma.
pub const LUMA_B: f32 = 0.1140;

/// The luma of one RGB pixel.
#[inline]
pub fn luma(r: f32, g: f32, b: f32) -> f32 {
    LUMA_R * r + LUMA_G * g + LUMA_B * b
}

/// Turns a CHW image with `channels` planes of `plane` values to gray in
/// place. One-channel images are left as they are.
pub fn to_grayscale(data: &mut [f32], channels: usize, plane: usize) {
    if channels != 3 {
        return;
    }
    let (r, rest) = data.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
        let y = luma(*r, *g, *b);
        *r = y;
        *g = y;
        *b = y;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grayscale_uses_the_luma_weights() {
        // Two pixels: pure red, and (0.2, 0.4, 0.6).
        let mut x = [1.0, 0.2, 0.0, 0.4, 0.0, 0.6];
        to_grayscale(&mut x, 3, 2);
        let y1 = 0.2989 * 0.2 + 0.5870 * 0.4 + 0.1140 * 0.6;
        for (i, want) in [0.2989, y1, 0.2989, y1, 0.2989, y1].iter().enumerate() {
            assert!((x[i] - want).abs() < 1e-6);
        }
    }

    #[test]
    fn one_channel_is_untouched() {
        let mut x = [0.1, 0.9];
        to_grayscale(&mut x, 1, 2);
        assert_eq!(x, [0.1, 0.9]);
    }
}
