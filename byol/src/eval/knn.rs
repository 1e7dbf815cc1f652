//! The weighted k-nearest-neighbour classifier: the cheap accuracy monitor
//! of self-supervised training.
//!
//! It trains nothing, so it can run every few epochs of pre-training and
//! tells whether the representation is getting better (or collapsing, when
//! it falls to chance). This is the classifier of InstDisc (Wu et al. 2018,
//! "Unsupervised feature learning via non-parametric instance
//! discrimination", §3.4), as solo-learn and most BYOL re-implementations
//! run it:
//!
//! ```text
//! f̂ = f / ‖f‖                                 every train and test feature, l2-normalised
//! s_j = f̂_test · f̂_train_j                    cosine similarity to each train feature
//! N_k = the k train features of largest s_j   (k = 200)
//! w_j = exp(s_j / T)                          a neighbour's vote (T = 0.1)
//! score_c = Σ_{j ∈ N_k, y_j = c} w_j          the votes per class
//! ŷ = argmax_c score_c
//! ```
//!
//! The temperature sharpens the vote: at T = 0.1 a neighbour at cosine 0.9
//! outweighs one at 0.8 by `e ≈ 2.7`, so closer neighbours count for more,
//! and a tie in numbers is broken in favour of the closer class.
//!
//! **How it is computed.** The similarities of a chunk of test rows to all
//! train rows are one matrix product on the features' device,
//! `S = F̂_test[chunk] · F̂_trainᵀ`; the chunk is sized so that `S` holds at
//! most [`SIMILARITY_BUDGET`] values (64 MB), then read back, and the top k
//! of each row is selected on the CPU (`select_nth_unstable`, linear time).
//! Votes are summed in `f64` with the largest similarity of the row
//! subtracted first, `exp((s_j - s_max)/T)`, which scales every vote of the
//! row by the same factor (the argmax is unchanged) and cannot overflow
//! however small `T` is.
//!
//! **Determinism.** Equal similarities are ordered by train index (the
//! lower first), and equal class scores by class (the lower first), so the
//! result never depends on a sort's whims.

use super::{accuracy, check_features, check_labels};
use crate::error::{ByolError, Result};
use std::cmp::Ordering;
use tensor::Tensor;

/// The most similarity values computed and read back at once: 16 M `f32`,
/// 64 MB. The test rows of one chunk are `max(1, budget / N_train)`.
pub const SIMILARITY_BUDGET: usize = 1 << 24;

/// The neighbour count of InstDisc and solo-learn.
pub const DEFAULT_K: usize = 200;

/// The temperature of the votes of InstDisc and solo-learn.
pub const DEFAULT_TEMPERATURE: f32 = 0.1;

/// The rows of `x` (`[N, F]`) scaled to unit length, `x / max(‖x‖, ε)`
/// with ε = 1e-12 (a zero row stays zero).
fn l2_normalize_rows(x: &Tensor) -> Tensor {
    let norm = x.square().sum(&[1], true).sqrt().maximum_scalar(1e-12);
    x.div(&norm)
}

/// The predicted class of every test row by the weighted kNN vote (see the
/// module docs) over the train rows `train` (`[N, F]`) with labels
/// `train_labels` in `0..classes`.
///
/// `k` is clamped to the train size. Errors for empty splits, mismatched
/// shapes, labels or devices, a label not below `classes`, `k = 0`, a
/// temperature that is not a positive finite number, and features that are
/// not finite (a diverged encoder).
pub fn knn_predict(
    train: &Tensor,
    train_labels: &[u32],
    test: &Tensor,
    classes: usize,
    k: usize,
    temperature: f32,
) -> Result<Vec<u32>> {
    predict_in_chunks(
        train,
        train_labels,
        test,
        classes,
        k,
        temperature,
        SIMILARITY_BUDGET,
    )
}

/// [`knn_predict`] computing at most `budget` similarities at once.
fn predict_in_chunks(
    train: &Tensor,
    train_labels: &[u32],
    test: &Tensor,
    classes: usize,
    k: usize,
    temperature: f32,
    budget: usize,
) -> Result<Vec<u32>> {
    let (n_train, f) = check_features(train, train_labels, "knn (train split)")?;
    if test.rank() != 2 || test.shape()[1] != f {
        return Err(ByolError::Input(format!(
            "knn: the test features have shape {:?}, the train features [{n_train}, {f}]; \
             both need [N, {f}]",
            test.shape()
        )));
    }
    let n_test = test.shape()[0];
    if n_test == 0 {
        return Err(ByolError::Input(
            "knn (test split): the split is empty (no feature rows)".to_string(),
        ));
    }
    check_labels(train_labels, classes, "knn (train split)")?;
    if k == 0 {
        return Err(ByolError::Input(
            "knn: k is 0; give at least one neighbour".to_string(),
        ));
    }
    if !(temperature.is_finite() && temperature > 0.0) {
        return Err(ByolError::Input(format!(
            "knn: the temperature is {temperature}; it must be a positive number (0.1 is usual)"
        )));
    }
    if train.device() != test.device() {
        return Err(ByolError::Input(format!(
            "knn: the train features are on the {} and the test features on the {}; move one",
            train.device(),
            test.device()
        )));
    }
    let k = k.min(n_train);
    let train_hat = l2_normalize_rows(train);
    let test_hat = l2_normalize_rows(test);
    let rows_per_chunk = (budget / n_train).clamp(1, n_test);

    let mut predictions = Vec::with_capacity(n_test);
    let mut order: Vec<usize> = Vec::with_capacity(n_train);
    let mut scores = vec![0.0f64; classes];
    let mut start = 0;
    while start < n_test {
        let rows = rows_per_chunk.min(n_test - start);
        // S = F̂_test[start..start+rows] · F̂_trainᵀ, [rows, N_train].
        let sims = test_hat
            .narrow(0, start, rows)
            .matmul_nt(&train_hat)
            .to_vec();
        for (r, row) in sims.chunks(n_train).enumerate() {
            if let Some(bad) = row.iter().find(|s| !s.is_finite()) {
                return Err(ByolError::Input(format!(
                    "knn: test row {} has a similarity of {bad}; the features are not finite \
                     (has the encoder diverged?)",
                    start + r
                )));
            }
            predictions.push(vote(
                row,
                train_labels,
                k,
                temperature,
                &mut order,
                &mut scores,
            ));
        }
        start += rows;
    }
    Ok(predictions)
}

/// The weighted vote of one test row: `row[j]` is its similarity to train
/// item `j`. `order` and `scores` are scratch buffers reused across rows.
fn vote(
    row: &[f32],
    labels: &[u32],
    k: usize,
    temperature: f32,
    order: &mut Vec<usize>,
    scores: &mut [f64],
) -> u32 {
    // Larger similarity first; equal similarities by train index.
    let closer_first =
        |&a: &usize, &b: &usize| -> Ordering { row[b].total_cmp(&row[a]).then(a.cmp(&b)) };
    order.clear();
    order.extend(0..row.len());
    if k < order.len() {
        // The k closest now fill order[..k] (in no particular order).
        order.select_nth_unstable_by(k - 1, closer_first);
    }
    let neighbours = &order[..k];
    let s_max = neighbours
        .iter()
        .map(|&j| row[j])
        .fold(f32::NEG_INFINITY, f32::max) as f64;
    scores.iter_mut().for_each(|s| *s = 0.0);
    for &j in neighbours {
        // w_j = exp(s_j / T), scaled by exp(-s_max / T) for the whole row.
        let w = ((row[j] as f64 - s_max) / temperature as f64).exp();
        scores[labels[j] as usize] += w;
    }
    // argmax_c score_c; the lowest class among equal scores.
    let mut best = 0;
    for c in 1..scores.len() {
        if scores[c] > scores[best] {
            best = c;
        }
    }
    best as u32
}

/// The top-1 accuracy, in `[0, 1]`, of the weighted kNN classifier (see the
/// module docs) on the test rows `test` with labels `test_labels`, voting
/// with the `k` nearest train rows at temperature `temperature` (InstDisc:
/// `k = 200`, `T = 0.1`, [`DEFAULT_K`], [`DEFAULT_TEMPERATURE`]).
///
/// `train` and `test` are `[N, F]` features on one device; labels lie in
/// `0..classes`. `k` is clamped to the train size. Errors as
/// [`knn_predict`], and for a test label count that differs from the test
/// rows or a test label not below `classes`.
pub fn knn_accuracy(
    train: &Tensor,
    train_labels: &[u32],
    test: &Tensor,
    test_labels: &[u32],
    classes: usize,
    k: usize,
    temperature: f32,
) -> Result<f32> {
    check_features(test, test_labels, "knn (test split)")?;
    check_labels(test_labels, classes, "knn (test split)")?;
    let predictions = knn_predict(train, train_labels, test, classes, k, temperature)?;
    Ok(accuracy(&predictions, test_labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensor::Device;

    fn matrix(rows: &[[f32; 2]]) -> Tensor {
        let data = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_vec(data, &[rows.len(), 2], &Device::Cpu)
    }

    #[test]
    fn two_clusters_are_told_apart_even_with_k_past_the_train_size() {
        // Class 0 around the direction (1, 0), class 1 around (0, 1); the
        // scale of a feature does not matter (cosine similarity).
        let train = matrix(&[[1.0, 0.1], [5.0, -0.2], [0.1, 1.0], [-0.1, 3.0], [2.0, 0.0]]);
        let labels = [0, 0, 1, 1, 0];
        let test = matrix(&[[0.9, 0.2], [0.2, 0.8], [10.0, 1.0], [0.0, 0.5]]);
        let truth = [0, 1, 0, 1];
        for k in [1, 3, 200] {
            let acc = knn_accuracy(&train, &labels, &test, &truth, 2, k, 0.1).unwrap();
            assert_eq!(acc, 1.0, "k = {k}");
        }
        assert_eq!(
            knn_predict(&train, &labels, &test, 2, 200, 0.1).unwrap(),
            vec![0, 1, 0, 1]
        );
    }

    #[test]
    fn a_tie_in_numbers_goes_to_the_closer_class() {
        // One neighbour of each class (k = 2): the unweighted vote is a tie;
        // the weighted one picks class 1, whose neighbour is closer.
        let train = matrix(&[[1.0, 0.0], [0.0, 1.0]]);
        let test = matrix(&[[0.4, 0.6]]);
        assert_eq!(
            knn_predict(&train, &[0, 1], &test, 2, 2, 0.1).unwrap(),
            vec![1]
        );
        // Two far neighbours of class 0 against one close neighbour of class
        // 1: cosines 0.6 (x2) and 0.97, weights 2·e^6 ≈ 807 vs e^9.7 ≈ 16318.
        let train = matrix(&[[0.6, 0.8], [0.6, 0.8], [0.97, 0.243]]);
        let test = matrix(&[[1.0, 0.0]]);
        assert_eq!(
            knn_predict(&train, &[0, 0, 1], &test, 2, 3, 0.1).unwrap(),
            vec![1]
        );
        // At a high temperature the votes are nearly equal: the majority wins.
        assert_eq!(
            knn_predict(&train, &[0, 0, 1], &test, 2, 3, 100.0).unwrap(),
            vec![0]
        );
    }

    #[test]
    fn only_the_k_nearest_vote() {
        // Three class-1 items far away would outvote one close class-0 item
        // at a high temperature; with k = 1 only the nearest votes.
        let train = matrix(&[[1.0, 0.05], [-1.0, 0.0], [-1.0, 0.1], [-1.0, -0.1]]);
        let test = matrix(&[[1.0, 0.0]]);
        assert_eq!(
            knn_predict(&train, &[0, 1, 1, 1], &test, 2, 1, 100.0).unwrap(),
            vec![0]
        );
        assert_eq!(
            knn_predict(&train, &[0, 1, 1, 1], &test, 2, 4, 100.0).unwrap(),
            vec![1]
        );
    }

    #[test]
    fn chunks_of_test_rows_give_the_same_answer_as_one_chunk() {
        let dev = Device::Cpu;
        let train = Tensor::randn(&[50, 8], 0.0, 1.0, 1, &dev);
        let labels: Vec<u32> = (0..50).map(|i| (i % 3) as u32).collect();
        let test = Tensor::randn(&[20, 8], 0.0, 1.0, 2, &dev);
        let whole = knn_predict(&train, &labels, &test, 3, 7, 0.1).unwrap();
        // A budget of 150 similarities: chunks of 3 test rows, the last of 2.
        let chunked = predict_in_chunks(&train, &labels, &test, 3, 7, 0.1, 150).unwrap();
        assert_eq!(whole, chunked);
        // A budget below one row still takes one row at a time.
        let by_row = predict_in_chunks(&train, &labels, &test, 3, 7, 0.1, 1).unwrap();
        assert_eq!(whole, by_row);
        assert_eq!(whole.len(), 20);
    }

    #[test]
    fn bad_inputs_are_errors_that_say_what_is_wrong() {
        let train = matrix(&[[1.0, 0.0], [0.0, 1.0]]);
        let test = matrix(&[[1.0, 0.0]]);
        let e = knn_accuracy(&train, &[0, 2], &test, &[0], 2, 1, 0.1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("label 2") && e.contains("train"), "{e}");
        let e = knn_accuracy(&train, &[0, 1], &test, &[5], 2, 1, 0.1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("label 5") && e.contains("test"), "{e}");
        let e = knn_accuracy(&train, &[0], &test, &[0], 2, 1, 0.1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("2 feature rows but 1 labels"), "{e}");
        let e = knn_accuracy(&train, &[0, 1], &test, &[0], 2, 0, 0.1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("k is 0"), "{e}");
        let e = knn_accuracy(&train, &[0, 1], &test, &[0], 2, 1, 0.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("temperature"), "{e}");
        let wide = Tensor::zeros(&[1, 3], &Device::Cpu);
        let e = knn_accuracy(&train, &[0, 1], &wide, &[0], 2, 1, 0.1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("shape [1, 3]"), "{e}");
        let empty = Tensor::zeros(&[0, 2], &Device::Cpu);
        let e = knn_accuracy(&train, &[0, 1], &empty, &[], 2, 1, 0.1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("empty"), "{e}");
        let nan = matrix(&[[f32::NAN, 0.0]]);
        let e = knn_accuracy(&train, &[0, 1], &nan, &[0], 2, 1, 0.1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not finite"), "{e}");
    }
}
