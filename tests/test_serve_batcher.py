"""The server's batcher: requests batched together give what each gives alone, whatever mix
of styles, blends, regions, strengths and sizes share a round; errors and cancellations stay
with their own request."""

from __future__ import annotations

import threading
from concurrent.futures import Future

import numpy as np
import pytest
import torch
from serve_helpers import photo

import stylebank_fast as sb
from stylebank_fast.imageio import to_uint8
from stylebank_fast.regions import label_source
from stylebank_fast.serve.batcher import Batcher, Item, QueueFull


@pytest.fixture(scope="module")
def stylizer(tiny_model_path) -> sb.Stylizer:
    return sb.Stylizer(tiny_model_path, device="cpu")


def _pixels(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1).float() / 255


def _halves(h: int, w: int) -> np.ndarray:
    labels = np.zeros((h, w), np.uint8)
    labels[:, w // 2 :] = 1
    return labels


def test_a_batch_gives_what_each_request_gives_alone(stylizer):
    cases = [  # (image, stylize() arguments) of the same size, and one of another size
        (photo(0), {"style": "starry_night"}),
        (photo(1), {"style": {"great_wave": 0.3, "mosaic": 0.7}, "strength": 0.5}),
        (photo(2), {"regions": _halves(48, 64), "region_styles": ["mosaic", "starry_night"]}),
        (
            photo(3),
            {
                "regions": _halves(48, 64),
                "region_styles": ["great_wave", {"mosaic": 1, "starry_night": 1}],
                "feather": 4,
                "preserve_color": True,
                "strength": 0.8,
            },
        ),
        (photo(4, 40, 56), {"style": "mosaic"}),
    ]
    items = []
    for image, args in cases:
        if "regions" in args:
            labels = label_source(args["regions"], image.shape[:2])
            mix = stylizer.region_mix(labels, args["region_styles"], args.get("feather", 0))[0]
        else:
            mix = stylizer.style_weights(args["style"])
        strength, keep = args.get("strength", 1.0), args.get("preserve_color", False)
        items.append(Item(_pixels(image), mix, strength, keep))
    batcher = Batcher(stylizer, max_batch=8, wait=0.5)  # waits long enough to gather all
    try:
        futures = [batcher.stylize(item) for item in items]
        results = [future.result(30) for future in futures]
    finally:
        batcher.close()
    assert sorted(batcher.batch_sizes) == [1, 4]  # one size group of 4, one of 1
    for (image, args), (out, batch) in zip(cases, results):
        alone = np.asarray(stylizer.stylize(image, **args), dtype=np.int16)
        assert np.abs(to_uint8(out).astype(np.int16) - alone).max() <= 1, args
        assert batch == (1 if image.shape[0] == 40 else 4)
    # the styles did differ: a batch that gave every image one style would fail above
    assert not np.array_equal(to_uint8(results[0][0]), to_uint8(results[1][0]))


def test_a_full_queue_is_refused_and_errors_stay_with_their_request(stylizer):
    gate = threading.Event()
    batcher = Batcher(stylizer, max_queue=2, wait=0)
    try:
        blocked = batcher.call(gate.wait)  # holds the worker
        failing = batcher.call(lambda: 1 / 0)
        with pytest.raises(QueueFull, match="busy .* try again"):
            batcher.call(lambda: None)
        gate.set()
        assert blocked.result(10) is True
        with pytest.raises(ZeroDivisionError):
            failing.result(10)
        item = Item(_pixels(photo(0)), stylizer.style_weights("mosaic"))
        out, batch = batcher.stylize(item).result(30)  # the worker went on
        assert out.shape == (3, 48, 64) and batch == 1
    finally:
        batcher.close()


def test_a_cancelled_request_is_skipped(stylizer):
    gate = threading.Event()
    ran = []
    batcher = Batcher(stylizer, wait=0)
    try:
        batcher.call(gate.wait)
        cancelled: Future = batcher.call(lambda: ran.append("cancelled"))
        assert cancelled.cancel()
        after = batcher.call(lambda: ran.append("after"))
        gate.set()
        after.result(10)
        assert ran == ["after"]
    finally:
        batcher.close()


def test_settings_are_checked(stylizer):
    with pytest.raises(sb.StyleBankError, match="max_batch"):
        Batcher(stylizer, max_batch=0)
