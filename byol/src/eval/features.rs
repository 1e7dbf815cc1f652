//! Features of a frozen encoder: the input of every evaluation protocol.
//!
//! The BYOL paper evaluates "the representation", the encoder's output
//! after the final global average pooling (2048-d for its ResNet-50; `8w`
//! here for a ResNet-18 of width `w`), never the projection. That is what
//! [`extract_features`] computes, over a whole data set, batch by batch:
//!
//! ```text
//! for each batch of indices b:
//!     x_b = normalise(image_b)                       [B, C, H, W]  (augment::plain_batch)
//!     h_b = encoder(x_b)   in eval mode, no_grad     [B, F]
//! H = concat_b h_b                                   [N, F]
//! ```
//!
//! * **Evaluation mode.** Batch norm uses its running statistics, so a
//!   feature depends on its own image alone, not on the batch it was put
//!   in. `ResNet` has no getter for its mode, so this function cannot put
//!   the previous mode back: it leaves the encoder in evaluation mode, and a
//!   caller that goes on training (the kNN monitor during pre-training)
//!   calls `encoder.set_training(true)` afterwards.
//! * **No gradient.** The forward pass runs inside [`autograd::no_grad()`],
//!   so nothing is recorded and each batch's activations are freed as soon
//!   as its features are taken.
//! * **Where.** Batches are uploaded to `device`, which must hold the
//!   encoder's parameters; the result stays there (it is not read back).
//!
//! [`pixel_features`] is the baseline with no encoder at all: the
//! normalised pixels, flattened to `[N, C·H·W]`. A linear probe or kNN on
//! them tells how much of an accuracy comes from the learned
//! representation rather than from the data.

use crate::error::{ByolError, Result};
use augment::{plain_batch, Dataset, Normalization};
use autograd::{no_grad, Tape, Var};
use models::{Module, ResNet};
use tensor::{Device, Tensor};

/// The labels of `ds`, or an error naming the split (`what`) when it has
/// none.
pub fn dataset_labels<'a>(ds: &'a Dataset, what: &str) -> Result<&'a [u32]> {
    ds.labels().ok_or_else(|| {
        ByolError::Input(format!(
            "{what}: the data set has no labels; evaluation needs a labelled split"
        ))
    })
}

/// Errors unless `encoder` can run on the images of `ds` (the split called
/// `what` in messages) on `device`: a non-empty data set, a positive batch
/// size, the channel count the encoder expects, and its parameters on
/// `device`.
pub(crate) fn check_encoder_input(
    encoder: &ResNet,
    ds: &Dataset,
    batch_size: usize,
    device: &Device,
    what: &str,
) -> Result<()> {
    if ds.is_empty() {
        return Err(ByolError::Input(format!("{what}: the data set is empty")));
    }
    if batch_size == 0 {
        return Err(ByolError::Input(format!(
            "{what}: the batch size is 0; give at least 1"
        )));
    }
    let expected = encoder.config().in_channels;
    if ds.channels() != expected {
        return Err(ByolError::Input(format!(
            "{what}: the images have {} channel(s) but the encoder expects {expected}",
            ds.channels()
        )));
    }
    if let Some(p) = encoder.parameters().first() {
        let on = p.value().device();
        if &on != device {
            return Err(ByolError::Input(format!(
                "{what}: the encoder's parameters are on the {on} but the features were asked \
                 for on the {device}; move one of them"
            )));
        }
    }
    Ok(())
}

/// The encoder's features `[N, F]` of every image of `ds` (in order),
/// computed in evaluation mode without recording gradients, in batches of
/// `batch_size` normalised with `norm`, on `device` (where the encoder's
/// parameters must be).
///
/// Leaves the encoder in evaluation mode (see the module docs): call
/// `encoder.set_training(true)` afterwards to go on training.
///
/// Errors for an empty data set, a batch size of 0, images whose channel
/// count the encoder or `norm` does not take, or an encoder on another
/// device.
pub fn extract_features(
    encoder: &ResNet,
    ds: &Dataset,
    norm: &Normalization,
    batch_size: usize,
    device: &Device,
) -> Result<Tensor> {
    check_encoder_input(encoder, ds, batch_size, device, "extract_features")?;
    encoder.set_training(false);
    let mut parts: Vec<Tensor> = Vec::with_capacity(ds.len().div_ceil(batch_size));
    let indices: Vec<usize> = (0..ds.len()).collect();
    for chunk in indices.chunks(batch_size) {
        let batch = plain_batch(ds, chunk, norm, None)?;
        let x = Var::constant(Tensor::from_vec(batch.data, &batch.shape, device));
        let h = no_grad(|| encoder.forward(&Tape::new(), &x));
        parts.push(h.value().clone());
    }
    let features = if parts.len() == 1 {
        parts.remove(0)
    } else {
        Tensor::concat(&parts.iter().collect::<Vec<_>>(), 0)
    };
    finite_features(features, "extract_features")
}

/// Whether every value of `t` is finite: one device-side reduction and one
/// number read back (`Σ 0·x` is NaN exactly when some `x` is NaN or ±∞).
pub fn all_finite(t: &Tensor) -> bool {
    t.mul_scalar(0.0).sum_all().item().is_finite()
}

/// `features`, or an error if any is NaN or infinite: a NaN feature would
/// make every score and file built on it meaningless, so it is never
/// passed on.
fn finite_features(features: Tensor, what: &str) -> Result<Tensor> {
    let finite = all_finite(&features);
    // That read-back is where a failure of the device shows.
    if let Some(e) = features.device().take_error() {
        return Err(ByolError::Device(e));
    }
    if finite {
        Ok(features)
    } else {
        Err(ByolError::Input(format!(
            "{what}: the encoder's features hold a NaN or infinite value (are its weights \
             finite?); nothing was scored or written"
        )))
    }
}

/// The encoder's features `[N, F]` of an array of images given as values:
/// `values` holds `shape = [N, C, H, W]` pixels on the `[0, 1]` scale (an
/// `.npy` file from NumPy or torchvision), normalised here with `norm`,
/// then embedded as [`extract_features`] does (evaluation mode, no
/// gradient, batches of `batch_size`, on `device`).
///
/// Errors for an empty array, a channel count the encoder does not take, a
/// normalisation of the wrong length or with a standard deviation that is
/// not positive, or a batch size of 0.
pub fn array_features(
    encoder: &ResNet,
    mut values: Vec<f32>,
    shape: [usize; 4],
    norm: &Normalization,
    batch_size: usize,
    device: &Device,
) -> Result<Tensor> {
    let [n, c, h, w] = shape;
    let image = c.checked_mul(h).and_then(|x| x.checked_mul(w)).unwrap_or(0);
    if n == 0 || image == 0 || n.checked_mul(image) != Some(values.len()) {
        return Err(ByolError::Input(format!(
            "array_features: {} values for an array of shape {shape:?}; give a non-empty \
             (N, C, H, W) array",
            values.len()
        )));
    }
    if batch_size == 0 {
        return Err(ByolError::Input(
            "array_features: the batch size is 0; give at least 1".into(),
        ));
    }
    let expected = encoder.config().in_channels;
    if c != expected {
        return Err(ByolError::Input(format!(
            "array_features: {c} channel(s) but the encoder takes {expected}; the array must \
             be (N, C, H, W), channels first"
        )));
    }
    norm.check(c)?;
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(ByolError::Input(format!(
            "array_features: value {i} of the array is {}; images must be finite numbers",
            values[i]
        )));
    }
    for one in values.chunks_exact_mut(image) {
        norm.apply(one, h * w);
    }
    encoder.set_training(false);
    let mut parts = Vec::new();
    for start in (0..n).step_by(batch_size) {
        let end = (start + batch_size).min(n);
        let x = Tensor::from_vec(
            values[start * image..end * image].to_vec(),
            &[end - start, c, h, w],
            device,
        );
        let features = no_grad(|| encoder.forward(&Tape::new(), &Var::constant(x)));
        parts.push(features.value().clone());
    }
    let refs: Vec<&Tensor> = parts.iter().collect();
    finite_features(Tensor::concat(&refs, 0), "array_features")
}

/// The raw-pixel baseline: every image of `ds` normalised with `norm` and
/// flattened, `[N, C·H·W]`, on `device`.
///
/// Errors for an empty data set or a normalisation of the wrong channel
/// count.
pub fn pixel_features(ds: &Dataset, norm: &Normalization, device: &Device) -> Result<Tensor> {
    if ds.is_empty() {
        return Err(ByolError::Input(
            "pixel_features: the data set is empty".to_string(),
        ));
    }
    let indices: Vec<usize> = (0..ds.len()).collect();
    let batch = plain_batch(ds, &indices, norm, None)?;
    Ok(Tensor::from_vec(
        batch.data,
        &[ds.len(), ds.image_len()],
        device,
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use models::{Arch, ResNetConfig, Stem};

    /// A tiny encoder (ResNet-18 of width 2, CIFAR stem) for `channels`
    /// channels: 16-d features.
    pub(crate) fn tiny_encoder(channels: usize, seed: u64) -> ResNet {
        let config = ResNetConfig {
            arch: Arch::ResNet18,
            stem: Stem::Cifar,
            in_channels: channels,
            width: 2,
        };
        ResNet::new(config, seed, &Device::Cpu)
    }

    /// `n` gray 8x8 images in `classes` classes: class `c` is a bright
    /// horizontal band at rows `2c..2c+2` on a noisy background, so the
    /// classes are easy to tell apart.
    pub(crate) fn banded_images(n: usize, classes: usize, seed: u64) -> Dataset {
        let mut rng = rng::Rng::from_seed(seed);
        let mut pixels = Vec::with_capacity(n * 64);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let c = i % classes;
            for y in 0..8 {
                for _ in 0..8 {
                    let band = y / 2 == c % 4;
                    let base = if band { 200 } else { 40 };
                    pixels.push((base + rng.below(40) as i32 - 20) as u8);
                }
            }
            labels.push(c as u32);
        }
        Dataset::new(pixels, 1, 8, 8, Some(labels)).unwrap()
    }

    #[test]
    fn features_have_one_row_per_image_whatever_the_batch_size() {
        let ds = banded_images(7, 2, 1);
        let enc = tiny_encoder(1, 3);
        let norm = Normalization::identity(1);
        let all = extract_features(&enc, &ds, &norm, 16, &Device::Cpu).unwrap();
        assert_eq!(all.shape(), &[7, enc.feature_dim()]);
        let by_three = extract_features(&enc, &ds, &norm, 3, &Device::Cpu).unwrap();
        // Evaluation mode: a feature does not depend on its batch.
        for (a, b) in all.to_vec().iter().zip(by_three.to_vec()) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        assert_eq!(autograd::live_nodes(), 0);
    }

    #[test]
    fn pixel_features_are_the_flattened_normalised_images() {
        let ds = banded_images(3, 2, 2);
        let norm = Normalization::identity(1);
        let px = pixel_features(&ds, &norm, &Device::Cpu).unwrap();
        assert_eq!(px.shape(), &[3, 64]);
        let v = px.to_vec();
        assert!((v[64 + 5] - ds.image(1).unwrap()[5] as f32 / 255.0).abs() < 1e-6);
    }

    #[test]
    fn non_finite_weights_or_values_give_an_error_not_features() {
        let ds = banded_images(4, 2, 1);
        let norm = Normalization::identity(1);
        let enc = tiny_encoder(1, 0);
        let p = &enc.parameters()[0];
        p.set_value(Tensor::full(&p.shape(), f32::NAN, &Device::Cpu));
        let e = extract_features(&enc, &ds, &norm, 2, &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(e.contains("NaN or infinite"), "{e}");
        let good = tiny_encoder(1, 0);
        let mut values = vec![0.5f32; 2 * 64];
        values[70] = f32::INFINITY;
        let e = array_features(&good, values, [2, 1, 8, 8], &norm, 2, &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(e.contains("value 70") && e.contains("inf"), "{e}");
    }

    #[test]
    fn bad_inputs_are_errors_that_say_what_is_wrong() {
        let ds = banded_images(4, 2, 1);
        let norm = Normalization::identity(1);
        let rgb_encoder = tiny_encoder(3, 0);
        let err = extract_features(&rgb_encoder, &ds, &norm, 2, &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("1 channel(s)") && err.contains("expects 3"),
            "{err}"
        );
        let enc = tiny_encoder(1, 0);
        let err = extract_features(&enc, &ds, &norm, 0, &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(err.contains("batch size is 0"), "{err}");
        let rgb_norm = Normalization::cifar10();
        assert!(extract_features(&enc, &ds, &rgb_norm, 2, &Device::Cpu).is_err());
        assert!(pixel_features(&ds, &rgb_norm, &Device::Cpu).is_err());
        let unlabelled = Dataset::new(vec![0; 64], 1, 8, 8, None).unwrap();
        assert!(dataset_labels(&unlabelled, "test")
            .unwrap_err()
            .to_string()
            .contains("no labels"));
    }
}
