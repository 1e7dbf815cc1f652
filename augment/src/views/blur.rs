//! Gaussian blur. BYOL's Table 6: p = 1.0 on view 1 and p = 0.1 on view 2,
//! standard deviation `sigma ~ U[0.1, 2.0]` pixels, a square kernel about a
//! tenth of the image side.
//!
//! **Kernel size.** As the paper's code computes it: `radius = (side / 10) / 2`
//! in integer division, `size = 2 radius + 1` (23 for 224 pixels, 9 for 96),
//! with a radius of at least 1 so that small images are blurred at all:
//! 3 taps for 28 or 32 pixels. `side` is the smaller side of the output.
//!
//! **Weights.** `k[t] = exp(-t^2 / (2 sigma^2))` for `t = -radius..=radius`,
//! divided by their sum so that they add up to 1 (a constant image stays
//! constant).
//!
//! **Separable.** A 2-D Gaussian is the product of two 1-D ones, so the blur
//! runs as a pass along rows, then a pass along columns: `2 (2r + 1)`
//! multiplications per value instead of `(2r + 1)^2`.
//!
//! **Borders** are *reflected* without repeating the edge (`... 2 1 | 0 1 2
//! ... `), as torchvision's `GaussianBlur` does: the border neither darkens
//! (as zero padding would, which the paper's TensorFlow code uses) nor smears
//! the edge pixel.

/// The blur radius for an image of `height x width`: `max(1, (side / 10) / 2)`
/// with `side = min(height, width)`.
pub fn radius_for(height: usize, width: usize) -> usize {
    (height.min(width) / 10 / 2).max(1)
}

/// The normalised 1-D Gaussian of standard deviation `sigma`, `2 radius + 1`
/// taps, written into `kernel`.
pub fn gaussian_kernel(sigma: f32, radius: usize, kernel: &mut Vec<f32>) {
    kernel.clear();
    let denom = 2.0 * sigma * sigma;
    for i in 0..=2 * radius {
        let t = i as f32 - radius as f32;
        kernel.push((-t * t / denom).exp());
    }
    let sum: f32 = kernel.iter().sum();
    for k in kernel.iter_mut() {
        *k /= sum;
    }
}

/// The index that position `i` (possibly outside `0..n`) reflects to.
#[inline]
fn reflect(mut i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let last = n as isize - 1;
    // Bounce off the two edges until inside; one bounce is enough unless
    // the radius exceeds the image size.
    loop {
        if i < 0 {
            i = -i;
        } else if i > last {
            i = 2 * last - i;
        } else {
            return i as usize;
        }
    }
}

/// Reusable buffers of [`gaussian_blur`].
#[derive(Clone, Debug, Default)]
pub struct BlurScratch {
    kernel: Vec<f32>,
    padded_row: Vec<f32>,
    rows_done: Vec<f32>,
}

/// Blurs a CHW image of `channels x height x width` in place with a Gaussian
/// of standard deviation `sigma` and the given `radius`.
pub fn gaussian_blur(
    data: &mut [f32],
    channels: usize,
    height: usize,
    width: usize,
    sigma: f32,
    radius: usize,
    scratch: &mut BlurScratch,
) {
    gaussian_kernel(sigma, radius, &mut scratch.kernel);
    let kernel = &scratch.kernel;
    let plane = height * width;

    // Pass 1, along rows: pad each row by reflection, then slide the kernel.
    scratch.rows_done.clear();
    scratch.rows_done.resize(data.len(), 0.0);
    for (row, out) in data
        .chunks_exact(width)
        .zip(scratch.rows_done.chunks_exact_mut(width))
    {
        scratch.padded_row.clear();
        for i in 0..width + 2 * radius {
            scratch
                .padded_row
                .push(row[reflect(i as isize - radius as isize, width)]);
        }
        for (x, o) in out.iter_mut().enumerate() {
            let window = &scratch.padded_row[x..x + kernel.len()];
            *o = window.iter().zip(kernel).map(|(v, k)| v * k).sum();
        }
    }

    // Pass 2, along columns: each output row is a weighted sum of whole
    // source rows (reflected at the top and bottom), which reads memory in
    // order.
    for c in 0..channels {
        let src = &scratch.rows_done[c * plane..(c + 1) * plane];
        let dst = &mut data[c * plane..(c + 1) * plane];
        for (y, out_row) in dst.chunks_exact_mut(width).enumerate() {
            out_row.fill(0.0);
            for (t, &k) in kernel.iter().enumerate() {
                let sy = reflect(y as isize + t as isize - radius as isize, height);
                let src_row = &src[sy * width..(sy + 1) * width];
                for (o, s) in out_row.iter_mut().zip(src_row) {
                    *o += k * s;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radius_gives_the_papers_kernel_sizes() {
        assert_eq!(2 * radius_for(224, 224) + 1, 23);
        assert_eq!(2 * radius_for(96, 96) + 1, 9);
        assert_eq!(2 * radius_for(32, 32) + 1, 3);
        assert_eq!(2 * radius_for(28, 28) + 1, 3);
        assert_eq!(2 * radius_for(8, 8) + 1, 3);
    }

    #[test]
    fn kernel_sums_to_one_and_is_symmetric() {
        let mut k = Vec::new();
        for sigma in [0.1, 0.5, 1.0, 2.0] {
            gaussian_kernel(sigma, 3, &mut k);
            assert_eq!(k.len(), 7);
            assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-6);
            for i in 0..3 {
                assert!((k[i] - k[6 - i]).abs() < 1e-7);
                assert!(k[i] <= k[i + 1]);
            }
        }
        // A tiny sigma is almost the identity.
        gaussian_kernel(0.1, 1, &mut k);
        assert!(k[1] > 0.999);
    }

    #[test]
    fn a_constant_image_is_unchanged() {
        let mut x = vec![0.37f32; 3 * 5 * 6];
        let mut scratch = BlurScratch::default();
        gaussian_blur(&mut x, 3, 5, 6, 1.7, 2, &mut scratch);
        assert!(x.iter().all(|&v| (v - 0.37).abs() < 1e-6));
    }

    #[test]
    fn blur_matches_a_direct_2d_convolution() {
        let (h, w, r) = (4usize, 5usize, 2usize);
        let x: Vec<f32> = (0..h * w).map(|i| ((i * 7) % 11) as f32 / 10.0).collect();
        let mut k = Vec::new();
        gaussian_kernel(1.3, r, &mut k);
        let mut want = vec![0.0f32; h * w];
        for y in 0..h {
            for xx in 0..w {
                for dy in 0..=2 * r {
                    for dx in 0..=2 * r {
                        let sy = reflect(y as isize + dy as isize - r as isize, h);
                        let sx = reflect(xx as isize + dx as isize - r as isize, w);
                        want[y * w + xx] += k[dy] * k[dx] * x[sy * w + sx];
                    }
                }
            }
        }
        let mut got = x.clone();
        gaussian_blur(&mut got, 1, h, w, 1.3, r, &mut BlurScratch::default());
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5);
        }
    }

    #[test]
    fn reflection_skips_the_edge_pixel() {
        assert_eq!(reflect(-1, 5), 1);
        assert_eq!(reflect(-2, 5), 2);
        assert_eq!(reflect(5, 5), 3);
        assert_eq!(reflect(6, 5), 2);
        assert_eq!(reflect(-7, 3), 1); // several bounces
        assert_eq!(reflect(4, 1), 0);
    }
}
