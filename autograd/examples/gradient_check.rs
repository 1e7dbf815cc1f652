//! Checks the tape's gradients against finite differences, on a tiny
//! two-layer network:
//!
//! ```text
//! hidden = relu(x·W1ᵀ + b1)          x: [8, 5], W1: [6, 5], b1: [6]
//! logits = hidden·W2ᵀ + b2           W2: [3, 6], b2: [3]
//! loss   = cross_entropy(logits, labels)   (mean over the 8 rows)
//! ```
//!
//! One backward pass gives the gradient of the loss with respect to every
//! parameter and to the input `x`. Each entry is then estimated again, the
//! slow way, by central differences: `(loss(v + h) - loss(v - h)) / 2h`,
//! two forward passes per entry. Both are printed with the largest relative
//! error.
//!
//! ```text
//! cargo run --release -p autograd --example gradient_check
//! ```

use autograd::{no_grad, Param, Tape, Var};
use tensor::{Device, Tensor};

/// The finite-difference step. The forward pass runs in `f32`, so a
/// smaller step drowns the difference in rounding; a larger one in the
/// curvature of the loss.
const H: f32 = 1e-2;

/// The network's parameters. They live outside any tape.
struct Net {
    w1: Param,
    b1: Param,
    w2: Param,
    b2: Param,
}

const LABELS: [usize; 8] = [0, 1, 2, 0, 1, 2, 0, 1];

/// The loss of `x` recorded on `tape`, and which hidden units are active
/// (the side of the relu's kink each pre-activation is on).
fn forward(tape: &Tape, x: &Var, net: &Net) -> (Var, Vec<bool>) {
    let pre = x.linear(&tape.param(&net.w1), Some(&tape.param(&net.b1)));
    let active: Vec<bool> = pre.value().to_vec().iter().map(|v| *v > 0.0).collect();
    let logits = pre
        .relu()
        .linear(&tape.param(&net.w2), Some(&tape.param(&net.b2)));
    (logits.cross_entropy(&LABELS), active)
}

/// The loss alone, recording nothing (what finite differences need).
fn loss_at(x: &Tensor, net: &Net) -> (f64, Vec<bool>) {
    no_grad(|| {
        let (loss, active) = forward(&Tape::new(), &Var::constant(x.clone()), net);
        (loss.item() as f64, active)
    })
}

/// `t` with `delta` added to its entry `i`.
fn nudged(t: &Tensor, i: usize, delta: f32) -> Tensor {
    let mut v = t.to_vec();
    v[i] += delta;
    Tensor::from_vec(v, t.shape(), &t.device())
}

/// Central differences of `loss_with` (the loss as a function of one
/// tensor) at `value`, entry by entry. An entry is `None` when a relu
/// changes side between `value - h` and `value + h`: the loss has a kink
/// there and the difference quotient means nothing.
fn finite_differences(
    value: &Tensor,
    loss_with: &dyn Fn(&Tensor) -> (f64, Vec<bool>),
) -> Vec<Option<f64>> {
    (0..value.numel())
        .map(|i| {
            let (plus, active_plus) = loss_with(&nudged(value, i, H));
            let (minus, active_minus) = loss_with(&nudged(value, i, -H));
            if active_plus != active_minus {
                return None;
            }
            Some((plus - minus) / (2.0 * H as f64))
        })
        .collect()
}

/// Prints the first entries of both gradients and returns the largest
/// relative error `|tape - fd| / max(|tape|, |fd|, 1e-3)` (the floor keeps
/// entries that are both nearly zero from dominating).
fn compare(name: &str, tape_grad: &Tensor, fd: &[Option<f64>]) -> f64 {
    let g = tape_grad.to_vec();
    let mut worst = 0.0f64;
    let mut skipped = 0;
    for (a, b) in g.iter().zip(fd) {
        match b {
            Some(b) => {
                let a = *a as f64;
                let rel = (a - b).abs() / a.abs().max(b.abs()).max(1e-3);
                worst = worst.max(rel);
            }
            None => skipped += 1,
        }
    }
    println!(
        "{name:>3} {:<8} max relative error {worst:.1e}{}",
        format!("{:?}", tape_grad.shape()),
        if skipped > 0 {
            format!(" ({skipped} entries skipped: a relu kink within ±h)")
        } else {
            String::new()
        }
    );
    for (i, (a, b)) in g.iter().zip(fd).take(4).enumerate() {
        let b = match b {
            Some(b) => format!("{b:+.6}"),
            None => "(kink)".to_string(),
        };
        println!("      [{i}] backward {a:+.6}   finite difference {b}");
    }
    worst
}

fn main() {
    let dev = Device::Cpu;
    let net = Net {
        w1: Param::new("w1", Tensor::randn(&[6, 5], 0.0, 0.5, 1, &dev)),
        b1: Param::new("b1", Tensor::randn(&[6], 0.0, 0.1, 2, &dev)),
        w2: Param::new("w2", Tensor::randn(&[3, 6], 0.0, 0.5, 3, &dev)),
        b2: Param::new("b2", Tensor::zeros(&[3], &dev)),
    };
    let x_value = Tensor::randn(&[8, 5], 0.0, 1.0, 4, &dev);

    // The backward pass: one forward on a fresh tape, one walk back.
    // `x` is a leaf, so its gradient comes back in `grads`; the parameters
    // receive theirs into `Param::grad`.
    let tape = Tape::new();
    let x = tape.leaf(x_value.clone());
    let (loss, _) = forward(&tape, &x, &net);
    let grads = tape.backward(&loss);
    println!(
        "loss = {:.6}, a tape of {} nodes; finite differences with h = {H}",
        loss.item(),
        tape.len()
    );
    println!();

    let mut worst = 0.0f64;
    for p in [&net.w1, &net.b1, &net.w2, &net.b2] {
        let original = p.value();
        let fd = finite_differences(&original, &|v: &Tensor| {
            p.set_value(v.clone());
            loss_at(&x_value, &net)
        });
        p.set_value(original);
        let tape_grad = p.grad().expect("every parameter is used");
        worst = worst.max(compare(p.name(), &tape_grad, &fd));
    }
    let fd = finite_differences(&x_value, &|v: &Tensor| loss_at(v, &net));
    let x_grad = grads.get(&x).expect("x is a leaf of this tape");
    worst = worst.max(compare("x", x_grad, &fd));

    println!();
    println!("largest relative error over all entries: {worst:.1e}");
    // f32 forward passes and h = 1e-2 leave about 1e-3 of noise and
    // curvature in the estimate; a wrong rule is off by far more.
    if worst < 2e-2 {
        println!("the backward pass agrees with finite differences");
    } else {
        println!("MISMATCH: a gradient rule disagrees with finite differences");
        std::process::exit(1);
    }
}
