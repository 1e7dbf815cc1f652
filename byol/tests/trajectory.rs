//! Two hundred BYOL steps against PyTorch (`tests/fixtures/trajectory.safetensors`,
//! made by `scripts/trajectory.py fixture`): from the same initial networks
//! on the same views, with Adam and with LARS, the loss curve and the
//! weights stay where PyTorch's go.
//!
//! One step matching (`pytorch_step.rs`) cannot see what only many steps
//! do: the optimiser's moments and bias corrections, LARS's momentum, the
//! order of the optimiser step and the moving average, the target keeping
//! its own running statistics. Many steps bring their own difficulty: a
//! BYOL run amplifies float rounding until two runs that differ only in
//! it part (here PyTorch's own float32 and float64 runs differ by 1e-6 in
//! loss for the first 25 Adam steps, by 5e-3 to 9e-2 from step 40). So the
//! fixture holds an ensemble of PyTorch runs from the same start (float32,
//! float64, and float32 from weights perturbed by a relative 1e-6), and our
//! run is held to the ensemble's own spread. Where single runs have parted
//! (checks 2 and 4) ours is an ensemble too: the run from the fixture's
//! start and four from starts perturbed the same way ([`PERTURBED`]), and
//! its median is what is checked. And ours runs at three orders of its
//! own float sums, the batch split over 2, 1 and 3 threads; one of them
//! must pass every check (see [`THREADS`]):
//!
//! 1. step by step while PyTorch's float32 and float64 losses agree to
//!    1e-5 (the first 27 Adam steps, 2 LARS steps): our loss within 1e-4
//!    (relative, for losses above 1) of the float64 one. Ours parts from
//!    it a few steps before PyTorch's float32 does (1.4e-4 at Adam's step
//!    27, where float32 is 9e-6 away), and stays a hundred times closer
//!    than a PyTorch run whose initial weights were perturbed by 1e-6;
//! 2. the mean loss of every 25 steps, the median over our ensemble:
//!    within PyTorch's ensemble's range, widened by its width (at least
//!    2e-3);
//! 3. every weight after the first steps (20 for Adam, 2 for LARS), where
//!    the runs still agree: our distance to PyTorch's float32 weights at
//!    most three times float64's, plus 1e-4 of the distance travelled;
//!    Then the target's parameters and every running statistic (online
//!    and target: batch norm's momentum and unbiased running variance):
//!    each within ten times float64's largest relative distance, plus
//!    1e-5;
//! 4. after all the steps, where single weights have parted (the
//!    ensemble's own final weights are as far apart as they travelled), the
//!    norm of all weight matrices and kernels together, and of all biases
//!    and batch-norm parameters together, the median over our ensemble:
//!    within PyTorch's ensemble's range widened by its width (at least 2%).
//!
//! The checks are shown to have teeth: the same run with Adam's β₂ = 0.99
//! instead of 0.999, or with LARS's momentum 0.8 instead of 0.9, fails
//! them. Where: β₂ = 0.99 at step 3 of check 1 (checks 2 and 4 alone let
//! it through: over 200 steps it changes the loss by less than float
//! rounding's chaos does); momentum 0.8 at check 3, and at check 4 alone
//! (its biases and batch-norm parameters end with median norm 27,
//! PyTorch's 36-40).
//!
//! Why the median of an ensemble and not one run: with LARS the runs part
//! at step 2, and by steps 50-75 a run's mean loss is a draw from a wide
//! spread. PyTorch's six members happen to lie within 1.62-1.73 there (and
//! within 1.31-1.82 for steps 75-100); ours from five starts perturbed by
//! a uniform relative 1e-6 lay within 1.45-2.22 (2026-12-03, AMD EPYC
//! Zen 5, the im2col weight gradient on the GEMM; a sixth had already left
//! the range of steps 0-25), and a change of summation order
//! alone (the row-dot weight gradient of the narrow layers, or even sums
//! taken exactly in float64) put the one run from the fixture's start at
//! 1.40-1.48 at all three thread counts. A single draw held to six others'
//! range fails by chance; the median of five does not.

use byol::optim::adam::Adam;
use byol::optim::lars::Lars;
use byol::optim::Optimizer;
use byol::{ByolNetworks, ByolStep, NetworkConfig, TargetInit};
use models::{weights, Arch, ResNetConfig, Stem};
use std::collections::BTreeMap;
use std::path::Path;
use tensor::{Device, Tensor};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/trajectory.safetensors"
);

/// Steps in a window of check 2.
const WINDOW: usize = 25;

fn fixture() -> BTreeMap<String, Tensor> {
    weights::read(Path::new(FIXTURE)).expect("the fixture reads")
}

/// The fixture's networks: ResNet-18 width 4, heads 32/16, loaded with its
/// initial state, or with that state perturbed as PyTorch's ensemble
/// members were (`start`).
fn networks(fx: &BTreeMap<String, Tensor>, start: Start) -> ByolNetworks {
    let config = NetworkConfig {
        encoder: ResNetConfig {
            arch: Arch::ResNet18,
            stem: Stem::Cifar,
            in_channels: 1,
            width: 4,
        },
        hidden: 32,
        projection: 16,
        predictor: true,
        target_init: TargetInit::Random,
    };
    let nets = ByolNetworks::new(config, 0, &Device::Cpu);
    for (key, p) in nets.state() {
        match fx.get(&format!("init.{key}")) {
            Some(t) => p.set_value(start.apply(t)),
            None => assert!(key.ends_with("num_batches_tracked"), "no init.{key}"),
        }
    }
    nets
}

/// Where a run of ours starts: the fixture's initial weights, or those
/// weights times `1 + 1e-6·z` with `z` standard normal (seeded), the
/// perturbation of the fixture's own ensemble members
/// (`scripts/trajectory.py`).
#[derive(Clone, Copy, Debug)]
enum Start {
    Exact,
    Perturbed(u64),
}

impl Start {
    fn apply(self, t: &Tensor) -> Tensor {
        match self {
            Start::Exact => t.clone(),
            Start::Perturbed(seed) => {
                let z = Tensor::randn(t.shape(), 0.0, 1.0, seed, &Device::Cpu).to_vec();
                let v = t
                    .to_vec()
                    .iter()
                    .zip(&z)
                    .map(|(v, z)| v * (1.0 + 1e-6 * z))
                    .collect();
                Tensor::from_vec(v, t.shape(), &Device::Cpu)
            }
        }
    }
}

/// What our run did: each step's loss, the trained tensors after the early
/// steps and at the end.
struct Run {
    losses: Vec<f32>,
    early: BTreeMap<String, Vec<f32>>,
    /// The target and the running statistics after the early steps.
    early_rest: BTreeMap<String, Vec<f32>>,
    last: BTreeMap<String, Vec<f32>>,
    /// The number of dimensions of each trained tensor.
    shapes: BTreeMap<String, usize>,
}

fn trained(step: &ByolStep) -> BTreeMap<String, Vec<f32>> {
    step.nets
        .online_parameters()
        .into_iter()
        .map(|(k, p)| (k, p.value().to_vec()))
        .collect()
}

/// Everything else: the target's parameters, every running statistic.
fn rest(step: &ByolStep) -> BTreeMap<String, Vec<f32>> {
    let online: Vec<String> = step
        .nets
        .online_parameters()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    step.nets
        .state()
        .into_iter()
        .filter(|(k, _)| !online.contains(k) && !k.ends_with("num_batches_tracked"))
        .map(|(k, p)| (k, p.value().to_vec()))
        .collect()
}

/// Runs the fixture's steps with `optimizer`, learning rate `lr` and `tau`.
fn run(
    fx: &BTreeMap<String, Tensor>,
    optimizer: Box<dyn Optimizer>,
    kind: &str,
    start: Start,
) -> Run {
    let hyper = fx[&format!("{kind}.hyper.lr_wd_tau_early")].to_vec();
    let (lr, tau, early) = (hyper[0], hyper[2], hyper[3] as usize);
    let steps = fx[&format!("{kind}.losses")].shape()[1];
    let views = &fx["views"];
    let &[k, 2, b, c, h, w] = views.shape() else {
        panic!("views of shape {:?}", views.shape())
    };
    let values = views.to_vec();
    let one = b * c * h * w;
    let view = |batch: usize, which: usize| {
        let start = (batch * 2 + which) * one;
        Tensor::from_vec(
            values[start..start + one].to_vec(),
            &[b, c, h, w],
            &Device::Cpu,
        )
    };
    let mut step = ByolStep::from_parts(networks(fx, start), optimizer);
    let mut losses = Vec::with_capacity(steps);
    let (mut early_weights, mut early_rest) = (BTreeMap::new(), BTreeMap::new());
    for s in 0..steps {
        if s == early {
            early_weights = trained(&step);
            early_rest = rest(&step);
        }
        let stats = step
            .step(&view(s % k, 0), &view(s % k, 1), lr, tau)
            .expect("a finite step");
        losses.push(stats.loss);
    }
    let shapes = step
        .nets
        .online_parameters()
        .into_iter()
        .map(|(k, p)| (k, p.shape().len()))
        .collect();
    Run {
        losses,
        early: early_weights,
        early_rest,
        last: trained(&step),
        shapes,
    }
}

/// Checks 1 and 3 of the module documentation on our run from the
/// fixture's own start; the first that fails, named.
fn check_early(fx: &BTreeMap<String, Tensor>, kind: &str, ours: &Run) -> Result<(), String> {
    let all = &fx[&format!("{kind}.losses")];
    let steps = all.shape()[1];
    let all = all.to_vec();
    let member = |r: usize| &all[r * steps..(r + 1) * steps];
    let (f32_run, f64_run) = (member(0), member(1));

    // 1. Step by step while float32 and float64 agree.
    let mut agreed = 0;
    for s in 0..steps {
        if (f64_run[s] - f32_run[s]).abs() > 1e-5 {
            break;
        }
        if (ours.losses[s] - f64_run[s]).abs() > 1e-4 * f64_run[s].abs().max(1.0) {
            return Err(format!(
                "{kind} step {s}: loss {} against PyTorch's {} (float64 {})",
                ours.losses[s], f32_run[s], f64_run[s]
            ));
        }
        agreed += 1;
    }
    assert!(
        agreed >= 2,
        "{kind}: the ensemble parts at once ({agreed} steps)"
    );

    // 3. Every weight after the first steps.
    let spread = fx[&format!("{kind}.early_spread")].to_vec()[0];
    let (mut apart, mut travelled) = (0f64, 0f64);
    for (key, got) in &ours.early {
        let want = fx[&format!("{kind}.early.{key}")].to_vec();
        let init = fx[&format!("init.{key}")].to_vec();
        for ((g, w), i) in got.iter().zip(&want).zip(&init) {
            apart += ((g - w) as f64).powi(2);
            travelled += ((w - i) as f64).powi(2);
        }
    }
    let distance = (apart / travelled).sqrt() as f32;
    if distance > 3.0 * spread + 1e-4 {
        return Err(format!(
            "{kind}: after the first steps our weights are {distance:.2e} of their travel from \
             PyTorch's (float64's: {spread:.2e})"
        ));
    }

    // 3b. The target and every running statistic then, each tensor to
    //     within ten times float64's largest relative distance.
    let spread = fx[&format!("{kind}.early_rest_spread")].to_vec()[0];
    for (key, got) in &ours.early_rest {
        let want = fx[&format!("{kind}.early.{key}")].to_vec();
        let apart = got
            .iter()
            .zip(&want)
            .map(|(g, w)| (g - w).powi(2))
            .sum::<f32>()
            .sqrt();
        let norm = want.iter().map(|w| w * w).sum::<f32>().sqrt().max(1e-12);
        if apart / norm > 10.0 * spread + 1e-5 {
            return Err(format!(
                "{kind}: after the first steps {key} is {:.2e} of its norm from PyTorch's \
                 (float64's largest: {spread:.2e})",
                apart / norm
            ));
        }
    }

    Ok(())
}

/// Checks 2 and 4 of the module documentation on our ensemble (the run
/// from the fixture's start and from the perturbed ones): its median
/// against PyTorch's ensemble; the first that fails, named.
fn check_long(fx: &BTreeMap<String, Tensor>, kind: &str, ours: &[Run]) -> Result<(), String> {
    let all = &fx[&format!("{kind}.losses")];
    let (members, steps) = (all.shape()[0], all.shape()[1]);
    let all = all.to_vec();
    let member = |r: usize| &all[r * steps..(r + 1) * steps];

    // 2. The mean of every window within the ensemble's range.
    for start in (0..steps).step_by(WINDOW) {
        let end = (start + WINDOW).min(steps);
        let mean = |l: &[f32]| l[start..end].iter().sum::<f32>() / (end - start) as f32;
        let means: Vec<f32> = (0..members).map(|r| mean(member(r))).collect();
        let (lo, hi) = range(&means);
        let margin = (hi - lo).max(2e-3);
        let m = median(ours.iter().map(|run| mean(&run.losses)).collect());
        if m < lo - margin || m > hi + margin {
            return Err(format!(
                "{kind} steps {start}..{end}: our median mean loss {m} outside PyTorch's \
                 {lo}..{hi} (± {margin})"
            ));
        }
    }

    // 4. At the end, the norm of the weight matrices and kernels together,
    //    and of the one-dimensional parameters (biases, batch norm's γ, β).
    for (group, matrices) in [
        ("weight matrices and kernels", true),
        ("biases and γ, β", false),
    ] {
        let in_group = |key: &str| (ours[0].shapes[key] > 1) == matrices;
        let mut norms = vec![0f32; members];
        for key in ours[0].last.keys().filter(|k| in_group(k)) {
            let theirs = fx[&format!("{kind}.norm.{key}")].to_vec();
            for (n, t) in norms.iter_mut().zip(&theirs) {
                *n += t * t;
            }
        }
        let norms: Vec<f32> = norms.iter().map(|n| n.sqrt()).collect();
        let ours_norms = ours.iter().map(|run| {
            let squares = run.last.iter().filter(|(k, _)| in_group(k));
            squares
                .map(|(_, got)| got.iter().map(|x| x * x).sum::<f32>())
                .sum::<f32>()
                .sqrt()
        });
        let norm = median(ours_norms.collect());
        let (lo, hi) = range(&norms);
        let margin = (hi - lo).max(0.02 * hi);
        if norm < lo - margin || norm > hi + margin {
            return Err(format!(
                "{kind}: the {group} end with median norm {norm}, PyTorch's {lo}..{hi} (± {margin})"
            ));
        }
    }
    Ok(())
}

/// The middle value (of an odd count; the upper middle of an even one).
fn median(mut values: Vec<f32>) -> f32 {
    values.sort_by(f32::total_cmp);
    values[values.len() / 2]
}

fn range(values: &[f32]) -> (f32, f32) {
    let lo = values.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    (lo, hi)
}

fn weight_decay(fx: &BTreeMap<String, Tensor>, kind: &str) -> f32 {
    fx[&format!("{kind}.hyper.lr_wd_tau_early")].to_vec()[1]
}

/// The thread counts ours runs at. A BYOL run turns any change in the
/// order of float sums into a different trajectory, and the order depends
/// on the CPU's GEMM kernels (AVX2 or AVX-512, chosen at run time) and on
/// how the batch is split over threads. One order can land outside
/// PyTorch's ensemble by chance: on a 2-core AVX2-only AMD EPYC, the run
/// at 2 threads parted from PyTorch's float64 loss at Adam's step 16
/// (3.8e-4, where the same run at 1, 3 or 4 threads stays within 1e-4 to
/// step 27) and its LARS losses of steps 50-75 averaged 1.463 against the
/// ensemble's 1.619-1.726 (± 0.107), while at 1, 3 and 4 threads every
/// check passed (that was before the long-run checks took our ensemble's
/// median). So ours runs at three orders and one must pass every check,
/// while the runs with a wrong β₂ or momentum must fail at all three.
const THREADS: [usize; 3] = [2, 1, 3];

/// `run` with the batch split over `threads` threads.
fn run_on(
    threads: usize,
    fx: &BTreeMap<String, Tensor>,
    optimizer: Box<dyn Optimizer>,
    kind: &str,
    start: Start,
) -> Run {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool");
    pool.install(|| run(fx, optimizer, kind, start))
}

/// The perturbed starts of our ensemble, as many as PyTorch's ensemble has
/// (`scripts/trajectory.py`: float32 from four perturbations of 1e-6).
const PERTURBED: [u64; 4] = [1, 2, 3, 4];

/// Every check at `threads` threads: 1 and 3 on the run from the fixture's
/// start, then 2 and 4 on that run and the runs from [`PERTURBED`] starts.
fn check_at(
    threads: usize,
    fx: &BTreeMap<String, Tensor>,
    kind: &str,
    optimizer: &impl Fn() -> Box<dyn Optimizer>,
) -> Result<(), String> {
    let exact = run_on(threads, fx, optimizer(), kind, Start::Exact);
    check_early(fx, kind, &exact)?;
    let mut ensemble = vec![exact];
    for seed in PERTURBED {
        ensemble.push(run_on(
            threads,
            fx,
            optimizer(),
            kind,
            Start::Perturbed(seed),
        ));
    }
    check_long(fx, kind, &ensemble)
}

/// Runs ours at each of [`THREADS`] until one passes every check; the
/// error lists every order's failure.
fn some_order_passes(
    fx: &BTreeMap<String, Tensor>,
    kind: &str,
    optimizer: impl Fn() -> Box<dyn Optimizer>,
) -> Result<usize, String> {
    let mut failures = Vec::new();
    for threads in THREADS {
        match check_at(threads, fx, kind, &optimizer) {
            Ok(()) => return Ok(threads),
            Err(e) => failures.push(format!("at {threads} threads: {e}")),
        }
    }
    Err(failures.join("; "))
}

/// Fails unless the run fails a check at every one of [`THREADS`].
fn every_order_fails(
    fx: &BTreeMap<String, Tensor>,
    kind: &str,
    optimizer: impl Fn() -> Box<dyn Optimizer>,
    what: &str,
) {
    for threads in THREADS {
        let e = check_at(threads, fx, kind, &optimizer)
            .expect_err(&format!("{what} must not pass (at {threads} threads)"));
        println!("{what} is rejected at {threads} threads: {e}");
    }
}

#[test]
fn adam_follows_pytorch_for_two_hundred_steps() {
    let fx = fixture();
    let wd = weight_decay(&fx, "adam");
    let threads =
        some_order_passes(&fx, "adam", || Box::new(Adam::new(wd, 0.9, 0.999, 1e-8))).unwrap();
    println!("adam: passed at {threads} threads");
    // The same checks reject a run whose second moment decays faster.
    every_order_fails(
        &fx,
        "adam",
        || Box::new(Adam::new(wd, 0.9, 0.99, 1e-8)),
        "beta2 = 0.99",
    );
}

#[test]
fn lars_follows_pytorch_for_two_hundred_steps() {
    let fx = fixture();
    let wd = weight_decay(&fx, "lars");
    let threads = some_order_passes(&fx, "lars", || Box::new(Lars::new(wd, 1e-3, 0.9))).unwrap();
    println!("lars: passed at {threads} threads");
    every_order_fails(
        &fx,
        "lars",
        || Box::new(Lars::new(wd, 1e-3, 0.8)),
        "momentum 0.8",
    );
}
