"""The PyTorch half of the trajectory comparison (byol/examples/trajectory.rs
is the Rust half; docs/trajectory.md tells the story and the findings).

The same BYOL networks as the project's, with the project's tensor names,
so a state written by one side loads in the other:

    online.encoder.{conv1,bn1,layerL.B.{conv1,bn1,conv2,bn2,downsample.{0,1}}}
    online.projector.net.{0,1,3}   online.predictor.net.{0,1,3}
    target.encoder.*               target.projector.net.*

ResNet-18 with a CIFAR stem (3x3 stride-1 convolution, no max-pool), widths
w, 2w, 4w, 8w; heads Linear(bias) - BatchNorm1d - ReLU - Linear(no bias).
Each view goes through the networks on its own (batch-norm statistics per
view); the target runs in training mode under no_grad; loss = mean over the
batch of [2 - 2cos(p1, z2)] + [2 - 2cos(p2, z1)]; the optimiser steps, then
target = tau * target + (1 - tau) * online for parameters only (the target
keeps its own running statistics).

Subcommands (python3 scripts/trajectory.py SUB --help):
  init     PyTorch's initial networks (torchvision's initialisation; the
           target a copy of the online network or its own draw)
  views    the PyTorch reference run's augmentations of the first K*B
           Fashion-MNIST train images, as a tensor `views` [K,2,B,1,H,W]
  run      N steps from a state on views (batch s mod K at step s), constant
           learning rate and tau; losses to CSV, final state to safetensors
  compare  two runs: their loss curves side by side and the distance between
           their final weights
  fixture  writes byol/tests/fixtures/trajectory.safetensors for the
           project's test (tiny networks, Adam and LARS, float32 and float64)

Needs torch, numpy and safetensors (pip), and Fashion-MNIST (Debian's
dataset-fashion-mnist, or FASHION_MNIST_DIR).
"""
import argparse
import copy
import csv
import gzip
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

FMNIST_MEAN, FMNIST_STD = 0.2860, 0.3530


# --------------------------------------------------------------- networks

class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class Encoder(nn.Module):
    def __init__(self, width, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        cin = width
        for i, stride in enumerate([1, 2, 2, 2]):
            cout = width * 2 ** i
            setattr(self, f"layer{i + 1}", nn.Sequential(Block(cin, cout, stride), Block(cout, cout, 1)))
            cin = cout
        self.out_dim = cin
        for m in self.modules():  # torchvision's ResNet initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3))


class Head(nn.Module):
    def __init__(self, cin, hidden, cout):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(cin, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                                 nn.Linear(hidden, cout, bias=False))

    def forward(self, x):
        return self.net(x)


class Side(nn.Module):
    def __init__(self, width, channels, hidden, projection, predictor):
        super().__init__()
        self.encoder = Encoder(width, channels)
        self.projector = Head(self.encoder.out_dim, hidden, projection)
        if predictor:
            self.predictor = Head(projection, hidden, projection)

    def forward(self, x):
        z = self.projector(self.encoder(x))
        return self.predictor(z) if hasattr(self, "predictor") else z


class Byol(nn.Module):
    def __init__(self, width, channels, hidden, projection, target_copy):
        super().__init__()
        self.online = Side(width, channels, hidden, projection, True)
        if target_copy:
            self.target = copy.deepcopy(self.online)
            del self.target.predictor
        else:
            self.target = Side(width, channels, hidden, projection, False)
        for p in self.target.parameters():
            p.requires_grad_(False)


def sizes_of(state):
    w = state["online.encoder.conv1.weight"]
    return dict(width=w.shape[0], channels=w.shape[1],
                hidden=state["online.projector.net.0.weight"].shape[0],
                projection=state["online.projector.net.3.weight"].shape[0])


def load_state(model, state):
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise SystemExit(f"the state lacks {missing[:3]}...")
    for k, v in own.items():
        if k in state:
            v.copy_(state[k].to(v.dtype))


def save_state(model, path):
    save_file({k: v.detach().float().contiguous() for k, v in model.state_dict().items()
               if not k.endswith("num_batches_tracked")}, path)


# ------------------------------------------------------------- the step

def byol_loss(p, z):
    return 2 - 2 * (F.normalize(p, dim=-1) * F.normalize(z, dim=-1)).sum(dim=-1)


class Lars(torch.optim.Optimizer):
    """The project's LARS (byol/src/optim/lars.rs; the paper's): for a
    parameter of more than one dimension, g = grad + wd*w, then
    g *= eta*||w||/||g|| (1 where either norm is 0); others take the plain
    gradient. buf = g on the first step, momentum*buf + g after; w -= lr*buf."""

    def __init__(self, params, lr, weight_decay, eta=1e-3, momentum=0.9):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, eta=eta, momentum=momentum))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if p.ndim > 1:
                    g = g + group["weight_decay"] * p
                    wn, gn = p.norm(), g.norm()
                    ratio = torch.where((wn > 0) & (gn > 0), group["eta"] * wn / gn,
                                        torch.ones_like(wn))
                    g = g * ratio
                st = self.state[p]
                if "buf" not in st:
                    st["buf"] = g.clone()
                else:
                    st["buf"].mul_(group["momentum"]).add_(g)
                p.sub_(group["lr"] * st["buf"])


def make_optimizer(kind, params, lr, wd):
    """Adam (weight decay added to the gradient, skipping biases and
    batch-norm parameters: the parameters of one dimension, as the project
    does) or the project's LARS."""
    if kind == "adam":
        groups = [dict(params=[p for p in params if p.ndim > 1], weight_decay=wd),
                  dict(params=[p for p in params if p.ndim <= 1], weight_decay=0.0)]
        return torch.optim.Adam(groups, lr=lr)
    return Lars(params, lr=lr, weight_decay=wd)


def trajectory(state, views, steps, kind, lr, tau, wd=0.0, dtype=torch.float32):
    """Runs `steps` BYOL steps from `state` on `views` [K,2,B,C,H,W];
    returns (losses, final state dict)."""
    s = sizes_of(state)
    model = Byol(s["width"], s["channels"], s["hidden"], s["projection"], target_copy=False)
    load_state(model, state)
    model = model.to(dtype).train()
    views = views.to(dtype)
    opt = make_optimizer(kind, list(model.online.parameters()), lr, wd)
    target_params = dict(model.target.named_parameters())
    pairs = [(target_params[k], p) for k, p in model.online.named_parameters() if k in target_params]
    losses = []
    for step in range(steps):
        v1, v2 = views[step % views.shape[0]]
        p1, p2 = model.online(v1), model.online(v2)
        with torch.no_grad():
            z1, z2 = model.target(v1), model.target(v2)
        loss = (byol_loss(p1, z2) + byol_loss(p2, z1)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            for t, o in pairs:
                t.mul_(tau).add_((1 - tau) * o)
        losses.append(loss.item())
    return losses, {k: v.detach() for k, v in model.state_dict().items()
                    if not k.endswith("num_batches_tracked")}


# ----------------------------------------------------------------- views

def fashion_mnist(n):
    d = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
    with gzip.open(os.path.join(d, "train-images-idx3-ubyte.gz"), "rb") as f:
        raw = f.read()
    x = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(-1, 28, 28)[:n]
    return torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1)


def crop_flip(x, size, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3)):
    """Random resized crop (area fraction in `scale`, aspect in `ratio`,
    clamped to the image) to size x size, bilinear, and a horizontal flip
    with probability 1/2, through one affine sampling grid."""
    n = x.shape[0]
    area = torch.empty(n).uniform_(*scale)
    r = torch.exp(torch.empty(n).uniform_(math.log(ratio[0]), math.log(ratio[1])))
    w, h = torch.sqrt(area * r).clamp(max=1), torch.sqrt(area / r).clamp(max=1)
    cx = (torch.rand(n) * (1 - w) + w / 2) * 2 - 1
    cy = (torch.rand(n) * (1 - h) + h / 2) * 2 - 1
    flip = torch.where(torch.rand(n) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = w * flip, cx, h, cy
    grid = F.affine_grid(theta, [n, x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def jitter(x, p=0.8, s=0.4):
    """With probability p: brightness factor U(1-s, 1+s), then contrast factor
    U(1-s, 1+s) around the image's mean, clamped to [0, 1]."""
    n = x.shape[0]
    on = (torch.rand(n) < p).float().view(n, 1, 1, 1)
    b = torch.empty(n).uniform_(1 - s, 1 + s).view(n, 1, 1, 1)
    c = torch.empty(n).uniform_(1 - s, 1 + s).view(n, 1, 1, 1)
    y = (x * b).clamp(0, 1)
    m = y.mean(dim=(1, 2, 3), keepdim=True)
    y = ((y - m) * c + m).clamp(0, 1)
    return on * y + (1 - on) * x


def blur(x, p, k=3):
    """With probability p: a k x k Gaussian blur, sigma U(0.1, 2), reflected edges."""
    n = x.shape[0]
    s = torch.empty(n).uniform_(0.1, 2.0).view(n, 1)
    t = torch.arange(k).float() - (k - 1) / 2
    k1 = torch.exp(-t.view(1, -1) ** 2 / (2 * s ** 2))
    k1 = k1 / k1.sum(dim=1, keepdim=True)
    k2 = (k1[:, :, None] * k1[:, None, :]).unsqueeze(1)
    y = F.conv2d(F.pad(x.transpose(0, 1), [k // 2] * 4, mode="reflect"), k2, groups=n).transpose(0, 1)
    on = (torch.rand(n) < p).float().view(n, 1, 1, 1)
    return on * y + (1 - on) * x


def solarize(x, p):
    on = (torch.rand(x.shape[0]) < p).view(-1, 1, 1, 1)
    return torch.where(on & (x >= 0.5), 1 - x, x)


def reference_views(x, size):
    """The PyTorch reference run's two views (view 1: blur 1/2; view 2: blur
    1/10, solarize 1/5), normalised with Fashion-MNIST's mean and std."""
    v1 = blur(jitter(crop_flip(x, size)), 0.5)
    v2 = solarize(blur(jitter(crop_flip(x, size)), 0.1), 0.2)
    return (v1 - FMNIST_MEAN) / FMNIST_STD, (v2 - FMNIST_MEAN) / FMNIST_STD


def make_views(batches, batch, size, seed):
    torch.manual_seed(seed)
    x = fashion_mnist(batches * batch)
    out = []
    for k in range(batches):
        v1, v2 = reference_views(x[k * batch:(k + 1) * batch], size)
        out.append(torch.stack([v1, v2]))
    return torch.stack(out).contiguous()


# ------------------------------------------------------------ subcommands

def cmd_init(a):
    torch.manual_seed(a.seed)
    model = Byol(a.width, a.channels, a.hidden, a.projection, a.target == "copy")
    save_state(model, a.out)


def cmd_views(a):
    save_file({"views": make_views(a.batches, a.batch, a.size, a.seed)}, a.out)


def cmd_run(a):
    torch.set_num_threads(a.threads)
    state = load_file(a.state)
    views = load_file(a.views)["views"]
    dtype = torch.float64 if a.float64 else torch.float32
    losses, final = trajectory(state, views, a.steps, a.optimizer, a.lr, a.tau, a.weight_decay, dtype)
    with open(a.losses, "w") as f:
        f.write("step,loss\n")
        for i, v in enumerate(losses):
            f.write(f"{i},{v}\n")
    if a.out:
        save_file({k: v.float().contiguous() for k, v in final.items()}, a.out)


def read_losses(path):
    with open(path) as f:
        return np.array([float(r["loss"]) for r in csv.DictReader(f)])


def cmd_compare(a):
    la, lb = read_losses(a.losses[0]), read_losses(a.losses[1])
    n = min(len(la), len(lb))
    print(f"{'step':>6} {'A':>10} {'B':>10} {'B - A':>10}")
    for i in sorted(set(list(range(0, n, max(1, n // a.rows))) + [n - 1])):
        print(f"{i:>6} {la[i]:>10.5f} {lb[i]:>10.5f} {lb[i] - la[i]:>+10.5f}")
    w = max(1, n // 10)
    print(f"mean of the last {w} steps: A {la[n - w:n].mean():.5f}, B {lb[n - w:n].mean():.5f}")
    if a.states:
        sa, sb = load_file(a.states[0]), load_file(a.states[1])
        init = load_file(a.init) if a.init else None
        print(f"{'tensor':<45} {'|B-A|/|A|':>10}" + (f" {'|A-init|/|A|':>13}" if init else ""))
        for k in sorted(sa):
            if k.startswith("online.") and k.endswith("weight"):
                d = ((sb[k] - sa[k]).norm() / sa[k].norm()).item()
                line = f"{k:<45} {d:>10.2e}"
                if init:
                    line += f" {((sa[k] - init[k]).norm() / sa[k].norm()).item():>13.2e}"
                print(line)


def cmd_fixture(a):
    """Tiny networks, 16x16 views, Adam and LARS; for each, an ensemble of
    reference runs from the same start: float32 (row 0), float64, and
    float32 from the initial weights perturbed by a relative 1e-6 (four
    draws). How far the ensemble spreads is how far float rounding alone
    carries a run; see byol/tests/fixtures/README.md."""
    torch.manual_seed(0)
    model = Byol(4, 1, 32, 16, target_copy=False)
    init = {k: v.detach().float().clone() for k, v in model.state_dict().items()
            if not k.endswith("num_batches_tracked")}
    views = make_views(4, 16, 16, seed=1)
    out = {f"init.{k}": v.contiguous() for k, v in init.items()}
    out["views"] = views

    def perturbed(seed):
        g = torch.Generator().manual_seed(seed)
        return {k: v * (1 + 1e-6 * torch.randn(v.shape, generator=g)) if v.is_floating_point() else v
                for k, v in init.items()}

    def distance(f, ref, moved):
        return math.sqrt(sum(((f[k].double() - ref[k].double()) ** 2).sum().item()
                             for k in ref if trained(k))) / moved

    trained = lambda k: k.startswith("online.") and (k.endswith("weight") or k.endswith("bias"))
    for kind, lr, early in [("adam", 1e-3, 20), ("lars", 0.5, 2)]:
        tau, wd = 0.99, 1.5e-6
        starts = [(init, torch.float32), (init, torch.float64)]
        starts += [(perturbed(seed), torch.float32) for seed in range(1, 5)]
        runs = [trajectory(s, views, a.steps, kind, lr, tau, wd, d) for s, d in starts]
        # The first steps, where the runs still agree closely: whole weights.
        e32 = trajectory(init, views, early, kind, lr, tau, wd, torch.float32)[1]
        e64 = trajectory(init, views, early, kind, lr, tau, wd, torch.float64)[1]
        e_moved = math.sqrt(sum(((e32[k] - init[k]) ** 2).sum().item() for k in e32 if trained(k)))
        out[f"{kind}.hyper.lr_wd_tau_early"] = torch.tensor([lr, wd, tau, early])
        out[f"{kind}.losses"] = torch.tensor([l for l, _ in runs], dtype=torch.float64).float()
        out[f"{kind}.early_spread"] = torch.tensor([distance(e64, e32, e_moved)]).float()
        for k, v in e32.items():
            out[f"{kind}.early.{k}"] = v.float().contiguous()
        # The rest of the state then (the target, every running statistic),
        # each tensor's float64 distance as a fraction of its norm.
        rest = [k for k in e32 if not trained(k)]
        out[f"{kind}.early_rest_spread"] = torch.tensor(
            [max(((e64[k].double() - e32[k].double()).norm() / e32[k].double().norm().clamp(min=1e-12)).item()
                 for k in rest)]).float()
        # After many steps: the norm of every trained tensor, per run.
        for k in runs[0][1]:
            if trained(k):
                out[f"{kind}.norm.{k}"] = torch.tensor([f[k].double().norm().item() for _, f in runs]).float()
        ref = runs[0][1]
        moved = math.sqrt(sum(((ref[k] - init[k]) ** 2).sum().item() for k in ref if trained(k)))
        spread = max(distance(f, ref, moved) for _, f in runs)
        losses = np.array([l for l, _ in runs])
        print(f"{kind}: loss {losses[0, 0]:.5f} -> {losses[0, -1]:.5f}; after {early} steps float64 "
              f"is {distance(e64, e32, e_moved):.1e} of the change away; after {a.steps} the runs "
              f"spread over {spread:.2f} of it")
    save_file({k: v.contiguous() for k, v in out.items()}, a.out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("init")
    for flag, default in [("width", 16), ("channels", 1), ("hidden", 4096), ("projection", 256), ("seed", 0)]:
        p.add_argument(f"--{flag}", type=int, default=default)
    p.add_argument("--target", choices=["copy", "random"], default="copy")
    p.add_argument("--out", required=True)
    p = sub.add_parser("views")
    for flag, default in [("batches", 8), ("batch", 256), ("size", 28), ("seed", 0)]:
        p.add_argument(f"--{flag}", type=int, default=default)
    p.add_argument("--out", required=True)
    p = sub.add_parser("run")
    p.add_argument("--state", required=True)
    p.add_argument("--views", required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--optimizer", choices=["adam", "lars"], default="adam")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--tau", type=float, default=0.99)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--float64", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--losses", required=True)
    p.add_argument("--out")
    p = sub.add_parser("compare")
    p.add_argument("--losses", nargs=2, required=True)
    p.add_argument("--states", nargs=2)
    p.add_argument("--init")
    p.add_argument("--rows", type=int, default=12)
    p = sub.add_parser("fixture")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "byol", "tests",
                                                 "fixtures", "trajectory.safetensors"))
    a = ap.parse_args()
    {"init": cmd_init, "views": cmd_views, "run": cmd_run, "compare": cmd_compare,
     "fixture": cmd_fixture}[a.cmd](a)


if __name__ == "__main__":
    main()
