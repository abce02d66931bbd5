"""Model and style files: round trips, safe loading, clear errors, atomic writes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import stylebank_fast.checkpoint as checkpoint
from stylebank_fast import (
    CheckpointError,
    StyleBankNet,
    export_style,
    import_style,
    load_model,
    save_model,
)


def _model(seed: int, n: int = 2, names=("sky", "sea")) -> StyleBankNet:
    torch.manual_seed(seed)
    return StyleBankNet(n, style_names=list(names)[:n])


def _same_outputs(a: StyleBankNet, b: StyleBankNet, styles) -> None:
    x = torch.rand(2, 3, 20, 24, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for style in styles:
            torch.testing.assert_close(a(x, style), b(x, style), rtol=0, atol=0)


def test_round_trip(tmp_path):
    model = _model(0)
    save_model(model, tmp_path / "m.sbk")
    loaded = load_model(tmp_path / "m.sbk")
    assert loaded.style_names == ["sky", "sea"] and loaded.kernel_size == 3
    _same_outputs(model, loaded, [None, 0, "sea"])
    assert [p.name for p in tmp_path.iterdir()] == ["m.sbk"]  # no temp files left


def test_written_files_get_the_usual_permissions(tmp_path):
    from PIL import Image

    from stylebank_fast.imageio import save_image

    previous = os.umask(0o022)
    try:
        save_model(_model(0), tmp_path / "m.sbk")
        save_image(Image.new("RGB", (4, 3)), tmp_path / "out.png")
    finally:
        os.umask(previous)
    for name in ("m.sbk", "out.png"):  # as open(path, "w") gives, not mkstemp's 0o600
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644


def test_files_are_loaded_without_running_code(tmp_path, monkeypatch):
    calls = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(k) or real_load(*a, **k))
    save_model(_model(0), tmp_path / "m.sbk")
    load_model(tmp_path / "m.sbk")
    assert calls and all(k.get("weights_only") is True for k in calls)


class Payload:  # a pickle that would run code if unpickled without weights_only
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "not a readable model file"),
        (b"\x00garbage" * 10, "not a readable model file"),
        ("truncated", "not a readable model file"),
        ("pickle", "not a readable model file"),
        ("state_dict", "not a stylebank_fast model file"),
        ("future", "format version 99"),
    ],
)
def test_bad_files_name_the_file(tmp_path, content, message):
    path = tmp_path / "bad.sbk"
    if content == "truncated":
        save_model(_model(0), path)
        path.write_bytes(path.read_bytes()[:5000])
    elif content == "pickle":
        torch.save({"format": checkpoint.MODEL_FORMAT, "payload": Payload()}, path)
    elif content == "state_dict":
        torch.save(_model(0).state_dict(), path)
    elif content == "future":
        torch.save({"format": checkpoint.MODEL_FORMAT, "version": 99}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message) as error:
        load_model(path)
    assert str(path) in str(error.value)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="model file not found: .*nothing.sbk"):
        load_model(tmp_path / "nothing.sbk")


def test_export_and_import_a_style(tmp_path):
    source = _model(0)
    export_style(source, "sea", tmp_path / "sea.style")
    assert (tmp_path / "sea.style").stat().st_size < (128 * 128 * 9 + 128) * 4 + 4096
    target = _model(0, n=1)  # same E and D (same seed), only "sky"
    target.load_state_dict(
        {**target.state_dict(), **{k: v for k, v in source.state_dict().items() if "bank" not in k}}
    )
    assert import_style(target, tmp_path / "sea.style") == 1
    assert target.style_names == ["sky", "sea"]
    _same_outputs(source, target, ["sea"])
    with pytest.raises(CheckpointError, match="already has a style named 'sea'"):
        import_style(target, tmp_path / "sea.style")
    assert import_style(target, tmp_path / "sea.style", name="sea2") == 2


def test_import_refuses_another_autoencoder(tmp_path):
    export_style(_model(0), 1, tmp_path / "sea.style")
    with pytest.raises(CheckpointError, match="different encoder/decoder"):
        import_style(_model(1), tmp_path / "sea.style")
    with pytest.raises(CheckpointError, match="not a stylebank_fast style file"):
        save_model(_model(0), tmp_path / "m.sbk")
        import_style(_model(0), tmp_path / "m.sbk")


def test_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "m.sbk"
    old = _model(0)
    save_model(old, path)
    before = path.read_bytes()

    def half_write(obj, f):
        f.write(b"partial")
        raise KeyboardInterrupt  # Ctrl-C in the middle of writing

    monkeypatch.setattr(torch, "save", half_write)
    with pytest.raises(KeyboardInterrupt):
        save_model(_model(1), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.sbk"]


def test_killed_save_keeps_the_previous_file(tmp_path):
    """A process killed while writing (here: right before the rename) leaves the old file."""
    path = tmp_path / "m.sbk"
    save_model(_model(0), path)
    before = path.read_bytes()
    script = textwrap.dedent(
        f"""
        import os, torch
        from stylebank_fast import StyleBankNet, save_model
        os.fsync = lambda fd: os.kill(os.getpid(), 9)  # SIGKILL once the data is written
        torch.manual_seed(1)
        save_model(StyleBankNet(2), {str(path)!r})
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True)
    assert done.returncode == -9, done.stderr.decode()
    assert path.read_bytes() == before
    _same_outputs(_model(0), load_model(path), [0])


@pytest.mark.parametrize("kind", ["model", "style"])
def test_flipped_bytes_in_the_tensors_are_refused(tmp_path, kind):
    path = tmp_path / f"file.{kind}"
    model = _model(0)
    save_model(model, path) if kind == "model" else export_style(model, "sky", path)
    data = bytearray(path.read_bytes())
    middle = int(len(data) * 0.6)  # tensor bytes make up nearly all of the file
    data[middle : middle + 4] = bytes(b ^ 0xFF for b in data[middle : middle + 4])
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="damaged|not a readable") as error:
        load_model(path) if kind == "model" else import_style(_model(0), path, name="x")
    assert str(path) in str(error.value)


def test_a_directory_is_not_a_model_file(tmp_path):
    with pytest.raises(CheckpointError, match="is a directory"):
        load_model(tmp_path)


def test_pickled_objects_are_refused_without_torch_advice(tmp_path):
    path = tmp_path / "bad.sbk"
    torch.save({"format": checkpoint.MODEL_FORMAT, "payload": Payload()}, path)
    with pytest.raises(CheckpointError) as error:
        load_model(path)
    assert "weights_only" not in str(error.value) and "\n" not in str(error.value)
