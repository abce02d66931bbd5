"""python -m stylebank_fast.add_style: learn new styles for a trained model (incremental learning)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ..checkpoint import load_checkpoint
from ..errors import StyleBankError
from ..training import TrainConfig, add_styles
from ..training_state import TrainingState
from .common import Progress, resolve_device, run_cli
from .training_options import add_training_arguments, given_settings, report, sample_writer

STEPS = 2000  # a new bank alone learns much faster than the whole network


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stylebank_fast.add_style",
        description="Add styles to a StyleBank model: only the new banks train; E, D and the "
        "old styles stay exactly as they are.",
    )
    parser.add_argument("--model", required=True, metavar="MODEL", help="the trained model")
    add_training_arguments(parser, STEPS)
    return parser


def _run(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    settings = {"steps": STEPS, **given_settings(args)}
    if "styles" not in settings:
        raise StyleBankError("--style IMG [IMG ...] is needed")
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
        args.model,
        TrainConfig(**settings),
        args.out,
        device=device,
        on_progress=Progress(),
        on_checkpoint=sample_writer(args),
    )
    return report(result, args.out)


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(_parser(), _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
