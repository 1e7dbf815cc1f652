//! Every differentiable op against central finite differences, and (where a
//! GPU is found) the GPU's gradients against the CPU's.
//!
//! **The check.** Each case is a function `f` of one or more input tensors.
//! The tested scalar is `L = Σ_j f(x)_j · r_j` with fixed random weights `r`
//! (so every output element matters, each differently). Autograd's gradient
//! of `L` is compared, element by element, with the central difference
//!
//! ```text
//! ∂L/∂x_k ≈ (L(x + h e_k) - L(x - h e_k)) / 2h,    h = 1e-2,
//! ```
//!
//! where the forward pass runs in `f32` (as the ops do) but `L` is summed in
//! `f64`. The truncation error is `O(h²)` and the `f32` rounding of the
//! outputs adds about `1e-7·|f| / h`; both sit well inside the tolerance
//! `|autograd - fd| <= 2e-3 + 1e-2·|fd|`. Inputs are small, odd-sized, and
//! chosen away from kinks: relu inputs at least 0.1 from zero, max-pool
//! inputs distinct by at least 0.05 (more than `2h`, so no perturbation
//! changes a window's winner), log / sqrt / rsqrt / divisor inputs in
//! `[0.5, 2]`.

mod common;

use autograd::{no_grad, Tape, Var};
use common::{assert_close, devices};
use tensor::{Conv2dParams, Device, Pool2dParams, Tensor};

const STEP: f32 = 1e-2;
const ABS_TOL: f64 = 2e-3;
const REL_TOL: f64 = 1e-2;

/// A function of the input vars that returns the output var.
type CaseFn = Box<dyn Fn(&[Var]) -> Var>;

/// One function to differentiate, with the inputs to differentiate it at.
struct Case {
    name: &'static str,
    inputs: Vec<Tensor>,
    f: CaseFn,
}

fn case(name: &'static str, inputs: Vec<Tensor>, f: impl Fn(&[Var]) -> Var + 'static) -> Case {
    Case {
        name,
        inputs,
        f: Box::new(f),
    }
}

// ---- inputs -----------------------------------------------------------

fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape, 0.0, 1.0, seed, &Device::Cpu)
}

/// Uniform in `[0.5, 2]`: safe for log, sqrt, rsqrt and as a divisor.
fn positive(shape: &[usize], seed: u64) -> Tensor {
    Tensor::rand_uniform(shape, 0.5, 2.0, seed, &Device::Cpu)
}

/// Normal values pushed at least 0.1 away from zero (relu's kink).
fn away_from_zero(shape: &[usize], seed: u64) -> Tensor {
    let v = randn(shape, seed)
        .to_vec()
        .into_iter()
        .map(|x| x + 0.1 * x.signum())
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu)
}

/// A shuffled grid with spacing 0.05: all values distinct by more than 2h.
fn distinct(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut v: Vec<f32> = (0..n).map(|i| (i as f32 - n as f32 / 2.0) * 0.05).collect();
    let mut rng = rng::Rng::from_seed(seed);
    for i in (1..n).rev() {
        let j = (rng.next_f32() * (i + 1) as f32) as usize;
        v.swap(i, j.min(i));
    }
    Tensor::from_vec(v, shape, &Device::Cpu)
}

// ---- the cases --------------------------------------------------------

fn arith_cases() -> Vec<Case> {
    vec![
        case(
            "add, same shape",
            vec![randn(&[3, 5], 1), randn(&[3, 5], 2)],
            |v| v[0].add(&v[1]),
        ),
        case(
            "add, [2,3,4] + [4]",
            vec![randn(&[2, 3, 4], 3), randn(&[4], 4)],
            |v| v[0].add(&v[1]),
        ),
        case(
            "add, [2,1,4] + [3,1]",
            vec![randn(&[2, 1, 4], 5), randn(&[3, 1], 6)],
            |v| v[0].add(&v[1]),
        ),
        case(
            "sub, [3,5] - [5]",
            vec![randn(&[3, 5], 7), randn(&[5], 8)],
            |v| v[0].sub(&v[1]),
        ),
        case(
            "sub, [1,5] - [3,1]",
            vec![randn(&[1, 5], 9), randn(&[3, 1], 10)],
            |v| v[0].sub(&v[1]),
        ),
        case(
            "mul, [2,3,4] * [3,1]",
            vec![randn(&[2, 3, 4], 11), randn(&[3, 1], 12)],
            |v| v[0].mul(&v[1]),
        ),
        case(
            "mul, [3] * []",
            vec![randn(&[3], 13), randn(&[], 14)],
            |v| v[0].mul(&v[1]),
        ),
        case(
            "div, [3,5] / [5]",
            vec![randn(&[3, 5], 15), positive(&[5], 16)],
            |v| v[0].div(&v[1]),
        ),
        case(
            "div, [2,1,3] / [2,3,1]",
            vec![randn(&[2, 1, 3], 17), positive(&[2, 3, 1], 18)],
            |v| v[0].div(&v[1]),
        ),
        case("add_scalar", vec![randn(&[3, 5], 19)], |v| {
            v[0].add_scalar(1.5)
        }),
        case("sub_scalar", vec![randn(&[3, 5], 20)], |v| {
            v[0].sub_scalar(0.7)
        }),
        case("mul_scalar", vec![randn(&[3, 5], 21)], |v| {
            v[0].mul_scalar(-2.5)
        }),
        case("div_scalar", vec![randn(&[3, 5], 22)], |v| {
            v[0].div_scalar(3.0)
        }),
    ]
}

fn unary_cases() -> Vec<Case> {
    vec![
        case("neg", vec![randn(&[3, 5], 30)], |v| v[0].neg()),
        case("relu", vec![away_from_zero(&[3, 7], 31)], |v| v[0].relu()),
        case("exp", vec![randn(&[3, 5], 32)], |v| v[0].exp()),
        case("log", vec![positive(&[3, 5], 33)], |v| v[0].log()),
        case("sqrt", vec![positive(&[3, 5], 34)], |v| v[0].sqrt()),
        case("rsqrt", vec![positive(&[3, 5], 35)], |v| v[0].rsqrt()),
        case("square", vec![randn(&[3, 5], 36)], |v| v[0].square()),
    ]
}

fn matmul_cases() -> Vec<Case> {
    vec![
        case(
            "matmul [3,5]·[5,7]",
            vec![randn(&[3, 5], 40), randn(&[5, 7], 41)],
            |v| v[0].matmul(&v[1]),
        ),
        case(
            "matmul batched [2,3,4]·[2,4,5]",
            vec![randn(&[2, 3, 4], 42), randn(&[2, 4, 5], 43)],
            |v| v[0].matmul(&v[1]),
        ),
        case(
            "matmul_nt [3,5]·[7,5]ᵀ",
            vec![randn(&[3, 5], 44), randn(&[7, 5], 45)],
            |v| v[0].matmul_nt(&v[1]),
        ),
        case(
            "matmul_tn [5,3]ᵀ·[5,7]",
            vec![randn(&[5, 3], 46), randn(&[5, 7], 47)],
            |v| v[0].matmul_tn(&v[1]),
        ),
        case(
            "matmul_nt batched",
            vec![randn(&[2, 3, 4], 48), randn(&[2, 5, 4], 49)],
            |v| v[0].matmul_nt(&v[1]),
        ),
        case(
            "matmul_tn batched",
            vec![randn(&[2, 4, 3], 50), randn(&[2, 4, 5], 51)],
            |v| v[0].matmul_tn(&v[1]),
        ),
        case(
            "linear",
            vec![randn(&[4, 5], 52), randn(&[3, 5], 53), randn(&[3], 54)],
            |v| v[0].linear(&v[1], Some(&v[2])),
        ),
    ]
}

fn reduce_cases() -> Vec<Case> {
    vec![
        case("sum axis 1", vec![randn(&[2, 3, 4], 60)], |v| {
            v[0].sum(&[1], false)
        }),
        case("sum axes 0,2 keep", vec![randn(&[2, 3, 5], 61)], |v| {
            v[0].sum(&[0, 2], true)
        }),
        case("mean axis 1", vec![randn(&[2, 3, 4], 62)], |v| {
            v[0].mean(&[1], false)
        }),
        case("mean axes 0,2 keep", vec![randn(&[3, 2, 5], 63)], |v| {
            v[0].mean(&[0, 2], true)
        }),
        case("sum_all", vec![randn(&[3, 5], 64)], |v| v[0].sum_all()),
        case("mean_all", vec![randn(&[3, 5], 65)], |v| v[0].mean_all()),
    ]
}

fn shape_cases() -> Vec<Case> {
    vec![
        case("reshape", vec![randn(&[2, 3, 4], 70)], |v| {
            v[0].reshape(&[6, 4])
        }),
        case("transpose", vec![randn(&[2, 3, 4], 71)], |v| {
            v[0].transpose(0, 2)
        }),
        case("permute", vec![randn(&[2, 3, 4], 72)], |v| {
            v[0].permute(&[2, 0, 1])
        }),
        case(
            "concat axis 0",
            vec![randn(&[2, 3], 73), randn(&[4, 3], 74)],
            |v| Var::concat(&[&v[0], &v[1]], 0),
        ),
        case(
            "concat axis 1",
            vec![randn(&[2, 1, 3], 75), randn(&[2, 2, 3], 76)],
            |v| Var::concat(&[&v[0], &v[1]], 1),
        ),
        case("split (one piece unused)", vec![randn(&[3, 5], 77)], |v| {
            let p = v[0].split(&[2, 1, 2], 1);
            Var::concat(&[&p[2], &p[0].mul_scalar(3.0)], 1)
        }),
        case("narrow", vec![randn(&[4, 5], 78)], |v| v[0].narrow(1, 1, 3)),
        case(
            "index_select axis 0, repeats",
            vec![randn(&[5, 3], 79)],
            |v| v[0].index_select(0, &[4, 0, 4, 2]),
        ),
        case("index_select axis 1", vec![randn(&[2, 5, 3], 80)], |v| {
            v[0].index_select(1, &[1, 1, 3])
        }),
        case("index_select axis 2", vec![randn(&[2, 3, 4], 81)], |v| {
            v[0].index_select(2, &[3, 0])
        }),
    ]
}

fn conv_pool_cases() -> Vec<Case> {
    let conv = |name, x: &[usize], w: &[usize], p: Conv2dParams, seed| {
        case(name, vec![randn(x, seed), randn(w, seed + 1)], move |v| {
            v[0].conv2d(&v[1], p)
        })
    };
    vec![
        conv(
            "conv2d 3x3 s1 p1",
            &[2, 3, 5, 5],
            &[4, 3, 3, 3],
            Conv2dParams::new(1, 1),
            90,
        ),
        conv(
            "conv2d 3x3 s2 p1",
            &[2, 2, 7, 6],
            &[3, 2, 3, 3],
            Conv2dParams::new(2, 1),
            92,
        ),
        conv(
            "conv2d 1x1 s2 p0",
            &[2, 2, 5, 5],
            &[3, 2, 1, 1],
            Conv2dParams::new(2, 0),
            94,
        ),
        conv(
            "conv2d 5x5 s2 p2",
            &[1, 2, 7, 7],
            &[2, 2, 5, 5],
            Conv2dParams::new(2, 2),
            96,
        ),
        conv(
            "conv2d 3x2 stride [1,2] pad [0,1]",
            &[1, 2, 5, 6],
            &[3, 2, 3, 2],
            Conv2dParams {
                stride: [1, 2],
                padding: [0, 1],
            },
            98,
        ),
        case(
            "max_pool2d k3 s2 p1",
            vec![distinct(&[2, 2, 7, 7], 100)],
            |v| v[0].max_pool2d(Pool2dParams::new(3, 2, 1)),
        ),
        case(
            "max_pool2d k2 s2 p0",
            vec![distinct(&[1, 3, 6, 5], 101)],
            |v| v[0].max_pool2d(Pool2dParams::new(2, 2, 0)),
        ),
        case("global_avg_pool2d", vec![randn(&[2, 3, 4, 5], 102)], |v| {
            v[0].global_avg_pool2d()
        }),
    ]
}

fn batchnorm_cases() -> Vec<Case> {
    let (rm, rv) = (randn(&[3], 113), positive(&[3], 114));
    vec![
        case(
            "batch_norm_train [3,2,3,3]",
            vec![
                randn(&[3, 2, 3, 3], 110),
                positive(&[2], 111),
                randn(&[2], 112),
            ],
            |v| v[0].batch_norm_train(&v[1], &v[2], 1e-5).y,
        ),
        case(
            "batch_norm_train [5,3]",
            vec![randn(&[5, 3], 115), positive(&[3], 116), randn(&[3], 117)],
            |v| v[0].batch_norm_train(&v[1], &v[2], 1e-5).y,
        ),
        case(
            "batch_norm_eval [2,3,3,2]",
            vec![
                randn(&[2, 3, 3, 2], 118),
                positive(&[3], 119),
                randn(&[3], 120),
            ],
            move |v| {
                let (rm, rv) = (rm.to_device(&v[0].device()), rv.to_device(&v[0].device()));
                v[0].batch_norm_eval(&v[1], &v[2], &rm, &rv, 1e-5)
            },
        ),
    ]
}

fn softmax_loss_normalize_cases() -> Vec<Case> {
    vec![
        case("softmax [3,5]", vec![randn(&[3, 5], 130)], |v| {
            v[0].softmax()
        }),
        case("softmax [2,3,4]", vec![randn(&[2, 3, 4], 131)], |v| {
            v[0].softmax()
        }),
        case("log_softmax [3,5]", vec![randn(&[3, 5], 132)], |v| {
            v[0].log_softmax()
        }),
        case("cross_entropy [4,5]", vec![randn(&[4, 5], 133)], |v| {
            v[0].cross_entropy(&[0, 3, 4, 3])
        }),
        case("l2_normalize [3,5]", vec![randn(&[3, 5], 134)], |v| {
            v[0].l2_normalize(1e-12)
        }),
        case("l2_normalize [2,2,4]", vec![randn(&[2, 2, 4], 135)], |v| {
            v[0].l2_normalize(1e-12)
        }),
        case(
            "cosine_similarity [3,5]",
            vec![randn(&[3, 5], 136), randn(&[3, 5], 137)],
            |v| v[0].cosine_similarity(&v[1], 1e-8),
        ),
        case(
            "BYOL loss mean(2 - 2 cos)",
            vec![randn(&[4, 6], 138), randn(&[4, 6], 139)],
            |v| {
                v[0].cosine_similarity(&v[1], 1e-8)
                    .mul_scalar(-2.0)
                    .add_scalar(2.0)
                    .mean_all()
            },
        ),
    ]
}

fn composite_cases() -> Vec<Case> {
    vec![
        case("x used twice: x·x + x", vec![randn(&[3, 4], 150)], |v| {
            v[0].mul(&v[0]).add(&v[0])
        }),
        case(
            "small conv net to cross-entropy",
            vec![
                randn(&[3, 1, 6, 6], 151),
                randn(&[2, 1, 3, 3], 152),
                positive(&[2], 153),
                randn(&[2], 154),
                randn(&[4, 2], 155),
            ],
            |v| {
                let h = v[0].conv2d(&v[1], Conv2dParams::new(1, 1));
                let h = h.batch_norm_train(&v[2], &v[3], 1e-5).y.relu();
                let h = h.global_avg_pool2d();
                h.linear(&v[4], None).cross_entropy(&[1, 3, 0])
            },
        ),
    ]
}

fn all_cases() -> Vec<Case> {
    let mut all = Vec::new();
    for group in [
        arith_cases(),
        unary_cases(),
        matmul_cases(),
        reduce_cases(),
        shape_cases(),
        conv_pool_cases(),
        batchnorm_cases(),
        softmax_loss_normalize_cases(),
        composite_cases(),
    ] {
        all.extend(group);
    }
    all
}

// ---- the machinery ----------------------------------------------------

/// The fixed weights `r` of the tested scalar `L = Σ f(x)·r`.
fn weights(shape: &[usize]) -> Tensor {
    randn(shape, 7777)
}

/// The output and autograd's gradient of `L` for each input, on `dev`.
fn autograd_grads(c: &Case, dev: &Device) -> (Tensor, Vec<Tensor>) {
    let tape = Tape::new();
    let vars: Vec<Var> = c
        .inputs
        .iter()
        .map(|t| tape.leaf(t.to_device(dev)))
        .collect();
    let y = (c.f)(&vars);
    let r = Var::constant(weights(y.shape()).to_device(dev));
    let loss = y.mul(&r).sum_all();
    let grads = tape.backward(&loss);
    let g = vars
        .iter()
        .map(|v| {
            grads
                .get(v)
                .cloned()
                .unwrap_or_else(|| Tensor::zeros(v.shape(), dev))
        })
        .collect();
    (y.value().clone(), g)
}

/// `L` at `inputs`, summed in f64, with nothing recorded.
fn loss_f64(c: &Case, inputs: &[Tensor]) -> f64 {
    let vars: Vec<Var> = inputs.iter().cloned().map(Var::constant).collect();
    let y = no_grad(|| (c.f)(&vars));
    let r = weights(y.shape()).to_vec();
    y.value()
        .to_vec()
        .iter()
        .zip(&r)
        .map(|(&a, &b)| a as f64 * b as f64)
        .sum()
}

/// Compares autograd with central differences for every element of every
/// input; returns a description of each mismatch.
fn check_case(c: &Case) -> Vec<String> {
    let (_, analytic) = autograd_grads(c, &Device::Cpu);
    let mut failures = Vec::new();
    for (i, input) in c.inputs.iter().enumerate() {
        let base = input.to_vec();
        let got = analytic[i].to_vec();
        for k in 0..base.len() {
            let at = |delta: f32| {
                let mut v = base.clone();
                v[k] += delta;
                let mut inputs = c.inputs.clone();
                inputs[i] = Tensor::from_vec(v, input.shape(), &Device::Cpu);
                loss_f64(c, &inputs)
            };
            let fd = (at(STEP) - at(-STEP)) / (2.0 * STEP as f64);
            let a = got[k] as f64;
            if (a - fd).abs() > ABS_TOL + REL_TOL * fd.abs() {
                failures.push(format!(
                    "{}: input {i} element {k}: autograd {a:.6}, finite difference {fd:.6}",
                    c.name
                ));
            }
        }
    }
    failures
}

fn check_all(cases: Vec<Case>) {
    let failures: Vec<String> = cases.iter().flat_map(check_case).collect();
    assert!(
        failures.is_empty(),
        "{} gradient mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---- the tests --------------------------------------------------------

#[test]
fn arithmetic_with_broadcasting_matches_finite_differences() {
    check_all(arith_cases());
}

#[test]
fn unary_ops_match_finite_differences() {
    check_all(unary_cases());
}

#[test]
fn matrix_products_match_finite_differences() {
    check_all(matmul_cases());
}

#[test]
fn reductions_match_finite_differences() {
    check_all(reduce_cases());
}

#[test]
fn shape_ops_match_finite_differences() {
    check_all(shape_cases());
}

#[test]
fn convolution_and_pooling_match_finite_differences() {
    check_all(conv_pool_cases());
}

#[test]
fn batch_norm_matches_finite_differences() {
    check_all(batchnorm_cases());
}

#[test]
fn softmax_losses_and_normalisation_match_finite_differences() {
    check_all(softmax_loss_normalize_cases());
}

#[test]
fn composite_graphs_match_finite_differences() {
    check_all(composite_cases());
}

/// The fused training-mode batch norm against the same computation recorded
/// op by op (mean, sub, square, mean, add, rsqrt, mul, add): same output,
/// same gradients, to float rounding.
#[test]
fn fused_batch_norm_equals_the_composed_one() {
    let eps = 1e-5;
    for shape in [&[4, 3, 5, 3][..], &[7, 5][..]] {
        let c = shape[1];
        let (x, w, b) = (randn(shape, 160), positive(&[c], 161), randn(&[c], 162));
        let composed = move |v: &[Var]| {
            let axes: Vec<usize> = (0..v[0].rank()).filter(|&a| a != 1).collect();
            let mut bshape = vec![1; v[0].rank()];
            bshape[1] = c;
            let mean = v[0].mean(&axes, true);
            let centred = v[0].sub(&mean);
            let var = centred.square().mean(&axes, true);
            let x_hat = centred.mul(&var.add_scalar(eps).rsqrt());
            x_hat
                .mul(&v[1].reshape(&bshape))
                .add(&v[2].reshape(&bshape))
        };
        let fused = case("fused", vec![x.clone(), w.clone(), b.clone()], move |v| {
            v[0].batch_norm_train(&v[1], &v[2], eps).y
        });
        let composed = case("composed", vec![x, w, b], composed);
        let (y_f, g_f) = autograd_grads(&fused, &Device::Cpu);
        let (y_c, g_c) = autograd_grads(&composed, &Device::Cpu);
        assert_close(&y_f, &y_c, 1e-5, 1e-4, "batch norm output");
        for (name, (f, c)) in ["dx", "dweight", "dbias"].iter().zip(g_f.iter().zip(&g_c)) {
            assert_close(f, c, 1e-5, 1e-4, &format!("batch norm {name} {shape:?}"));
        }
    }
}

/// The fused cosine similarity against l2-normalise, multiply and sum.
#[test]
fn fused_cosine_similarity_equals_the_composed_one() {
    let inputs = vec![randn(&[5, 7], 170), randn(&[5, 7], 171)];
    let fused = case("fused", inputs.clone(), |v| {
        v[0].cosine_similarity(&v[1], 1e-12)
    });
    let composed = case("composed", inputs, |v| {
        v[0].l2_normalize(1e-12)
            .mul(&v[1].l2_normalize(1e-12))
            .sum(&[1], false)
    });
    let (y_f, g_f) = autograd_grads(&fused, &Device::Cpu);
    let (y_c, g_c) = autograd_grads(&composed, &Device::Cpu);
    assert_close(&y_f, &y_c, 1e-6, 1e-5, "cosine");
    for (f, c) in g_f.iter().zip(&g_c) {
        assert_close(f, c, 1e-6, 1e-5, "cosine gradient");
    }
}

/// Every case's output and gradients on each non-CPU device in
/// [`devices`] against the CPU's. Tolerance `1e-4 + 1e-3·|cpu|`: the GPU
/// sums in a different order and its `exp`/`sqrt` may differ in the last
/// bits. With no GPU found the loop has nothing to compare (and says so).
#[test]
fn gradients_on_every_device_match_the_cpu() {
    for dev in devices().into_iter().filter(|d| d.is_gpu()) {
        for c in all_cases() {
            let (y_cpu, g_cpu) = autograd_grads(&c, &Device::Cpu);
            let (y_dev, g_dev) = autograd_grads(&c, &dev);
            let what = format!("{} on {dev}", c.name);
            assert_close(&y_dev, &y_cpu, 1e-4, 1e-3, &format!("{what}: output"));
            for (i, (g, want)) in g_dev.iter().zip(&g_cpu).enumerate() {
                assert_close(g, want, 1e-4, 1e-3, &format!("{what}: gradient {i}"));
            }
        }
    }
}
