"""Video (the [video] extra): clips made here, every style form, frames/timing/audio kept,
odd sizes, bad inputs, Ctrl-C, and the missing extra."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from helpers import synthetic_photo
from PIL import Image

import stylebank_fast as sb
from stylebank_fast.cli.stylize import main
from stylebank_fast.errors import StyleBankError
from stylebank_fast.style_schedule import StyleSchedule, parse_schedule
from stylebank_fast.temporal import FeatureSmoother

av = pytest.importorskip("av", reason="the [video] extra (PyAV) is not installed")
from stylebank_fast.video import stylize_video  # noqa: E402
from stylebank_fast.video_io import VideoReader, require_av, write_frames  # noqa: E402

FPS = 10


def _frames(n: int, h: int, w: int) -> list[np.ndarray]:
    """A smooth photo panning right by 2 px a frame."""
    wide = (synthetic_photo(3, h, w + 2 * n) * 255).astype(np.uint8)
    return [np.ascontiguousarray(wide[:, 2 * i : 2 * i + w]) for i in range(n)]


def _clip_with_audio(path, frames: list[np.ndarray], codec: str = "aac") -> None:
    """An .mp4/.mkv with H.264 video and a sine tone lasting the clip."""
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        audio = out.add_stream(codec, rate=16000)
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            for packet in video.encode(frame):
                out.mux(packet)
        samples = 16000 * len(frames) // FPS
        tone = np.sin(np.arange(samples) / 16000 * 2 * np.pi * 440).astype(np.float32)[None]
        size = audio.codec_context.frame_size or 1024
        for start in range(0, samples, size):
            chunk = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(tone[:, start : start + size]), format="fltp", layout="mono"
            )
            chunk.sample_rate, chunk.pts = 16000, start
            for packet in audio.encode(chunk):
                out.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode(None):
                out.mux(packet)


def _read(path) -> tuple[list[np.ndarray], VideoReader]:
    reader = VideoReader(path)
    try:
        frames = [item[0] for item in reader.items() if isinstance(item, tuple)]
    finally:
        reader.close()
    return frames, reader


@pytest.fixture
def stylizer(tiny_model_path):
    return sb.Stylizer(tiny_model_path, device="cpu")


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / "clip.mp4"
    _clip_with_audio(path, _frames(7, 36, 48))
    return path


def _expected(stylizer, frames, **kwargs) -> np.ndarray:
    out = stylizer.stylize(torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2) / 255, **kwargs)
    return out.mul(255).round().byte().permute(0, 2, 3, 1).numpy()


def _distance(a, b) -> float:
    return float(np.abs(np.stack(a).astype(float) - np.stack(b).astype(float)).mean())


def test_frames_timing_and_audio_are_kept(stylizer, clip, tmp_path):
    out = tmp_path / "out.mp4"
    result = stylize_video(stylizer, clip, out, style="great_wave", batch=3, progress=False)
    source_frames, source = _read(clip)
    frames, made = _read(out)
    assert result.frames == len(frames) == len(source_frames) == 7
    assert (made.info.width, made.info.height) == (48, 36)
    assert made.info.fps == source.info.fps == FPS
    assert abs(made.info.duration - source.info.duration) < 1.5 / FPS
    assert made.info.audio == "aac"
    with av.open(str(out)) as container:
        assert container.streams.audio[0].duration is not None
    # each frame is the stylized input frame (to the codec's precision), not another style's
    want = _expected(stylizer, source_frames, style="great_wave")
    other = _expected(stylizer, source_frames, style="mosaic")
    assert _distance(frames, want) < 0.5 * _distance(frames, other)


@pytest.mark.parametrize("suffix", [".webm", ".gif", ".mkv", ".mov", ".mp4"])
def test_every_container_at_an_odd_size(stylizer, tmp_path, suffix):
    source = tmp_path / "odd.mkv"
    write_frames(source, _frames(5, 27, 35), fps=FPS)
    out = tmp_path / f"out{suffix}"
    stylize_video(stylizer, source, out, style=1, progress=False)
    frames, made = _read(out)
    assert len(frames) == 5 and frames[0].shape == (27, 35, 3)
    assert made.info.audio is None  # a clip without audio stays without


def test_webm_re_encodes_aac_audio_to_opus(stylizer, clip, tmp_path):
    result = stylize_video(stylizer, clip, tmp_path / "out.webm", style=0, progress=False)
    assert "opus" in result.audio_note
    _, made = _read(tmp_path / "out.webm")
    assert made.info.audio == "opus"


def test_blend_strength_and_preserve_color_match_the_images(stylizer, clip, tmp_path):
    out = tmp_path / "out.mkv"
    options = dict(style={"starry_night": 0.5, "mosaic": 0.5}, strength=0.6, preserve_color=True)
    stylize_video(stylizer, clip, out, progress=False, **options)
    source, _ = _read(clip)
    frames, _ = _read(out)
    want = _expected(stylizer, source, **options)
    assert _distance(frames, want) < 0.5 * _distance(frames, _expected(stylizer, source, style=1))


def test_schedule_blends_between_keyframes(stylizer, clip, tmp_path):
    out = tmp_path / "out.mp4"
    stylize_video(stylizer, clip, out, style="0s:starry_night,0.6s:mosaic", progress=False)
    source, _ = _read(clip)
    frames, _ = _read(out)
    first, last = _expected(stylizer, source, style=0), _expected(stylizer, source, style=2)
    assert _distance(frames[:1], first[:1]) < 0.5 * _distance(frames[:1], last[:1])
    assert _distance(frames[-1:], last[-1:]) < 0.5 * _distance(frames[-1:], first[-1:])
    names = ["a", "b", "c"]
    weights = parse_schedule("0s:a, 2s:b:1+c:1").weights(names, [-1, 0, 1, 2, 5])
    expected = [[1, 0, 0], [1, 0, 0], [0.5, 0.25, 0.25], [0, 0.5, 0.5], [0, 0.5, 0.5]]
    assert torch.allclose(weights, torch.tensor(expected, dtype=torch.float64))


def test_schedule_text_errors():
    assert parse_schedule("starry_night:0.5,mosaic:0.5") is None
    with pytest.raises(StyleBankError, match="has no time"):
        parse_schedule("0s:a,b")
    with pytest.raises(StyleBankError, match="increasing time"):
        StyleSchedule(((1.0, "a"), (1.0, "b")))


def test_fixed_region_map_and_auto_regions_stay_put(stylizer, tmp_path):
    still = _frames(1, 36, 48)[0]
    source = tmp_path / "still.mkv"
    write_frames(source, [still] * 4, fps=FPS)
    mask = np.zeros((36, 48), np.uint8)
    mask[:, 24:] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    out = tmp_path / "regions.mp4"
    styles = ["starry_night", "mosaic"]
    stylize_video(
        stylizer, source, out, regions=tmp_path / "mask.png", region_styles=styles, progress=False
    )
    frames, _ = _read(out)
    decoded, _ = _read(source)
    want = _expected(stylizer, decoded, regions=mask, region_styles=styles)
    assert _distance(frames, want) < 0.5 * _distance(frames, _expected(stylizer, decoded, style=0))
    # auto:2 on a still clip: the same regions (and output) in every frame
    auto = tmp_path / "auto.mkv"
    stylize_video(stylizer, source, auto, regions="auto:2", region_styles=styles, progress=False)
    frames, _ = _read(auto)
    assert max(_distance(frames[:1], [f]) for f in frames) < 2


def test_auto_regions_keep_the_first_frames_centres(stylizer):
    from stylebank_fast.regions import cluster_centres, cluster_labels, nearest_centres

    features = torch.randn(8, 5, 6)
    labels = nearest_centres(features[None], cluster_centres(features, 3))[0]
    # the same regions, numbered the same way, as K-means on the frame alone
    assert torch.equal(labels, cluster_labels(features, 3, (20, 24))[::4, ::4])
    # a later frame: labelled by the same centres, never re-clustered
    later = features + 0.01 * torch.randn_like(features)
    assert (
        nearest_centres(later[None], cluster_centres(features, 3))[0] == labels
    ).float().mean() > 0.9


def test_max_size_scales_frames(stylizer, clip, tmp_path):
    stylize_video(stylizer, clip, tmp_path / "small.mp4", style=0, max_size=24, progress=False)
    frames, made = _read(tmp_path / "small.mp4")
    assert (made.info.width, made.info.height) == (24, 18) and len(frames) == 7


def test_ctrl_c_leaves_no_partial_file(stylizer, clip, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()

    def interrupt(step, steps, losses, seconds):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stylize_video(stylizer, clip, out_dir / "out.mp4", style=0, batch=2, progress=interrupt)
    assert list(out_dir.iterdir()) == []


def run(tiny_model_path, *args):
    return main([*map(str, args), "--model", str(tiny_model_path), "--device", "cpu"])


def test_cli_writes_a_clip_with_progress(tiny_model_path, clip, tmp_path, capsys):
    out = tmp_path / "cli.mp4"
    code = run(tiny_model_path, clip, "-o", out, "--style", "0s:starry_night,1s:mosaic")
    assert code == 0
    err = capsys.readouterr().err
    assert "frame 7/7" in err and "frames/s" in err and f"wrote {out}" in err
    assert len(_read(out)[0]) == 7


def test_cli_user_errors(tiny_model_path, clip, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    audio_only = tmp_path / "audio.mkv"
    with av.open(str(audio_only), "w") as out:
        stream = out.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), "fltp", "mono")
        frame.sample_rate, frame.pts = 16000, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    cases = [
        ([corrupt, "-o", tmp_path / "a.mp4", "--style", "0"], "cannot read video"),
        ([audio_only, "-o", tmp_path / "b.mp4", "--style", "0"], "no video stream"),
        ([clip, "-o", tmp_path / "c.avi", "--style", "0"], "unknown video format '.avi'"),
        ([clip, "-o", clip, "--style", "0"], "would overwrite the input"),
        ([clip, "-o", tmp_path / "d.mp4", "--style", "nope"], "unknown style 'nope'"),
        ([clip, tmp_path / "p.png", "-o", tmp_path, "--style", "0"], "separate calls"),
        (
            [clip, "-o", tmp_path / "e.mp4", "--regions", "auto:2", "--region-styles", "0"],
            "1 region styles",
        ),
    ]
    for args, message in cases:
        assert run(tiny_model_path, *args) == 2, args
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (args, err)
    assert not (tmp_path / "a.mp4").exists() and not (tmp_path / "b.mp4").exists()


def test_outputs_are_checked_before_learning_a_painting(
    tiny_model_path, clip, tmp_path, monkeypatch, capsys
):
    painting = tmp_path / "painting.png"
    Image.fromarray((synthetic_photo(1, 24, 24) * 255).astype(np.uint8)).save(painting)

    def learn(*args, **kwargs):
        raise AssertionError("a painting was learnt before the outputs were checked")

    monkeypatch.setattr(sb.Stylizer, "learn_style", learn)
    for out in (tmp_path / "c.avi", clip):
        assert run(tiny_model_path, clip, "-o", out, "--style-image", painting) == 2
        assert "Traceback" not in capsys.readouterr().err


def test_images_reject_keyframes(tiny_model_path, tmp_path, capsys):
    photo = tmp_path / "p.png"
    Image.fromarray((synthetic_photo(0, 20, 20) * 255).astype(np.uint8)).save(photo)
    assert run(tiny_model_path, photo, "-o", tmp_path / "o.png", "--style", "0s:0,1s:1") == 2
    assert "keyframes (0s:...) are for video" in capsys.readouterr().err


def test_missing_extra_is_one_line(monkeypatch, tiny_model_path, clip, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "av", None)  # import av now fails
    with pytest.raises(StyleBankError, match=r"stylebank_fast\[video\]"):
        require_av()
    assert run(tiny_model_path, clip, "-o", tmp_path / "o.mp4", "--style", "0") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'stylebank_fast[video]'" in err


def test_write_frames_rejects_unknown_formats(tmp_path):
    with pytest.raises(StyleBankError, match="unknown video format"):
        write_frames(tmp_path / "x.avi", [np.zeros((4, 4, 3), np.uint8)])


def test_smoother_averages_noise_and_passes_cuts():
    g = torch.Generator().manual_seed(0)
    still = torch.rand(1, 8, 6, 7, generator=g) + 0.5
    noisy = still + 0.02 * torch.randn(12, 8, 6, 7, generator=g)
    smoothed = FeatureSmoother(0.8)(noisy)
    assert (smoothed[4:] - still).abs().mean() < 0.6 * (noisy[4:] - still).abs().mean()
    # a cut to another shot starts afresh; a smaller change is smoothed
    other = 3 * torch.rand(1, 8, 6, 7, generator=g)
    assert torch.equal(FeatureSmoother()(torch.cat([still, other]))[1], other[0])
    nearby = still + 0.1 * torch.rand(1, 8, 6, 7, generator=g)
    assert not torch.equal(FeatureSmoother()(torch.cat([still, nearby]))[1], nearby[0])
    assert torch.equal(FeatureSmoother(0.0)(noisy), noisy)
    for bad in (-0.1, 1.0):
        with pytest.raises(StyleBankError, match="temporal smoothing"):
            FeatureSmoother(bad)


def test_smoothing_steadies_a_noisy_still(stylizer, tmp_path):
    rng = np.random.default_rng(0)
    still = _frames(1, 36, 48)[0].astype(float)
    noisy = [
        np.clip(still + rng.normal(0, 5, still.shape), 0, 255).astype(np.uint8) for _ in range(8)
    ]
    source = tmp_path / "noisy.mkv"
    write_frames(source, noisy, fps=FPS)

    def flicker(smoothing):
        out = tmp_path / f"s{smoothing}.mkv"
        stylize_video(stylizer, source, out, style=0, smoothing=smoothing, progress=False)
        frames = np.stack(_read(out)[0]).astype(float)
        return np.abs(np.diff(frames, axis=0)).mean()

    assert flicker(0.8) < 0.8 * flicker(0.0)
