//! What `demo` and `ablate` share: scoring an encoder (or the raw pixels)
//! by kNN and a linear probe on a labelled train/test pair, and training
//! one BYOL configuration into a run folder.

use crate::commands::pretrain::{refuse_existing_run, train, write_data_record, MonitorData};
use crate::commands::Outcome;
use crate::data::DataArgs;
use crate::encoder::EncoderArgs;
use augment::Split;
use augment::{Dataset, Normalization};
use byol::eval::features::{dataset_labels, extract_features, pixel_features};
use byol::eval::knn::{knn_accuracy, DEFAULT_K, DEFAULT_TEMPERATURE};
use byol::eval::linear::{linear_probe, LinearProbeConfig};
use byol::{TrainConfig, Trainer};
use models::ResNet;
use std::path::Path;
use tensor::{Device, Tensor};

/// A labelled train/test pair and how to normalise it.
pub struct EvalData {
    /// Features are fitted here (kNN memory bank, probe training).
    pub train: Dataset,
    /// Scores are measured here.
    pub test: Dataset,
    /// The normalisation of both.
    pub norm: Normalization,
    /// Number of classes.
    pub classes: usize,
}

/// kNN and linear-probe top-1 accuracy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scores {
    /// kNN (k = 200, cosine, T = 0.1).
    pub knn: f32,
    /// Linear probe on standardised features.
    pub linear: f32,
}

impl EvalData {
    /// Scores an encoder; also returns its test features (for plots).
    pub fn score_encoder(
        &self,
        encoder: &ResNet,
        device: &Device,
    ) -> Result<(Scores, Tensor), String> {
        let f_train = extract_features(encoder, &self.train, &self.norm, 256, device)?;
        let f_test = extract_features(encoder, &self.test, &self.norm, 256, device)?;
        let scores = self.score_features(&f_train, &f_test)?;
        Ok((scores, f_test))
    }

    /// Scores the normalised pixels themselves.
    pub fn score_pixels(&self, device: &Device) -> Result<Scores, String> {
        let f_train = pixel_features(&self.train, &self.norm, device)?;
        let f_test = pixel_features(&self.test, &self.norm, device)?;
        self.score_features(&f_train, &f_test)
    }

    fn score_features(&self, f_train: &Tensor, f_test: &Tensor) -> Result<Scores, String> {
        let l_train = dataset_labels(&self.train, "train")?;
        let l_test = dataset_labels(&self.test, "test")?;
        let knn = knn_accuracy(
            f_train,
            l_train,
            f_test,
            l_test,
            self.classes,
            DEFAULT_K,
            DEFAULT_TEMPERATURE,
        )?;
        let linear = linear_probe(
            f_train,
            l_train,
            f_test,
            l_test,
            self.classes,
            &LinearProbeConfig::default(),
        )?
        .test_accuracy;
        Ok(Scores { knn, linear })
    }

    /// The kNN monitor's view of the same data.
    pub fn monitor(&self) -> MonitorData {
        MonitorData {
            train: self.train.clone(),
            test: self.test.clone(),
            norm: self.norm.clone(),
            classes: self.classes,
        }
    }
}

/// Trains `config` on `data.train` (read with `source`) into `run` (which
/// must not hold a run), with the kNN monitor when `config.knn_every > 0`.
/// Returns the trainer and how it ended.
pub fn pretrain(
    config: TrainConfig,
    data: &EvalData,
    source: &DataArgs,
    device: &Device,
    run: &Path,
    quiet: bool,
) -> Result<(Trainer, Outcome), String> {
    refuse_existing_run(run)?;
    let mut trainer = Trainer::new(config, data.train.clone(), data.norm.clone(), device, run)
        .map_err(|e| e.to_string())?;
    write_data_record(run, source)?;
    let monitor = data.monitor();
    let monitor = (trainer.config.knn_every > 0).then_some(&monitor);
    let outcome = train(&mut trainer, monitor, device, quiet)?;
    Ok((trainer, outcome))
}

/// The encoder of `encoder` and the labelled train/test pair of `data`
/// it is judged on (`eval`, `finetune`), normalised as the encoder's
/// training data was (or, for bare weights, as the data set's kind says).
/// Prints where each came from.
pub fn encoder_and_splits(
    encoder: &EncoderArgs,
    data: &DataArgs,
    device: &Device,
) -> Result<(ResNet, EvalData), String> {
    let loaded = encoder.load(device)?;
    let train = data.load(Split::Train, true)?;
    let test = data.load(Split::Test, true)?;
    let norm = match loaded.normalization {
        Some(n) => n,
        None => data.normalization(&train.dataset)?,
    };
    eprintln!("encoder: {}", loaded.description);
    eprintln!("train: {}", train.description);
    eprintln!("test: {}", test.description);
    let classes = train.dataset.num_classes().max(test.dataset.num_classes());
    Ok((
        loaded.encoder,
        EvalData {
            train: train.dataset,
            test: test.dataset,
            norm,
            classes,
        },
    ))
}

/// A percentage with one decimal, for tables.
pub fn percent(x: f32) -> String {
    format!("{:.1}%", x * 100.0)
}
