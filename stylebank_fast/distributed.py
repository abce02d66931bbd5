"""Data-parallel training over torch.distributed: which rank this process is, the collectives a
training run makes (one all-reduce per step, agreement at the start), and joining the process
group a torchrun launch describes.

Every rank holds the whole model; each step, each rank computes the gradients of its own
images, and one all-reduce of all the gradients (the stacked bank gradients densely, zeros for
the banks a rank did not use) averages them, so every rank takes the same optimiser step. The
model is not wrapped in DistributedDataParallel: the auto-encoder steps do not touch the banks
(DDP would need find_unused_parameters), and the step must also agree on which banks moved and
whether to stop (a second all-reduce beside DDP's); one explicit all-reduce does all of it.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

from .devices import resolve_device
from .errors import OtherRankFailed, StyleBankError

__all__ = ["World", "launched"]


def _first_line(error: BaseException) -> str:
    """The error's first sentence, without gloo's "[source.cc:123] " prefix."""
    text = re.sub(r"^\[[^\]]*\]\s*", "", str(error).strip())
    return text.splitlines()[0].split(". ")[0] if text else type(error).__name__


@dataclass(frozen=True)
class World:
    """This process's place in a data-parallel run: `size` ranks, collectives on `device`."""

    rank: int = 0
    size: int = 1
    device: torch.device = torch.device("cpu")

    @classmethod
    def current(cls, device: torch.device) -> World:
        """The initialised default process group (a run of one process without one)."""
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size(), torch.device(device))
        return cls(device=torch.device(device))

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes checkpoints and reports progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def _collective(self, op, *args, **kwargs) -> None:
        try:
            op(*args, **kwargs)
        except RuntimeError as error:  # DistBackendError: a peer died, or the timeout passed
            raise OtherRankFailed(
                f"rank {self.rank} of {self.size} lost the other ranks ({_first_line(error)}): "
                "one of them failed or was stopped; its message is in its output",
                exit_code=1,
            ) from None

    def average_gradients(self, params: Sequence[Tensor], extras: Tensor) -> Tensor:
        """One all-reduce: the gradients of `params` (those that have one, which is the same set
        on every rank) become their mean over the ranks, in place; returns `extras` (float,
        1-D) summed over the ranks."""
        grads = [p.grad for p in params if p.grad is not None]
        if not self.distributed:
            return extras
        flat = torch.cat([*(g.reshape(-1) for g in grads), extras.to(self.device, torch.float32)])
        self._collective(dist.all_reduce, flat)
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g)).div_(self.size)
            offset += g.numel()
        return flat[offset:]

    def agree(self, error: StyleBankError | None) -> None:
        """Every rank calls this with its setup's error (None: ready). When any rank failed,
        every rank raises: the first failing rank its own error, rank 0 one line naming that
        rank, the others silently, so that a mistake made on every rank prints once."""
        if not self.distributed:
            if error is not None:
                raise error
            return
        failed = torch.zeros(self.size, device=self.device)
        failed[self.rank] = float(error is not None)
        self._collective(dist.all_reduce, failed)
        ranks = [i for i, flag in enumerate(failed.tolist()) if flag]
        if not ranks:
            return
        if self.rank == ranks[0]:
            raise error  # type: ignore[misc]
        message = ""
        if self.is_main:
            message = (
                f"rank {ranks[0]} of {self.size} could not start; its message is in its output"
            )
        raise OtherRankFailed(message, exit_code=2)

    def check_same(self, fingerprint: bytes, what: str) -> None:
        """Raises on every rank (through `agree`) unless each rank's `fingerprint` is rank 0's."""
        if not self.distributed:
            return
        mine = torch.tensor(int.from_bytes(fingerprint[:8], "little", signed=True))
        main = mine.clone().to(self.device)
        self._collective(dist.broadcast, main, 0)
        same = int(main) == int(mine)
        self.agree(None if same else StyleBankError(f"rank {self.rank} has {what} than rank 0"))


def fingerprint(*parts: object) -> bytes:
    """SHA-256 of the parts' reprs (strings and numbers; for `World.check_same`)."""
    return hashlib.sha256(repr(parts).encode()).digest()


def _rank_device(name: str, local_rank: int, local_size: int) -> torch.device:
    """The device of local rank `local_rank`: "auto" and "cuda" give each process its own GPU."""
    device = resolve_device(name)
    if device.type != "cuda":
        return device
    if device.index is not None and str(name) not in ("auto", "cuda"):
        if local_size > 1:
            raise StyleBankError(
                f"--device {name} with {local_size} processes on this machine: give --device "
                "cuda and each process takes cuda:LOCAL_RANK"
            )
        return device
    if local_rank >= torch.cuda.device_count():
        raise StyleBankError(
            f"local rank {local_rank} has no GPU: this machine has {torch.cuda.device_count()}; "
            "start at most that many processes per machine (--nproc-per-node)"
        )
    return torch.device("cuda", local_rank)


@contextmanager
def launched(device_name: str) -> Iterator[tuple[World, torch.device]]:
    """The world and device of this process. Started by torchrun with WORLD_SIZE > 1 (and no
    process group yet), it joins the process group torchrun describes (NCCL on GPUs, gloo on
    the CPU) and leaves it at the end; otherwise one process on `device_name`."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1 or (dist.is_available() and dist.is_initialized()):
        device = resolve_device(device_name)
        yield World.current(device), device
        return
    if not dist.is_available():
        raise StyleBankError("this torch was built without torch.distributed; run one process")
    local = int(os.environ.get("LOCAL_RANK", "0")), int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    device = _rank_device(device_name, *local)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    try:
        dist.init_process_group(backend)
    except (RuntimeError, ValueError) as error:
        raise StyleBankError(
            f"rank {os.environ.get('RANK')} of {size} could not join the others ({backend}): "
            f"{_first_line(error)}"
        ) from None
    try:
        yield World.current(device), device
    finally:
        dist.destroy_process_group()
