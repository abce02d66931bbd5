"""Gathers concurrent stylizations into one forward of the network: images of the same size,
each with its own bank weights or region masks and strength, in one fused bank_conv2d call.

One worker thread runs everything that touches the network (the fast network keeps its
activation memory from call to call, so it must never run twice at once).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..color import transfer_luminance
from ..errors import StyleBankError
from ..memory import release_free_memory
from ..stylizer import Stylizer

__all__ = ["Batcher", "Item", "QueueFull"]


class QueueFull(StyleBankError):
    """More requests are waiting than the server takes; the client should retry later."""


@dataclass
class Item:
    """One image to stylize in a batch."""

    image: Tensor  # float [3,H,W] in [0,1]
    mix: Tensor  # bank weights [K] (a style or blend), or masks [K,h,w] at the feature map's size
    strength: float = 1.0
    preserve_color: bool = False


@dataclass
class _Job:
    future: Future
    item: Item | None = None  # batched; or
    call: Callable[[], Any] | None = None  # run alone
    queued: float = field(default_factory=time.monotonic)


class Batcher:
    """Runs `Item`s in batches on one worker thread: it takes every item waiting (up to
    `max_batch`), waits `wait` seconds more for others, and runs each group of the same size
    as one batch. At most `max_queue` jobs wait or run at once (`QueueFull` beyond).

    Images are grouped by exact size, not padded to a common one: the network's
    InstanceNorms would take the padding into their statistics and change the result.
    """

    def __init__(
        self, stylizer: Stylizer, max_batch: int = 8, wait: float = 0.005, max_queue: int = 64
    ) -> None:
        if max_batch < 1 or max_queue < 1 or wait < 0:
            raise StyleBankError(
                f"max_batch and max_queue must be >= 1 and wait >= 0, got {max_batch}, "
                f"{max_queue}, {wait}"
            )
        self.stylizer, self.max_batch, self.wait, self.max_queue = (
            stylizer,
            max_batch,
            wait,
            max_queue,
        )
        self.batch_sizes: list[int] = []  # of every batch run, for benchmarks and tests
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._pending = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="stylebank-batcher", daemon=True)
        self._thread.start()

    def stylize(self, item: Item) -> Future:
        """A future of (the stylized image, float [3,H,W] in [0,1]; the number of images in
        the forward that made it)."""
        return self._submit(_Job(Future(), item=item))

    def call(self, fn: Callable[[], Any]) -> Future:
        """A future of `fn()`, run alone on the worker thread (work that runs the network but
        does not batch: finding auto:N regions, an image too large to batch)."""
        return self._submit(_Job(Future(), call=fn))

    def close(self) -> None:
        """Stops the worker once the jobs queued are done."""
        self._queue.put(None)
        self._thread.join()

    def _submit(self, job: _Job) -> Future:
        with self._lock:
            if self._pending >= self.max_queue:
                raise QueueFull(
                    f"the server is busy ({self._pending} requests waiting, the most it "
                    f"takes is {self.max_queue}); try again in a moment"
                )
            self._pending += 1
        job.future.add_done_callback(self._done)
        self._queue.put(job)
        return job.future

    def _done(self, _: Future) -> None:
        with self._lock:
            self._pending -= 1

    def _run(self) -> None:
        while True:
            jobs = self._gather()
            if jobs is None:
                return
            # a cancelled future (its client went away before its turn) is skipped
            jobs = [job for job in jobs if job.future.set_running_or_notify_cancel()]
            for job in (job for job in jobs if job.call is not None):
                self._settle([job], lambda job=job: [job.call()])
            batched = [job for job in jobs if job.item is not None]
            groups: dict[tuple[int, ...], list[_Job]] = {}
            for job in batched:
                groups.setdefault(tuple(job.item.image.shape), []).append(job)
            for group in groups.values():
                self._settle(group, lambda group=group: self._forward([j.item for j in group]))
            if self._queue.empty():  # idle: what a large image took goes back to the system
                release_free_memory()

    def _gather(self) -> list[_Job] | None:
        """The jobs of the next round (None: closed): the first to come, all that wait
        behind it, and those that come within `wait` seconds, up to `max_batch` items."""
        first = self._queue.get()
        if first is None:
            return None
        jobs = [first]
        deadline = time.monotonic() + self.wait
        while len(jobs) < self.max_batch:
            try:
                job = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if job is None:
                self._queue.put(None)  # stop after this round
                break
            jobs.append(job)
        return jobs

    @staticmethod
    def _settle(jobs: list[_Job], run: Callable[[], list]) -> None:
        try:
            results = run()
        except Exception as error:  # each request gets its error; the worker goes on
            for job in jobs:
                job.future.set_exception(error)
            return
        for job, result in zip(jobs, results):
            job.future.set_result(result)

    def _forward(self, items: list[Item]) -> list[tuple[Tensor, int]]:
        """One batch of images of one size through the network, in one fused bank call."""
        self.batch_sizes.append(len(items))
        device = self.stylizer.device
        images = torch.stack([item.image for item in items]).to(device)
        mixes = [item.mix.to(device) for item in items]
        masks = [m for m in mixes if m.dim() == 3]
        if masks:  # a blend is a constant mask, so blends and regions share the call
            k, h, w = masks[0].shape
            mix = torch.stack(
                [m if m.dim() == 3 else m.view(k, 1, 1).expand(k, h, w) for m in mixes]
            )
        else:
            mix = torch.stack(mixes)
        strength = torch.tensor([item.strength for item in items])
        out = self.stylizer.stylize_batch(images, mix, strength.to(device))
        keep = [i for i, item in enumerate(items) if item.preserve_color]
        if keep:
            with torch.inference_mode():  # out is an inference tensor
                out[keep] = transfer_luminance(images[keep], out[keep])
        return [(image, len(items)) for image in out.cpu()]
