"""Seconds per stylizing training step (forward, loss, backward, Adam), CPU by default.

Compares, on the same network and the same run:
  fused, 4 styles    one bank_conv2d call serves a batch whose images have 4 different styles
  fused, 1 style     the same batch, all images one style (target: 4 styles within 1.15x)
  loop, 4 styles     the usual way: an nn.Conv2d per bank, a loop over the styles in the batch
  loop, 1 style      the usual way with one style (one conv on the whole batch)
  package            what `train` runs: fused, 4 styles, bfloat16 autocast where the CPU
                     computes it natively (AVX512-BF16/AMX), the loss network channels_last
  plain              the plain PyTorch step: loop, 4 styles, float32, NCHW loss network
                     (target: package >= 2x faster)

    python bench/train_step.py [--size 256] [--batch 4] [--repeats 3] [--loss-net none]
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from torch import Tensor, nn

import stylebank_fast
from stylebank_fast import StyleBankNet
from stylebank_fast.devices import autocast_dtype
from stylebank_fast.losses import LOSS_NETWORKS, LossWeights, PerceptualLoss, build_loss_network


class LoopBank(nn.Module):
    """The usual StyleBank layer: one nn.Conv2d per style, a loop over the batch's styles."""

    def __init__(self, net: StyleBankNet) -> None:
        super().__init__()
        k = net.kernel_size
        self.convs = nn.ModuleList()
        for weight, bias in zip(net.bank.weights, net.bank.biases):
            conv = nn.Conv2d(128, 128, k, padding=k // 2, padding_mode="reflect")
            conv.weight, conv.bias = (
                nn.Parameter(weight.detach().clone()),
                nn.Parameter(bias.detach().clone()),
            )
            self.convs.append(conv)

    def forward(self, features: Tensor, ids: Tensor) -> Tensor:
        out = features.new_zeros(features.shape[0], 128, *features.shape[2:])
        for style in ids.unique().tolist():
            rows = (ids == style).nonzero().flatten()
            out = out.index_copy(0, rows, self.convs[style](features[rows]))
        return out


def seconds_per_step(
    forward, params, loss_fn, images: Tensor, ids: Tensor, repeats: int, bf16: bool = False
) -> float:
    optimizer = torch.optim.Adam(params, lr=1e-4)
    times = []
    for i in range(repeats + 1):  # the first step warms up (allocations, oneDNN primitives)
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(forward(images, ids), images, ids)
        loss.backward()
        optimizer.step()
        if i > 0:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per variant (median)")
    parser.add_argument(
        "--loss-net",
        default="none",
        choices=["none", *LOSS_NETWORKS],
        help="none: MSE to a fixed target, so the table shows the network itself",
    )
    parser.add_argument("--loss-net-weights", help="state dict of the loss network")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    n = args.batch
    net = StyleBankNet(n).to(device)
    loop_bank = LoopBank(net).to(device)
    images = torch.rand(n, 3, args.size, args.size, device=device)
    if args.loss_net == "none":
        target = torch.rand_like(images)

        def loss_fn(out, content, ids):
            return (out.float() - target).pow(2).mean()

        plain_loss_fn = loss_fn
    else:
        styles = [torch.rand(1, 3, args.size, args.size, device=device) for _ in range(n)]
        net_l = build_loss_network(args.loss_net, args.loss_net_weights, device)
        perceptual = PerceptualLoss(net_l, styles, LossWeights())

        def loss_fn(out, content, ids):
            return perceptual(out, content, ids)["total"]

        plain_net = copy.deepcopy(net_l).to(memory_format=torch.contiguous_format)
        plain_perceptual = PerceptualLoss(plain_net, styles, LossWeights())

        def plain_loss_fn(out, content, ids):
            return plain_perceptual(out, content, ids)["total"]

    shared = [*net.encoder.parameters(), *net.decoder.parameters()]
    variants = {
        "fused": (lambda x, ids: net(x, ids), list(net.parameters())),
        "loop": (
            lambda x, ids: net.decoder(loop_bank(net.encoder(x), ids)),
            [*shared, *loop_bank.parameters()],
        ),
    }
    mixes = {
        f"{n} styles": torch.arange(n, device=device),
        "1 style": torch.zeros(n, dtype=torch.long, device=device),
    }
    results = {}
    for name, (forward, params) in variants.items():
        for mix_name, ids in mixes.items():
            results[name, mix_name] = seconds_per_step(
                forward, params, loss_fn, images, ids, args.repeats
            )

    bf16 = autocast_dtype("auto", device) == torch.bfloat16  # what `train` runs by default
    results["package", f"{n} styles"] = seconds_per_step(
        variants["fused"][0],
        variants["fused"][1],
        loss_fn,
        images,
        mixes[f"{n} styles"],
        args.repeats,
        bf16=bf16,
    )
    results["plain", f"{n} styles"] = seconds_per_step(
        variants["loop"][0],
        variants["loop"][1],
        plain_loss_fn,
        images,
        mixes[f"{n} styles"],
        args.repeats,
    )
    print(
        f"# train step, batch {n}, {args.size}x{args.size}, {device}, {torch.get_num_threads()} threads, "
        f"loss {args.loss_net}, bank_conv2d: {'extension' if stylebank_fast.extension_available() else 'reference'}"
    )
    print("| variant | s/step | vs fused 1 style |")
    print("|---|---|---|")
    base = results["fused", "1 style"]
    for (name, mix_name), seconds in results.items():
        print(f"| {name}, {mix_name} | {seconds:.3f} | {seconds / base:.2f}x |")
    mixed = f"{n} styles"
    print(
        f"\nfused {mixed} / fused 1 style: {results['fused', mixed] / base:.2f}x (target <= 1.15x)"
    )
    print(f"fused {mixed} / loop {mixed}: {results['fused', mixed] / results['loop', mixed]:.2f}x")
    speedup = results["plain", mixed] / results["package", mixed]
    print(
        f"package step ({'bfloat16 autocast' if bf16 else 'float32'}) vs plain step: "
        f"{speedup:.2f}x faster (target >= 2x)"
    )


if __name__ == "__main__":
    main()
