"""The PyTorch twin of resnet_bench.rs: training-mode forward + backward of a
ResNet-18 encoder (CIFAR stem, no fc), loss = sum(features * r), images/s as
the median of the timed steps after two warm-up steps, 2 threads.

Run beside the Rust benchmark, on the same machine, in one go:
    python3 models/benches/resnet_torch.py && cargo bench -p models --bench resnet_bench
Needs `pip install torch torchvision` (CPU is enough). `--profile` then
times one more step op by op with torch.profiler (the counterpart of
resnet_bench's `--profile`) and prints its table; `--only w16` (or `w64`)
runs one case, as resnet_bench's `--only` does.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torchvision


def encoder(in_ch, width):
    """torchvision's ResNet-18 with a CIFAR stem, base width `width`, no fc."""
    block = torchvision.models.resnet.BasicBlock
    net = torchvision.models.resnet.ResNet(block, [2, 2, 2, 2])
    net.inplanes = width  # _make_layer reads and advances this
    net.conv1 = nn.Conv2d(in_ch, width, 3, 1, 1, bias=False)
    net.bn1 = nn.BatchNorm2d(width)
    net.maxpool = nn.Identity()
    net.layer1 = net._make_layer(block, width, 2)
    net.layer2 = net._make_layer(block, width * 2, 2, stride=2)
    net.layer3 = net._make_layer(block, width * 4, 2, stride=2)
    net.layer4 = net._make_layer(block, width * 8, 2, stride=2)
    net.fc = nn.Identity()
    return net


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--only", choices=["w16", "w64"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = {}
    for name, ch, size, batch, width in [("w64", 3, 32, 128, 64), ("w16", 1, 28, 256, 16)]:
        if args.only and args.only != name:
            continue
        net = encoder(ch, width).train()
        x = torch.randn(batch, ch, size, size)
        r = torch.randn(batch, width * 8)

        def step():
            net.zero_grad(set_to_none=True)
            (net(x) * r).sum().backward()

        for _ in range(2):
            step()
        rates = []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            step()
            rates.append(batch / (time.perf_counter() - t0))
        med = statistics.median(rates)
        if args.profile:
            from torch.profiler import ProfilerActivity, profile

            with profile(activities=[ProfilerActivity.CPU]) as prof:
                step()
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
        print(f"PyTorch ResNet-18 {name}: {ch}x{size}x{size}, batch {batch}, width {width}: {med:.1f} images/s")
        out[f"{name}_img_s"] = med
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    main()
