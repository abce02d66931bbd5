"""Options shared by `train` and `add_style` (their dest names are TrainConfig fields), and
the last lines a training run prints."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from ..distributed import World
from ..errors import StyleBankError
from ..losses import LOSS_NETWORKS
from ..samples import SampleWriter
from ..training import PRECISIONS, TrainConfig, TrainResult
from .common import EXIT_INTERRUPTED, Progress

# Defaults live in TrainConfig; options default to None so that "not given" is visible.
DEFAULTS = {f.name: f.default for f in fields(TrainConfig)}


def add_training_arguments(parser: argparse.ArgumentParser, steps: int) -> None:
    """Options shared by `train` and `add_style` (their dest names are TrainConfig fields)."""
    d = DEFAULTS
    parser.add_argument("--content", metavar="DIR", help="folder of photos (searched recursively)")
    parser.add_argument("--style", dest="styles", nargs="+", metavar="IMG", help="style images")
    parser.add_argument(
        "--name", dest="names", nargs="+", metavar="NAME", help="style names (default: file names)"
    )
    parser.add_argument("--out", required=True, metavar="MODEL", help="model file to write")
    parser.add_argument(
        "--loss-net", choices=list(LOSS_NETWORKS), help=f"loss network (default {d['loss_net']})"
    )
    parser.add_argument(
        "--vgg-weights", metavar="PATH", help="torchvision's vgg16-397923af.pth (or its features)"
    )
    parser.add_argument("--loss-net-weights", metavar="PATH", help="state dict of the loss network")
    parser.add_argument("--size", type=int, help=f"training crop size (default {d['size']})")
    parser.add_argument(
        "--style-size", type=int, help="shorter side of the style images (default: --size)"
    )
    parser.add_argument("--batch", type=int, help=f"batch size (default {d['batch']})")
    parser.add_argument("--steps", type=int, help=f"total steps (default {steps})")
    parser.add_argument("--lr", type=float, help=f"Adam learning rate (default {d['lr']})")
    parser.add_argument(
        "--lr-decay", type=float, help=f"learning-rate factor (default {d['lr_decay']})"
    )
    parser.add_argument(
        "--lr-decay-every", type=int, help=f"steps between decays (default {d['lr_decay_every']})"
    )
    parser.add_argument("--content-weight", type=float, help=f"default {d['content_weight']}")
    parser.add_argument(
        "--content-layer",
        metavar="LAYER",
        help="loss-network layer of the content loss (default: the paper's, vgg16's relu4_2; "
        "relu2_2 keeps more of the photo's edges)",
    )
    parser.add_argument("--style-weight", type=float, help=f"default {d['style_weight']}")
    parser.add_argument(
        "--style-scales",
        type=float,
        nargs="+",
        metavar="F",
        help="one factor per style on --style-weight (default all 1)",
    )
    parser.add_argument("--tv-weight", type=float, help=f"default {d['tv_weight']}")
    parser.add_argument(
        "--range-weight",
        type=float,
        help=f"penalty on pixels outside [0, 1], default {d['range_weight']}",
    )
    parser.add_argument(
        "--stability-weight",
        type=float,
        help="weight of the temporal stability term: a moved, noisy copy of each image must "
        "stylize to the moved output (for video; default 0, off)",
    )
    parser.add_argument(
        "--max-crop-scale",
        type=float,
        help="crops cover size .. this times size pixels of a photo, resized to --size "
        f"(default {d['max_crop_scale']})",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="auto: bfloat16 autocast where the device computes bfloat16 natively (default)",
    )
    parser.add_argument(
        "--checkpoint-every", type=int, help=f"steps (default {d['checkpoint_every']})"
    )
    parser.add_argument("--seed", type=int, help=f"default {d['seed']}")
    parser.add_argument(
        "--sample",
        metavar="PHOTO",
        help="at each checkpoint, write PHOTO in every style to OUT.samples/step_N.jpg",
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="auto, cpu, cuda, cuda:N (default auto; under torchrun, auto and cuda give each "
        "process the GPU of its local rank)",
    )
    parser.add_argument(
        "--shards-per-rank",
        type=int,
        metavar="K",
        help="train on K shards of --batch images per process and step (default 1): K times "
        "the memory, the run K times as many processes would make (docs/training.md)",
    )


def given_settings(args: argparse.Namespace) -> dict:
    """The TrainConfig fields the user set on the command line."""
    given = {
        name: getattr(args, name) for name in DEFAULTS if getattr(args, name, None) is not None
    }
    if args.vgg_weights is not None:
        if given.get("loss_net", DEFAULTS["loss_net"]) != "vgg16" or args.loss_net_weights:
            raise StyleBankError(
                "--vgg-weights goes with --loss-net vgg16 (and not with --loss-net-weights)"
            )
        given["loss_net_weights"] = args.vgg_weights
    return given


def run_options(args: argparse.Namespace, world: World) -> dict:
    """The keywords of train_model, add_styles and resume_training the command line sets
    besides the TrainConfig: progress and --sample on rank 0, --shards-per-rank."""
    return {
        "on_progress": Progress() if world.is_main else None,
        "on_checkpoint": sample_writer(args) if world.is_main else None,
        "shards_per_rank": args.shards_per_rank or 1,
    }


def sample_writer(args: argparse.Namespace):
    """The on_checkpoint callback for --sample (None without it); says where each sample went."""
    if not args.sample:
        return None
    writer = SampleWriter(args.sample, f"{args.out}.samples")

    def write(model, step: int) -> None:
        writer(model, step)
        print(f"sample: {writer.written[-1]}", file=sys.stderr, flush=True)

    return write


def report(result: TrainResult, out: str, world: World) -> int:
    """The last lines of a run (rank 0 says them); exit code 130 when Ctrl-C stopped it."""
    if not world.is_main:
        return EXIT_INTERRUPTED if result.interrupted else 0
    if result.interrupted:
        print(
            f"stopped at step {result.step}; saved {out}. Continue with --resume {out}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    print(
        f"done: {result.step} steps; saved {out} (styles: {', '.join(result.model.style_names)})",
        file=sys.stderr,
    )
    return 0
