//! Random resized crop: cut a random box out of the image and resample it to
//! the output size. BYOL's Table 6: area fraction U[0.08, 1], aspect ratio
//! log-uniform in [3/4, 4/3], on both views.
//!
//! **Choosing the box** (the algorithm of Szegedy et al.'s Inception crop,
//! as torchvision's `RandomResizedCrop` runs it). With the image `W x H`:
//!
//! ```text
//! repeat up to 10 times:
//!     area   = W * H * U[0.08, 1]
//!     aspect = exp(U[ln 3/4, ln 4/3])          (width / height)
//!     w = sqrt(area * aspect),  h = sqrt(area / aspect)
//!     if w <= W and h <= H: place the box uniformly inside the image; done
//! otherwise: a centred box, the whole image with its aspect clamped to [3/4, 4/3]
//! ```
//!
//! One difference from torchvision: the box is kept in real (sub-pixel)
//! coordinates instead of being rounded to whole pixels. The resampler reads
//! it with bilinear interpolation anyway, and on a 28x28 image rounding would
//! bend the area and aspect out of their ranges (an 8x10 box is 7.8% of the
//! image, below the 8% minimum).
//!
//! **Resampling** is bilinear, with pixel centres at half-integers (the
//! convention of `align_corners = False`): output pixel `j` of `n` looks at
//! source position `left + (j + 0.5) * w / n - 0.5`, clamped to the image,
//! and blends its two neighbours by distance, in x and then in y.
//!
//! **Shrinking** (a box larger than the output, as when a crop is cut from
//! a photo's original pixels and resized to 224): two taps would skip most
//! source pixels and alias, so along an axis shrunk by `s = box / output >
//! 1` the bilinear ("triangle") filter is widened to `s` source pixels on
//! each side, as PIL's resize does:
//!
//! ```text
//! centre_j = start + (j + 0.5) * s
//! weight(x) = max(0, 1 - |x + 0.5 - centre_j| / s)     for source pixel x,
//! out_j = sum_x weight(x) * src[x] / sum_x weight(x)
//! ```
//!
//! applied along x, then along y. An image that is only ever enlarged
//! (every crop of a data set already at the output size) takes the two-tap
//! path above, unchanged.

use crate::dataset::Shape;
use rng::Rng;

/// The ranges a crop box is drawn from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CropSettings {
    /// Range of the box's area as a fraction of the image's: (0.08, 1.0).
    pub area: (f32, f32),
    /// Range of the box's aspect ratio, width / height: (3/4, 4/3), drawn
    /// uniformly in log space.
    pub aspect: (f32, f32),
}

impl CropSettings {
    /// The paper's crop: area U[0.08, 1], aspect log-uniform in [3/4, 4/3].
    pub fn byol() -> Self {
        CropSettings {
            area: (0.08, 1.0),
            aspect: (3.0 / 4.0, 4.0 / 3.0),
        }
    }
}

/// A box in source-pixel coordinates (real numbers: see the module doc).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CropBox {
    /// Top edge, in pixels from the top of the image.
    pub top: f32,
    /// Left edge, in pixels from the left of the image.
    pub left: f32,
    /// Height in pixels.
    pub height: f32,
    /// Width in pixels.
    pub width: f32,
}

impl CropBox {
    /// The whole `height x width` image.
    pub fn full(height: usize, width: usize) -> Self {
        CropBox {
            top: 0.0,
            left: 0.0,
            height: height as f32,
            width: width as f32,
        }
    }
}

/// How many boxes are tried before falling back to the centre crop.
const TRIES: usize = 10;

/// Draws a crop box for an image of `height x width` (the algorithm of the
/// module doc).
pub fn sample_box(rng: &mut Rng, height: usize, width: usize, s: &CropSettings) -> CropBox {
    let (h, w) = (height as f64, width as f64);
    let (log_lo, log_hi) = ((s.aspect.0 as f64).ln(), (s.aspect.1 as f64).ln());
    for _ in 0..TRIES {
        let area = h * w * (s.area.0 as f64 + (s.area.1 - s.area.0) as f64 * rng.next_f64());
        let aspect = (log_lo + (log_hi - log_lo) * rng.next_f64()).exp();
        let bw = (area * aspect).sqrt();
        let bh = (area / aspect).sqrt();
        if bw <= w && bh <= h {
            return CropBox {
                top: ((h - bh) * rng.next_f64()) as f32,
                left: ((w - bw) * rng.next_f64()) as f32,
                height: bh as f32,
                width: bw as f32,
            };
        }
    }
    centre_box(height, width, s)
}

/// The fall-back box: the whole image, narrowed to the nearest allowed
/// aspect ratio if it is outside the range, centred.
fn centre_box(height: usize, width: usize, s: &CropSettings) -> CropBox {
    let (h, w) = (height as f32, width as f32);
    let ratio = w / h;
    let (bh, bw) = if ratio < s.aspect.0 {
        (w / s.aspect.0, w)
    } else if ratio > s.aspect.1 {
        (h, h * s.aspect.1)
    } else {
        (h, w)
    };
    CropBox {
        top: (h - bh) / 2.0,
        left: (w - bw) / 2.0,
        height: bh,
        width: bw,
    }
}

/// For each of `n` output positions along one axis, the two source indices
/// to blend and the weight of the second, for a box edge `start` and length
/// `len` over a source axis of `size` pixels.
fn axis_taps(start: f32, len: f32, size: usize, n: usize, taps: &mut Vec<(usize, usize, f32)>) {
    taps.clear();
    let step = len / n as f32;
    let last = (size - 1) as f32;
    for j in 0..n {
        let pos = (start + (j as f32 + 0.5) * step - 0.5).clamp(0.0, last);
        let i0 = pos.floor() as usize;
        let i1 = (i0 + 1).min(size - 1);
        taps.push((i0, i1, pos - i0 as f32));
    }
}

/// The filter of one output axis as general taps: for output `j`, the
/// source pixels `first[j] ..` with the weights `weights[offset[j] ..
/// offset[j + 1]]` (summing to 1). Bilinear (two taps) where the axis is
/// enlarged, the widened triangle of the module doc where it is shrunk.
#[derive(Clone, Debug, Default)]
struct Filter {
    first: Vec<usize>,
    offset: Vec<usize>,
    weights: Vec<f32>,
}

impl Filter {
    fn build(&mut self, start: f32, len: f32, size: usize, n: usize) {
        self.first.clear();
        self.offset.clear();
        self.weights.clear();
        self.offset.push(0);
        let scale = len / n as f32;
        if scale <= 1.0 {
            let mut taps = Vec::with_capacity(n);
            axis_taps(start, len, size, n, &mut taps);
            for (i0, i1, f) in taps {
                self.first.push(i0);
                if i1 > i0 {
                    self.weights.extend([1.0 - f, f]);
                } else {
                    self.weights.push(1.0);
                }
                self.offset.push(self.weights.len());
            }
            return;
        }
        for j in 0..n {
            let centre = start + (j as f32 + 0.5) * scale;
            let lo = ((centre - scale).floor().max(0.0) as usize).min(size - 1);
            let hi = ((centre + scale).ceil().max(0.0) as usize).clamp(lo + 1, size);
            let at = self.weights.len();
            let mut total = 0.0;
            for x in lo..hi {
                let w = (1.0 - ((x as f32 + 0.5 - centre) / scale).abs()).max(0.0);
                self.weights.push(w);
                total += w;
            }
            if total > 0.0 {
                self.weights[at..].iter_mut().for_each(|w| *w /= total);
            } else {
                // A box at the very edge: the nearest pixel.
                self.weights[at] = 1.0;
            }
            self.first.push(lo);
            self.offset.push(self.weights.len());
        }
    }

    /// The source pixels and weights of output `j`.
    fn taps(&self, j: usize) -> (usize, &[f32]) {
        (
            self.first[j],
            &self.weights[self.offset[j]..self.offset[j + 1]],
        )
    }
}

/// Reusable buffers of [`resample`], so it allocates nothing per image once
/// warm.
#[derive(Clone, Debug, Default)]
pub struct ResampleScratch {
    xs: Vec<(usize, usize, f32)>,
    ys: Vec<(usize, usize, f32)>,
    x_filter: Filter,
    y_filter: Filter,
    rows: Vec<f32>,
}

/// Resamples `bx` of the byte image `src` (CHW, shape `input`) into `out`
/// (CHW, shape `output`, the same channel count), scaling bytes to `[0, 1]`.
pub fn resample(
    src: &[u8],
    input: Shape,
    bx: &CropBox,
    out: &mut [f32],
    output: Shape,
    scratch: &mut ResampleScratch,
) {
    if bx.width > output.width as f32 || bx.height > output.height as f32 {
        return shrink(src, input, bx, out, output, scratch);
    }
    let (width, out_w) = (input.width, output.width);
    axis_taps(bx.left, bx.width, width, out_w, &mut scratch.xs);
    axis_taps(
        bx.top,
        bx.height,
        input.height,
        output.height,
        &mut scratch.ys,
    );
    const SCALE: f32 = 1.0 / 255.0;
    let planes = src
        .chunks_exact(input.plane())
        .zip(out.chunks_exact_mut(output.plane()));
    for (plane, out_plane) in planes.take(input.channels) {
        for (&(y0, y1, fy), out_row) in scratch.ys.iter().zip(out_plane.chunks_exact_mut(out_w)) {
            let row0 = &plane[y0 * width..(y0 + 1) * width];
            let row1 = &plane[y1 * width..(y1 + 1) * width];
            for (o, &(x0, x1, fx)) in out_row.iter_mut().zip(&scratch.xs) {
                // Blend along x on both rows, then along y.
                let top = row0[x0] as f32 + fx * (row0[x1] as f32 - row0[x0] as f32);
                let bottom = row1[x0] as f32 + fx * (row1[x1] as f32 - row1[x0] as f32);
                *o = (top + fy * (bottom - top)) * SCALE;
            }
        }
    }
}

/// [`resample`] when the box is larger than the output along an axis:
/// the separable filters of the module doc, along x into a buffer of rows,
/// then along y.
fn shrink(
    src: &[u8],
    input: Shape,
    bx: &CropBox,
    out: &mut [f32],
    output: Shape,
    scratch: &mut ResampleScratch,
) {
    let (width, out_w) = (input.width, output.width);
    let ResampleScratch {
        x_filter,
        y_filter,
        rows,
        ..
    } = scratch;
    x_filter.build(bx.left, bx.width, width, out_w);
    y_filter.build(bx.top, bx.height, input.height, output.height);
    // The source rows any output row reads.
    let top = y_filter.first.first().copied().unwrap_or(0);
    let bottom = (0..output.height)
        .map(|i| {
            let (first, w) = y_filter.taps(i);
            first + w.len()
        })
        .max()
        .unwrap_or(top);
    const SCALE: f32 = 1.0 / 255.0;
    let planes = src
        .chunks_exact(input.plane())
        .zip(out.chunks_exact_mut(output.plane()));
    for (plane, out_plane) in planes.take(input.channels) {
        rows.clear();
        rows.resize((bottom - top) * out_w, 0.0);
        for (y, row_out) in (top..bottom).zip(rows.chunks_exact_mut(out_w)) {
            let row = &plane[y * width..(y + 1) * width];
            for (j, o) in row_out.iter_mut().enumerate() {
                let (first, w) = x_filter.taps(j);
                *o = w
                    .iter()
                    .zip(&row[first..first + w.len()])
                    .map(|(w, &p)| w * p as f32)
                    .sum();
            }
        }
        for (i, out_row) in out_plane.chunks_exact_mut(out_w).enumerate() {
            let (first, w) = y_filter.taps(i);
            out_row.fill(0.0);
            for (k, &wk) in w.iter().enumerate() {
                let row = &rows[(first + k - top) * out_w..(first + k - top + 1) * out_w];
                for (o, &r) in out_row.iter_mut().zip(row) {
                    *o += wk * r;
                }
            }
            out_row.iter_mut().for_each(|o| *o *= SCALE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_and_aspect_stay_in_range_and_cover_it() {
        let s = CropSettings::byol();
        let mut rng = Rng::from_seed(1);
        let (h, w) = (28usize, 28usize);
        let (mut min_area, mut max_area) = (f32::MAX, f32::MIN);
        let (mut min_log, mut max_log) = (f32::MAX, f32::MIN);
        for _ in 0..5000 {
            let b = sample_box(&mut rng, h, w, &s);
            let area = b.width * b.height / (h * w) as f32;
            let log_aspect = (b.width / b.height).ln();
            assert!((0.08 - 1e-5..=1.0 + 1e-5).contains(&area), "area {area}");
            assert!(
                log_aspect.abs() <= (4.0f32 / 3.0).ln() + 1e-5,
                "aspect {log_aspect}"
            );
            assert!(b.top >= 0.0 && b.left >= 0.0);
            assert!(b.top + b.height <= h as f32 + 1e-4 && b.left + b.width <= w as f32 + 1e-4);
            min_area = min_area.min(area);
            max_area = max_area.max(area);
            min_log = min_log.min(log_aspect);
            max_log = max_log.max(log_aspect);
        }
        assert!(min_area < 0.085 && max_area > 0.97, "{min_area} {max_area}");
        let edge = (4.0f32 / 3.0).ln();
        assert!(
            min_log < -edge + 0.01 && max_log > edge - 0.01,
            "{min_log} {max_log}"
        );
    }

    #[test]
    fn a_wide_image_falls_back_to_a_centred_box_of_allowed_aspect() {
        // A 1x100 strip: no box of aspect <= 4/3 and area >= 8% fits.
        let b = centre_box(1, 100, &CropSettings::byol());
        assert!((b.width / b.height - 4.0 / 3.0).abs() < 1e-5);
        assert!((b.left - (100.0 - 4.0 / 3.0) / 2.0).abs() < 1e-4);
        let mut rng = Rng::from_seed(0);
        let b2 = sample_box(&mut rng, 1, 100, &CropSettings::byol());
        assert_eq!(b, b2);
    }

    #[test]
    fn the_full_box_at_the_same_size_copies_the_image() {
        let src: Vec<u8> = (0..2 * 3 * 4).map(|i| (i * 10) as u8).collect();
        let mut out = vec![0.0; src.len()];
        let mut scratch = ResampleScratch::default();
        let shape = Shape {
            channels: 2,
            height: 3,
            width: 4,
        };
        resample(
            &src,
            shape,
            &CropBox::full(3, 4),
            &mut out,
            shape,
            &mut scratch,
        );
        for (o, s) in out.iter().zip(&src) {
            assert!((o - *s as f32 / 255.0).abs() < 1e-6);
        }
    }

    /// Shrinking a stripe pattern 4x averages it (0.5 everywhere), where
    /// two-tap bilinear would pick stripes and alias; a flat image stays
    /// flat; shrinking along one axis only filters that axis.
    #[test]
    fn shrinking_filters_instead_of_aliasing() {
        let input = Shape {
            channels: 1,
            height: 32,
            width: 32,
        };
        // Columns alternate 0 and 255.
        let stripes: Vec<u8> = (0..32 * 32)
            .map(|i| if i % 2 == 0 { 0 } else { 255 })
            .collect();
        let output = Shape {
            channels: 1,
            height: 8,
            width: 8,
        };
        let mut out = vec![0.0; 64];
        let mut scratch = ResampleScratch::default();
        let whole = CropBox::full(32, 32);
        resample(&stripes, input, &whole, &mut out, output, &mut scratch);
        for (k, o) in out.iter().enumerate() {
            // At the image's edges the filter is cut short, so lopsided.
            let edge = k % 8 == 0 || k % 8 == 7;
            let tolerance = if edge { 0.05 } else { 1e-4 };
            assert!((o - 0.5).abs() < tolerance, "column {}: {o}", k % 8);
        }
        let flat = vec![200u8; 32 * 32];
        resample(&flat, input, &whole, &mut out, output, &mut scratch);
        for o in &out {
            assert!((o - 200.0 / 255.0).abs() < 1e-5, "{o}");
        }
        // 32 wide to 8 wide, 32 high to 64 high: rows keep their value.
        let rows: Vec<u8> = (0..32 * 32).map(|i| (i / 32 * 8) as u8).collect();
        let tall = Shape {
            channels: 1,
            height: 64,
            width: 8,
        };
        let mut out = vec![0.0; 64 * 8];
        resample(&rows, input, &whole, &mut out, tall, &mut scratch);
        for (i, row) in out.chunks_exact(8).enumerate() {
            assert!(row.iter().all(|&v| (v - row[0]).abs() < 1e-5), "row {i}");
        }
        assert!(out[0] < out[63 * 8], "rows still go from dark to light");
    }

    #[test]
    fn bilinear_blends_neighbours_by_distance() {
        // A 1x2 image [0, 255] enlarged to 1x4: positions -0.25, 0.25, 0.75,
        // 1.25 clamp to 0, 0.25, 0.75, 1.
        let src = [0u8, 255];
        let mut out = [0.0f32; 4];
        let mut scratch = ResampleScratch::default();
        let input = Shape {
            channels: 1,
            height: 1,
            width: 2,
        };
        let output = Shape { width: 4, ..input };
        resample(
            &src,
            input,
            &CropBox::full(1, 2),
            &mut out,
            output,
            &mut scratch,
        );
        let want = [0.0, 0.25, 0.75, 1.0];
        for (o, w) in out.iter().zip(want) {
            assert!((o - w).abs() < 1e-6, "{out:?}");
        }
    }
}
