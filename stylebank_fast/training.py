"""Joint (T+1) training of a StyleBankNet and incremental learning of new styles.

The randomness of step `s` (images, crops, flips, styles) comes from a generator seeded with
(seed, s) alone, so a resumed run repeats an uninterrupted one exactly.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from ._files import check_writable
from .checkpoint import PathLike, load_checkpoint, load_model, save_model
from .data import ContentSampler, find_images, load_image
from .errors import DataError, StyleBankError
from .losses import LossWeights, PerceptualLoss, build_loss_network, identity_loss
from .model import StyleBankNet
from .training_state import TrainingState

__all__ = [
    "CheckpointFn",
    "ProgressFn",
    "TrainConfig",
    "TrainResult",
    "add_styles",
    "resume_training",
    "style_names_for",
    "train_model",
]

PRECISIONS = ("auto", "float32", "bfloat16")

# on_progress(step, steps, losses, seconds): called after every step; `step` counts from 1.
ProgressFn = Callable[[int, int, dict, float], None]
# on_checkpoint(model, step): called after each checkpoint is written (e.g. to draw samples).
CheckpointFn = Callable[[StyleBankNet, int], None]


@dataclass
class TrainConfig:
    """Settings of a training run (stored in its checkpoints, so `--resume` needs none of them).

    `base_styles` > 0 means incremental learning: E, D and the first `base_styles` banks stay
    frozen and only the banks after them train (no auto-encoder steps then).
    """

    content: str
    styles: list[str]
    names: list[str] | None = None
    loss_net: str = "vgg16"
    loss_net_weights: str | None = None
    size: int = 512
    style_size: int | None = None  # shorter side of the style images; default: size
    batch: int = 4
    steps: int = 40000
    lr: float = 1e-3
    lr_decay: float = 0.8  # multiply the learning rate by this every `lr_decay_every` steps
    lr_decay_every: int = 5000
    T: int = 2  # stylizing steps per auto-encoder step
    # the paper's rescaling of the auto-encoder gradients; without it Adam's shared moments,
    # dominated by the stylizing loss, leave the auto-encoder steps too small (docs/training.md)
    ae_grad_rescale: bool = True
    content_weight: float = LossWeights.content  # the defaults live in LossWeights
    style_weight: float = LossWeights.style
    style_scales: list[float] | None = None  # per style, a factor on style_weight
    tv_weight: float = LossWeights.tv
    range_weight: float = LossWeights.range  # keeps stylised pixels inside [0, 1]
    kernel_size: int = 3
    # crops cover size .. max_crop_scale * size pixels of a photo (data.ContentSampler)
    max_crop_scale: float = 2.0
    # "auto": bfloat16 autocast where the device computes it natively (a CPU with AVX512-BF16
    # or AMX, a GPU with bf16), else float32; the losses are computed in float32 either way
    precision: str = "auto"
    seed: int = 0
    checkpoint_every: int = 500
    base_styles: int = 0

    def __post_init__(self) -> None:
        checks = {
            "size": self.size >= 16,
            "batch": self.batch >= 1,
            "steps": self.steps >= 1,
            "lr": self.lr > 0,
            "lr_decay_every": self.lr_decay_every >= 1,
            "T": self.T >= 1,
            "checkpoint_every": self.checkpoint_every >= 1,
            "styles": len(self.styles) >= 1,
            "max_crop_scale": self.max_crop_scale >= 1,
            "precision": self.precision in PRECISIONS,
        }
        for name, ok in checks.items():
            if not ok:
                raise StyleBankError(f"invalid {name}: {getattr(self, name)!r}")
        if self.style_scales is not None and (
            len(self.style_scales) != len(self.styles) or min(self.style_scales) < 0
        ):
            raise StyleBankError(
                f"--style-scales needs {len(self.styles)} numbers >= 0 (one per style), "
                f"got {self.style_scales}"
            )
        if self.names is not None and len(self.names) != len(self.styles):
            raise StyleBankError(f"got {len(self.names)} names for {len(self.styles)} style images")


@dataclass
class TrainResult:
    model: StyleBankNet
    step: int  # steps done in all (a resumed run counts the earlier ones)
    interrupted: bool  # stopped by Ctrl-C (a checkpoint was written)
    losses: list[dict] = field(default_factory=list)  # this run's losses, one dict per step


def style_names_for(
    paths: Sequence[str], names: Sequence[str] | None, taken: Sequence[str]
) -> list[str]:
    """Given names, else the file stems (made unique against `taken` and each other)."""
    if names is not None:
        for i, name in enumerate(names):
            if name in taken:
                raise StyleBankError(
                    f"the model already has a style named {name!r}; choose another"
                )
            if name in names[:i]:
                raise StyleBankError(f"style name {name!r} is given twice")
        return list(names)
    result: list[str] = []
    for path in paths:
        stem, name, n = Path(path).stem, Path(path).stem, 2
        while name in result or name in taken:
            name, n = f"{stem}_{n}", n + 1
        result.append(name)
    return result


def cpu_computes_bfloat16() -> bool:
    """Whether this CPU has bfloat16 arithmetic (AVX512-BF16 or AMX), not an emulation."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The dtype a `precision` setting autocasts to on `device` (None: float32, no autocast)."""
    if precision == "float32":
        return None
    if precision == "bfloat16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if device.type == "cpu" and cpu_computes_bfloat16() else None


def _check_out(out: PathLike) -> None:
    """The checkpoint file must be writable before the first step, not after minutes."""
    path = Path(out)
    if path.is_dir():
        raise StyleBankError(f"--out {out} is a directory; give a model file path (run.sbk)")
    if not path.parent.is_dir():
        raise StyleBankError(f"cannot write {out}: folder {path.parent} does not exist")
    try:
        check_writable(path)
    except OSError as error:
        raise StyleBankError(f"cannot write {out}: {error.strerror or error}") from None


def _step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + step) % (1 << 63))


class _StopOnSigint:
    """The first Ctrl-C asks the loop to stop after the current step; a second one aborts."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> _StopOnSigint:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _grad_norm(params: Sequence[Tensor]) -> float:
    return float(
        torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params if p.grad is not None]))
    )


class _Run:
    """One training run: the model, the losses, the optimiser and the loop."""

    def __init__(
        self,
        model: StyleBankNet,
        config: TrainConfig,
        device: torch.device,
        optimizer_state: dict | None = None,
        start: int = 0,
        encoder_grad_norm: float = 0.0,
    ) -> None:
        self.model, self.config, self.device = model.to(device), config, device
        self.sampler = ContentSampler(
            find_images(config.content), config.size, config.max_crop_scale
        )
        self.autocast_dtype = autocast_dtype(config.precision, device)
        style_images = [self._style_image(path) for path in config.styles]
        net = build_loss_network(config.loss_net, config.loss_net_weights, device)
        weights = LossWeights(
            config.content_weight, config.style_weight, config.tv_weight, config.range_weight
        )
        self.loss = PerceptualLoss(net, style_images, weights, config.style_scales)
        model.requires_grad_(config.base_styles == 0)  # incremental: freeze E, D, old banks
        for i in range(config.base_styles, model.n_styles):
            model.bank.weights[i].requires_grad_(True)
            model.bank.biases[i].requires_grad_(True)
        self.optimizer = torch.optim.Adam(
            [p for p in model.parameters() if p.requires_grad], lr=config.lr
        )
        if optimizer_state is not None:
            self.optimizer.load_state_dict(optimizer_state)
        self.step = start
        self.encoder_grad_norm = encoder_grad_norm  # of the last stylizing step (rescaling)

    def _style_image(self, path: str) -> Tensor:
        if not Path(path).is_file():
            raise DataError(f"style image not found: {path}")
        return load_image(path, self.config.style_size or self.config.size)

    def _training_state(self) -> dict:
        return TrainingState(
            self.step, asdict(self.config), self.optimizer.state_dict(), self.encoder_grad_norm
        ).to_dict()

    def save(self, out: PathLike) -> None:
        save_model(self.model, out, training=self._training_state())

    def _checkpoint(self, out: PathLike, on_checkpoint: CheckpointFn | None) -> None:
        self.save(out)
        if on_checkpoint is not None:
            with torch.no_grad():
                on_checkpoint(self.model, self.step)

    def _one_step(self) -> dict:
        config, model = self.config, self.model
        for group in self.optimizer.param_groups:
            group["lr"] = config.lr * config.lr_decay ** (self.step // config.lr_decay_every)
        generator = _step_generator(config.seed, self.step)
        images = self.sampler.batch(config.batch, generator).to(self.device)
        self.optimizer.zero_grad(set_to_none=True)
        autocast = torch.autocast(
            self.device.type,
            dtype=self.autocast_dtype or torch.float32,
            enabled=self.autocast_dtype is not None,
        )
        if config.base_styles == 0 and self.step % (config.T + 1) == config.T:
            with autocast:
                output = model(images)
            loss = identity_loss(output.float(), images)
            loss.backward()
            if config.ae_grad_rescale:
                self._rescale_autoencoder_grads()
            terms = {"identity": loss}
        else:
            first = config.base_styles
            targets = torch.randint(model.n_styles - first, (config.batch,), generator=generator)
            used = set((targets + first).tolist())
            targets = targets.to(self.device)
            with autocast:
                terms = self.loss(model(images, targets + first), images, targets)
            terms["total"].backward()
            # The op hands every bank a gradient (zeros when unused); an unused bank must not
            # move, and Adam moves a parameter with a zero gradient (momentum), so drop them.
            for i in range(first, model.n_styles):
                if i not in used:
                    model.bank.weights[i].grad = model.bank.biases[i].grad = None
            if config.ae_grad_rescale and config.base_styles == 0:
                self.encoder_grad_norm = _grad_norm(list(model.encoder.parameters()))
        self.optimizer.step()
        self.step += 1
        return {name: float(value.detach()) for name, value in terms.items()}

    def _rescale_autoencoder_grads(self) -> None:
        """Scale the E, D gradients of the identity loss so that E's gradient has the norm it
        had in the last stylizing step (the paper's lambda = |dL_K/dE| / |dL_I/dE|)."""
        norm = _grad_norm(list(self.model.encoder.parameters()))
        if norm == 0 or self.encoder_grad_norm == 0:
            return
        scale = self.encoder_grad_norm / norm
        for p in [*self.model.encoder.parameters(), *self.model.decoder.parameters()]:
            if p.grad is not None:
                p.grad.mul_(scale)

    def run(
        self,
        out: PathLike,
        on_progress: ProgressFn | None,
        on_checkpoint: CheckpointFn | None = None,
    ) -> TrainResult:
        _check_out(out)
        history = []
        started = time.perf_counter()
        with _StopOnSigint() as stop:
            while self.step < self.config.steps and not stop.requested:
                history.append(self._one_step())
                if on_progress is not None:
                    on_progress(
                        self.step, self.config.steps, history[-1], time.perf_counter() - started
                    )
                if self.step % self.config.checkpoint_every == 0 and self.step < self.config.steps:
                    self._checkpoint(out, on_checkpoint)
            self._checkpoint(out, on_checkpoint)
        return TrainResult(self.model.cpu(), self.step, stop.requested, history)


def train_model(
    config: TrainConfig,
    out: PathLike,
    *,
    device: str | torch.device = "cpu",
    on_progress: ProgressFn | None = None,
    on_checkpoint: CheckpointFn | None = None,
) -> TrainResult:
    """Train a new StyleBankNet on `config.styles` jointly; writes checkpoints to `out`.

    Steps alternate T stylizing steps (every image its own random style, one bank_conv2d call
    per batch) and one auto-encoder step. Ctrl-C stops after the current step and saves.
    """
    torch.manual_seed(config.seed)
    names = style_names_for(config.styles, config.names, [])
    model = StyleBankNet(len(config.styles), config.kernel_size, style_names=names)
    return _Run(model, config, torch.device(device)).run(out, on_progress, on_checkpoint)


def add_styles(
    base: PathLike,
    config: TrainConfig,
    out: PathLike,
    *,
    device: str | torch.device = "cpu",
    on_progress: ProgressFn | None = None,
    on_checkpoint: CheckpointFn | None = None,
) -> TrainResult:
    """Incremental learning: add `config.styles` as new banks to the model in `base`.

    E, D and the existing banks stay frozen (old styles give bitwise the same output); only the
    new banks train. `config.T` and `config.base_styles` are ignored (set from the model).
    """
    model = load_model(base)
    names = style_names_for(config.styles, config.names, model.style_names)
    config = TrainConfig(**{**asdict(config), "base_styles": model.n_styles, "names": names})
    torch.manual_seed(config.seed)
    model.add_styles(names)
    return _Run(model, config, torch.device(device)).run(out, on_progress, on_checkpoint)


def resume_training(
    path: PathLike,
    out: PathLike,
    *,
    steps: int | None = None,
    overrides: dict | None = None,
    device: str | torch.device = "cpu",
    on_progress: ProgressFn | None = None,
    on_checkpoint: CheckpointFn | None = None,
) -> TrainResult:
    """Continue the run saved in `path` (a checkpoint written by `train` or `add_styles`).

    `steps` sets a new total; `overrides` may relocate files ("content", "styles",
    "loss_net_weights"): anything else would make the continuation differ from the original.
    """
    model, data = load_checkpoint(path)
    state = TrainingState.from_checkpoint(data, path)
    allowed = {"content", "styles", "loss_net_weights"}
    extra = sorted(set(overrides or {}) - allowed)
    if extra:
        raise StyleBankError(f"cannot change {extra} when resuming; only {sorted(allowed)}")
    saved = {f.name: state.config[f.name] for f in fields(TrainConfig) if f.name in state.config}
    config = TrainConfig(**{**saved, **(overrides or {}), **({"steps": steps} if steps else {})})
    if len(config.styles) != model.n_styles - config.base_styles:
        raise StyleBankError(
            f"{len(config.styles)} style images given, the run in {path} trains "
            f"{model.n_styles - config.base_styles}"
        )
    run = _Run(
        model,
        config,
        torch.device(device),
        optimizer_state=state.optimizer,
        start=state.step,
        encoder_grad_norm=state.encoder_grad_norm,
    )
    return run.run(out, on_progress, on_checkpoint)
