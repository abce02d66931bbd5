"""Fast incremental learning of one new style: only its bank trains, on work done once.

E is frozen, so the encoder features of the training crops are computed once; D is frozen, so
backward computes only its input gradients; the painting's Gram matrices and the crops'
content features are computed once. What is left per step is one bank convolution, the
decoder and the loss network on a small batch, in bfloat16 where the CPU computes it.
The bank starts from the identity (the photo's reconstruction) or from the model's bank that
is closest to the painting, whichever has the lower loss, and learning stops at the step or
time budget, or when the loss stops improving.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from .data import find_images, load_image
from .devices import autocast_dtype
from .errors import StyleBankError
from .losses import LossNetwork, LossWeights, PerceptualLoss
from .model import StyleBankNet
from .ops import bank_conv2d
from .progress import ProgressFn

__all__ = ["LearnSettings", "LearnedBank", "SHIPPED_PHOTOS", "learn_bank", "training_crops"]

# 32 public-domain / CC0 photographs, 256 px (CREDITS.md there; examples/make_learning_assets.py)
SHIPPED_PHOTOS = Path(__file__).parent / "assets" / "photos"


@dataclass(frozen=True)
class LearnSettings:
    """How a new bank is learnt. The defaults fit about 3 minutes of a 2-core CPU."""

    steps: int = 1200  # at most
    time_budget_s: float = 180.0  # at most (0: no limit)
    crop: int = 128  # side of the training crops (the bank is a 3x3 filter: context is cheap)
    crops: int = 96  # distinct crops, encoded once
    batch: int = 4
    style_size: int = 256  # shorter side of the painting for its Gram matrices
    lr: float = 5e-3
    weights: LossWeights = field(default_factory=lambda: LossWeights(style=2.0))
    patience: int = 150  # stop when the smoothed loss has not improved by 0.5% for this long
    seed: int = 0

    def __post_init__(self) -> None:
        checks = {
            "steps": self.steps >= 1,
            "time_budget_s": self.time_budget_s >= 0,
            "crop": self.crop >= 16 and self.crop % 4 == 0,
            "crops": self.crops >= 1,
            "batch": self.batch >= 1,
            "style_size": self.style_size >= 16,
            "lr": self.lr > 0,
            "patience": self.patience >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise StyleBankError(f"invalid {name}: {getattr(self, name)!r}")


@dataclass
class LearnedBank:
    weight: Tensor  # [128, 128, k, k]
    bias: Tensor  # [128]
    steps: int  # steps run
    seconds: float
    loss: float  # smoothed total loss of the kept bank
    interrupted: bool  # stopped by Ctrl-C: the best bank so far
    losses: list[dict] = field(default_factory=list)


def training_crops(photos: Sequence[Path], n: int, size: int, seed: int = 0) -> Tensor:
    """`n` random crops [n,3,size,size] of the photos (each scaled so its shorter side is 1 to
    2 crop sides, flipped at random), taken in turn from each photo."""
    if not photos:
        raise StyleBankError("no photos to learn a style on")
    g = torch.Generator().manual_seed(seed)
    crops = []
    images = {}
    for i in range(n):
        path = photos[i % len(photos)]
        if path not in images:
            images[path] = load_image(str(path))  # [1,3,H,W]
        image = images[path]
        scale = size * (1 + float(torch.rand((), generator=g))) / min(image.shape[-2:])
        h, w = (max(size, round(s * scale)) for s in image.shape[-2:])
        resized = F.interpolate(image, size=(h, w), mode="bilinear", antialias=True)[0]
        top = int(torch.randint(h - size + 1, (), generator=g))
        left = int(torch.randint(w - size + 1, (), generator=g))
        crop = resized[:, top : top + size, left : left + size]
        crops.append(crop.flip(-1) if bool(torch.rand((), generator=g) < 0.5) else crop)
    return torch.stack(crops).clamp(0, 1)


def _identity_bank(model: StyleBankNet, device: torch.device) -> tuple[Tensor, Tensor]:
    k = model.kernel_size
    weight = torch.zeros(128, 128, k, k, device=device)
    weight[:, :, k // 2, k // 2] = torch.eye(128, device=device)
    return weight, torch.zeros(128, device=device)


def _starting_bank(
    model: StyleBankNet,
    loss: PerceptualLoss,
    crops: Tensor,
    features: Tensor,
    targets: Tensor,
    autocast: torch.autocast,
) -> tuple[Tensor, Tensor]:
    """The identity (the photo's reconstruction) or the model's bank with the lowest loss
    for the painting on a few crops: a painterly start learns faster than a blurred one."""
    device = features.device
    candidates = [_identity_bank(model, device)] + [
        (w.detach().float(), b.detach().float())
        for w, b in zip(model.bank.weights, model.bank.biases)
    ]
    pick = slice(0, min(8, len(crops)))
    ids = torch.zeros(len(crops[pick]), dtype=torch.long, device=device)
    scores = []
    with torch.no_grad(), autocast:
        for weight, bias in candidates:
            styled = bank_conv2d(features[pick], weight[None], bias[None])
            terms = loss(model.decoder(styled), crops[pick], ids, content_features=targets[pick])
            scores.append(float(terms["total"]))
    return candidates[scores.index(min(scores))]


def learn_bank(
    model: StyleBankNet,
    painting: Tensor,
    loss_net: LossNetwork,
    settings: LearnSettings | None = None,
    photos: Sequence[Path] | None = None,
    on_progress: ProgressFn | None = None,
) -> LearnedBank:
    """Learn a bank for `painting` ([3,H,W] in [0,1], any size) on `model`'s frozen E and D.

    `photos`: the training photos (default: the ones shipped with the package). The model is
    not changed; add the returned bank with `StyleBankNet.add_styles`. Ctrl-C stops learning
    and returns the best bank so far (`interrupted`).
    """
    settings = settings or LearnSettings()
    device = next(model.parameters()).device
    photos = list(photos) if photos is not None else find_images(str(SHIPPED_PHOTOS))
    started = time.perf_counter()
    was_training = model.training
    needed_grad = [p.requires_grad for p in model.parameters()]
    model.eval().requires_grad_(False)
    try:
        crops = training_crops(photos, settings.crops, settings.crop, settings.seed).to(device)
        style = F.interpolate(
            painting[None],
            scale_factor=settings.style_size / min(painting.shape[-2:]),
            mode="bilinear",
            antialias=True,
        )[0].clamp(0, 1)
        loss = PerceptualLoss(loss_net, [style.to(device)], settings.weights)
        with torch.no_grad():
            features = torch.cat([model.encode(c) for c in crops.split(16)])
            layer = loss_net.layers.content
            targets = torch.cat([loss_net(c)[layer].float() for c in crops.split(16)])
        return _optimise(model, loss, crops, features, targets, settings, on_progress, started)
    finally:
        model.train(was_training)
        for p, needed in zip(model.parameters(), needed_grad):
            p.requires_grad_(needed)


def _optimise(
    model: StyleBankNet,
    loss: PerceptualLoss,
    crops: Tensor,
    features: Tensor,
    targets: Tensor,
    settings: LearnSettings,
    on_progress: ProgressFn | None,
    started: float,
) -> LearnedBank:
    device = features.device
    dtype = autocast_dtype("auto", device)
    autocast = torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)
    start = _starting_bank(model, loss, crops, features, targets, autocast)
    weight, bias = (t.clone().requires_grad_(True) for t in start)
    optimizer = torch.optim.Adam([weight, bias], lr=settings.lr)
    g = torch.Generator().manual_seed(settings.seed + 1)
    style_ids = torch.zeros(settings.batch, dtype=torch.long, device=device)
    steps = settings.steps
    smoothed, best, best_step = math.inf, math.inf, 0
    kept: tuple[Tensor, Tensor] | None = None  # the bank at the best smoothed loss
    history: list[dict] = []
    loop_start = time.perf_counter()
    interrupted = False
    step = 0
    try:
        while step < steps:
            pick = torch.randint(len(crops), (settings.batch,), generator=g).to(device)
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                styled = bank_conv2d(features[pick], weight[None], bias[None])
                output = model.decoder(styled)
                terms = loss(output, crops[pick], style_ids, content_features=targets[pick])
            terms["total"].backward()
            optimizer.step()
            step += 1
            values = {name: float(value.detach()) for name, value in terms.items()}
            history.append(values)
            total = values["total"]
            smoothed = total if step == 1 else 0.95 * smoothed + 0.05 * total
            if step >= 20 and smoothed < best * 0.995:
                best, best_step = smoothed, step
                kept = (weight.detach().clone(), bias.detach().clone())
            if step == 5 and settings.time_budget_s:  # now the step time is known
                per_step = (time.perf_counter() - loop_start) / step
                left = settings.time_budget_s - (time.perf_counter() - started)
                steps = max(step, min(steps, step + int(left / per_step)))
            if on_progress is not None:
                on_progress(step, steps, values, time.perf_counter() - loop_start)
            if step - best_step >= settings.patience and best_step:
                break
    except KeyboardInterrupt:
        interrupted = True
    if kept is None or (not interrupted and smoothed <= best):
        kept = (weight.detach().clone(), bias.detach().clone())
        best = smoothed
    return LearnedBank(
        kept[0].float().cpu(),
        kept[1].float().cpu(),
        step,
        time.perf_counter() - started,
        best,
        interrupted,
        history,
    )
