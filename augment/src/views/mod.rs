//! The BYOL views: the random image transformations of the paper's Table 6,
//! one module per transformation.
//!
//! A view is made in two steps, kept apart on purpose:
//!
//! 1. **Draw** ([`ViewSettings::draw`]): every random choice for the image —
//!    the crop box, whether to flip, whether to jitter and by how much, in
//!    which order, whether to turn gray, blur (and with which sigma),
//!    solarize — is drawn from the image's own generator into a plain
//!    [`ViewDraw`].
//! 2. **Apply** ([`apply_view`]): the draw is carried out, with no
//!    randomness left, in the paper's order:
//!
//! ```text
//! crop + resize (crop.rs) -> flip (flip.rs) -> colour jitter (jitter.rs)
//!   -> grayscale (grayscale.rs) -> blur (blur.rs) -> solarize (solarize.rs)
//! ```
//!
//! followed by normalisation ([`normalize`]), which the batch builder does.
//!
//! Values are `f32` in `[0, 1]` from the crop on (the crop reads the bytes
//! of the data set and scales them), CHW.
//!
//! The paper's two views differ only in three probabilities:
//!
//! | | view 1 | view 2 |
//! | --- | --- | --- |
//! | random resized crop | area U[0.08, 1], aspect [3/4, 4/3] | same |
//! | horizontal flip | p = 0.5 | p = 0.5 |
//! | colour jitter (0.4, 0.4, 0.2, 0.1) | p = 0.8 | p = 0.8 |
//! | grayscale | p = 0.2 | p = 0.2 |
//! | Gaussian blur, sigma U[0.1, 2.0] | **p = 1.0** | **p = 0.1** |
//! | solarize | **p = 0.0** | **p = 0.2** |

pub mod blur;
pub mod crop;
pub mod flip;
pub mod grayscale;
pub mod jitter;
pub mod normalize;
pub mod solarize;

use crate::dataset::Shape;
use crate::error::{DataError, Result};
use blur::BlurScratch;
use crop::{CropBox, CropSettings, ResampleScratch};
use jitter::{JitterDraw, JitterSettings};
use normalize::Normalization;
use rng::Rng;
use serde::{Deserialize, Serialize};

/// Every setting of one view: the ranges and the probabilities.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ViewSettings {
    /// The random resized crop; `None` takes the whole image (resized to
    /// the output size if that differs).
    pub crop: Option<CropSettings>,
    /// Probability of a horizontal flip.
    pub flip_p: f32,
    /// Probability of applying the colour jitter.
    pub jitter_p: f32,
    /// The strengths of the colour jitter.
    pub jitter: JitterSettings,
    /// Probability of turning the image gray.
    pub grayscale_p: f32,
    /// Probability of a Gaussian blur.
    pub blur_p: f32,
    /// Range of the blur's standard deviation, in pixels.
    pub blur_sigma: (f32, f32),
    /// Probability of solarizing.
    pub solarize_p: f32,
}

impl ViewSettings {
    /// The paper's view 1 (Table 6): blur always, never solarize.
    pub fn byol_view1() -> Self {
        ViewSettings {
            crop: Some(CropSettings::byol()),
            flip_p: 0.5,
            jitter_p: 0.8,
            jitter: JitterSettings::byol(),
            grayscale_p: 0.2,
            blur_p: 1.0,
            blur_sigma: (0.1, 2.0),
            solarize_p: 0.0,
        }
    }

    /// The paper's view 2 (Table 6): blur with p = 0.1, solarize with p = 0.2.
    pub fn byol_view2() -> Self {
        ViewSettings {
            blur_p: 0.1,
            solarize_p: 0.2,
            ..ViewSettings::byol_view1()
        }
    }

    /// No augmentation at all: the whole image, unchanged.
    pub fn identity() -> Self {
        ViewSettings {
            crop: None,
            flip_p: 0.0,
            jitter_p: 0.0,
            jitter: JitterSettings::byol(),
            grayscale_p: 0.0,
            blur_p: 0.0,
            blur_sigma: (0.1, 2.0),
            solarize_p: 0.0,
        }
    }

    /// Errors for a setting outside its meaningful range.
    pub fn check(&self) -> Result<()> {
        let probabilities = [
            ("flip_p", self.flip_p),
            ("jitter_p", self.jitter_p),
            ("grayscale_p", self.grayscale_p),
            ("blur_p", self.blur_p),
            ("solarize_p", self.solarize_p),
        ];
        for (name, p) in probabilities {
            if !(0.0..=1.0).contains(&p) {
                return Err(DataError::invalid(
                    format!("{name} = {p}"),
                    "a probability must lie in [0, 1]",
                ));
            }
        }
        if let Some(crop) = &self.crop {
            let (a0, a1) = crop.area;
            if !(a0 > 0.0 && a0 <= a1 && a1 <= 1.0) {
                return Err(DataError::invalid(
                    format!("crop area range ({a0}, {a1})"),
                    "use 0 < min <= max <= 1 (the paper: 0.08, 1.0)",
                ));
            }
            let (r0, r1) = crop.aspect;
            if !(r0 > 0.0 && r0 <= r1 && r1.is_finite()) {
                return Err(DataError::invalid(
                    format!("crop aspect range ({r0}, {r1})"),
                    "use 0 < min <= max (the paper: 3/4, 4/3)",
                ));
            }
        }
        let (s0, s1) = self.blur_sigma;
        if !(s0 > 0.0 && s0 <= s1 && s1.is_finite()) {
            return Err(DataError::invalid(
                format!("blur sigma range ({s0}, {s1})"),
                "use 0 < min <= max (the paper: 0.1, 2.0)",
            ));
        }
        let j = &self.jitter;
        let strengths_ok = j.brightness >= 0.0
            && (0.0..=1.0).contains(&j.contrast)
            && (0.0..=1.0).contains(&j.saturation)
            && (0.0..=0.5).contains(&j.hue);
        if !strengths_ok {
            return Err(DataError::invalid(
                format!("jitter strengths {j:?}"),
                "use brightness >= 0, contrast and saturation in [0, 1], hue in [0, 0.5]",
            ));
        }
        Ok(())
    }

    /// Draws every random choice of one view of an image whose output is
    /// `out_h x out_w`, from an input of `in_h x in_w`.
    pub fn draw(
        &self,
        rng: &mut Rng,
        in_h: usize,
        in_w: usize,
        out_h: usize,
        out_w: usize,
    ) -> ViewDraw {
        let crop = match &self.crop {
            Some(settings) => crop::sample_box(rng, in_h, in_w, settings),
            None => CropBox::full(in_h, in_w),
        };
        let flip = rng.chance(self.flip_p);
        let jitter = if rng.chance(self.jitter_p) {
            Some(JitterDraw::sample(rng, &self.jitter))
        } else {
            None
        };
        let grayscale = rng.chance(self.grayscale_p);
        let blur_sigma = if rng.chance(self.blur_p) {
            Some(rng.uniform(self.blur_sigma.0, self.blur_sigma.1))
        } else {
            None
        };
        let solarize = rng.chance(self.solarize_p);
        ViewDraw {
            crop,
            flip,
            jitter,
            grayscale,
            blur_sigma,
            blur_radius: blur::radius_for(out_h, out_w),
            solarize,
        }
    }
}

/// Every random choice of one view of one image, drawn before anything is
/// applied.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ViewDraw {
    /// The crop box, in input pixels.
    pub crop: CropBox,
    /// Whether to flip.
    pub flip: bool,
    /// The colour jitter, if applied.
    pub jitter: Option<JitterDraw>,
    /// Whether to turn gray.
    pub grayscale: bool,
    /// The blur's sigma, if blurred.
    pub blur_sigma: Option<f32>,
    /// The blur's radius (from the output size).
    pub blur_radius: usize,
    /// Whether to solarize.
    pub solarize: bool,
}

/// Buffers reused from image to image by one worker, so that making a view
/// allocates nothing once warm.
#[derive(Clone, Debug, Default)]
pub struct ViewScratch {
    resample: ResampleScratch,
    blur: BlurScratch,
}

/// Carries out `draw` on the byte image `src` of shape `input` (CHW), writing
/// the view, in `[0, 1]` and not yet normalised, to `out` of shape `output`
/// (the same channel count).
pub fn apply_view(
    src: &[u8],
    input: Shape,
    draw: &ViewDraw,
    out: &mut [f32],
    output: Shape,
    scratch: &mut ViewScratch,
) {
    let c = input.channels;
    crop::resample(src, input, &draw.crop, out, output, &mut scratch.resample);
    if draw.flip {
        flip::flip_horizontal(out, output.width);
    }
    if let Some(j) = &draw.jitter {
        j.apply(out, c, output.plane());
    }
    if draw.grayscale {
        grayscale::to_grayscale(out, c, output.plane());
    }
    if let Some(sigma) = draw.blur_sigma {
        blur::gaussian_blur(
            out,
            c,
            output.height,
            output.width,
            sigma,
            draw.blur_radius,
            &mut scratch.blur,
        );
    }
    if draw.solarize {
        solarize::solarize(out);
    }
}

/// Everything needed to make the two views of a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct TwoViewConfig {
    /// Settings of view 1.
    pub view1: ViewSettings,
    /// Settings of view 2.
    pub view2: ViewSettings,
    /// The normalisation applied last, to both views.
    pub normalization: Normalization,
    /// Output `(height, width)`; `None` keeps the data set's size.
    pub output_size: Option<(usize, usize)>,
}

/// The named sets of views. Written and read (JSON, TOML, flags) as `byol`
/// and `cifar`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum AugmentPreset {
    /// The paper's (Table 6): [`TwoViewConfig::byol`].
    Byol,
    /// The paper's without blur, as small-image re-implementations use:
    /// [`TwoViewConfig::cifar`].
    Cifar,
}

impl std::fmt::Display for AugmentPreset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AugmentPreset::Byol => "byol",
            AugmentPreset::Cifar => "cifar",
        })
    }
}

impl TwoViewConfig {
    /// The paper's augmentations (Table 6), with the given normalisation.
    pub fn byol(normalization: Normalization) -> Self {
        TwoViewConfig {
            view1: ViewSettings::byol_view1(),
            view2: ViewSettings::byol_view2(),
            normalization,
            output_size: None,
        }
    }

    /// As [`TwoViewConfig::byol`] but with the blur off in both views, as
    /// small-image (CIFAR) re-implementations of BYOL do: a 32-pixel image
    /// has little fine detail to lose, and blurring it always (view 1)
    /// removes much of what there is.
    pub fn cifar(normalization: Normalization) -> Self {
        let mut c = TwoViewConfig::byol(normalization);
        c.view1.blur_p = 0.0;
        c.view2.blur_p = 0.0;
        c
    }

    /// The views of a preset.
    pub fn preset(preset: AugmentPreset, normalization: Normalization) -> Self {
        match preset {
            AugmentPreset::Byol => TwoViewConfig::byol(normalization),
            AugmentPreset::Cifar => TwoViewConfig::cifar(normalization),
        }
    }

    /// The same views with the smallest crop area of both set to `area`
    /// (a fraction of the image; the paper's is 0.08). Views without a
    /// crop are left as they are.
    pub fn with_min_crop(mut self, area: f32) -> Self {
        for view in [&mut self.view1, &mut self.view2] {
            if let Some(crop) = view.crop.as_mut() {
                crop.area.0 = area;
            }
        }
        self
    }

    /// The same views with the colour jitter of both scaled by `strength`
    /// (SimCLR's "colour distortion strength"): brightness, contrast,
    /// saturation and hue each multiplied by it, hue capped at 0.5 turn.
    /// 1 leaves the paper's values; 0 turns the jitter into a no-op.
    pub fn with_jitter_strength(mut self, strength: f32) -> Self {
        for view in [&mut self.view1, &mut self.view2] {
            let j = &mut view.jitter;
            j.brightness *= strength;
            j.contrast *= strength;
            j.saturation *= strength;
            j.hue = (j.hue * strength).min(0.5);
        }
        self
    }

    /// The same views with the brightness of both jitters changed in
    /// `mode` (the paper's additive delta, or torchvision's factor).
    pub fn with_brightness_mode(mut self, mode: jitter::BrightnessMode) -> Self {
        self.view1.jitter.brightness_mode = mode;
        self.view2.jitter.brightness_mode = mode;
        self
    }

    /// The output shape for input images of `input`.
    pub fn output_shape(&self, input: Shape) -> Shape {
        let (height, width) = self.output_size.unwrap_or((input.height, input.width));
        Shape {
            channels: input.channels,
            height,
            width,
        }
    }

    /// Errors for any invalid setting, or a normalisation of the wrong
    /// channel count for `channels`-channel images.
    pub fn check(&self, channels: usize) -> Result<()> {
        self.view1.check()?;
        self.view2.check()?;
        self.normalization.check(channels)?;
        if let Some((h, w)) = self.output_size {
            if h == 0 || w == 0 {
                return Err(DataError::invalid(
                    format!("an output size of {h}x{w}"),
                    "give an output height and width of at least 1",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The observed frequency of each choice over `n` draws of `s` must be
    /// within 4 standard deviations of its probability.
    fn check_probabilities(s: &ViewSettings, n: usize, seed: u64) {
        let mut rng = Rng::from_seed(seed);
        let mut counts = [0usize; 5];
        for _ in 0..n {
            let d = s.draw(&mut rng, 32, 32, 32, 32);
            counts[0] += d.flip as usize;
            counts[1] += d.jitter.is_some() as usize;
            counts[2] += d.grayscale as usize;
            counts[3] += d.blur_sigma.is_some() as usize;
            counts[4] += d.solarize as usize;
        }
        let ps = [s.flip_p, s.jitter_p, s.grayscale_p, s.blur_p, s.solarize_p];
        let names = ["flip", "jitter", "grayscale", "blur", "solarize"];
        for i in 0..5 {
            let p = ps[i] as f64;
            let freq = counts[i] as f64 / n as f64;
            let sd = (p * (1.0 - p) / n as f64).sqrt();
            assert!(
                (freq - p).abs() <= 4.0 * sd,
                "{}: frequency {freq} vs p = {p} (4 sd = {})",
                names[i],
                4.0 * sd
            );
        }
    }

    #[test]
    fn each_probability_of_both_views_matches_its_setting() {
        check_probabilities(&ViewSettings::byol_view1(), 4000, 11);
        check_probabilities(&ViewSettings::byol_view2(), 4000, 12);
        let c = TwoViewConfig::cifar(Normalization::cifar10());
        check_probabilities(&c.view1, 4000, 13);
        check_probabilities(&c.view2, 4000, 14);
    }

    #[test]
    fn blur_sigma_stays_in_its_range() {
        let mut rng = Rng::from_seed(2);
        let s = ViewSettings::byol_view1();
        for _ in 0..1000 {
            let sigma = s.draw(&mut rng, 28, 28, 28, 28).blur_sigma.unwrap();
            assert!((0.1..=2.0).contains(&sigma));
        }
    }

    #[test]
    fn the_identity_view_returns_the_image() {
        let input = Shape {
            channels: 3,
            height: 4,
            width: 5,
        };
        let src: Vec<u8> = (0..input.len()).map(|i| (i * 4) as u8).collect();
        let mut rng = Rng::from_seed(0);
        let d = ViewSettings::identity().draw(&mut rng, 4, 5, 4, 5);
        let mut out = vec![0.0; input.len()];
        apply_view(
            &src,
            input,
            &d,
            &mut out,
            input,
            &mut ViewScratch::default(),
        );
        for (o, s) in out.iter().zip(&src) {
            assert!((o - *s as f32 / 255.0).abs() < 1e-6);
        }
    }

    #[test]
    fn bad_settings_are_errors() {
        let mut s = ViewSettings::byol_view1();
        s.flip_p = 1.5;
        assert!(s.check().is_err());
        let mut s = ViewSettings::byol_view1();
        s.crop = Some(CropSettings {
            area: (0.0, 1.0),
            aspect: (0.75, 1.0),
        });
        assert!(s.check().is_err());
        let c = TwoViewConfig::byol(Normalization::cifar10());
        assert!(c.check(3).is_ok());
        assert!(c.check(1).is_err());
        let cifar = TwoViewConfig::preset(AugmentPreset::Cifar, Normalization::cifar10());
        assert_eq!((cifar.view1.blur_p, cifar.view2.blur_p), (0.0, 0.0));
        let byol = TwoViewConfig::preset(AugmentPreset::Byol, Normalization::cifar10());
        assert_eq!(byol, TwoViewConfig::byol(Normalization::cifar10()));
    }

    #[test]
    fn min_crop_and_jitter_strength_change_both_views() {
        let c = TwoViewConfig::byol(Normalization::fashion_mnist())
            .with_min_crop(0.2)
            .with_jitter_strength(0.5);
        for v in [&c.view1, &c.view2] {
            assert_eq!(v.crop.unwrap().area, (0.2, 1.0));
            assert_eq!(v.jitter.brightness, 0.2);
            assert_eq!(v.jitter.contrast, 0.2);
            assert_eq!(v.jitter.saturation, 0.1);
            assert_eq!(v.jitter.hue, 0.05);
        }
        let strong = TwoViewConfig::byol(Normalization::fashion_mnist()).with_jitter_strength(10.0);
        assert_eq!(strong.view1.jitter.hue, 0.5);
    }
}
