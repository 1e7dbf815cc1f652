//! Few labels: the question behind the paper's semi-supervised table. A
//! user with many unlabelled images and a handful of labelled ones fits a
//! classifier on `K` labelled images per class; how good it is depends on
//! which `K` were drawn, so the answer is a spread over several draws, not
//! one number.
//!
//! ```text
//! balanced_draw(labels, classes, K, seed)  → K train indices of each class
//! LabelledSplits::with_train(indices)      → the pair with only those labelled
//! rows(features, indices)                  → the matching feature rows
//! Spread::of([accuracy of draw 1, ...])    → mean ± standard deviation, min, max
//! ```
//!
//! Every draw is a fresh, seeded choice without replacement inside each
//! class (the draws may share images); the test split stays whole.

use super::finetune::balanced_subset;
use super::splits::LabelledSplits;
use crate::error::{ByolError, Result};
use std::fmt;
use tensor::Tensor;

/// `per_class` indices of each of the `classes` classes of `labels`,
/// chosen at random (seeded by `seed`) without replacement within a class,
/// in increasing order: [`balanced_subset`] of the
/// [`per_class_fraction`]. An error names a class with fewer.
pub fn balanced_draw(
    labels: &[u32],
    classes: usize,
    per_class: usize,
    seed: u64,
) -> Result<Vec<usize>> {
    let fraction = per_class_fraction(labels, classes, per_class)?;
    balanced_subset(labels, classes, fraction, seed)
}

/// The fraction of `labels` whose balanced subset ([`balanced_subset`])
/// takes exactly `per_class` of each class, `per_class · classes / N`,
/// after checking that every class has `per_class`: an error names a class
/// with fewer, or a label not below `classes`.
pub fn per_class_fraction(labels: &[u32], classes: usize, per_class: usize) -> Result<f64> {
    if per_class == 0 {
        return Err(ByolError::Input(
            "0 labels per class: at least one labelled image of each class is needed".into(),
        ));
    }
    let mut counts = vec![0usize; classes];
    for (i, &label) in labels.iter().enumerate() {
        match counts.get_mut(label as usize) {
            Some(n) => *n += 1,
            None => {
                return Err(ByolError::Input(format!(
                    "label {label} of image {i} is not below the {classes} classes"
                )))
            }
        }
    }
    if let Some((class, &n)) = counts.iter().enumerate().find(|(_, &n)| n < per_class) {
        return Err(ByolError::Input(format!(
            "{per_class} labels per class: class {class} has only {n} labelled train images"
        )));
    }
    Ok((per_class * classes) as f64 / labels.len() as f64)
}

/// Rows `indices` of a `[N, F]` feature matrix, in that order.
pub fn rows(features: &Tensor, indices: &[usize]) -> Result<Tensor> {
    let &[n, f] = features.shape() else {
        return Err(ByolError::Input(format!(
            "features of shape {:?}; expected [images, features]",
            features.shape()
        )));
    };
    if let Some(&bad) = indices.iter().find(|&&i| i >= n) {
        return Err(ByolError::Input(format!(
            "row {bad} of features with {n} rows"
        )));
    }
    let all = features.to_vec();
    let mut out = Vec::with_capacity(indices.len() * f);
    for &i in indices {
        out.extend_from_slice(&all[i * f..(i + 1) * f]);
    }
    Ok(Tensor::from_vec(
        out,
        &[indices.len(), f],
        &features.device(),
    ))
}

impl LabelledSplits {
    /// The same pair with the train split cut to the images at `indices`
    /// (the labelled few); the test split unchanged.
    pub fn with_train(&self, indices: &[usize]) -> Result<LabelledSplits> {
        Ok(LabelledSplits {
            train: self.train.subset(indices)?,
            ..self.clone()
        })
    }
}

/// Accuracies of several draws, summarised.
#[derive(Clone, Debug, PartialEq)]
pub struct Spread {
    /// One accuracy per draw, in `[0, 1]`.
    pub values: Vec<f32>,
}

impl Spread {
    /// The spread of `values`; an error when there are none or one is not
    /// a number (never reported as one).
    pub fn of(values: Vec<f32>) -> Result<Spread> {
        if values.is_empty() {
            return Err(ByolError::Input("no draws to summarise".into()));
        }
        if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
            return Err(ByolError::Input(format!(
                "a draw's accuracy is {bad}, not a number"
            )));
        }
        Ok(Spread { values })
    }

    /// The mean.
    pub fn mean(&self) -> f32 {
        (self.values.iter().map(|&v| v as f64).sum::<f64>() / self.values.len() as f64) as f32
    }

    /// The sample standard deviation, `√(Σ(v − mean)² / (n − 1))`; 0 for
    /// one draw.
    pub fn std(&self) -> f32 {
        let n = self.values.len();
        if n < 2 {
            return 0.0;
        }
        let mean = self.mean() as f64;
        let ss: f64 = self.values.iter().map(|&v| (v as f64 - mean).powi(2)).sum();
        (ss / (n - 1) as f64).sqrt() as f32
    }

    /// The smallest and the largest.
    pub fn range(&self) -> (f32, f32) {
        let lo = self.values.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = self
            .values
            .iter()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max);
        (lo, hi)
    }

    /// A table cell: `44.6% ± 4.9`, with `(3 of 5 draws)` added when
    /// fewer than the `planned` draws are in (a study or demo stopped
    /// part-way).
    pub fn cell(&self, planned: usize) -> String {
        let mut cell = format!("{:.1}% ± {:.1}", 100.0 * self.mean(), 100.0 * self.std());
        if self.values.len() < planned {
            cell += &format!(" ({} of {planned} draws)", self.values.len());
        }
        cell
    }
}

impl fmt::Display for Spread {
    /// `81.2% ± 0.4 (5 draws, 80.6-81.9%)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (lo, hi) = self.range();
        write!(
            f,
            "{:.1}% ± {:.1} ({} draw{}, {:.1}-{:.1}%)",
            100.0 * self.mean(),
            100.0 * self.std(),
            self.values.len(),
            if self.values.len() == 1 { "" } else { "s" },
            100.0 * lo,
            100.0 * hi
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensor::Device;

    #[test]
    fn a_draw_takes_the_same_number_of_each_class() {
        let labels: Vec<u32> = (0..300).map(|i| (i % 3) as u32).collect();
        let a = balanced_draw(&labels, 3, 10, 7).unwrap();
        assert_eq!(a.len(), 30);
        for c in 0..3 {
            assert_eq!(a.iter().filter(|&&i| labels[i] == c).count(), 10);
        }
        assert!(a.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
        assert_eq!(a, balanced_draw(&labels, 3, 10, 7).unwrap(), "seeded");
        assert_ne!(a, balanced_draw(&labels, 3, 10, 8).unwrap());
        // All of a class when asked for all of it.
        assert_eq!(balanced_draw(&labels, 3, 100, 0).unwrap().len(), 300);
    }

    #[test]
    fn too_few_images_or_bad_labels_are_named() {
        let labels = [0, 0, 0, 1];
        let e = balanced_draw(&labels, 2, 2, 0).unwrap_err().to_string();
        assert!(e.contains("class 1 has only 1"), "{e}");
        let e = balanced_draw(&labels, 2, 0, 0).unwrap_err().to_string();
        assert!(e.contains("0 labels per class"), "{e}");
        let e = balanced_draw(&[0, 5], 2, 1, 0).unwrap_err().to_string();
        assert!(e.contains("label 5 of image 1"), "{e}");
    }

    #[test]
    fn rows_are_picked_in_order() {
        let f = Tensor::from_vec((0..12).map(|x| x as f32).collect(), &[4, 3], &Device::Cpu);
        let r = rows(&f, &[3, 1]).unwrap();
        assert_eq!(r.shape(), &[2, 3]);
        assert_eq!(r.to_vec(), vec![9.0, 10.0, 11.0, 3.0, 4.0, 5.0]);
        assert!(rows(&f, &[4]).unwrap_err().to_string().contains("row 4"));
    }

    #[test]
    fn a_spread_is_mean_sample_std_and_range_and_never_nan() {
        let s = Spread::of(vec![0.80, 0.82, 0.84]).unwrap();
        assert!((s.mean() - 0.82).abs() < 1e-6);
        assert!((s.std() - 0.02).abs() < 1e-6);
        assert_eq!(s.range(), (0.80, 0.84));
        assert_eq!(s.to_string(), "82.0% ± 2.0 (3 draws, 80.0-84.0%)");
        assert_eq!(s.cell(3), "82.0% ± 2.0");
        assert_eq!(s.cell(5), "82.0% ± 2.0 (3 of 5 draws)");
        assert_eq!(Spread::of(vec![0.5]).unwrap().std(), 0.0);
        assert!(Spread::of(vec![]).is_err());
        assert!(Spread::of(vec![0.5, f32::NAN])
            .unwrap_err()
            .to_string()
            .contains("NaN"));
    }
}
