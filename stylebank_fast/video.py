"""Stylizing video: frames decoded on one thread, stylized in batches through the fused op
(every frame its own blend or region masks), encoded on another, audio carried across; the
output is written atomically.

Needs the `[video]` extra (PyAV); a missing one is named in a one-line message.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Union

import numpy as np
import torch
from torch import Tensor

from ._files import atomic_write
from .errors import StyleBankError
from .progress import Progress
from .regions import (
    LabelSource,
    cell_labels,
    cluster_centres,
    label_source,
    nearest_centres,
    parse_auto,
)
from .style_schedule import StyleSchedule, parse_schedule
from .styles import Style
from .stylizer import Stylizer
from .temporal import FeatureSmoother
from .video_io import VIDEO_FORMATS, VideoReader, VideoWriter

__all__ = ["VideoResult", "stylize_video"]

PathLike = Union[str, "os.PathLike[str]"]
_END = object()  # the last item of a queue


@dataclass(frozen=True)
class VideoResult:
    frames: int
    width: int
    height: int
    seconds: float  # wall time
    audio_note: str | None  # when the audio could not be copied as it was


class _Worker(threading.Thread):
    """Runs `body` on a thread; an exception is kept for the caller and sets `stop`, so that
    every other thread gives up waiting."""

    def __init__(self, body: Callable[[], None], stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self._body, self._give_up = body, stop
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._body()
        except BaseException as error:  # handed to the main thread
            self.error = error
            self._give_up.set()


def _put(q: queue.Queue, item: object, stop: threading.Event) -> None:
    """Blocks while `q` is full, giving up once `stop` is set."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _get(q: queue.Queue, stop: threading.Event) -> object:
    """The next item of `q`, or _END once `stop` is set."""
    while not stop.is_set():
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            continue
    return _END


class _Mixer:
    """The `mix` of each batch of frames: one style, a schedule over time, fixed regions, or
    auto:N regions whose K-means centres are fitted on the first frame and kept, so regions
    stay put from frame to frame."""

    def __init__(
        self,
        stylizer: Stylizer,
        size: tuple[int, int],
        style: Style | StyleSchedule | None,
        regions: LabelSource | str | None,
        region_styles: Sequence[Style] | None,
        feather: int,
    ) -> None:
        self.stylizer, self.size, self.style = stylizer, size, style
        self.region_styles, self.feather = region_styles, feather
        self.count = parse_auto(regions) if regions is not None else None
        self.centres: Tensor | None = None
        self.fixed: Tensor | None = None  # masks of a fixed region map, made once
        if (style is None) == (regions is None):
            raise StyleBankError("give either a style or regions with region styles")
        if regions is not None:
            if not region_styles:
                raise StyleBankError("regions need region styles: one style per region")
            if self.count is None:
                labels = label_source(regions, size)
                self._check_count(labels.count, f"the region map has {labels.count} regions")
                self.fixed = stylizer.region_mix(labels, region_styles, feather)
            else:
                self._check_count(self.count, f"regions auto:{self.count}")
        elif isinstance(style, StyleSchedule):
            style.weights(stylizer.list_styles(), [0.0])  # unknown styles fail before work
        else:
            stylizer.style_weights(style)

    def _check_count(self, count: int, what: str) -> None:
        if count != len(self.region_styles):
            raise StyleBankError(
                f"{what} but {len(self.region_styles)} region styles were given; give one "
                "style per region"
            )

    def __call__(self, features: Tensor, seconds: list[float]) -> Tensor:
        """The mix of frames with encoder `features` [N,C,h,w] at times `seconds`."""
        stylizer = self.stylizer
        if self.fixed is not None:
            return self.fixed
        if self.count is not None:
            if self.centres is None:
                self.centres = cluster_centres(features[0], self.count)
            dense = nearest_centres(features, self.centres)
            labels = cell_labels(dense, self.count, self.size)
            return stylizer.region_mix(labels, self.region_styles, self.feather)
        if isinstance(self.style, StyleSchedule):
            weights = self.style.weights(stylizer.list_styles(), seconds)
            return weights.float().to(stylizer.device)
        return stylizer.style_weights(self.style)[None].to(stylizer.device)


def _as_tensor(frames: list[np.ndarray], device: torch.device) -> Tensor:
    """[H,W,3] uint8 frames as float [N,3,H,W] in [0,1] on `device`."""
    images = torch.from_numpy(np.stack(frames)).to(device)
    return images.permute(0, 3, 1, 2).float().div_(255)


def _as_rgb(images: Tensor) -> list[np.ndarray]:
    """Float [N,3,H,W] in [0,1] as [H,W,3] uint8 arrays."""
    return list(images.mul(255).round_().byte().permute(0, 2, 3, 1).cpu().numpy())


def stylize_video(
    stylizer: Stylizer,
    source: PathLike,
    target: PathLike,
    style: Style | StyleSchedule | None = None,
    regions: LabelSource | str | None = None,
    region_styles: Sequence[Style] | None = None,
    feather: int = 0,
    strength: float = 1.0,
    preserve_color: bool = False,
    max_size: int | None = None,
    smoothing: float = 0.8,
    batch: int = 4,
    progress: bool | Callable[[int, int, dict, float], None] = True,
) -> VideoResult:
    """Stylize the clip `source` into `target` (.mp4, .mov, .mkv, .webm or .gif).

    Every frame is kept with its timestamp (same frame rate, frame count and duration); the
    audio stream is copied (re-encoded where the output format cannot hold it; a GIF has
    none). `style`, `regions`, `region_styles`, `feather`, `strength` and `preserve_color`
    are those of `Stylizer.stylize`; `style` may also be a `StyleSchedule` (styles that
    change over time), or its text "0s:starry_night,5s:the_scream". A fixed region map applies to every frame; "auto:N" regions are
    found on the first frame and followed through the clip. `max_size` scales frames down
    to that longer side. `smoothing` (0 to <1) averages the encoder's features over frames
    where the content stands still (`temporal.FeatureSmoother`; 0 stylizes each frame on its
    own). `batch` frames go through the network in one call. The output
    appears only when complete: an error or Ctrl-C leaves no partial file.
    """
    source, target = Path(source), Path(target)
    if target.suffix.lower() not in VIDEO_FORMATS:
        raise StyleBankError(
            f"{target}: unknown video format {target.suffix!r}; use one of "
            + ", ".join(VIDEO_FORMATS)
        )
    if target.exists() and target.resolve() == source.resolve():
        raise StyleBankError(f"{target} would overwrite the input; choose another output")
    if batch < 1:
        raise StyleBankError(f"batch must be >= 1, got {batch}")
    if not 0 <= strength <= 1:
        raise StyleBankError(f"strength must be between 0 and 1, got {strength}")
    if isinstance(style, str):
        style = parse_schedule(style) or style
    reader = VideoReader(source, max_size)
    try:
        info = reader.info
        mixer = _Mixer(stylizer, (info.height, info.width), style, regions, region_styles, feather)
        smoother = FeatureSmoother(smoothing)
        total = info.frames or max(1, round(info.duration * float(info.fps)))
        report = Progress(unit="frame") if progress is True else progress or None
        start = time.monotonic()
        done = 0
        note: list[str | None] = [None]

        def write(file: BinaryIO) -> None:
            nonlocal done
            writer = VideoWriter(
                file,
                target.suffix,
                (info.width, info.height),
                info.fps,
                info.time_base,
                reader.audio_stream,
            )
            note[0] = writer.audio_note
            decoded: queue.Queue = queue.Queue(maxsize=4 * batch)
            encoded: queue.Queue = queue.Queue(maxsize=2)
            stop = threading.Event()

            def decode() -> None:
                for item in reader.items():
                    _put(decoded, item, stop)
                _put(decoded, _END, stop)

            def encode() -> None:
                while (item := _get(encoded, stop)) is not _END:
                    if isinstance(item, tuple):
                        for rgb, pts in zip(*item):
                            writer.write(rgb, pts)
                    else:
                        writer.mux_audio(item)
                if not stop.is_set():
                    writer.close()

            decoder, encoder = _Worker(decode, stop), _Worker(encode, stop)
            decoder.start()
            encoder.start()
            try:
                frames: list[np.ndarray] = []
                stamps: list[int] = []
                while (item := _get(decoded, stop)) is not _END or frames:
                    if item is not _END and not isinstance(item, tuple):
                        _put(encoded, item, stop)  # audio: the muxer interleaves it
                        continue
                    if item is not _END:
                        frames.append(item[0])
                        stamps.append(item[1])
                        if len(frames) < batch:
                            continue
                    images = _as_tensor(frames, stylizer.device)
                    seconds = [float(p * info.time_base) for p in stamps]
                    features = smoother(stylizer.encode(images))
                    mix = mixer(features, seconds)
                    out = stylizer.stylize_batch(images, mix, strength, preserve_color, features)
                    _put(encoded, (_as_rgb(out), stamps), stop)
                    done += len(frames)
                    frames, stamps = [], []
                    if report:
                        report(min(done, total), max(total, done), {}, time.monotonic() - start)
                    if item is _END:
                        break
                _put(encoded, _END, stop)
                encoder.join()
            finally:
                stop.set()  # an error or Ctrl-C here: the threads give up
                decoder.join(timeout=5)
                encoder.join(timeout=5)
            for thread in (decoder, encoder):
                if thread.error is not None:
                    raise thread.error

        try:
            atomic_write(target, write)
        except OSError as error:
            raise StyleBankError(f"cannot write {target}: {error}") from None
        return VideoResult(done, info.width, info.height, time.monotonic() - start, note[0])
    finally:
        reader.close()
