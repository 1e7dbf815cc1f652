//! A run interrupted and resumed from its checkpoint gives, on the CPU, the
//! same losses bit for bit as the run left alone; and a bad loss stops a
//! run with a message that names the step.

use augment::{embedded, Normalization, Split};
use byol::metrics::MetricsLog;
use byol::optim::OptimizerKind;
use byol::schedule::Schedule;
use byol::{ByolError, Progress, TrainConfig, Trainer};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use tensor::Device;

fn temp_run(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("byol-resume-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// 64 training images, batches of 16: 4 steps per epoch, 2 epochs.
fn tiny() -> (TrainConfig, augment::Dataset) {
    let data = embedded::fashion_mnist_subset(Split::Train).unwrap();
    let data = data.subset(&(0..64).collect::<Vec<_>>()).unwrap();
    let config = TrainConfig {
        width: 2,
        hidden: 16,
        projection: 8,
        epochs: 2,
        batch_size: 16,
        optimizer: OptimizerKind::Lars,
        lr: 0.5,
        warmup_epochs: 0.5,
        knn_every: 0,
        // Both schedules moving with the step (the default holds τ
        // constant), so that a resume which lost its place would show.
        lr_schedule: Schedule::Cosine,
        tau_schedule: Schedule::Cosine,
        ..TrainConfig::default()
    };
    (config, data)
}

/// Every line's (kind, step or epoch, loss bits), in file order.
fn losses(run: &std::path::Path) -> Vec<(String, usize, u32)> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let kind = v["kind"].as_str().unwrap().to_string();
            let at = if kind == "step" {
                &v["step"]
            } else {
                &v["epoch"]
            };
            (
                kind,
                at.as_u64().unwrap() as usize,
                (v["loss"].as_f64().unwrap() as f32).to_bits(),
            )
        })
        .collect()
}

/// A new run of `config` on `data` in `run`, trained to its end, or until
/// a stop asked for after step `stop_at`.
fn train(
    config: &TrainConfig,
    data: &augment::Dataset,
    run: &Path,
    stop_at: Option<usize>,
) -> Trainer {
    let mut t = Trainer::new(
        config.clone(),
        data.clone(),
        Normalization::fashion_mnist(),
        &Device::Cpu,
        run,
    )
    .unwrap();
    let stop = t.stop_flag();
    let mut log = MetricsLog::open(&run.join("metrics.jsonl")).unwrap();
    t.run(&mut log, None, &mut |event| {
        if let Progress::Step(r) = event {
            if Some(r.step) == stop_at {
                stop.store(true, Ordering::Relaxed);
            }
        }
    })
    .unwrap();
    t
}

/// Resumes the run in `run` and trains it to its end.
fn resume_to_the_end(run: &Path, data: &augment::Dataset) -> Trainer {
    let mut t = Trainer::resume(run, data.clone(), &Device::Cpu).unwrap();
    assert!(t.warnings().is_empty(), "{:?}", t.warnings());
    let mut log = MetricsLog::open(&run.join("metrics.jsonl")).unwrap();
    t.run(&mut log, None, &mut |_| {}).unwrap();
    t
}

#[test]
fn resumed_run_repeats_the_uninterrupted_losses_exactly() {
    let (config, data) = tiny();
    let whole = temp_run("whole");
    train(&config, &data, &whole, None);
    let want = losses(&whole);
    assert_eq!(want.len(), 10, "8 steps and 2 epochs");

    // Interrupted after step 5 (in the middle of epoch 1), then resumed.
    let parts = temp_run("parts");
    let t = train(&config, &data, &parts, Some(5));
    assert_eq!(t.step, 6);
    assert!(t.stopped());
    drop(t);
    let t = Trainer::resume(&parts, data.clone(), &Device::Cpu).unwrap();
    assert_eq!((t.epoch, t.step), (1, 6));
    drop(t);
    let t = resume_to_the_end(&parts, &data);
    assert_eq!(t.step, 8);
    let got = losses(&parts);
    // Every step once, and the epoch means (epoch 1 straddles the resume)
    // the same to the bit.
    assert_eq!(
        got, want,
        "the record (kind, index, loss bits) after resuming differs"
    );

    // The run folder holds what it promises.
    for f in [
        "config.json",
        "metrics.jsonl",
        "checkpoints/epoch-0000.json",
        "checkpoints/epoch-0001-step-000000006.json",
        "checkpoints/epoch-0002.json",
        "checkpoints/epoch-0002.safetensors",
    ] {
        assert!(parts.join(f).exists(), "{f} is missing");
    }
    std::fs::remove_dir_all(whole).unwrap();
    std::fs::remove_dir_all(parts).unwrap();
}

/// A stop on the last step of an epoch finishes that epoch: its line and
/// an end-of-epoch checkpoint, which a resume takes (a mid-epoch name with
/// a full epoch of steps would be refused as inconsistent).
#[test]
fn a_stop_on_an_epoch_s_last_step_finishes_the_epoch_and_resumes_exactly() {
    let (config, data) = tiny();
    let whole = temp_run("whole-last");
    train(&config, &data, &whole, None);
    let want = losses(&whole);
    for stop_at in [3, 7] {
        let run = temp_run(&format!("last-{stop_at}"));
        let t = train(&config, &data, &run, Some(stop_at));
        assert_eq!((t.epoch, t.step), ((stop_at + 1) / 4, stop_at + 1));
        let end = format!("checkpoints/epoch-{:04}.json", (stop_at + 1) / 4);
        assert!(run.join(&end).exists(), "no {end}");
        drop(t);
        resume_to_the_end(&run, &data);
        assert_eq!(losses(&run), want, "stopped at step {stop_at}");
        std::fs::remove_dir_all(run).unwrap();
    }
    std::fs::remove_dir_all(whole).unwrap();
}

#[test]
fn a_non_finite_loss_stops_the_run_and_names_the_step() {
    let (mut config, data) = tiny();
    config.lr = 1e30;
    config.warmup_epochs = 0.0;
    config.optimizer = OptimizerKind::Sgd;
    let run = temp_run("nan");
    let mut t = Trainer::new(
        config,
        data,
        Normalization::fashion_mnist(),
        &Device::Cpu,
        &run,
    )
    .unwrap();
    let mut log = MetricsLog::open(&run.join("metrics.jsonl")).unwrap();
    match t.run(&mut log, None, &mut |_| {}) {
        Err(e @ ByolError::NonFinite { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("at step") && msg.contains("lower learning rate (lr)"),
                "{msg}"
            );
        }
        other => panic!(
            "expected a non-finite loss, got {:?}",
            other.map(|r| r.len())
        ),
    }
    std::fs::remove_dir_all(run).unwrap();
}

/// The learning rate and τ each follow their schedule: the paper's cosine
/// ones (as [`tiny`] sets them), fixed at the peak and at τ_base when
/// constant.
#[test]
fn constant_schedules_hold_the_learning_rate_and_tau() {
    use byol::schedule::scaled_lr;
    let (config, data) = tiny();
    let norm = Normalization::fashion_mnist();
    let steps = |config: &TrainConfig, name: &str| {
        let run = temp_run(name);
        let t = Trainer::new(
            config.clone(),
            data.clone(),
            norm.clone(),
            &Device::Cpu,
            &run,
        )
        .unwrap();
        let total = t.total_steps();
        let values: Vec<(f32, f32)> = (0..total).map(|k| t.schedule_at(k)).collect();
        let _ = std::fs::remove_dir_all(&run);
        values
    };
    let peak = scaled_lr(config.lr, config.batch_size);
    let cosine = steps(&config, "schedule-cosine");
    assert_eq!(cosine[0], (0.0, config.tau), "warm-up from 0, τ_base");
    assert!(cosine.last().unwrap().0 < peak && cosine.last().unwrap().1 > config.tau);
    let constant = TrainConfig {
        lr_schedule: Schedule::Constant,
        tau_schedule: Schedule::Constant,
        ..config.clone()
    };
    assert!(steps(&constant, "schedule-constant")
        .iter()
        .all(|&v| v == (peak, config.tau)));
    // Each on its own.
    let lr_only = TrainConfig {
        lr_schedule: Schedule::Constant,
        ..config.clone()
    };
    let mixed = steps(&lr_only, "schedule-lr-only");
    assert!(mixed
        .iter()
        .zip(&cosine)
        .all(|(m, c)| m.0 == peak && m.1 == c.1));
}

/// Scoring the encoder before training (features in evaluation mode)
/// changes nothing of the training: `run` trains in training mode whatever
/// mode the networks were left in.
#[test]
fn scoring_the_encoder_before_training_leaves_the_training_alone() {
    let (config, data) = tiny();
    let config = TrainConfig {
        epochs: 1,
        ..config
    };
    let plain = temp_run("plain");
    train(&config, &data, &plain, None);
    let scored = temp_run("scored");
    let mut t = Trainer::new(
        config.clone(),
        data.clone(),
        Normalization::fashion_mnist(),
        &Device::Cpu,
        &scored,
    )
    .unwrap();
    byol::eval::extract_features(
        &t.nets().online.encoder,
        &data,
        &Normalization::fashion_mnist(),
        16,
        &Device::Cpu,
    )
    .unwrap();
    let mut log = MetricsLog::open(&scored.join("metrics.jsonl")).unwrap();
    t.run(&mut log, None, &mut |_| {}).unwrap();
    assert_eq!(losses(&scored), losses(&plain));
    std::fs::remove_dir_all(plain).unwrap();
    std::fs::remove_dir_all(scored).unwrap();
}
