//! Progress of long work: a live bar (indicatif) with the step, loss,
//! images/s and time left when standard error is a terminal; plain lines
//! otherwise, or with `--quiet`, so logs and CI output stay readable.

use byol::metrics::{EpochRecord, StepRecord};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Instant;

/// Reports a training run's steps and epochs.
pub struct TrainProgress {
    bar: Option<ProgressBar>,
    epochs: usize,
    start: Instant,
    /// Projection size, for the collapse warning's threshold.
    projection: usize,
    warned: bool,
}

/// Below this fraction of the healthy value `1/√D`, the collapse signal
/// (the spread of the normalised projections across the batch) means the
/// representation is collapsing to a constant.
pub const COLLAPSE_WARNING_FRACTION: f32 = 0.2;

impl TrainProgress {
    /// A reporter for `total_steps` steps over `epochs`, starting at
    /// `done_steps` (a resumed run). `quiet` forces plain lines.
    pub fn new(
        total_steps: usize,
        done_steps: usize,
        epochs: usize,
        projection: usize,
        quiet: bool,
    ) -> TrainProgress {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(total_steps as u64),
                ProgressDrawTarget::stderr(),
            );
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} steps  {msg}  [{elapsed_precise} elapsed, ETA {eta}]",
                )
                .expect("a valid template"),
            );
            bar.set_position(done_steps as u64);
            bar.reset_eta();
            bar
        });
        TrainProgress {
            bar,
            epochs,
            start: Instant::now(),
            projection,
            warned: false,
        }
    }

    /// After every step.
    pub fn step(&mut self, r: &StepRecord) {
        if let Some(bar) = &self.bar {
            bar.set_position(r.step as u64 + 1);
            bar.set_message(format!(
                "epoch {}/{}  loss {:.3}  {:.0} img/s",
                r.epoch + 1,
                self.epochs,
                r.loss,
                r.images_per_s
            ));
        }
    }

    /// After every epoch: a line that stays, and a warning when the
    /// representation is collapsing.
    pub fn epoch(&mut self, r: &EpochRecord) {
        let knn = r.knn.map(|k| format!("  kNN {k:.3}")).unwrap_or_default();
        let line = format!(
            "epoch {:>3}/{}  loss {:.4}  collapse {:.4}{knn}  {:.0} img/s  ({:.0} s)",
            r.epoch + 1,
            self.epochs,
            r.loss,
            r.collapse,
            r.images_per_s,
            self.start.elapsed().as_secs_f32()
        );
        self.println(&line);
        let healthy = 1.0 / (self.projection as f32).sqrt();
        if !self.warned && r.collapse < COLLAPSE_WARNING_FRACTION * healthy {
            self.warned = true;
            self.println(&format!(
                "warning: the collapse signal {:.4} is below {:.4} ({}% of the healthy 1/sqrt({})): \
                 the projections are collapsing to a constant (expected without a predictor or \
                 with tau 0; otherwise try a lower --lr)",
                r.collapse,
                COLLAPSE_WARNING_FRACTION * healthy,
                (COLLAPSE_WARNING_FRACTION * 100.0) as u32,
                self.projection
            ));
        }
    }

    /// A line above the bar (or on its own without one).
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => say!("{line}"),
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
