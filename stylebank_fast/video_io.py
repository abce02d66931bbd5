"""Video files through PyAV (the `[video]` extra, FFmpeg's libraries in its wheel): frames in
as RGB arrays with their timestamps, frames out, and the audio stream carried across."""

from __future__ import annotations

import fractions
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ._files import atomic_write
from .errors import StyleBankError
from .extras import require_extra

__all__ = [
    "VIDEO_FORMATS",
    "is_video",
    "require_av",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "write_frames",
]

# output container and video codec per file extension (input: anything FFmpeg reads)
VIDEO_FORMATS = {
    ".mp4": ("mp4", "libx264"),
    ".mov": ("mov", "libx264"),
    ".mkv": ("matroska", "libx264"),
    ".webm": ("webm", "libvpx-vp9"),
    ".gif": ("gif", "gif"),
}
# audio codecs each container takes as they are; others are re-encoded to the first one
_AUDIO = {
    "mp4": ("aac", {"aac", "mp3", "alac", "opus", "flac", "ac3", "eac3"}),
    "mov": ("aac", {"aac", "mp3", "alac", "ac3", "pcm_s16le"}),
    "matroska": ("aac", None),  # None: any codec
    "webm": ("libopus", {"opus", "vorbis"}),
    "gif": (None, set()),  # no audio
}


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_FORMATS


def require_av():
    """The `av` module, or a one-line message naming the extra that brings it."""
    return require_extra("video needs PyAV", "video", {"av": "av"})[0]


@dataclass(frozen=True)
class VideoInfo:
    width: int  # of the frames as read (after max_size)
    height: int
    fps: fractions.Fraction  # average frame rate
    frames: int  # as the container states it; 0 when it does not
    duration: float  # seconds; 0 when unknown
    time_base: fractions.Fraction  # of the frames' timestamps
    audio: str | None  # the audio codec, or None


def _scaled(width: int, height: int, max_size: int | None) -> tuple[int, int]:
    if max_size is None or max(width, height) <= max_size:
        return width, height
    scale = max_size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


class VideoReader:
    """Reads the first video stream of `path` (and its first audio stream, kept as packets).

    `items()` yields, in file order, `(rgb [H,W,3] uint8, pts)` for each frame and the audio
    packets themselves; every frame is yielded (the decoder is flushed at the end).
    """

    def __init__(self, path: str | Path, max_size: int | None = None) -> None:
        av = require_av()
        self.path = Path(path)
        try:
            self._container = av.open(str(path))
        except (av.error.FFmpegError, UnicodeDecodeError) as error:
            raise StyleBankError(f"cannot read video {path}: {error}") from None
        if not self._container.streams.video:
            self._container.close()
            raise StyleBankError(f"{path} has no video stream")
        self._video = self._container.streams.video[0]
        self._video.thread_type = "AUTO"
        audio = self._container.streams.audio
        self.audio_stream = audio[0] if audio else None  # carried across by VideoWriter
        context = self._video.codec_context
        if not context.width or not context.height:
            self._container.close()
            raise StyleBankError(f"cannot read video {path}: unsupported or corrupt video stream")
        width, height = _scaled(context.width, context.height, max_size)
        duration = self._container.duration
        self.info = VideoInfo(
            width=width,
            height=height,
            fps=self._video.average_rate or self._video.guessed_rate or fractions.Fraction(25),
            frames=self._video.frames,
            duration=duration / 1e6 if duration else 0.0,
            time_base=self._video.time_base or fractions.Fraction(1, 90000),
            audio=self.audio_stream.codec_context.name if self.audio_stream is not None else None,
        )

    def items(self) -> Iterator[tuple[np.ndarray, int] | object]:
        av = require_av()
        streams = [s for s in (self._video, self.audio_stream) if s is not None]
        last_pts = -1
        try:
            for packet in self._container.demux(streams):
                if packet.stream is self.audio_stream:
                    if packet.dts is not None:  # the last, empty packet only flushes
                        yield packet
                    continue
                for frame in packet.decode():
                    # frames without timestamps (some raw streams) follow the previous one
                    pts = frame.pts if frame.pts is not None else last_pts + 1
                    last_pts = pts
                    rgb = frame.to_ndarray(
                        format="rgb24", width=self.info.width, height=self.info.height
                    )
                    yield rgb, pts
        except av.error.FFmpegError as error:
            raise StyleBankError(f"cannot read video {self.path}: {error}") from None

    def close(self) -> None:
        self._container.close()


class VideoWriter:
    """Writes RGB frames to `file` (a binary file object) in the container of `suffix`, with
    the timestamps given (in `time_base`), and copies (or re-encodes) audio packets of
    `audio_stream`."""

    def __init__(
        self,
        file: BinaryIO,
        suffix: str,
        size: tuple[int, int],
        fps: fractions.Fraction,
        time_base: fractions.Fraction,
        audio_stream: object | None = None,
    ) -> None:
        av = require_av()
        container_format, codec = VIDEO_FORMATS[suffix.lower()]
        self._container = av.open(file, "w", format=container_format)
        width, height = size
        self._video = self._container.add_stream(codec, rate=fps)
        self._video.width, self._video.height = width, height
        if codec == "gif":
            self._video.pix_fmt = "rgb8"
        else:
            # 4:2:0 chroma (what every player plays) halves the size: odd sizes keep 4:4:4
            even = width % 2 == 0 and height % 2 == 0
            self._video.pix_fmt = "yuv420p" if even or codec != "libx264" else "yuv444p"
            self._video.options = {"crf": "18"} if codec == "libx264" else {"crf": "24", "b": "0"}
            self._video.time_base = time_base
        self._time_base = time_base
        self._audio_out = None
        self._resampler = None
        self.audio_note: str | None = None
        if audio_stream is not None:
            self._add_audio(audio_stream, container_format)

    def _add_audio(self, stream: object, container_format: str) -> None:
        av = require_av()
        default, copyable = _AUDIO[container_format]
        name = stream.codec_context.name
        if default is None:
            self.audio_note = f"the {container_format} format has no audio: audio dropped"
        elif copyable is None or name in copyable:
            self._audio_out = self._container.add_stream_from_template(stream)
        else:
            rate = stream.codec_context.sample_rate or 48000
            self._audio_out = self._container.add_stream(default, rate=rate)
            self._resampler = av.AudioResampler(
                format=self._audio_out.codec_context.codec.audio_formats[0].name,
                layout=stream.codec_context.layout.name,
                rate=rate,
            )
            self.audio_note = f"audio re-encoded from {name} to {default} for {container_format}"

    def write(self, rgb: np.ndarray, pts: int) -> None:
        av = require_av()
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts, frame.time_base = pts, self._time_base
        for packet in self._video.encode(frame):
            self._container.mux(packet)

    def mux_audio(self, packet: object) -> None:
        if self._audio_out is None:
            return
        if self._resampler is None:
            packet.stream = self._audio_out
            self._container.mux(packet)
            return
        for frame in packet.decode():
            for resampled in self._resampler.resample(frame):
                for out in self._audio_out.encode(resampled):
                    self._container.mux(out)

    def close(self) -> None:
        """Flushes the encoders and finishes the file."""
        for packet in self._video.encode(None):
            self._container.mux(packet)
        if self._resampler is not None:
            for frame in self._resampler.resample(None):
                for packet in self._audio_out.encode(frame):
                    self._container.mux(packet)
            for packet in self._audio_out.encode(None):
                self._container.mux(packet)
        self._container.close()


def write_frames(path: str | Path, frames: Iterable[np.ndarray], fps: int = 25) -> None:
    """Writes RGB frames [H,W,3] uint8 (all one size) as a clip at `fps`, atomically; the
    container and codec follow the extension (VIDEO_FORMATS)."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_FORMATS:
        raise StyleBankError(
            f"{path}: unknown video format; use one of " + ", ".join(VIDEO_FORMATS)
        )

    def write(file: BinaryIO) -> None:
        writer = None
        for i, rgb in enumerate(frames):
            if writer is None:
                rate = fractions.Fraction(fps)
                size = (rgb.shape[1], rgb.shape[0])
                writer = VideoWriter(file, path.suffix, size, rate, 1 / rate)
            writer.write(rgb, i)
        if writer is None:
            raise StyleBankError(f"{path}: no frames to write")
        writer.close()

    atomic_write(path, write)
