//! Data-parallel training without MPI: `P` ranks as threads of this test
//! (`collective::Local`, exact sums in rank order), through the same code
//! MPI runs take (`Trainer::start_in`, `Trainer::resume_in`).
//!
//! * Without synchronised batch norm, two ranks average their gradients
//!   exactly as one process that accumulates the gradients of the same
//!   two half-batches: bit for bit.
//! * With it (the default), 2 and 4 ranks compute the gradient one process
//!   computes on the whole batch, as closely as that process agrees with
//!   itself when the rows come in another order; through the trainer the
//!   replicas stay bit-identical (it compares them every epoch).
//! * A run of 2 ranks stopped by one rank's flag (the others agree) resumes
//!   under 1 and under 4 ranks and lands where the run left alone lands.

use augment::{embedded, Dataset, Normalization, Split};
use byol::metrics::MetricsLog;
use byol::optim::OptimizerKind;
use byol::{ByolStep, NetworkConfig, Progress, TargetInit, TrainConfig, Trainer};
use collective::{Collective, Local, Single};
use models::{Arch, ResNetConfig, Stem};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tensor::{Device, Tensor};

fn temp_run(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("byol-dist-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// 64 training images, global batches of 16: 4 steps per epoch, 2 epochs.
fn tiny() -> (TrainConfig, Dataset) {
    let data = embedded::fashion_mnist_subset(Split::Train).unwrap();
    let data = data.subset(&(0..64).collect::<Vec<_>>()).unwrap();
    let config = TrainConfig {
        width: 2,
        hidden: 16,
        projection: 8,
        epochs: 2,
        batch_size: 16,
        // SGD: an update proportional to its gradient, so float rounding
        // in the sums stays rounding (Adam's first steps move every weight
        // by ±lr whatever its gradient, so a gradient near 0 can flip sign).
        optimizer: OptimizerKind::Sgd,
        lr: 0.05,
        warmup_epochs: 0.5,
        knn_every: 0,
        ..TrainConfig::default()
    };
    (config, data)
}

/// The record of a run: every step's and epoch's loss.
fn losses(run: &Path) -> Vec<f32> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["loss"].as_f64().unwrap() as f32
        })
        .collect()
}

/// Every trained weight of a trainer, in order.
fn weights(t: &Trainer) -> Vec<f32> {
    t.nets()
        .online_parameters()
        .iter()
        .flat_map(|(_, p)| p.value().to_vec())
        .collect()
}

fn close(a: &[f32], b: &[f32], tolerance: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    let worst = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / (1e-3 + y.abs()))
        .fold(0.0f32, f32::max);
    assert!(worst <= tolerance, "{what}: off by {worst} (relative)");
}

/// Trains `config` on `data` in `run` with `size` ranks (threads), until
/// the end, or until rank `stopper` asks to stop after step `stop_at`.
/// Returns every rank's final weights (rank 0's first).
fn train_group(
    size: usize,
    config: &TrainConfig,
    data: &Dataset,
    run: &Path,
    stop: Option<(usize, usize)>,
    resume: bool,
) -> Vec<Vec<f32>> {
    let groups: Vec<Arc<dyn Collective>> = if size == 1 {
        vec![Arc::new(Single)]
    } else {
        Local::group(size)
            .into_iter()
            .map(|g| Arc::new(g) as Arc<dyn Collective>)
            .collect()
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = groups
            .into_iter()
            .map(|group| {
                let (config, data) = (config.clone(), data.clone());
                s.spawn(move || {
                    let rank = group.rank();
                    let dev = Device::Cpu;
                    let mut t = if resume {
                        Trainer::resume_in(group, run, data, &dev).unwrap()
                    } else {
                        let norm = Normalization::fashion_mnist();
                        Trainer::start_in(group, config, data, norm, None, &dev, run).unwrap()
                    };
                    let mut log = if rank == 0 {
                        MetricsLog::open(&run.join("metrics.jsonl")).unwrap()
                    } else {
                        MetricsLog::sink()
                    };
                    let flag = t.stop_flag();
                    t.run(&mut log, None, &mut |event| {
                        if let (Progress::Step(r), Some((stopper, at))) = (event, stop) {
                            if rank == stopper && r.step == at {
                                flag.store(true, Ordering::Relaxed);
                            }
                        }
                    })
                    .unwrap();
                    weights(&t)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// The network of the gradient tests: a ResNet-18 of width 2 on one
/// channel, heads 8 -> 4.
fn tiny_network() -> NetworkConfig {
    NetworkConfig {
        encoder: ResNetConfig {
            arch: Arch::ResNet18,
            stem: Stem::Cifar,
            in_channels: 1,
            width: 2,
        },
        hidden: 8,
        projection: 4,
        predictor: true,
        target_init: TargetInit::Random,
    }
}

/// Two ranks without synchronised batch norm: the average of their
/// gradients is exactly that of one process accumulating the gradients of
/// the same two half-batches, so the updated weights are the same bits.
#[test]
fn two_ranks_average_gradients_as_one_process_accumulates_them() {
    let d = Device::Cpu;
    let config = tiny_network();
    let v1 = Tensor::randn(&[8, 1, 8, 8], 0.0, 1.0, 1, &d);
    let v2 = Tensor::randn(&[8, 1, 8, 8], 0.0, 1.0, 2, &d);
    let half = |t: &Tensor, r: usize| t.narrow(0, 4 * r, 4);
    // One process: the two half-batches in turn, gradients summed, halved.
    let mut one = ByolStep::new(config, 5, OptimizerKind::Lars, 1e-4, &d);
    let mut sums: Vec<Vec<f32>> = Vec::new();
    for r in 0..2 {
        one.forward_backward(&half(&v1, r), &half(&v2, r)).unwrap();
        let grads = one.parameters().iter().map(|p| p.grad().unwrap().to_vec());
        if sums.is_empty() {
            sums = grads.collect();
        } else {
            for (s, g) in sums.iter_mut().zip(grads) {
                s.iter_mut().zip(g).for_each(|(a, b)| *a += b);
            }
        }
    }
    for (p, s) in one.parameters().iter().zip(&sums) {
        let g: Vec<f32> = s.iter().map(|x| x * 0.5).collect();
        p.set_grad(Tensor::from_vec(g, &p.shape(), &d));
    }
    one.update(0.1, 0.9);
    let want: Vec<f32> = one
        .parameters()
        .iter()
        .flat_map(|p| p.value().to_vec())
        .collect();
    // Two ranks, one half each.
    let got: Vec<Vec<f32>> = std::thread::scope(|s| {
        let handles: Vec<_> = Local::group(2)
            .into_iter()
            .map(|g| {
                let (a, b) = (half(&v1, g.rank()), half(&v2, g.rank()));
                s.spawn(move || {
                    let d = Device::Cpu;
                    let mut step = ByolStep::new(config, 5, OptimizerKind::Lars, 1e-4, &d);
                    step.forward_backward(&a, &b).unwrap();
                    byol::distributed::average_gradients(&g, step.parameters(), &d);
                    step.update(0.1, 0.9);
                    step.parameters()
                        .iter()
                        .flat_map(|p| p.value().to_vec())
                        .collect::<Vec<f32>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&got[0]), bits(&want), "rank 0 against one process");
    assert_eq!(bits(&got[1]), bits(&want), "rank 1 against one process");
}

/// The gradients of one step on `views` (8 rows each), as `size` ranks
/// compute them, each on its slice of the rows, batch norm synchronised or
/// not, then averaged (`size` 1: one process on the whole batch).
fn group_gradients(size: usize, sync: bool, views: &(Tensor, Tensor)) -> Vec<Vec<f32>> {
    let config = tiny_network();
    let rows = views.0.shape()[0] / size;
    let grads = |step: &ByolStep| -> Vec<Vec<f32>> {
        step.parameters()
            .iter()
            .map(|p| p.grad().unwrap().to_vec())
            .collect()
    };
    if size == 1 {
        let mut step = ByolStep::new(config, 5, OptimizerKind::Sgd, 0.0, &Device::Cpu);
        step.forward_backward(&views.0, &views.1).unwrap();
        return grads(&step);
    }
    let all: Vec<Vec<Vec<f32>>> = std::thread::scope(|s| {
        let handles: Vec<_> = Local::group(size)
            .into_iter()
            .map(|g| {
                let a = views.0.narrow(0, rows * g.rank(), rows);
                let b = views.1.narrow(0, rows * g.rank(), rows);
                s.spawn(move || {
                    let d = Device::Cpu;
                    let g: Arc<dyn Collective> = Arc::new(g);
                    let mut step = ByolStep::new(config, 5, OptimizerKind::Sgd, 0.0, &d);
                    if sync {
                        step.set_batch_norm_group(Some(g.clone()));
                    }
                    step.forward_backward(&a, &b).unwrap();
                    byol::distributed::average_gradients(g.as_ref(), step.parameters(), &d);
                    grads(&step)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (rank, g) in all.iter().enumerate() {
        assert_eq!(g, &all[0], "rank {rank} of {size} holds other gradients");
    }
    all.into_iter().next().unwrap()
}

/// The largest difference between two sets of gradients, tensor by
/// tensor, relative to that tensor's largest gradient (or to a thousandth
/// of the largest of all, for tensors whose true gradient is zero, such as
/// the biases batch norm cancels, whose "gradient" is rounding alone).
fn gradient_gap(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    let largest = |v: &[f32]| v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let floor = 1e-3 * b.iter().map(|v| largest(v)).fold(0.0f32, f32::max);
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let gap = x
                .iter()
                .zip(y)
                .fold(0.0f32, |m, (p, q)| m.max((p - q).abs()));
            gap / largest(y).max(floor)
        })
        .fold(0.0, f32::max)
}

/// With synchronised batch norm, 2 and 4 ranks compute the gradient that
/// one process computes on the whole batch, up to float rounding: as close
/// as the one process is to itself when the batch's rows come in another
/// order. Without it, each rank normalises its own slice: other gradients.
#[test]
fn synchronised_batch_norm_gives_the_gradients_of_the_whole_batch() {
    let d = Device::Cpu;
    let views = (
        Tensor::randn(&[8, 1, 8, 8], 0.0, 1.0, 11, &d),
        Tensor::randn(&[8, 1, 8, 8], 0.0, 1.0, 12, &d),
    );
    let want = group_gradients(1, true, &views);
    // Rounding's own size: the same batch with its rows reversed.
    let reverse = |t: &Tensor| {
        let rows: Vec<Tensor> = (0..8).rev().map(|i| t.narrow(0, i, 1)).collect();
        Tensor::concat(&rows.iter().collect::<Vec<_>>(), 0)
    };
    let reversed = group_gradients(1, true, &(reverse(&views.0), reverse(&views.1)));
    let rounding = gradient_gap(&reversed, &want);
    assert!(
        rounding > 0.0 && rounding < 1e-3,
        "row order moved gradients by {rounding}"
    );
    for size in [2, 4] {
        let gap = gradient_gap(&group_gradients(size, true, &views), &want);
        assert!(
            gap <= 10.0 * rounding,
            "{size} synchronised ranks: gradients off by {gap} (row order alone: {rounding})"
        );
        let own = gradient_gap(&group_gradients(size, false, &views), &want);
        assert!(
            own > 100.0 * rounding,
            "{size} ranks normalising their own slices should differ, off by {own} only"
        );
    }
}

/// Through the trainer, 2 and 4 ranks with synchronised batch norm keep
/// bit-identical replicas and start where one process starts: the first
/// step's loss is the whole batch's. (Later steps drift apart the way any
/// two orders of summation do: this tiny network amplifies a rounding
/// difference several-fold per step, so their comparison would measure
/// the chaos, not the code; the gradient test above checks the maths.)
#[test]
fn ranks_with_synchronised_batch_norm_keep_identical_replicas() {
    let (config, data) = tiny();
    let alone = temp_run("alone");
    train_group(1, &config, &data, &alone, None, false);
    let want = losses(&alone);
    assert_eq!(want.len(), 8 + 2);
    for size in [2, 4] {
        let run = temp_run(&format!("ranks-{size}"));
        let all = train_group(size, &config, &data, &run, None, false);
        for (rank, w) in all.iter().enumerate() {
            assert_eq!(w, &all[0], "rank {rank} of {size} differs from rank 0");
        }
        let got = losses(&run);
        assert_eq!(got.len(), want.len());
        assert!(got.iter().all(|l| l.is_finite()));
        close(
            &got[..1],
            &want[..1],
            1e-5,
            &format!("{size} ranks: first loss"),
        );
        std::fs::remove_dir_all(run).unwrap();
    }
    std::fs::remove_dir_all(alone).unwrap();
}

/// A run of 2 ranks, stopped mid-epoch by a stop that only rank 1 asked
/// for (the ranks agree on it at the step), resumes under 1 rank and under
/// 4, and both land where the run left alone lands.
#[test]
fn a_run_of_two_ranks_resumes_under_one_and_under_four() {
    let (config, data) = tiny();
    let whole = temp_run("whole");
    let want = train_group(2, &config, &data, &whole, None, false);
    let want_losses = losses(&whole);
    for resume_with in [1, 4] {
        let run = temp_run(&format!("resume-{resume_with}"));
        train_group(2, &config, &data, &run, Some((1, 5)), false);
        // The ranks agree on a stop at the next step's sum: a checkpoint
        // after step 6 (7 steps done), in the middle of epoch 1.
        let stopped = std::fs::read_dir(run.join("checkpoints"))
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy() == "epoch-0001-step-000000007.json");
        assert!(stopped, "no checkpoint at the agreed stop");
        let got = train_group(resume_with, &config, &data, &run, None, true);
        close(
            &losses(&run),
            &want_losses,
            1e-3,
            &format!("resumed under {resume_with}"),
        );
        close(
            &got[0],
            &want[0],
            1e-2,
            &format!("weights resumed under {resume_with}"),
        );
        std::fs::remove_dir_all(run).unwrap();
    }
    std::fs::remove_dir_all(whole).unwrap();
}
