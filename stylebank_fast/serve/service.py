"""What the server runs for each request, on the model: the request's image and styles made
into a batch `Item` (or, for an image too large to batch, a whole `Stylizer.stylize` run),
queued on the `Batcher`; and the encoded output."""

from __future__ import annotations

import io
from concurrent.futures import Future

import torch
from PIL import Image
from torch import Tensor

from ..imageio import to_pil
from ..regions import label_source
from ..stylizer import Stylizer
from .batcher import Batcher, Item
from .form import FORMATS, RegionsRequest, StylizeRequest

__all__ = ["StyleService", "encode_image"]

BATCH_PIXELS = 1 << 20  # larger images run alone, in tiles within the memory budget


class StyleService:
    """Stylization requests on one `Stylizer`, batched by a `Batcher` (same arguments)."""

    def __init__(self, stylizer: Stylizer, **batching) -> None:
        self.stylizer = stylizer
        self.batcher = Batcher(stylizer, **batching)

    def styles(self) -> list[str]:
        return self.stylizer.list_styles()

    def stylize(self, request: StylizeRequest) -> Future:
        """A future of (the stylized image: a float tensor [3,H,W] or a PIL image; the number
        of images in its forward). Unknown styles raise here, before anything is queued."""
        stylizer, image = self.stylizer, request.image
        auto = isinstance(request.regions, str)  # auto:N runs the encoder first: alone
        if request.regions is None:
            mix = stylizer.style_weights(request.style)
        elif auto:  # no labels yet; the styles are checked all the same
            for style in request.region_styles:
                stylizer.style_weights(style)
        else:
            labels = label_source(request.regions, image.shape[:2])
            mix = stylizer.region_mix(labels, request.region_styles, request.feather)[0]
        if auto or image.shape[0] * image.shape[1] > BATCH_PIXELS:
            return self.batcher.call(
                lambda: (
                    stylizer.stylize(
                        image,
                        style=request.style,
                        regions=request.regions,
                        region_styles=request.region_styles,
                        feather=request.feather,
                        strength=request.strength,
                        preserve_color=request.preserve_color,
                    ),
                    1,
                )
            )
        pixels = torch.from_numpy(image).permute(2, 0, 1).float().div_(255)
        return self.batcher.stylize(
            Item(pixels, mix.cpu(), request.strength, request.preserve_color)
        )

    def region_map(self, request: RegionsRequest) -> Future:
        """A future of the auto:N region map as a colour image (`Stylizer.region_map`)."""
        return self.batcher.call(lambda: self.stylizer.region_map(request.image, request.regions))

    def close(self) -> None:
        self.batcher.close()


def encode_image(image: Tensor | Image.Image, fmt: str) -> tuple[bytes, str]:
    """`image` in the API's output format `fmt` (FORMATS): the bytes and their media type."""
    if isinstance(image, Tensor):
        image = to_pil(image)
    pil_format, media_type, options = FORMATS[fmt]
    buffer = io.BytesIO()
    image.save(buffer, format=pil_format, **options)
    return buffer.getvalue(), media_type
