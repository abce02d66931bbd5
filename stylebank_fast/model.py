"""The StyleBank network: a shared auto-encoder (E, D) and one convolution bank per style."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .ops import bank_conv2d
from .region_norm import region_instance_norm, region_weights, upsample_regions
from .region_statistics import PATCHES, PatchSampler, StyleAlone
from .styles import blend_weights, style_index

__all__ = ["Encoder", "StyleBank", "Decoder", "StyleBankNet", "StyleSpec"]

FEATURES = 128  # channels of the feature map the banks act on (the paper's choice)

# What `StyleBankNet.forward` accepts as `style`: see its docstring.
StyleSpec = Union[None, int, str, Tensor, Mapping[Union[int, str], float]]


def _conv_in_relu(c_in: int, c_out: int, k: int, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, k, stride, padding=k // 2, padding_mode="reflect"),
        nn.InstanceNorm2d(c_out, affine=True),
        nn.ReLU(inplace=True),
    ]


class Encoder(nn.Sequential):
    """Image [N,3,H,W] in [0,1] -> features [N,128,H/4,W/4]."""

    def __init__(self) -> None:
        super().__init__(
            *_conv_in_relu(3, 32, 9),
            *_conv_in_relu(32, 64, 3, stride=2),
            *_conv_in_relu(64, FEATURES, 3, stride=2),
        )


class Decoder(nn.Sequential):
    """Features [N,128,h,w] -> image [N,3,4h,4w] (unclamped; clamp to [0,1] for display)."""

    def __init__(self) -> None:
        super().__init__(
            nn.Upsample(scale_factor=2, mode="nearest"),
            *_conv_in_relu(FEATURES, 64, 3),
            nn.Upsample(scale_factor=2, mode="nearest"),
            *_conv_in_relu(64, 32, 3),
            nn.Conv2d(32, 3, 9, padding=4, padding_mode="reflect"),
        )

    def forward(
        self, features: Tensor, regions: Tensor | None = None, alone: StyleAlone | None = None
    ) -> Tensor:
        """`regions` [N|1,R,h,w] (region weights at the features' size, see
        `region_norm.region_weights`): each InstanceNorm normalises each region with its own
        statistics, completed by `alone` to its style's over the whole image, so a region
        looks like its style alone. None: plain InstanceNorm."""
        x = features
        norms = 0
        for layer in self:
            if regions is not None and isinstance(layer, nn.InstanceNorm2d):
                weights = upsample_regions(regions, tuple(x.shape[-2:]))
                complete = None if alone is None else alone.completion(norms)
                x = region_instance_norm(x, weights, layer.weight, layer.bias, layer.eps, complete)
                norms += 1
            else:
                x = layer(x)
        return x


class StyleBank(nn.Module):
    """K banks of kxk convolutions 128->128 with bias, applied by one `bank_conv2d` call.

    Each bank is its own Parameter, so a bank can be frozen alone (incremental learning).
    """

    def __init__(self, n_styles: int, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size not in (3, 5, 7):
            raise ValueError(f"kernel_size must be 3, 5 or 7, got {kernel_size}")
        self.kernel_size = kernel_size
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.add_banks(n_styles)

    def __len__(self) -> int:
        return len(self.weights)

    def add_banks(self, n: int, device: torch.device | None = None) -> list[int]:
        """Append `n` freshly initialised banks (nn.Conv2d's init); returns their indices."""
        first = len(self)
        for _ in range(n):
            conv = nn.Conv2d(FEATURES, FEATURES, self.kernel_size, device=device)
            self.weights.append(nn.Parameter(conv.weight.detach()))
            self.biases.append(nn.Parameter(conv.bias.detach()))
        return list(range(first, first + n))

    def forward(self, features: Tensor, mix: Tensor, mask_on: str = "output") -> Tensor:
        return bank_conv2d(
            features,
            torch.stack(list(self.weights)),
            torch.stack(list(self.biases)),
            mix,
            mask_on=mask_on,
        )


class StyleBankNet(nn.Module):
    """StyleBank (Chen et al., CVPR 2017): image -> E -> bank(s) -> D -> image.

    Args:
        n_styles: number of banks K.
        kernel_size: size of each bank's convolution (3, 5 or 7).
        style_names: one name per style (default ``style0``, ``style1``, ...).
    """

    def __init__(
        self,
        n_styles: int,
        kernel_size: int = 3,
        style_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if n_styles < 0:
            raise ValueError(f"n_styles must be >= 0, got {n_styles}")
        names = list(style_names) if style_names is not None else []
        if style_names is None:
            names = [f"style{i}" for i in range(n_styles)]
        if len(names) != n_styles:
            raise ValueError(f"got {len(names)} style names for {n_styles} styles")
        self.encoder = Encoder()
        self.bank = StyleBank(n_styles, kernel_size)
        self.decoder = Decoder()
        # lattice points for each region's style-alone statistics (region_statistics); 0: each
        # region normalised with its own statistics only, as the ONNX export does
        self.region_patches = PATCHES
        self.style_names: list[str] = []
        for name in names:
            self._add_name(name)

    @property
    def n_styles(self) -> int:
        return len(self.bank)

    @property
    def kernel_size(self) -> int:
        return self.bank.kernel_size

    def config(self) -> dict:
        """What it takes to rebuild this network (stored in checkpoints)."""
        return {"n_styles": self.n_styles, "kernel_size": self.kernel_size}

    def _add_name(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a style name must be a non-empty string, got {name!r}")
        if name in self.style_names:
            raise ValueError(f"style name {name!r} is already used; names: {self.style_names}")
        self.style_names.append(name)

    def add_styles(self, names: Sequence[str]) -> list[int]:
        """Append one new (untrained) bank per name; returns the new style indices."""
        for name in names:
            self._add_name(name)
        return self.bank.add_banks(len(names), device=self.encoder[0].weight.device)

    def style_index(self, style: int | str) -> int:
        """Index of a style given by index or by name (see `styles.style_index`)."""
        return style_index(self.style_names, style)

    def min_size(self) -> int:
        """Smallest side the layers can pad by reflection (smaller inputs are padded up)."""
        return max(8, 4 * (self.kernel_size // 2 + 1))

    def _mix(self, style: StyleSpec, n: int, device: torch.device) -> Tensor:
        """Turns any accepted `style` into a `bank_conv2d` mix (ids, weights or masks)."""
        if isinstance(style, (int, str)):
            return torch.full((n,), self.style_index(style), dtype=torch.long, device=device)
        dtype = self.bank.weights[0].dtype if self.n_styles else torch.float32
        if isinstance(style, Mapping):  # weights as given (the op does not normalise either)
            weights = blend_weights(self.style_names, style, normalise=False)
            return weights.to(device=device, dtype=dtype)[None]
        if not isinstance(style, Tensor):
            raise TypeError(
                "style must be None, an int, a name, a dict {style: weight}, "
                f"int64 ids [N], weights [N,K] or masks [N,K,h,w]; got {type(style).__name__}"
            )
        if not style.is_floating_point():
            if style.dim() != 1 or style.shape[0] != n:
                raise ValueError(f"style ids must have shape [{n}], got {list(style.shape)}")
            return style.to(device=device, dtype=torch.long)
        if style.dim() not in (2, 4) or style.shape[1] != self.n_styles:
            raise ValueError(
                f"style weights must be [N,{self.n_styles}] or masks [N,{self.n_styles},h,w], "
                f"got {list(style.shape)}"
            )
        return style.to(device=device, dtype=dtype)

    def encode(self, images: Tensor) -> Tensor:
        """Encoder features [N,128,h,w] of `images` [N,3,H,W], padded as `forward` pads them:
        feature pixel (i, j) covers image pixels [4i, 4i+4) x [4j, 4j+4)."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be [N,3,H,W], got {list(images.shape)}")
        return self.encoder(self._pad(images))

    def forward(
        self,
        images: Tensor,
        style: StyleSpec = None,
        mask_on: str = "output",
        strength: float = 1.0,
    ) -> Tensor:
        """Stylise `images` [N,3,H,W] (float in [0,1]); the output has the input's size.

        `style` is one of: None (the auto-encoder branch E->D); an int or a name (all images);
        int64 ids [N] (one style per image); float weights [N,K] or [1,K], or a dict
        {style: weight} (linear fusion); float masks [N,K,h,w] (region fusion; `mask_on` as
        in `bank_conv2d`): at the image's size (pixel-exact), at the feature map's (see
        `padded_size`), or any other size (stretched over the padded image). With masks,
        the decoder normalises each bank's region with its own statistics.
        `strength` blends the banks' features with the encoder's before decoding:
        1 is the full style, 0 the auto-encoder's reconstruction.
        """
        return self.decode(self.encode(images), images.shape[-2:], style, mask_on, strength)

    def decode(
        self,
        features: Tensor,
        size: tuple[int, int],
        style: StyleSpec = None,
        mask_on: str = "output",
        strength: float = 1.0,
    ) -> Tensor:
        """The second half of `forward`: encoder `features` [N,C,h,w] of images of `size`
        (H, W) through the bank (`style`, `mask_on`, `strength` as in `forward`) and the
        decoder, to images [N,3,H,W]. Video filters the features between the two halves."""
        h, w = size
        regions = alone = None
        if style is not None:
            mix, regions, banks = self.bank_mix(style, features.shape[0], (h, w), features.device)
            if regions is not None:
                fh, fw = features.shape[-2:]
                sampler = self.patch_sampler((fh, fw), regions, features.device)
                if sampler is not None:
                    sampler.add(slice(0, fh), slice(0, fw), features)
                    alone = self.style_alone(sampler, regions, banks, strength)
            features = self.styled_features(features, mix, mask_on, strength)
        return self.decoder(features, regions, alone=alone)[..., :h, :w]

    def bank_mix(
        self, style: StyleSpec, n: int, size: tuple[int, int], device: torch.device
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """The `bank_conv2d` mix of `style` (not None; see `forward`) for `n` images of `size`
        (H, W), masks at the feature map's size; and with masks, the region weights for the
        decoder's normalisations and each region's bank (else None, None)."""
        mix = self._mix(style, n, device)
        if mix.dim() != 4:
            return mix, None, None
        mix = self.feature_masks(mix, size)
        return (mix, *region_weights(mix))

    def patch_sampler(
        self, size: tuple[int, int], regions: Tensor, device: torch.device
    ) -> PatchSampler | None:
        """Where the features' patches for `style_alone` go, for a feature map of `size` and
        `regions` (from `bank_mix`); None where there are none (`region_patches` 0, or a tiny
        map)."""
        n, r = regions.shape[:2]
        sampler = PatchSampler(size, self.kernel_size, self.region_patches, r, n, FEATURES, device)
        return sampler if len(sampler) else None

    def style_alone(
        self, sampler: PatchSampler, regions: Tensor, banks: Tensor, strength: float | Tensor
    ) -> StyleAlone:
        """Each region's statistics completed to its style alone's (`region_statistics`), from
        the features' patches in `sampler`, the region weights and banks of `bank_mix`."""
        weights = torch.stack(list(self.bank.weights))[banks]
        biases = torch.stack(list(self.bank.biases))[banks]
        decoder = getattr(self.decoder, "source", self.decoder)  # a fast copy keeps its layers
        return StyleAlone(decoder, weights, biases, strength, regions, sampler)

    def styled_features(
        self,
        features: Tensor,
        mix: Tensor,
        mask_on: str = "output",
        strength: float | Tensor = 1.0,
    ) -> Tensor:
        """The banks' features for `mix` (from `bank_mix`), blended with `features` by
        `strength`: one number, or one per image [N] (requests batched by the server)."""
        styled = self.bank(features, mix, mask_on)
        if isinstance(strength, Tensor):
            return torch.lerp(features, styled, strength.to(styled).view(-1, 1, 1, 1))
        return styled if strength == 1 else torch.lerp(features, styled, strength)

    def padded_size(self, h: int, w: int) -> tuple[int, int]:
        """The size an h x w image is padded to (bottom/right) before encoding: a multiple of
        4 (two stride-2 layers), at least `min_size`. The feature map is a quarter of it."""
        return max(-(-h // 4) * 4, self.min_size()), max(-(-w // 4) * 4, self.min_size())

    def feature_masks(self, masks: Tensor, image: tuple[int, int]) -> Tensor:
        """Masks [N,C,h,w] for an image of size `image` (H, W), resized to its feature map.

        Masks at the image's size are padded as the image is and averaged per 4x4 cell, so each
        feature pixel gets exactly the mask pixels it covers; masks already at the feature
        map's size are kept; any other size is stretched over the padded image.
        """
        padded = self.padded_size(*image)
        features = (padded[0] // 4, padded[1] // 4)
        if masks.shape[-2:] == features:
            return masks
        if masks.shape[-2:] == tuple(image):
            pad = (0, padded[1] - image[1], 0, padded[0] - image[0])
            return F.avg_pool2d(F.pad(masks, pad, mode="replicate"), 4)
        return F.interpolate(masks, size=features, mode="bilinear", antialias=True)

    def _pad(self, images: Tensor) -> Tensor:
        """Pads bottom/right to `padded_size` (reflecting, or replicating tiny images)."""
        h, w = images.shape[-2:]
        padded_h, padded_w = self.padded_size(h, w)
        pad_h, pad_w = padded_h - h, padded_w - w
        if pad_h == 0 and pad_w == 0:
            return images
        return F.pad(images, (0, pad_w, 0, pad_h), mode=self.pad_mode(h, w))

    def pad_mode(self, h: int, w: int) -> str:
        """How an h x w image is padded to `padded_size`: "reflect", or "replicate" for images
        too small to reflect."""
        padded_h, padded_w = self.padded_size(h, w)
        return "reflect" if padded_h - h < h and padded_w - w < w else "replicate"
