//! A picture of what the augmentations do: a PNG grid with one row per
//! image, showing the original and then several draws of view 1 and of
//! view 2.
//!
//! ```text
//! | original |   | view 1, epoch 0 | view 1, epoch 1 | ... |   | view 2, epoch 0 | ... |
//! ```
//!
//! Draw `d` is the view the image gets in epoch `d` of the run, exactly as
//! training makes it (the same generator), shown before normalisation.
//! Small images are enlarged by a whole factor (nearest neighbour) so the
//! pixels stay visible. The command line exposes this as
//! `byol augment-preview`.

use std::path::Path;

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};

use crate::dataset::{Dataset, Shape};
use crate::error::{DataError, Result};
use crate::pipeline::{draw_for, View};
use crate::views::crop::{self, CropBox, ResampleScratch};
use crate::views::{apply_view, TwoViewConfig, ViewScratch};

/// The most pixels a preview may have (64 megapixels, 192 MB of RGB).
const MAX_PREVIEW_PIXELS: usize = 1 << 26;

/// Pixels between two tiles.
const GAP: usize = 2;
/// Pixels between the groups (original, view 1, view 2).
const GROUP_GAP: usize = 8;
/// The grey of the background.
const BACKGROUND: u8 = 90;

/// What to show.
#[derive(Clone, Debug, PartialEq)]
pub struct PreviewOptions {
    /// The images (data set indices), one row each.
    pub indices: Vec<usize>,
    /// Draws of each view per row (epochs 0, 1, ...).
    pub draws: usize,
    /// The run seed the draws come from.
    pub run_seed: u64,
    /// Whole-number enlargement of every tile (1 = none).
    pub scale: usize,
}

/// An RGB picture: `rgb` holds `height` rows of `width` pixels of 3 bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Preview {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// The pixels, row by row, R G B.
    pub rgb: Vec<u8>,
}

impl Preview {
    /// Writes the picture as a PNG file, complete or not at all: encoded
    /// in memory first, then written through the workspace's one writer
    /// (the `files` crate).
    pub fn write_png(&self, path: &Path) -> Result<()> {
        let encode = || -> std::result::Result<Vec<u8>, String> {
            let width = u32::try_from(self.width).map_err(|e| e.to_string())?;
            let height = u32::try_from(self.height).map_err(|e| e.to_string())?;
            let mut png = Vec::new();
            PngEncoder::new(&mut png)
                .write_image(&self.rgb, width, height, ExtendedColorType::Rgb8)
                .map_err(|e| e.to_string())?;
            Ok(png)
        };
        let png = encode().map_err(|problem| DataError::Format {
            path: path.to_path_buf(),
            problem: format!(
                "cannot encode a {}x{} PNG: {problem}",
                self.width, self.height
            ),
        })?;
        files::write_atomically(path, &png)?;
        Ok(())
    }
}

/// Draws the preview grid of `ds` for the augmentations `cfg`.
pub fn render_preview(ds: &Dataset, cfg: &TwoViewConfig, opts: &PreviewOptions) -> Result<Preview> {
    if opts.indices.is_empty() || opts.draws == 0 || opts.scale == 0 {
        return Err(DataError::invalid(
            format!(
                "a preview of {} images, {} draws, scale {}",
                opts.indices.len(),
                opts.draws,
                opts.scale
            ),
            "ask for at least one image, one draw and a scale of at least 1",
        ));
    }
    if let Some(&i) = opts.indices.iter().find(|&&i| i >= ds.len()) {
        return Err(ds.index_error(i));
    }
    cfg.check(ds.channels())?;

    let input = ds.shape();
    let output = cfg.output_shape(input);
    // The picture's size, every product checked and at most
    // MAX_PREVIEW_PIXELS, before anything is allocated.
    let size = || -> Option<(usize, usize, usize, usize, usize)> {
        let tile_w = output.width.checked_mul(opts.scale)?;
        let tile_h = output.height.checked_mul(opts.scale)?;
        let columns = opts.draws.checked_mul(2)?.checked_add(1)?;
        let width = columns
            .checked_mul(tile_w.checked_add(GAP)?)?
            .checked_add(GAP + 2 * GROUP_GAP)?;
        let height = opts
            .indices
            .len()
            .checked_mul(tile_h.checked_add(GAP)?)?
            .checked_add(GAP)?;
        let pixels = width
            .checked_mul(height)
            .filter(|&n| n <= MAX_PREVIEW_PIXELS)?;
        Some((tile_w, tile_h, width, height, pixels))
    };
    let Some((tile_w, tile_h, width, height, pixels)) = size() else {
        return Err(DataError::invalid(
            format!(
                "a preview of {} images with {} draws at scale {} is too large",
                opts.indices.len(),
                opts.draws,
                opts.scale
            ),
            "ask for fewer images or draws, or a smaller scale",
        ));
    };
    let mut picture = Preview {
        width,
        height,
        rgb: vec![BACKGROUND; pixels * 3],
    };

    let mut view = vec![0f32; output.len()];
    let mut scratch = ViewScratch::default();
    let mut resample = ResampleScratch::default();
    for (row, &index) in opts.indices.iter().enumerate() {
        let src = &ds.pixels()[index * input.len()..(index + 1) * input.len()];
        let top = GAP + row * (tile_h + GAP);
        // The original, resized to the output size.
        let whole = CropBox::full(input.height, input.width);
        crop::resample(src, input, &whole, &mut view, output, &mut resample);
        paint(&mut picture, &view, output, opts.scale, GAP, top);
        // The draws of each view.
        for (group, which) in [View::One, View::Two].into_iter().enumerate() {
            for d in 0..opts.draws {
                let draw = draw_for(cfg, input, index, opts.run_seed, d as u64, which);
                apply_view(src, input, &draw, &mut view, output, &mut scratch);
                let column = 1 + group * opts.draws + d;
                let left = GAP + column * (tile_w + GAP) + (group + 1) * GROUP_GAP;
                paint(&mut picture, &view, output, opts.scale, left, top);
            }
        }
    }
    Ok(picture)
}

/// Renders the preview and writes it to `path` as PNG.
pub fn write_preview(
    ds: &Dataset,
    cfg: &TwoViewConfig,
    opts: &PreviewOptions,
    path: &Path,
) -> Result<()> {
    render_preview(ds, cfg, opts)?.write_png(path)
}

/// Copies a CHW image in `[0, 1]` into the picture at `(left, top)`,
/// enlarged `scale` times; one channel is shown as gray.
fn paint(
    picture: &mut Preview,
    image: &[f32],
    shape: Shape,
    scale: usize,
    left: usize,
    top: usize,
) {
    let plane = shape.plane();
    for y in 0..shape.height * scale {
        for x in 0..shape.width * scale {
            let i = (y / scale) * shape.width + x / scale;
            let at = ((top + y) * picture.width + left + x) * 3;
            for ch in 0..3 {
                let src_ch = if shape.channels == 3 { ch } else { 0 };
                let v = image[src_ch * plane + i];
                picture.rgb[at + ch] = (v * 255.0).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;
    use crate::views::normalize::Normalization;

    #[test]
    fn the_grid_has_the_promised_layout_and_writes_a_png() {
        let ds = crate::embedded::fashion_mnist_subset(crate::dataset::Split::Test).unwrap();
        let cfg = TwoViewConfig::byol(Normalization::fashion_mnist());
        let opts = PreviewOptions {
            indices: vec![0, 1, 2],
            draws: 4,
            run_seed: 0,
            scale: 2,
        };
        let p = render_preview(&ds, &cfg, &opts).unwrap();
        assert_eq!(p.width, GAP + 9 * (56 + GAP) + 2 * GROUP_GAP);
        assert_eq!(p.height, GAP + 3 * (56 + GAP));
        // The original's first pixel is the data set's, enlarged 2x.
        let first = ds.image(0).unwrap()[0];
        let at = (GAP * p.width + GAP) * 3;
        assert_eq!(p.rgb[at], first);
        assert_eq!(p.rgb[at + 3], first);

        let dir = TempDir::new("preview");
        let path = dir.path().join("preview.png");
        write_preview(&ds, &cfg, &opts, &path).unwrap();
        let back = image::open(&path).unwrap().to_rgb8();
        assert_eq!(
            (back.width() as usize, back.height() as usize),
            (p.width, p.height)
        );
        assert_eq!(back.into_raw(), p.rgb);
    }

    #[test]
    fn empty_requests_are_errors() {
        let ds = crate::embedded::fashion_mnist_subset(crate::dataset::Split::Test).unwrap();
        let cfg = TwoViewConfig::byol(Normalization::fashion_mnist());
        let mut opts = PreviewOptions {
            indices: vec![],
            draws: 2,
            run_seed: 0,
            scale: 1,
        };
        assert!(render_preview(&ds, &cfg, &opts).is_err());
        opts.indices = vec![5000];
        assert!(render_preview(&ds, &cfg, &opts).is_err());
    }

    #[test]
    fn a_preview_too_large_to_draw_is_refused_before_it_is_allocated() {
        let ds = crate::embedded::fashion_mnist_subset(crate::Split::Test).unwrap();
        let cfg = TwoViewConfig::byol(crate::Normalization::fashion_mnist());
        for (draws, scale) in [(usize::MAX / 2, 1), (2, usize::MAX / 4), (4, 10_000)] {
            let opts = PreviewOptions {
                indices: vec![0, 1],
                draws,
                run_seed: 0,
                scale,
            };
            let e = render_preview(&ds, &cfg, &opts).unwrap_err().to_string();
            assert!(e.contains("too large"), "{e}");
        }
    }
}
