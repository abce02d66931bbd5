"""python -m stylebank_fast.train: train a StyleBank model on a folder of photos and some styles."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..distributed import World, launched
from ..errors import StyleBankError
from ..training import TrainConfig, resume_training, train_model
from .common import run_cli
from .training_options import DEFAULTS, add_training_arguments, given_settings, report, run_options


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stylebank_fast.train",
        description="Train a StyleBank network jointly on several styles ((T+1) alternation).",
    )
    add_training_arguments(parser, DEFAULTS["steps"])
    parser.add_argument(
        "--T", type=int, help=f"stylizing steps per auto-encoder step (default {DEFAULTS['T']})"
    )
    parser.add_argument(
        "--ae-grad-rescale",
        action=argparse.BooleanOptionalAction,
        help="the paper's rescaling of the auto-encoder gradients (default on)",
    )
    parser.add_argument(
        "--kernel-size", type=int, choices=(3, 5, 7), help="bank kernel size (default 3)"
    )
    parser.add_argument(
        "--init",
        metavar="MODEL",
        help="fine-tune MODEL: start from its encoder, decoder and the banks of the styles it "
        "has by name (the others start fresh)",
    )
    parser.add_argument("--resume", metavar="MODEL", help="continue the run saved in MODEL")
    return parser


def _run(args: argparse.Namespace) -> int:
    with launched(args.device) as (world, device):
        return _train(args, world, device)


def _train(args: argparse.Namespace, world: World, device) -> int:
    settings = given_settings(args)
    options = run_options(args, world)
    if args.resume:
        steps = settings.pop("steps", None)
        result = resume_training(
            args.resume, args.out, steps=steps, overrides=settings, device=device, **options
        )
    else:
        missing = [
            flag
            for flag, key in (("--content", "content"), ("--style", "styles"))
            if key not in settings
        ]
        if missing:
            raise StyleBankError(f"{' and '.join(missing)} needed (or --resume MODEL)")
        result = train_model(TrainConfig(**settings), args.out, device=device, **options)
    return report(result, args.out, world)


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_parser(), _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
