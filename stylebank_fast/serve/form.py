"""The fields of an API request, read and checked: every mistake is a StyleBankError that
says which field, what was wrong and what to send instead (the app answers it with 400, or
413 for an image too large)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import StyleBankError
from ..imageio import open_upright, to_rgb
from ..regions import label_source, parse_auto
from ..styles import Style, parse_spec, parse_spec_list

__all__ = ["FORMATS", "StylizeRequest", "RegionsRequest", "parse_stylize", "parse_regions"]

# output format -> (PIL format, media type, save options)
FORMATS = {
    "png": ("PNG", "image/png", {"compress_level": 1}),  # level 1: a fifth of 6's time
    "jpeg": ("JPEG", "image/jpeg", {"quality": 92}),
    "webp": ("WEBP", "image/webp", {"quality": 90}),
}
_STYLIZE_FIELDS = (
    "image",
    "style",
    "regions",
    "region_styles",
    "strength",
    "preserve_color",
    "feather",
    "max_size",
    "format",
)
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


@dataclass
class StylizeRequest:
    image: np.ndarray  # uint8 [H,W,3]
    style: Style | None
    regions: np.ndarray | str | None  # a label or colour map of any size, or auto:N
    region_styles: list[Style] | None
    feather: int
    strength: float
    preserve_color: bool
    format: str


@dataclass
class RegionsRequest:
    image: np.ndarray  # uint8 [H,W,3]
    regions: str  # auto:N


def _check_fields(form: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(form) - set(allowed))
    if unknown:
        raise StyleBankError(f"unknown field {unknown[0]!r}; the fields are {', '.join(allowed)}")


def _text(form: Mapping[str, Any], name: str) -> str | None:
    value = form.get(name)
    if value is None or isinstance(value, str):
        return value
    raise StyleBankError(f"field {name!r} must be text, not a file")


def _number(
    form: Mapping[str, Any],
    name: str,
    kind: type,
    default: Any,
    low: float,
    high: float | None = None,
) -> Any:
    text = _text(form, name)
    if text is None or text.strip() == "":
        return default
    try:
        value = kind(text)
    except ValueError:
        raise StyleBankError(f"field {name!r} must be a {kind.__name__}, got {text!r}") from None
    if not (low <= value and (high is None or value <= high)):
        between = f">= {low}" if high is None else f"between {low} and {high}"
        raise StyleBankError(f"field {name!r} must be {between}, got {text!r}")
    return value


def _flag(form: Mapping[str, Any], name: str) -> bool:
    text = (_text(form, name) or "").strip().lower()
    if text not in _TRUE + _FALSE:
        raise StyleBankError(f"field {name!r} is true or false (1/0), got {text!r}")
    return text in _TRUE


def _image(form: Mapping[str, Any], name: str, max_size: int | None, max_pixels: int):
    """The upload `name` (an object with .file and .filename) as an upright PIL image."""
    upload = form.get(name)
    if upload is None:
        raise StyleBankError(f"field {name!r} is missing: send the image as a file upload")
    if isinstance(upload, str):
        raise StyleBankError(f"field {name!r} must be a file upload, not text")
    label = f"{name} ({upload.filename or 'upload'})"
    return open_upright(upload.file, max_size, max_pixels, name=label)


def parse_stylize(form: Mapping[str, Any], max_pixels: int) -> StylizeRequest:
    """A /api/stylize request. Styles are not looked up here (`style_weights` does, with the
    model's names in its message)."""
    _check_fields(form, _STYLIZE_FIELDS)
    max_size = _number(form, "max_size", int, None, 1)
    fmt = (_text(form, "format") or "png").strip().lower()
    if fmt not in FORMATS:
        raise StyleBankError(f"field 'format' is one of {', '.join(FORMATS)}, got {fmt!r}")
    style = _text(form, "style")
    region_styles = _text(form, "region_styles")
    has_regions = form.get("regions") is not None
    if (style is None) == (not has_regions):
        raise StyleBankError(
            "send either 'style' (a name or a blend a:0.7,b:0.3) or 'regions' (a label or "
            "colour image) with 'region_styles' (one style per region, comma separated)"
        )
    if has_regions and not region_styles:
        raise StyleBankError("'regions' needs 'region_styles': one style per region")
    if region_styles and not has_regions:
        raise StyleBankError("'region_styles' needs 'regions' (a label or colour image)")
    feather = _number(form, "feather", int, 0, 0, 256)
    if feather and not has_regions:
        raise StyleBankError("'feather' softens region borders: it needs 'regions'")
    image = np.array(to_rgb(_image(form, "image", max_size, max_pixels)))  # writable: torch's
    regions = form.get("regions")
    if has_regions:
        region_styles = parse_spec_list(region_styles)
        if isinstance(regions, str):  # auto:N, found on the photo when its turn comes
            text = regions.strip()
            count, what = parse_auto(text), f"regions {text} makes"
            if count is None:
                raise StyleBankError(
                    f"field 'regions' is a label or colour image (a file upload) or auto:N, "
                    f"got {regions!r}"
                )
            regions = text
        else:
            regions = np.asarray(_image(form, "regions", None, max_pixels))
            count = label_source(regions, image.shape[:2]).count
            what = "the region map has"
        if count != len(region_styles):
            raise StyleBankError(
                f"{what} {count} regions (distinct values or colours) but "
                f"{len(region_styles)} region styles were given; give one style per region"
            )
    return StylizeRequest(
        image=image,
        style=None if style is None else parse_spec(style),
        regions=regions,
        region_styles=region_styles,
        feather=feather,
        strength=_number(form, "strength", float, 1.0, 0.0, 1.0),
        preserve_color=_flag(form, "preserve_color"),
        format=fmt,
    )


def parse_regions(form: Mapping[str, Any], max_pixels: int) -> RegionsRequest:
    """A /api/regions request: an image and regions=auto:N (N up to 8)."""
    _check_fields(form, ("image", "regions", "max_size"))
    text = (_text(form, "regions") or "").strip()
    count = parse_auto(text)
    if count is None or count > 8:
        raise StyleBankError(f"field 'regions' is auto:N with N from 1 to 8, got {text!r}")
    max_size = _number(form, "max_size", int, None, 1)
    return RegionsRequest(np.asarray(to_rgb(_image(form, "image", max_size, max_pixels))), text)
