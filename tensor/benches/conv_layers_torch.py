"""The PyTorch twin of conv_layers.rs: the convolutions of a ResNet-18 on
28x28 images, layer by layer, forward pass, input gradient and weight
gradient (and both gradients in one call, as autograd takes them), each
the fastest single call in milliseconds (timed in turn,
round after round, as `common::millis_side_by_side` does), then the
batch norms and ReLUs beside them: where PyTorch's oneDNN kernels stand
against ours, layer by layer.

Run beside the Rust benchmark, on the same machine, in one go:
    python3 tensor/benches/conv_layers_torch.py --width 16 &&
    cargo bench -p tensor --bench conv_layers -- --width 16
Needs `pip install torch` (CPU is enough).
"""
import argparse
import time

import torch
import torch.nn.functional as F


def side_by_side(calls):
    """The fastest single call of each of `calls`, in ms, one call of each
    per round, for at least 20 rounds and about 1.5 s per call."""
    for f in calls:
        f()
    best = [float("inf")] * len(calls)
    start, rounds = time.perf_counter(), 0
    while rounds < 20 or time.perf_counter() - start < 1.5 * len(calls):
        for i, f in enumerate(calls):
            t = time.perf_counter()
            f()
            best[i] = min(best[i], (time.perf_counter() - t) * 1e3)
        rounds += 1
    return best


def conv_calls(x, w, stride, padding):
    """Forward, input gradient, weight gradient, and both gradients in one
    call (as autograd asks for them: oneDNN then reorders `dy` once),
    through the op autograd itself calls (`aten::convolution_backward`)."""
    y = F.conv2d(x, w, stride=stride, padding=padding)
    dy = torch.randn_like(y)

    def grad(mask):
        return lambda: torch.ops.aten.convolution_backward(
            dy, x, w, None, [stride] * 2, [padding] * 2, [1, 1], False, [0, 0], 1, mask
        )

    return [
        lambda: F.conv2d(x, w, stride=stride, padding=padding),
        grad([True, False, False]),
        grad([False, True, False]),
        grad([True, True, False]),
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--width", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    n, width = args.batch, args.width
    torch.manual_seed(0)
    print(
        f"PyTorch {torch.__version__}, batch {n}, width {width}, {args.threads} threads "
        "(ms per call, fastest of the rounds)"
    )
    print(f"{'layer':>16} {'plane':>6} | {'fwd':>7} {'dx':>7} {'dw':>7} {'dx+dw':>7}")
    for stage, hw in enumerate([28, 14, 7, 4]):
        c = width << stage
        x = torch.randn(n, c, hw, hw)
        w = torch.randn(c, c, 3, 3) * 0.05
        t = side_by_side(conv_calls(x, w, 1, 1))
        print(f"{f'3x3 {c} -> {c}':>16} {f'{hw}x{hw}':>6} | " + " ".join(f"{v:7.2f}" for v in t))
    for stage, hw in enumerate([28, 14, 7]):
        c = width << stage
        for k in (3, 1):
            x = torch.randn(n, c, hw, hw)
            w = torch.randn(2 * c, c, k, k) * 0.05
            t = side_by_side(conv_calls(x, w, 2, k // 2))
            print(
                f"{f'{k}x{k} {c} -> {2 * c} s2':>16} {f'{hw}x{hw}':>6} | "
                + " ".join(f"{v:7.2f}" for v in t)
            )
    # Batch norm (training mode) + ReLU, forward and backward, per stage.
    print(f"{'bn+relu':>16} {'plane':>6} | {'fwd':>7} {'bwd':>7}")
    for stage, hw in enumerate([28, 14, 7, 4]):
        c = width << stage
        x = torch.randn(n, c, hw, hw, requires_grad=True)
        bn = torch.nn.BatchNorm2d(c).train()
        y = F.relu(bn(x))
        dy = torch.randn_like(y)
        t = side_by_side(
            [
                lambda: F.relu(bn(x)),
                lambda: torch.autograd.grad(y, x, dy, retain_graph=True),
            ]
        )
        print(f"{f'{c} ch':>16} {f'{hw}x{hw}':>6} | {t[0]:7.2f} {t[1]:7.2f}")


if __name__ == "__main__":
    main()
