"""Joint (T+1) training of a StyleBankNet and incremental learning of new styles.

The randomness of step `s` (images, crops, flips, styles) comes from generators seeded with
(seed, s) and the shard alone, so a resumed run repeats an uninterrupted one exactly. A step's
batch is made of shards of `batch` images each: one per rank of a data-parallel run
(distributed.py), shard 0 being the stream of a single process.
"""

from __future__ import annotations

import signal
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from ._files import check_writable
from .checkpoint import PathLike, load_checkpoint, load_model, save_model, tensor_checksum
from .data import ContentSampler, find_images, load_image
from .devices import autocast_dtype
from .distributed import World, fingerprint
from .errors import DataError, StyleBankError
from .losses import LossWeights, PerceptualLoss, build_loss_network, identity_loss
from .model import StyleBankNet
from .progress import ProgressFn
from .stability_loss import Motion, SyntheticMotion, stability_loss
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

# on_checkpoint(model, step): called after each checkpoint is written (e.g. to draw samples).
CheckpointFn = Callable[[StyleBankNet, int], None]

# The settings that name files: a resumed run may find them elsewhere, and the ranks of a run
# on several machines may see them under other paths.
_LOCATIONS = ("content", "styles", "loss_net_weights", "init")


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
    content_layer: str | None = None  # None: the loss network's default (LOSS_NETWORKS)
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
    # weight of the temporal stability term (stability_loss.py); 0: off
    stability_weight: float = 0.0
    # a model file to start from (fine-tuning): its encoder, decoder and the banks of the
    # styles it has by name; the other banks start fresh
    init: str | None = None

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
            "stability_weight": self.stability_weight >= 0,
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


def _step_generator(seed: int, step: int, shard: int = 0) -> torch.Generator:
    """The randomness of one shard of one step; shard 0's is a single process's stream."""
    return torch.Generator().manual_seed(
        (seed * 1_000_003 + step + shard * 0x9E3779B97F4A7C15) % (1 << 63)
    )


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
    """One training run (one rank's part of it): the model, the losses, the optimiser and the
    loop. Rank r of R trains on shards r*k .. r*k+k-1 of every step (k = shards_per_rank)."""

    def __init__(
        self,
        model: StyleBankNet,
        config: TrainConfig,
        world: World,
        shards_per_rank: int = 1,
        optimizer_state: dict | None = None,
        start: int = 0,
        encoder_grad_norm: float = 0.0,
    ) -> None:
        if shards_per_rank < 1:
            raise StyleBankError(f"invalid shards per rank: {shards_per_rank!r} (1 or more)")
        device = world.device
        self.model, self.config, self.device, self.world = model.to(device), config, device, world
        self.shards = range(world.rank * shards_per_rank, (world.rank + 1) * shards_per_rank)
        self.n_shards = world.size * shards_per_rank  # per step, over all ranks
        self.sampler = ContentSampler(
            find_images(config.content), config.size, config.max_crop_scale
        )
        self.autocast_dtype = autocast_dtype(config.precision, device)
        style_images = [self._style_image(path) for path in config.styles]
        net = build_loss_network(
            config.loss_net, config.loss_net_weights, device, config.content_layer
        )
        weights = LossWeights(
            config.content_weight, config.style_weight, config.tv_weight, config.range_weight
        )
        self.loss = PerceptualLoss(net, style_images, weights, config.style_scales)
        self.motion = SyntheticMotion()
        model.requires_grad_(config.base_styles == 0)  # incremental: freeze E, D, old banks
        for i in range(config.base_styles, model.n_styles):
            model.bank.weights[i].requires_grad_(True)
            model.bank.biases[i].requires_grad_(True)
        self.trainable = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(self.trainable, lr=config.lr)
        if optimizer_state is not None:
            self.optimizer.load_state_dict(optimizer_state)
        self.step = start
        self.encoder_grad_norm = encoder_grad_norm  # of the last stylizing step (rescaling)
        self.stop_agreed = False  # some rank had Ctrl-C pressed before the last step's all-reduce

    def fingerprint(self) -> bytes:
        """What every rank must agree on: the step, the shards, the settings, the weights."""
        settings = sorted((k, v) for k, v in asdict(self.config).items() if k not in _LOCATIONS)
        weights = tensor_checksum(self.model.state_dict())
        return fingerprint(self.step, self.n_shards, settings, weights)

    def _style_image(self, path: str) -> Tensor:
        if not Path(path).is_file():
            raise DataError(f"style image not found: {path}")
        return load_image(path, self.config.style_size or self.config.size)

    def _training_state(self) -> dict:
        return TrainingState(
            self.step,
            asdict(self.config),
            self.optimizer.state_dict(),
            self.encoder_grad_norm,
            self.n_shards,
        ).to_dict()

    def save(self, out: PathLike) -> None:
        save_model(self.model, out, training=self._training_state())

    def _checkpoint(self, out: PathLike, on_checkpoint: CheckpointFn | None) -> None:
        if not self.world.is_main:
            return
        self.save(out)
        if on_checkpoint is not None:
            with torch.no_grad():
                on_checkpoint(self.model, self.step)

    def _average(self, terms: dict[str, Tensor], used: Tensor, stop: bool) -> tuple[dict, Tensor]:
        """The gradients, loss terms, banks used and Ctrl-C of all ranks, in one all-reduce:
        gradients and losses averaged, banks used by any rank (bool [banks]), and
        `stop_agreed` set when any rank had Ctrl-C pressed. One process: its own."""
        values = torch.stack([value.detach().float() for value in terms.values()])
        flags = torch.tensor([*used.tolist(), float(stop)], device=values.device)
        summed = self.world.average_gradients(self.trainable, torch.cat([values, flags])).tolist()
        n = len(terms)
        self.stop_agreed = summed[-1] > 0
        means = [value / self.world.size for value in summed[:n]]
        return dict(zip(terms, means)), torch.tensor(summed[n:-1]) > 0

    def _one_step(self, stop: bool) -> dict:
        """One step on every rank; `stop`: Ctrl-C was pressed here (see `_average`)."""
        config, model = self.config, self.model
        for group in self.optimizer.param_groups:
            group["lr"] = config.lr * config.lr_decay ** (self.step // config.lr_decay_every)
        generators = [_step_generator(config.seed, self.step, shard) for shard in self.shards]
        images = torch.cat([self.sampler.batch(config.batch, g) for g in generators])
        images = images.to(self.device)
        banks = model.n_styles - config.base_styles
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
            losses, _ = self._average({"identity": loss}, torch.zeros(banks), stop)
            if config.ae_grad_rescale:
                self._rescale_autoencoder_grads()
        else:
            first = config.base_styles
            targets = torch.cat(
                [torch.randint(banks, (config.batch,), generator=g) for g in generators]
            )
            ids = targets.to(self.device)
            with autocast:
                output = model(images, ids + first)
                terms = self.loss(output, images, ids)
                if config.stability_weight > 0:
                    h, w = images.shape[-2:]
                    motion = Motion.cat(
                        [self.motion.draw(config.batch, h, w, g) for g in generators]
                    )
                    terms["stability"] = stability_loss(
                        lambda moved: model(moved, ids + first), images, output, motion
                    )
                    terms["total"] = terms["total"] + config.stability_weight * terms["stability"]
            terms["total"].backward()
            losses, used = self._average(terms, torch.bincount(targets, minlength=banks), stop)
            # The op hands every bank a gradient (zeros when unused); a bank no rank used must
            # not move, and Adam moves a parameter with a zero gradient (momentum), so drop them.
            for i in range(banks):
                if not used[i]:
                    model.bank.weights[first + i].grad = model.bank.biases[first + i].grad = None
            if config.ae_grad_rescale and config.base_styles == 0:
                self.encoder_grad_norm = _grad_norm(list(model.encoder.parameters()))
        self.optimizer.step()
        self.step += 1
        return losses

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

    def _stopping(self, stop: _StopOnSigint) -> bool:
        # several ranks must all stop after the same step: they stop on what the last step's
        # all-reduce agreed (every rank sees the same), not on their own Ctrl-C
        return self.stop_agreed if self.world.distributed else stop.requested

    def run(
        self,
        out: PathLike,
        on_progress: ProgressFn | None,
        on_checkpoint: CheckpointFn | None = None,
    ) -> TrainResult:
        history = []
        started = time.perf_counter()
        if not self.world.is_main:
            on_progress = None
        with _StopOnSigint() as stop:
            while self.step < self.config.steps and not self._stopping(stop):
                history.append(self._one_step(stop.requested))
                if on_progress is not None:
                    on_progress(
                        self.step, self.config.steps, history[-1], time.perf_counter() - started
                    )
                if self.step % self.config.checkpoint_every == 0 and self.step < self.config.steps:
                    self._checkpoint(out, on_checkpoint)
            self._checkpoint(out, on_checkpoint)
        return TrainResult(self.model.cpu(), self.step, self._stopping(stop), history)


def _start(world: World, out: PathLike, make: Callable[[], _Run]) -> _Run:
    """`make` the run on every rank, rank 0 first checking that it can write `out`. A rank
    that cannot start stops them all (`World.agree`), and every rank must hold rank 0's
    weights, step and settings (a stale copy of a checkpoint on one machine would not)."""
    run, error = None, None
    try:
        if world.is_main:
            _check_out(out)
        run = make()
    except StyleBankError as caught:
        error = caught
    world.agree(error)
    assert run is not None
    if world.distributed:
        world.check_same(run.fingerprint(), "another model, step or settings")
    return run


def _start_from(model: StyleBankNet, path: str) -> None:
    """Copies into `model` the encoder, decoder and same-named banks of the model in `path`."""
    source = load_model(path)
    if source.bank.kernel_size != model.bank.kernel_size:
        raise StyleBankError(
            f"--init {path} has {source.bank.kernel_size}x{source.bank.kernel_size} banks, this "
            f"run {model.bank.kernel_size}x{model.bank.kernel_size}: give the same --kernel-size"
        )
    model.encoder.load_state_dict(source.encoder.state_dict())
    model.decoder.load_state_dict(source.decoder.state_dict())
    with torch.no_grad():
        for i, name in enumerate(model.style_names):
            if name in source.style_names:
                j = source.style_names.index(name)
                model.bank.weights[i].copy_(source.bank.weights[j])
                model.bank.biases[i].copy_(source.bank.biases[j])


def train_model(
    config: TrainConfig,
    out: PathLike,
    *,
    device: str | torch.device = "cpu",
    shards_per_rank: int = 1,
    on_progress: ProgressFn | None = None,
    on_checkpoint: CheckpointFn | None = None,
) -> TrainResult:
    """Train a new StyleBankNet on `config.styles` jointly; writes checkpoints to `out`.

    Steps alternate T stylizing steps (every image its own random style, one bank_conv2d call
    per batch) and one auto-encoder step. Ctrl-C stops after the current step and saves.
    `config.init` names a model to fine-tune: the run starts from its encoder, decoder and
    the banks of the styles it has by name (a fresh optimiser); `config.stability_weight`
    adds the temporal stability term of `stability_loss` to the stylizing steps.

    Run on every rank of an initialised torch.distributed process group (torchrun), it trains
    data-parallel: gradients and losses are averaged over the ranks; only rank 0 writes `out`
    and calls `on_progress` and `on_checkpoint`. Each step, each rank trains on
    `shards_per_rank` shards of `config.batch` images as one batch (shard j of step s drawn
    from the stream (seed, s, j)): with R ranks the effective batch is
    R * shards_per_rank * config.batch, and the run is, within float rounding, the one that
    R * shards_per_rank ranks of one shard each would make.
    """
    world = World.current(torch.device(device))

    def make() -> _Run:
        torch.manual_seed(config.seed)
        names = style_names_for(config.styles, config.names, [])
        model = StyleBankNet(len(config.styles), config.kernel_size, style_names=names)
        if config.init is not None:
            _start_from(model, config.init)
        return _Run(model, config, world, shards_per_rank)

    return _start(world, out, make).run(out, on_progress, on_checkpoint)


def add_styles(
    base: PathLike,
    config: TrainConfig,
    out: PathLike,
    *,
    device: str | torch.device = "cpu",
    shards_per_rank: int = 1,
    on_progress: ProgressFn | None = None,
    on_checkpoint: CheckpointFn | None = None,
) -> TrainResult:
    """Incremental learning: add `config.styles` as new banks to the model in `base`.

    E, D and the existing banks stay frozen (old styles give bitwise the same output); only the
    new banks train. `config.T` and `config.base_styles` are ignored (set from the model).
    Data-parallel under torch.distributed, and `shards_per_rank`, as in `train_model`.
    """
    if config.init is not None:
        raise StyleBankError("add_styles starts from `base`; `init` is for train_model")
    world = World.current(torch.device(device))

    def make() -> _Run:
        model = load_model(base)
        names = style_names_for(config.styles, config.names, model.style_names)
        settings = TrainConfig(**{**asdict(config), "base_styles": model.n_styles, "names": names})
        torch.manual_seed(settings.seed)
        model.add_styles(names)
        return _Run(model, settings, world, shards_per_rank)

    return _start(world, out, make).run(out, on_progress, on_checkpoint)


def resume_training(
    path: PathLike,
    out: PathLike,
    *,
    steps: int | None = None,
    overrides: dict | None = None,
    device: str | torch.device = "cpu",
    shards_per_rank: int = 1,
    on_progress: ProgressFn | None = None,
    on_checkpoint: CheckpointFn | None = None,
) -> TrainResult:
    """Continue the run saved in `path` (a checkpoint written by `train` or `add_styles`).

    `steps` sets a new total; `overrides` may relocate files ("content", "styles",
    "loss_net_weights"): anything else would make the continuation differ from the original.
    The continuation is exact when it has as many shards per step (ranks * `shards_per_rank`)
    as the run that wrote `path`; with another number, the steps from here on draw shards
    0 .. ranks * shards_per_rank - 1 (a warning says so), and the effective batch changes.
    Data-parallel under torch.distributed as in `train_model`.
    """
    world = World.current(torch.device(device))

    def make() -> _Run:
        model, data = load_checkpoint(path)
        state = TrainingState.from_checkpoint(data, path)
        if (overrides or {}).get("init") is not None:
            raise StyleBankError("--init starts a new run; --resume continues one from its weights")
        extra = sorted(set(overrides or {}) - set(_LOCATIONS))
        if extra:
            raise StyleBankError(f"cannot change {extra} when resuming; only {sorted(_LOCATIONS)}")
        saved = {
            f.name: state.config[f.name] for f in fields(TrainConfig) if f.name in state.config
        }
        new = {**(overrides or {}), **({"steps": steps} if steps else {})}
        config = TrainConfig(**{**saved, **new})
        if len(config.styles) != model.n_styles - config.base_styles:
            raise StyleBankError(
                f"{len(config.styles)} style images given, the run in {path} trains "
                f"{model.n_styles - config.base_styles}"
            )
        run = _Run(
            model,
            config,
            world,
            shards_per_rank,
            optimizer_state=state.optimizer,
            start=state.step,
            encoder_grad_norm=state.encoder_grad_norm,
        )
        if run.n_shards != state.shards and world.is_main:
            warnings.warn(
                f"{path} was trained with {state.shards} shard(s) of {config.batch} images per "
                f"step; this run has {run.n_shards} ({world.size} rank(s) x {shards_per_rank}): "
                f"the effective batch goes from {state.shards * config.batch} to "
                f"{run.n_shards * config.batch}, and the steps from here on draw shards 0 .. "
                f"{run.n_shards - 1}",
                RuntimeWarning,
                stacklevel=3,
            )
        return run

    return _start(world, out, make).run(out, on_progress, on_checkpoint)
