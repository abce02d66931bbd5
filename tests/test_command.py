"""The `stylebank-fast` console script and --version."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import stylebank_fast as sb
from stylebank_fast import add_style, export, stylize, train
from stylebank_fast.cli.command import main


def test_version_everywhere(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"stylebank-fast {sb.__version__}"
    for tool in (stylize, train, add_style, export):
        assert tool.main(["--version"]) == 0
        assert capsys.readouterr().out.strip() == f"stylebank_fast {sb.__version__}"


def test_subcommands_run_the_tools(tiny_model_path, tmp_path, capsys):
    photo = tmp_path / "a.png"
    Image.fromarray(np.full((12, 16, 3), 128, np.uint8)).save(photo)
    out = tmp_path / "o.png"
    argv = ["stylize", str(photo), "-o", str(out), "--model", str(tiny_model_path), "--style", "0"]
    assert main([*argv, "--device", "cpu"]) == 0 and out.is_file()
    assert main(["add-style", "--help"]) == 0
    assert "stylebank_fast.add_style" in capsys.readouterr().out
    assert main(["export", "--help"]) == 0
    assert "stylebank_fast.export" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["paint"], []])
def test_unknown_or_missing_command_exits_2(argv, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "usage: stylebank-fast" in captured.out + captured.err
