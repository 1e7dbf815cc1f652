//! The trainer: epochs of BYOL steps over a data set, with metrics,
//! checkpoints, and exact resumption.
//!
//! Each epoch shuffles the images with a seed derived from (run seed,
//! epoch), cuts them into batches (dropping the last partial one), and for
//! each batch:
//!
//! 1. takes the two views (made on another thread while the previous step
//!    ran, so augmentation never holds the step up);
//! 2. runs one [`ByolStep::step`] with the scheduled learning rate and τ
//!    (forward, the loss and collapse signal read back together, backward,
//!    the optimiser step, the moving average); a NaN or infinite loss stops
//!    the run before any weight changes, leaving the last checkpoint as the
//!    last good state;
//! 3. appends a `step` line to `metrics.jsonl`.
//!
//! After each epoch it appends an `epoch` line (with the kNN accuracy when a
//! monitor is given and due) and writes a checkpoint when due. A stop flag
//! (set by Ctrl-C in the CLI) ends the run after the current step with a
//! checkpoint.

use crate::checkpoint::{Checkpoint, CheckpointMeta};
use crate::config::TrainConfig;
use crate::distributed::{
    average_gradients, broadcast_buffers, broadcast_state, slice_of, state_hash,
};
use crate::error::{ByolError, Result};
use crate::metrics::{truncate_to, EpochRecord, MetricsLine, MetricsLog, PartialEpoch, StepRecord};
use crate::network::ByolNetworks;
use crate::run::RunFolder;
use crate::schedule::{self, Schedule};
use crate::step::{ByolStep, StepError, StepStats};
use augment::{Batch, DataSource, Normalization, TwoViewConfig, ViewSource};
use collective::{all_agree, Collective, Single};
use models::ResNet;
use rng::Rng;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tensor::{Device, Tensor};

/// A kNN monitor (or any score of the online encoder), run every
/// `knn_every` epochs with the number of epochs completed (1 after the
/// first) and the online encoder.
pub type Monitor<'a> = &'a dyn Fn(usize, &ResNet) -> Result<f32>;

/// What [`Trainer::run`] reports as it goes (for a progress bar or a live
/// plot): every step, and every epoch with its means and kNN accuracy.
#[derive(Clone, Copy, Debug)]
pub enum Progress<'a> {
    /// A step has finished (its line is already in `metrics.jsonl`).
    Step(&'a StepRecord),
    /// An epoch has finished (its line is already in `metrics.jsonl`).
    Epoch(&'a EpochRecord),
}

/// A BYOL training run in a run folder: a [`ByolStep`] driven over the
/// epochs of a data set, with its schedule, views, metrics and checkpoints.
pub struct Trainer {
    /// The settings.
    pub config: TrainConfig,
    byol: ByolStep,
    data: Arc<dyn ViewSource>,
    views: Arc<TwoViewConfig>,
    norm: Normalization,
    /// Epochs completed.
    pub epoch: usize,
    /// Steps completed.
    pub step: usize,
    /// The run folder, held (locked) by rank 0 alone.
    run: Option<RunFolder>,
    path: PathBuf,
    last_checkpoint: Option<PathBuf>,
    stop: Arc<AtomicBool>,
    /// The processes training this model together (one, alone).
    group: Arc<dyn Collective>,
    /// Whether the ranks agreed, at the last step, to stop.
    agreed_stop: bool,
    /// Time spent copying gradients between the device and the host for
    /// the group's sums.
    copying: std::time::Duration,
    /// The steps of the current epoch trained before a resume.
    resumed: PartialEpoch,
    warnings: Vec<String>,
}

impl Trainer {
    /// A new run in the folder `run` on `data`, normalised with `norm`, on
    /// `device`: [`Trainer::start`] without a record of where the data came
    /// from (a program that knows it should give it, so that `--resume`
    /// can find the images again).
    pub fn new(
        config: TrainConfig,
        data: impl ViewSource + 'static,
        norm: Normalization,
        device: &Device,
        run: &Path,
    ) -> Result<Trainer> {
        Trainer::start(config, data, norm, None, device, run)
    }

    /// A new run in the folder `run` on `data` (read from `source`, when
    /// given), normalised with `norm`, on `device`. Everything is checked
    /// before anything is written; then the folder is claimed and locked for
    /// the life of the trainer (see [`RunFolder`]), the start is saved as
    /// checkpoint `epoch-0000`, `data.json` (the `source`) is written, and
    /// `config.json` last: a folder with `config.json` has a complete setup
    /// and can be resumed from its first step.
    pub fn start(
        config: TrainConfig,
        data: impl ViewSource + 'static,
        norm: Normalization,
        source: Option<&DataSource>,
        device: &Device,
        run: &Path,
    ) -> Result<Trainer> {
        Trainer::start_in(Arc::new(Single), config, data, norm, source, device, run)
    }

    /// [`Trainer::start`] for one rank of a `group` of processes that
    /// train the model together (see [`crate::distributed`]): every rank
    /// calls it; rank 0 alone claims the folder and writes the setup, and
    /// its networks are broadcast to the others. `batch_size` is the
    /// global batch, a multiple of the group's size.
    pub fn start_in(
        group: Arc<dyn Collective>,
        config: TrainConfig,
        data: impl ViewSource + 'static,
        norm: Normalization,
        source: Option<&DataSource>,
        device: &Device,
        run: &Path,
    ) -> Result<Trainer> {
        config.validate()?;
        check_batch(&config, &data)?;
        check_group(&config, group.as_ref())?;
        norm.check(data.channels())?;
        let mut byol = ByolStep::new(
            config.network(data.channels()),
            config.seed,
            config.optimizer,
            config.weight_decay,
            device,
        );
        // Pretrained weights, when asked for, before the folder is made (a
        // file that does not fit leaves nothing behind): rank 0 reads them
        // and the broadcast below hands them to the others.
        if let Some(path) = &config.init_weights {
            agreed(group.as_ref(), || {
                if group.rank() == 0 {
                    let tensors = models::weights::read(path)?;
                    byol.nets
                        .load_encoders(&tensors, path, !config.init_online_only)?;
                }
                Ok(())
            })?;
        }
        let folder = agreed(group.as_ref(), || {
            if group.rank() == 0 {
                RunFolder::create(run).map(Some)
            } else {
                Ok(None)
            }
        })?;
        broadcast_state(group.as_ref(), &mut byol)?;
        let data: Arc<dyn ViewSource> = Arc::new(data);
        let mut trainer = Trainer::assemble(config, byol, data, norm, folder, run, group.clone());
        if let Some(folder) = &trainer.run {
            trainer.warnings.extend(folder.warning().map(String::from));
        }
        agreed(group.as_ref(), || {
            trainer.write_checkpoint()?;
            if group.rank() == 0 {
                if let Some(source) = source {
                    crate::run::write_data_source(run, source)?;
                }
                let text = serde_json::to_string_pretty(&trainer.config).map_err(|e| {
                    ByolError::Config(format!("the settings do not serialise: {e}"))
                })?;
                files::write_atomically(&crate::run::config_path(run), text.as_bytes())?;
            }
            Ok(())
        })?;
        Ok(trainer)
    }

    fn assemble(
        config: TrainConfig,
        byol: ByolStep,
        data: Arc<dyn ViewSource>,
        norm: Normalization,
        run: Option<RunFolder>,
        path: &Path,
        group: Arc<dyn Collective>,
    ) -> Trainer {
        let mut byol = byol;
        if group.size() > 1 && config.sync_batch_norm {
            byol.set_batch_norm_group(Some(group.clone()));
        }
        let views = TwoViewConfig::preset(config.augment, norm.clone())
            .with_min_crop(config.min_crop)
            .with_jitter_strength(config.jitter)
            .with_brightness_mode(config.brightness);
        Trainer {
            config,
            byol,
            data,
            views: Arc::new(views),
            norm,
            epoch: 0,
            step: 0,
            run,
            path: path.to_path_buf(),
            last_checkpoint: None,
            stop: Arc::new(AtomicBool::new(false)),
            group,
            agreed_stop: false,
            copying: std::time::Duration::ZERO,
            resumed: PartialEpoch::default(),
            warnings: Vec::new(),
        }
    }

    /// Continues the run in the folder `run` from its newest checkpoint
    /// that reads, fits `data` and restores, on the same data; the folder is
    /// locked for the life of the trainer, and its `metrics.jsonl` is cut
    /// back to the checkpoint (see [`crate::metrics::truncate_to`]), so
    /// every step is recorded once. Newer checkpoints that could not be used
    /// are named in [`Trainer::warnings`].
    pub fn resume(run: &Path, data: impl ViewSource + 'static, device: &Device) -> Result<Trainer> {
        Trainer::resume_in(Arc::new(Single), run, data, device)
    }

    /// [`Trainer::resume`] for one rank of a `group` (see
    /// [`Trainer::start_in`]): every rank reads the checkpoint (the run
    /// folder is shared), rank 0 alone locks the folder and mends the
    /// record, and rank 0's state is broadcast. A run resumes under any
    /// number of processes that divides its batch.
    pub fn resume_in(
        group: Arc<dyn Collective>,
        run: &Path,
        data: impl ViewSource + 'static,
        device: &Device,
    ) -> Result<Trainer> {
        let folder = agreed(group.as_ref(), || {
            if group.rank() == 0 {
                RunFolder::open(run).map(Some)
            } else {
                Ok(None)
            }
        })?;
        // The newest checkpoint that reads, fits the data and restores.
        let loaded = Checkpoint::load_with(run, |c| {
            let meta = &c.meta;
            if meta.images != data.len() || meta.in_channels != data.channels() {
                return Err(ByolError::Checkpoint {
                    path: c.path.clone(),
                    problem: format!(
                        "the run was trained on {} images of {} channel(s), the data given has \
                         {} of {}; resume with the run's own data",
                        meta.images,
                        meta.in_channels,
                        data.len(),
                        data.channels()
                    ),
                });
            }
            check_group(&c.meta.config, group.as_ref())?;
            c.restore(device)
        });
        let (checkpoint, mut byol) = agreed(group.as_ref(), || loaded)?;
        // Every rank must have taken the same checkpoint.
        let steps = group.gather_u64(checkpoint.meta.step as u64);
        if steps.iter().any(|&s| s != steps[0]) {
            return Err(ByolError::Distributed(format!(
                "the ranks read different checkpoints (at steps {steps:?}); is the run folder \
                 the same file system on every machine?"
            )));
        }
        broadcast_state(group.as_ref(), &mut byol)?;
        let meta = &checkpoint.meta;
        let resumed = if group.rank() == 0 {
            truncate_to(&crate::run::metrics_path(run), meta.step, meta.epoch)?
        } else {
            PartialEpoch::default()
        };
        let mut warnings: Vec<String> = checkpoint
            .skipped
            .iter()
            .map(|why| format!("skipped a checkpoint that cannot be used: {why}"))
            .collect();
        let per_epoch = meta.images / meta.config.batch_size;
        let expected = meta.step - meta.epoch * per_epoch;
        if group.rank() == 0 && resumed.steps != expected {
            warnings.push(format!(
                "metrics.jsonl holds {} of the {expected} steps of epoch {} before the \
                 checkpoint; that epoch's mean covers those only",
                resumed.steps, meta.epoch
            ));
        }
        if let Some(folder) = &folder {
            warnings.extend(folder.warning().map(String::from));
        }
        let mut trainer = Trainer::assemble(
            meta.config.clone(),
            byol,
            Arc::new(data),
            meta.normalization(),
            folder,
            run,
            group.clone(),
        );
        trainer.epoch = meta.epoch;
        trainer.step = meta.step;
        trainer.resumed = resumed;
        trainer.last_checkpoint = Some(checkpoint.path.clone());
        trainer.warnings = warnings;
        Ok(trainer)
    }

    /// What a person should know about how this trainer started: newer
    /// checkpoints a resume skipped as damaged, a record with steps
    /// missing, a run folder that could not be locked.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The online and target networks.
    pub fn nets(&self) -> &ByolNetworks {
        &self.byol.nets
    }

    /// A flag that, once set, ends the run after the current step with a
    /// checkpoint.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Whether the stop flag ended the last [`Trainer::run`] early.
    pub fn stopped(&self) -> bool {
        self.stop_asked() && self.epoch < self.config.epochs
    }

    /// Whether a stop was asked for: this process's flag, or, in a group,
    /// any rank's (agreed at the last step).
    fn stop_asked(&self) -> bool {
        if self.group.size() == 1 {
            self.stop.load(Ordering::Relaxed)
        } else {
            self.agreed_stop
        }
    }

    /// The run folder.
    pub fn run_folder(&self) -> &Path {
        &self.path
    }

    /// The time this rank spent copying gradients between the device and
    /// the host for the group's sums (zero alone): with the collectives'
    /// own time, the cost of training in a group.
    pub fn time_copying_gradients(&self) -> std::time::Duration {
        self.copying
    }

    /// What went wrong so far while reading the images (files of a
    /// streamed folder that could not be decoded and were replaced), for a
    /// warning; `None` when nothing did.
    pub fn data_problems(&self) -> Option<String> {
        self.data.problems()
    }

    /// The device the networks live on.
    pub fn device(&self) -> Device {
        self.byol.device()
    }

    /// The group of processes training this model (one, alone).
    pub fn group(&self) -> &dyn Collective {
        self.group.as_ref()
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
        let lr = match self.config.lr_schedule {
            Schedule::Cosine => schedule::lr_at(step, total, warmup, peak),
            Schedule::Constant => peak,
        };
        // τ_base = 0 is the paper's "online network as its own target" row:
        // τ stays 0 (the cosine schedule would raise it towards 1).
        let tau = if self.config.tau == 0.0 || self.config.tau_schedule == Schedule::Constant {
            self.config.tau
        } else {
            schedule::tau_at(step, total, self.config.tau)
        };
        (lr, tau)
    }

    /// The order of the images in `epoch`: a Fisher-Yates shuffle seeded by
    /// (run seed, epoch). It draws `j` as `next_u64() % (i + 1)`, not with
    /// the unbiased `Rng::shuffle`: the bias is below 2^-40 for any data
    /// set that fits in memory, and changing the draw would change the
    /// order (and every result) of every seeded run and checkpoint.
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
    ) -> Result<Vec<EpochRecord>> {
        let device = self.byol.device();
        // Training mode (batch statistics) whatever the caller did with the
        // networks before: scoring the encoder (features, a monitor) leaves
        // it in evaluation mode, and a step in that mode would normalise
        // with the running statistics instead.
        self.byol.nets.set_training(true);
        let mut epochs = Vec::new();
        while self.epoch < self.config.epochs {
            let epoch = self.epoch;
            let order = self.order(epoch);
            let batches: Vec<&[usize]> = order.chunks_exact(self.config.batch_size).collect();
            // The view maker shares the data, not `self`, so the step can
            // borrow `self` mutably meanwhile.
            let (data, views, seed) = (self.data.clone(), self.views.clone(), self.config.seed);
            let (rank, size) = (self.group.rank(), self.group.size());
            let make = |i: usize| {
                let mine = slice_of(batches[i], rank, size);
                data.two_views(mine, epoch as u64, seed, &views)
            };
            let first_step_of_epoch = epoch * self.steps_per_epoch();
            let skip = self.step.saturating_sub(first_step_of_epoch);
            let mut next = if skip < batches.len() {
                Some(make(skip)?)
            } else {
                None
            };
            // A run resumed mid-epoch counts the steps before the resume in
            // the epoch's means.
            let before = std::mem::take(&mut self.resumed);
            let (mut loss_sum, mut collapse_sum, mut count) =
                (before.loss_sum, before.collapse_sum, before.steps);
            let steps_before = before.steps;
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
                next = prepared.transpose()?;
                // Rank 0 keeps the record; in a group the others learn
                // whether it could, so a full disk stops every rank.
                let line = MetricsLine::Step(record.clone());
                agreed(self.group.as_ref(), || match rank {
                    0 => log.write(&line),
                    _ => Ok(()),
                })?;
                report(Progress::Step(&record));
                loss_sum += record.loss as f64;
                collapse_sum += record.collapse as f64;
                count += 1;
                // A stop mid-epoch checkpoints here; after the epoch's last
                // step it finishes the epoch (its line and an end-of-epoch
                // checkpoint) below.
                if self.stop_asked() && i + 1 < batches.len() {
                    self.write_checkpoint_agreed()?;
                    return Ok(epochs);
                }
            }
            self.epoch += 1;
            let due = |every: usize| {
                every > 0 && (self.epoch.is_multiple_of(every) || self.epoch == self.config.epochs)
            };
            // In a group every rank takes part when the monitor is due: it
            // runs on rank 0 alone and the others learn whether it worked,
            // so a failure of it stops every rank.
            let knn = if due(self.config.knn_every) && (monitor.is_some() || size > 1) {
                let acc = agreed(self.group.as_ref(), || match monitor {
                    Some(m) if rank == 0 => m(self.epoch, &self.byol.nets.online.encoder).map(Some),
                    _ => Ok(None),
                });
                self.byol.nets.set_training(true);
                acc?
            } else {
                None
            };
            let n = count.max(1) as f64;
            let record = EpochRecord {
                epoch,
                loss: (loss_sum / n) as f32,
                collapse: (collapse_sum / n) as f32,
                images_per_s: ((count - steps_before) * self.config.batch_size) as f32
                    / epoch_start.elapsed().as_secs_f32(),
                knn,
            };
            let line = MetricsLine::Epoch(record.clone());
            agreed(self.group.as_ref(), || match rank {
                0 => log.write(&line),
                _ => Ok(()),
            })?;
            report(Progress::Epoch(&record));
            epochs.push(record);
            self.check_replicas()?;
            let stopping = self.stop_asked() && self.epoch < self.config.epochs;
            if due(self.config.checkpoint_every) || stopping {
                self.write_checkpoint_agreed()?;
            }
            if stopping {
                return Ok(epochs);
            }
        }
        Ok(epochs)
    }

    /// One step on a pair of view batches, at the scheduled learning rate
    /// and τ; a non-finite loss stops the run, naming the step and the last
    /// good checkpoint.
    fn train_step(&mut self, v1: &Tensor, v2: &Tensor) -> Result<StepRecord> {
        let start = Instant::now();
        let (lr, tau) = self.schedule_at(self.step);
        let stats = if self.group.size() == 1 {
            // One process: the step exactly as it always was.
            self.byol.step(v1, v2, lr, tau)
        } else {
            self.group_step(v1, v2, lr, tau)?
        };
        let stats = stats.map_err(|e| match e {
            StepError::NonFinite(stats) => ByolError::NonFinite {
                step: self.step,
                what: format!("the loss became {}, so no weight was updated", stats.loss),
                checkpoint: self.last_checkpoint.clone(),
            },
            StepError::Device(e) => ByolError::Device(e),
        })?;
        let record = StepRecord {
            step: self.step,
            epoch: self.epoch,
            loss: stats.loss,
            lr,
            tau,
            images_per_s: (v1.dim(0) * self.group.size()) as f32 / start.elapsed().as_secs_f32(),
            collapse: stats.collapse,
        };
        self.step += 1;
        Ok(record)
    }

    /// One step of this rank in a group (see [`crate::distributed`]): its
    /// slice forward and backward; one sum over the ranks of the loss, the
    /// collapse signal and every reason to stop; the gradients averaged;
    /// then the same update on every rank. The loss and collapse signal
    /// returned are the ranks' averages. A NaN or a failed device on any
    /// rank stops every rank before any weight moves.
    fn group_step(
        &mut self,
        v1: &Tensor,
        v2: &Tensor,
        lr: f32,
        tau: f32,
    ) -> Result<std::result::Result<StepStats, StepError>> {
        let local = self.byol.forward_backward(v1, v2);
        let (loss, collapse, non_finite, failed) = match &local {
            Ok(s) => (s.loss as f64, s.collapse as f64, 0.0, 0.0),
            Err(StepError::NonFinite(s)) => (0.0, s.collapse as f64, 1.0, 0.0),
            Err(StepError::Device(_)) => (0.0, 0.0, 0.0, 1.0),
        };
        let asked = if self.stop.load(Ordering::Relaxed) {
            1.0
        } else {
            0.0
        };
        let mut shared = [loss, collapse, non_finite, failed, asked];
        self.group.sum_f64(&mut shared);
        let size = self.group.size() as f64;
        self.agreed_stop = shared[4] > 0.0;
        let global = StepStats {
            loss: if shared[2] > 0.0 {
                f32::NAN
            } else {
                (shared[0] / size) as f32
            },
            collapse: (shared[1] / size) as f32,
        };
        if shared[3] > 0.0 {
            return match local {
                Err(e @ StepError::Device(_)) => Ok(Err(e)),
                _ => Err(ByolError::Distributed(format!(
                    "another rank's device failed at step {}; it says why",
                    self.step
                ))),
            };
        }
        if shared[2] > 0.0 {
            return Ok(Err(StepError::NonFinite(global)));
        }
        let device = self.byol.device();
        self.copying += average_gradients(self.group.as_ref(), self.byol.parameters(), &device);
        self.byol.update(lr, tau);
        if !self.config.sync_batch_norm {
            broadcast_buffers(self.group.as_ref(), &self.byol);
        }
        Ok(Ok(global))
    }

    /// In a group, at the end of every epoch: a hash of every rank's
    /// networks and optimiser state, compared. Replicas that are not bit for
    /// bit the same stop the run, naming the epoch.
    fn check_replicas(&self) -> Result<()> {
        if self.group.size() == 1 {
            return Ok(());
        }
        let hashes = self.group.gather_u64(state_hash(&self.byol));
        if hashes.iter().any(|&h| h != hashes[0]) {
            return Err(ByolError::Distributed(format!(
                "the replicas differ after epoch {} (state hashes by rank: {hashes:x?}); the \
                 run stopped rather than train different models",
                self.epoch
            )));
        }
        Ok(())
    }

    /// [`Trainer::write_checkpoint`] in a group: rank 0 writes, and every
    /// rank learns whether it could.
    fn write_checkpoint_agreed(&mut self) -> Result<()> {
        let group = self.group.clone();
        agreed(group.as_ref(), || self.write_checkpoint().map(|_| ()))
    }

    /// Writes a checkpoint of the current state; returns its JSON path, or
    /// `None` on a rank other than 0 (rank 0 alone writes).
    pub fn write_checkpoint(&mut self) -> Result<Option<PathBuf>> {
        if self.group.rank() != 0 {
            return Ok(None);
        }
        let meta = CheckpointMeta {
            config: self.config.clone(),
            epoch: self.epoch,
            step: self.step,
            in_channels: self.data.channels(),
            image_size: {
                let (h, w) = self.data.view_size();
                [h, w]
            },
            mean: self.norm.mean.clone(),
            std: self.norm.std.clone(),
            images: self.data.len(),
        };
        let path = Checkpoint::save(&self.path, &meta, &self.byol)?;
        self.last_checkpoint = Some(path.clone());
        // Only once the new one is safely written.
        crate::checkpoint::prune(&self.path, self.config.keep_last)?;
        Ok(Some(path))
    }
}

/// Runs `work` on this rank and tells every rank whether every rank's
/// worked: the error of this rank, or, when another rank failed,
/// [`ByolError::OtherRankFailed`] (that rank says why). One process alone gets
/// its own result.
fn agreed<T>(group: &dyn Collective, work: impl FnOnce() -> Result<T>) -> Result<T> {
    let result = work();
    if group.size() == 1 {
        return result;
    }
    let all_ok = all_agree(group, result.is_ok());
    match result {
        Ok(_) if !all_ok => Err(ByolError::OtherRankFailed),
        other => other,
    }
}

/// Errors unless the global batch divides evenly among the ranks.
fn check_group(config: &TrainConfig, group: &dyn Collective) -> Result<()> {
    let size = group.size();
    if !config.batch_size.is_multiple_of(size) {
        return Err(ByolError::Config(format!(
            "batch_size {}: the global batch must be a multiple of the {size} processes \
             training together",
            config.batch_size
        )));
    }
    Ok(())
}

/// Errors unless `data` holds at least one batch.
fn check_batch(config: &TrainConfig, data: &dyn ViewSource) -> Result<()> {
    if data.len() < config.batch_size {
        return Err(ByolError::Config(format!(
            "batch_size {}: the data set has only {} images, fewer than one batch",
            config.batch_size,
            data.len()
        )));
    }
    Ok(())
}
