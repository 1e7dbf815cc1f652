//! The trainer: epochs of BYOL steps over a data set, with metrics,
//! checkpoints, and exact resumption.
//!
//! Each epoch shuffles the images with a seed derived from (run seed,
//! epoch), cuts them into batches (dropping the last partial one), and for
//! each batch:
//!
//! 1. takes the two views (made on another thread while the previous step
//!    ran, so augmentation never holds the step up);
//! 2. runs the forward pass and reads the loss and the collapse signal
//!    back together (the one wait per step on a GPU); a NaN or infinite loss stops the run before any weight changes,
//!    leaving the last checkpoint as the last good state;
//! 3. backward, an optimiser step with the scheduled learning rate, and the
//!    moving-average update of the target with the scheduled τ;
//! 4. appends a `step` line to `metrics.jsonl`.
//!
//! After each epoch it appends an `epoch` line (with the kNN accuracy when a
//! monitor is given and due) and writes a checkpoint when due. A stop flag
//! (set by Ctrl-C in the CLI) ends the run after the current step with a
//! checkpoint.

use crate::checkpoint::{self, CheckpointMeta};
use crate::config::TrainConfig;
use crate::metrics::{EpochRecord, MetricsLog, StepRecord};
use crate::network::{collapse_signal_tensor, ByolNetworks};
use crate::optim::{self, Optimizer, OptimizerKind};
use crate::schedule;
use augment::views::jitter::BrightnessMode;
use augment::{two_views, Batch, Dataset, Normalization, TwoViewConfig};
use autograd::{Param, Tape};
use models::ResNet;
use rng::Rng;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tensor::{Device, Tensor};

/// Why a run stopped early.
#[derive(Debug)]
pub enum TrainError {
    /// A setting, the data, or a file was wrong; the message names it.
    Setup(String),
    /// The loss became NaN or infinite.
    NonFinite {
        /// The step at which it happened.
        step: usize,
        /// The value.
        loss: f32,
        /// The last good checkpoint, if one was written.
        checkpoint: Option<PathBuf>,
    },
}

impl fmt::Display for TrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrainError::Setup(m) => f.write_str(m),
            TrainError::NonFinite {
                step,
                loss,
                checkpoint,
            } => {
                write!(
                    f,
                    "the loss became {loss} at step {step}; stopped before updating the weights"
                )?;
                match checkpoint {
                    Some(c) => write!(f, ". The last good checkpoint is {}", c.display())?,
                    None => write!(f, ". No checkpoint was written before it")?,
                }
                write!(f, ". Try a lower --lr or a longer warm-up")
            }
        }
    }
}

impl std::error::Error for TrainError {}

fn setup<E: fmt::Display>(e: E) -> TrainError {
    TrainError::Setup(e.to_string())
}

/// A kNN monitor (or any score of the online encoder), run every
/// `knn_every` epochs.
pub type Monitor<'a> = &'a dyn Fn(&ResNet) -> Result<f32, String>;

/// What [`Trainer::run`] reports as it goes (for a progress bar or a live
/// plot): every step, and every epoch with its means and kNN accuracy.
#[derive(Clone, Copy, Debug)]
pub enum Progress<'a> {
    /// A step has finished (its line is already in `metrics.jsonl`).
    Step(&'a StepRecord),
    /// An epoch has finished (its line is already in `metrics.jsonl`).
    Epoch(&'a EpochRecord),
}

/// A BYOL training run in a run folder.
pub struct Trainer {
    /// The settings.
    pub config: TrainConfig,
    /// The online and target networks.
    pub nets: ByolNetworks,
    optimizer: Box<dyn Optimizer>,
    params: Vec<Param>,
    data: Arc<Dataset>,
    views: Arc<TwoViewConfig>,
    norm: Normalization,
    /// Epochs completed.
    pub epoch: usize,
    /// Steps completed.
    pub step: usize,
    run: PathBuf,
    last_checkpoint: Option<PathBuf>,
    stop: Arc<AtomicBool>,
}

impl Trainer {
    /// A new run in `run` (created; `config.json` written there) on
    /// `data`, normalised with `norm`, on `device`.
    pub fn new(
        config: TrainConfig,
        data: Dataset,
        norm: Normalization,
        device: &Device,
        run: &Path,
    ) -> Result<Trainer, TrainError> {
        config.validate().map_err(TrainError::Setup)?;
        std::fs::create_dir_all(run).map_err(|e| {
            setup(format!(
                "{}: cannot create the run folder: {e}",
                run.display()
            ))
        })?;
        let text = serde_json::to_string_pretty(&config).map_err(setup)?;
        std::fs::write(run.join("config.json"), text)
            .map_err(|e| setup(format!("{}: {e}", run.join("config.json").display())))?;
        let nets = ByolNetworks::new(config.network(data.channels()), config.seed, device);
        Trainer::assemble(config, nets, data, norm, run)
    }

    fn assemble(
        config: TrainConfig,
        nets: ByolNetworks,
        data: Dataset,
        norm: Normalization,
        run: &Path,
    ) -> Result<Trainer, TrainError> {
        if data.len() < config.batch_size {
            return Err(setup(format!(
                "the data set has {} images, fewer than one batch of {}; lower --batch-size",
                data.len(),
                config.batch_size
            )));
        }
        let kind = OptimizerKind::from_name(&config.optimizer).expect("validated");
        let optimizer = optim::build(kind, config.weight_decay);
        let params = nets
            .online_parameters()
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        let views = TwoViewConfig::preset(&config.augment, norm.clone())
            .map_err(setup)?
            .with_min_crop(config.min_crop)
            .with_jitter_strength(config.jitter)
            .with_brightness_mode(
                BrightnessMode::from_name(&config.brightness).expect("validated"),
            );
        Ok(Trainer {
            config,
            nets,
            optimizer,
            params,
            data: Arc::new(data),
            views: Arc::new(views),
            norm,
            epoch: 0,
            step: 0,
            run: run.to_path_buf(),
            last_checkpoint: None,
            stop: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Continues the run in `run` from its latest checkpoint, on the same
    /// data.
    pub fn resume(run: &Path, data: Dataset, device: &Device) -> Result<Trainer, TrainError> {
        let (meta, tensors) = checkpoint::load(run).map_err(TrainError::Setup)?;
        if meta.images != data.len() || meta.in_channels != data.channels() {
            return Err(setup(format!(
                "{}: the checkpoint was trained on {} images of {} channels, the data given has {} of {}; \
                 resume with the same --data",
                run.display(),
                meta.images,
                meta.in_channels,
                data.len(),
                data.channels()
            )));
        }
        let norm = Normalization {
            mean: meta.mean.clone(),
            std: meta.std.clone(),
        };
        let nets = ByolNetworks::new(
            meta.config.network(meta.in_channels),
            meta.config.seed,
            device,
        );
        for (key, p) in nets.state() {
            match tensors.get(&format!("net.{key}")) {
                Some(t) if t.shape() == p.shape().as_slice() => p.set_value(t.to_device(device)),
                _ => {
                    return Err(setup(format!(
                        "{}: the checkpoint lacks net.{key} or has it in another shape",
                        run.display()
                    )))
                }
            }
        }
        let mut trainer = Trainer::assemble(meta.config.clone(), nets, data, norm, run)?;
        let opt_state = tensors
            .iter()
            .filter_map(|(k, t)| {
                k.strip_prefix("opt.")
                    .map(|k| (k.to_string(), t.to_device(device)))
            })
            .collect();
        trainer
            .optimizer
            .load_state(&opt_state)
            .map_err(|e| setup(format!("{}: {e}", run.display())))?;
        trainer.epoch = meta.epoch;
        trainer.step = meta.step;
        Ok(trainer)
    }

    /// A flag that, once set, ends the run after the current step with a
    /// checkpoint.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Whether the stop flag ended the last [`Trainer::run`] early.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed) && self.epoch < self.config.epochs
    }

    /// The run folder.
    pub fn run_folder(&self) -> &Path {
        &self.run
    }

    /// The last checkpoint written by this trainer, if any.
    pub fn last_checkpoint(&self) -> Option<&Path> {
        self.last_checkpoint.as_deref()
    }

    /// Steps per epoch: whole batches only.
    pub fn steps_per_epoch(&self) -> usize {
        self.data.len() / self.config.batch_size
    }

    /// Steps of the whole run.
    pub fn total_steps(&self) -> usize {
        self.steps_per_epoch() * self.config.epochs
    }

    /// The normalisation the run applies (saved in checkpoints, used by
    /// evaluation).
    pub fn normalization(&self) -> &Normalization {
        &self.norm
    }

    /// The learning rate and τ at `step`.
    pub fn schedule_at(&self, step: usize) -> (f32, f32) {
        let total = self.total_steps();
        let warmup = (self.config.warmup_epochs * self.steps_per_epoch() as f32).round() as usize;
        let peak = schedule::scaled_lr(self.config.lr, self.config.batch_size);
        let lr = schedule::lr_at(step, total, warmup, peak);
        // τ_base = 0 is the paper's "online network as its own target" row:
        // τ stays 0 (the cosine schedule would raise it towards 1).
        let tau = if self.config.tau == 0.0 {
            0.0
        } else {
            schedule::tau_at(step, total, self.config.tau)
        };
        (lr, tau)
    }

    /// The order of the images in `epoch`: a Fisher-Yates shuffle seeded by
    /// (run seed, epoch).
    fn order(&self, epoch: usize) -> Vec<usize> {
        let mut rng = Rng::from_seed(rng::seed_for(self.config.seed, epoch as u64, u64::MAX));
        let mut idx: Vec<usize> = (0..self.data.len()).collect();
        for i in (1..idx.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            idx.swap(i, j);
        }
        idx
    }

    fn batch_tensor(b: Batch, device: &Device) -> Tensor {
        Tensor::from_vec(b.data, &b.shape, device)
    }

    /// Runs the remaining epochs; `report` sees every step's and every
    /// epoch's record as it happens. Returns the epoch records of this call.
    /// After a stop through [`Trainer::stop_flag`] it returns early, with a
    /// checkpoint written; [`Trainer::stopped`] then says so.
    pub fn run(
        &mut self,
        log: &mut MetricsLog,
        monitor: Option<Monitor<'_>>,
        report: &mut dyn FnMut(Progress<'_>),
    ) -> Result<Vec<EpochRecord>, TrainError> {
        let device = self.params[0].value().device();
        let mut epochs = Vec::new();
        while self.epoch < self.config.epochs {
            let epoch = self.epoch;
            let order = self.order(epoch);
            let batches: Vec<&[usize]> = order.chunks_exact(self.config.batch_size).collect();
            // The view maker shares the data, not `self`, so the step can
            // borrow `self` mutably meanwhile.
            let (data, views, seed) = (self.data.clone(), self.views.clone(), self.config.seed);
            let make = |i: usize| two_views(&data, batches[i], epoch as u64, seed, &views);
            let first_step_of_epoch = epoch * self.steps_per_epoch();
            let skip = self.step.saturating_sub(first_step_of_epoch);
            let mut next = if skip < batches.len() {
                Some(make(skip).map_err(setup)?)
            } else {
                None
            };
            let (mut loss_sum, mut collapse_sum, mut count) = (0.0f64, 0.0f64, 0usize);
            let epoch_start = Instant::now();
            for i in skip..batches.len() {
                let (b1, b2) = next.take().expect("prepared");
                let (v1, v2) = (
                    Self::batch_tensor(b1, &device),
                    Self::batch_tensor(b2, &device),
                );
                // Make the next views on another thread while this step runs.
                let (record, prepared) = std::thread::scope(|s| {
                    let helper = (i + 1 < batches.len()).then(|| s.spawn(|| make(i + 1)));
                    let record = self.train_step(&v1, &v2);
                    (
                        record,
                        helper.map(|h| h.join().expect("the view thread panicked")),
                    )
                });
                let record = record?;
                next = prepared.transpose().map_err(setup)?;
                log.write(&record)
                    .map_err(|e| setup(format!("{}: {e}", log.path().display())))?;
                report(Progress::Step(&record));
                loss_sum += record.loss as f64;
                collapse_sum += record.collapse as f64;
                count += 1;
                if self.stop.load(Ordering::Relaxed) {
                    self.write_checkpoint()?;
                    return Ok(epochs);
                }
            }
            self.epoch += 1;
            let due = |every: usize| {
                every > 0 && (self.epoch % every == 0 || self.epoch == self.config.epochs)
            };
            let knn = match monitor {
                Some(m) if due(self.config.knn_every) => {
                    let acc = m(&self.nets.online.encoder).map_err(TrainError::Setup);
                    self.nets.set_training(true);
                    Some(acc?)
                }
                _ => None,
            };
            let n = count.max(1) as f64;
            let record = EpochRecord {
                kind: "epoch",
                epoch,
                loss: (loss_sum / n) as f32,
                collapse: (collapse_sum / n) as f32,
                images_per_s: (count * self.config.batch_size) as f32
                    / epoch_start.elapsed().as_secs_f32(),
                knn,
            };
            log.write(&record)
                .map_err(|e| setup(format!("{}: {e}", log.path().display())))?;
            report(Progress::Epoch(&record));
            epochs.push(record);
            if due(self.config.checkpoint_every) {
                self.write_checkpoint()?;
            }
        }
        Ok(epochs)
    }

    /// One step on a pair of view batches.
    fn train_step(&mut self, v1: &Tensor, v2: &Tensor) -> Result<StepRecord, TrainError> {
        let start = Instant::now();
        let (lr, tau) = self.schedule_at(self.step);
        for p in &self.params {
            p.zero_grad();
        }
        let tape = Tape::new();
        let out = self.nets.forward(&tape, v1, v2);
        // The one read-back of the step: the loss (checked before any
        // weight changes) and the collapse signal, together.
        let collapse = collapse_signal_tensor(&out.online_projection);
        let read = Tensor::concat(&[&out.loss.value().reshape(&[1]), &collapse], 0).to_vec();
        let (loss, collapse) = (read[0], read[1]);
        if !loss.is_finite() {
            return Err(TrainError::NonFinite {
                step: self.step,
                loss,
                checkpoint: self.last_checkpoint.clone(),
            });
        }
        tape.backward(&out.loss);
        self.optimizer.step(&self.params, lr);
        self.nets.update_target(tau);
        let record = StepRecord {
            kind: "step",
            step: self.step,
            epoch: self.epoch,
            loss,
            lr,
            tau,
            images_per_s: v1.dim(0) as f32 / start.elapsed().as_secs_f32(),
            collapse,
        };
        self.step += 1;
        Ok(record)
    }

    /// Writes a checkpoint of the current state; returns its JSON path.
    pub fn write_checkpoint(&mut self) -> Result<PathBuf, TrainError> {
        let meta = CheckpointMeta {
            config: self.config.clone(),
            epoch: self.epoch,
            step: self.step,
            in_channels: self.data.channels(),
            image_size: [self.data.height(), self.data.width()],
            mean: self.norm.mean.clone(),
            std: self.norm.std.clone(),
            images: self.data.len(),
        };
        let mut tensors: Vec<(String, Tensor)> = self
            .nets
            .state()
            .into_iter()
            .map(|(k, p)| (format!("net.{k}"), p.value()))
            .collect();
        tensors.extend(
            self.optimizer
                .state()
                .into_iter()
                .map(|(k, t)| (format!("opt.{k}"), t)),
        );
        let path = checkpoint::save(&self.run, &meta, &tensors).map_err(TrainError::Setup)?;
        self.last_checkpoint = Some(path.clone());
        Ok(path)
    }
}
