"""python -m stylebank_fast.add_style: learn new styles for a trained model (incremental learning)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import torch

from .._files import check_writable
from ..checkpoint import load_checkpoint, load_model, save_model
from ..data import find_images
from ..distributed import World, launched
from ..errors import StyleBankError
from ..losses import LossWeights, build_loss_network
from ..painting_styles import add_painting_style
from ..style_learning import LearnSettings
from ..training import TrainConfig, add_styles
from ..training_state import TrainingState
from .common import Progress, run_cli
from .training_options import add_training_arguments, given_settings, report, run_options

STEPS = 2000  # a new bank alone learns much faster than the whole network


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stylebank_fast.add_style",
        description="Add styles to a StyleBank model: only the new banks train; E, D and the "
        "old styles stay exactly as they are.",
    )
    parser.add_argument("--model", required=True, metavar="MODEL", help="the trained model")
    parser.add_argument(
        "--fast",
        action="store_true",
        help="learn each style in minutes on cached features (as stylize --style-image; VGG-16 "
        "loss, the package's photos unless --content); takes --content, --name, --steps, "
        "--batch, --lr, --content-weight, --style-weight, --tv-weight, --seed, --vgg-weights",
    )
    add_training_arguments(parser, STEPS)
    return parser


# TrainConfig fields -> LearnSettings fields, for --fast
_FAST = {"steps": "steps", "batch": "batch", "lr": "lr", "seed": "seed"}
_FAST_WEIGHTS = {"content_weight": "content", "style_weight": "style", "tv_weight": "tv"}


def _run_fast(args: argparse.Namespace, settings: dict, device: torch.device) -> int:
    """--fast: `add_painting_style` per style image, then the model is written."""
    allowed = {*_FAST, *_FAST_WEIGHTS, "styles", "names", "content", "loss_net_weights"}
    ignored = sorted(set(settings) - allowed - {"loss_net"})
    if ignored or settings.get("loss_net", "vgg16") != "vgg16":
        options = [f"--{k.replace('_', '-')}" for k in ignored] or ["--loss-net"]
        raise StyleBankError(f"--fast does not take {', '.join(options)}")
    names = settings.get("names") or [None] * len(settings["styles"])
    weights = asdict(LearnSettings().weights)
    weights.update({_FAST_WEIGHTS[k]: v for k, v in settings.items() if k in _FAST_WEIGHTS})
    chosen = {_FAST[k]: v for k, v in settings.items() if k in _FAST}
    learn = LearnSettings(weights=LossWeights(**weights), **chosen)
    model = load_model(args.model).to(device)
    photos = find_images(settings["content"]) if "content" in settings else None
    loss_net = build_loss_network("vgg16", settings.get("loss_net_weights"), device)
    check_writable(Path(args.out))
    for painting, name in zip(settings["styles"], names):
        learnt = add_painting_style(
            model, painting, name, learn, Progress(), loss_net=loss_net, photos=photos
        )
        how = "from the cache" if learnt.from_cache else f"in {learnt.seconds:.0f}s"
        print(f"style {learnt.name!r} {how}", file=sys.stderr)
    save_model(model.cpu(), args.out)
    print(f"saved {args.out} (styles: {', '.join(model.style_names)})", file=sys.stderr)
    return 0


def _run(args: argparse.Namespace) -> int:
    with launched(args.device) as (world, device):
        return _add(args, world, device)


def _add(args: argparse.Namespace, world: World, device: torch.device) -> int:
    given = given_settings(args)
    if "styles" not in given:
        raise StyleBankError("--style IMG [IMG ...] is needed")
    if args.fast:  # its own step default, unless given
        if world.distributed or args.shards_per_rank is not None:
            raise StyleBankError("--fast runs in one process: no torchrun, no --shards-per-rank")
        return _run_fast(args, given, device)
    settings = {"steps": STEPS, **given}
    saved = TrainingState.saved_config(load_checkpoint(args.model)[1])
    if "loss_net" not in settings and saved.get("loss_net"):
        # the new bank must be trained with the loss network the model was trained with
        settings["loss_net"] = saved["loss_net"]
        weights = saved.get("loss_net_weights")
        if "loss_net_weights" not in settings and weights and Path(weights).is_file():
            settings["loss_net_weights"] = weights
    if "content" not in settings:  # default: the photos the model was trained on
        if not saved.get("content"):
            raise StyleBankError(
                f"--content DIR is needed: {args.model} does not record its training photos"
            )
        settings["content"] = saved["content"]
    result = add_styles(
        args.model, TrainConfig(**settings), args.out, device=device, **run_options(args, world)
    )
    return report(result, args.out, world)


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_parser(), _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
