"""Perceptual losses (content, style Gram, total variation) on a pretrained loss network."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import efficientnet_lite, vgg
from .efficientnet_lite import EfficientNetLite0, find_efficientnet_lite0_weights
from .errors import StyleBankError
from .vgg import VGG16Features, find_vgg16_weights

__all__ = [
    "LOSS_NETWORKS",
    "LossNetwork",
    "LossWeights",
    "PerceptualLoss",
    "build_loss_network",
    "gram",
    "identity_loss",
    "out_of_range",
    "total_variation",
]


@dataclass(frozen=True)
class _Layers:
    style: tuple[str, ...]
    content: str


# Layer choices. VGG-16: the paper's. EfficientNet-Lite0: the ReLU6 activations after the stem
# and the expansions of blocks 1, 3, 5, 8 (/2, /2, /4, /8, /16), content at block 5's expansion
# (/8): these gave brush strokes in a Gatys-style test (see docs/training.md).
LOSS_NETWORKS = {
    "vgg16": _Layers(("relu1_2", "relu2_2", "relu3_2", "relu4_2"), "relu4_2"),
    "efficientnet_lite0": _Layers(
        ("stem", "b1_expand", "b3_expand", "b5_expand", "b8_expand"), "b5_expand"
    ),
}

# the layers each network can give (a content layer other than its default must be one)
_KNOWN_LAYERS = {"vgg16": tuple(vgg.LAYERS), "efficientnet_lite0": efficientnet_lite.LAYERS}


# name -> (layers wanted, weights path or None) -> the pretrained network, which has
# `extract(images, layers) -> {layer: activation}`
_BUILDERS = {
    "vgg16": lambda wanted, weights: VGG16Features(wanted).load_weights(
        find_vgg16_weights(weights)
    ),
    "efficientnet_lite0": lambda wanted, weights: EfficientNetLite0().load_weights(
        find_efficientnet_lite0_weights(weights)
    ),
}


class LossNetwork(nn.Module):
    """A frozen, pretrained feature network and the layers the losses use."""

    def __init__(
        self, name: str, weights: str | None = None, content_layer: str | None = None
    ) -> None:
        """`content_layer`: the layer of the content loss instead of the network's default
        (`LOSS_NETWORKS`); a shallower one keeps more of the photo's edges."""
        super().__init__()
        if name not in LOSS_NETWORKS:
            raise ValueError(f"unknown loss network {name!r}; choose from {list(LOSS_NETWORKS)}")
        if content_layer is not None and content_layer not in _KNOWN_LAYERS[name]:
            raise StyleBankError(
                f"{name} has no layer {content_layer!r} for the content loss; "
                f"choose from {', '.join(_KNOWN_LAYERS[name])}"
            )
        self.name = name
        self.layers = replace(
            LOSS_NETWORKS[name], content=content_layer or LOSS_NETWORKS[name].content
        )
        self.wanted = (*self.layers.style, self.layers.content)
        self.net = _BUILDERS[name](self.wanted, weights)
        self.requires_grad_(False)
        self.eval()
        self.to(memory_format=torch.channels_last)  # oneDNN's fastest layout for these convs

    def train(self, mode: bool = True) -> LossNetwork:
        return super().train(False)  # BatchNorm statistics are part of the pretrained weights

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        return self.net.extract(images, self.wanted)


def build_loss_network(
    name: str,
    weights: str | None = None,
    device: torch.device | None = None,
    content_layer: str | None = None,
) -> LossNetwork:
    """The loss network `name` ("vgg16" or "efficientnet_lite0") with its pretrained weights.

    `weights` is a path to the state dict; without it VGG-16 is looked up in $STYLEBANK_VGG16
    and torch hub's cache, EfficientNet-Lite0 in the optional package that ships it.
    `content_layer`: see `LossNetwork`.
    """
    return LossNetwork(name, weights, content_layer).to(device)


def gram(features: Tensor) -> Tensor:
    """One Gram matrix per image, [N,C,C], normalised by C*H*W."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def total_variation(images: Tensor) -> Tensor:
    """Mean squared difference of neighbouring pixels (smoothness prior)."""
    dy = images[..., 1:, :] - images[..., :-1, :]
    dx = images[..., :, 1:] - images[..., :, :-1]
    return dy.pow(2).mean() + dx.pow(2).mean()


def out_of_range(images: Tensor) -> Tensor:
    """Mean squared distance of pixels from [0, 1]; zero for any image inside it.

    The loss network cannot tell a pixel above 1 from a brighter one, so without this the
    stylising branch learns to push saturated colours far out of range (blown-out blobs once
    the output is clipped to an image).
    """
    return (F.relu(-images).pow(2) + F.relu(images - 1).pow(2)).mean()


def identity_loss(output: Tensor, images: Tensor) -> Tensor:
    """The auto-encoder branch's loss: reconstruct the input."""
    return F.mse_loss(output, images)


@dataclass
class LossWeights:
    """Weights of the loss terms. Each term is relative (see `PerceptualLoss`), so the same
    weights serve both loss networks."""

    content: float = 1.0
    style: float = 100.0
    tv: float = 10.0
    range: float = 100.0


class PerceptualLoss(nn.Module):
    """content + style + TV + range loss of stylised images against their contents and styles.

    Every term is normalised by its target, so each is about 1 when the output is unrelated:
    content = mean((F - Fc)^2) / mean(Fc^2) per image; style = per layer and image
    mean((G - Gs)^2) / mean(Gs^2), averaged over layers. Nothing mixes the images of a batch.
    """

    def __init__(
        self,
        net: LossNetwork,
        style_images: Sequence[Tensor],
        weights: LossWeights,
        style_scales: Sequence[float] | None = None,
    ) -> None:
        """`style_scales`: one factor per style image on `weights.style` (default all 1)."""
        super().__init__()
        self.net = net
        self.weights = weights
        scales = [1.0] * len(style_images) if style_scales is None else list(style_scales)
        if len(scales) != len(style_images) or min(scales) < 0:
            raise ValueError(
                f"style_scales must be {len(style_images)} numbers >= 0, got {style_scales}"
            )
        self.style_scales = torch.tensor(scales, device=self._device())
        targets: dict[str, list[Tensor]] = {name: [] for name in net.layers.style}
        with torch.no_grad(), torch.autocast(self._device().type, enabled=False):
            for image in style_images:
                features = net(image.to(self._device()))
                for name in targets:
                    targets[name].append(gram(features[name])[0])
        self.targets = {name: torch.stack(grams) for name, grams in targets.items()}
        self.scales = {name: g.pow(2).mean((1, 2)) for name, g in self.targets.items()}

    def _device(self) -> torch.device:
        return next(self.net.parameters()).device

    def forward(
        self,
        output: Tensor,
        content: Tensor,
        style_ids: Tensor,
        content_features: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Loss terms and their weighted sum ("total"); `style_ids` index the style images.
        `content_features`: the loss network's content layer on `content`, when computed
        already (learning a style computes them once for all its crops).

        Under autocast the loss network runs in the autocast dtype; the Gram matrices and every
        loss term are computed in float32 (a Gram matrix sums H*W products)."""
        out_features = {k: v.float() for k, v in self.net(output).items()}
        output = output.float()
        if content_features is not None:
            target = content_features.float()
        else:
            with torch.no_grad():
                target = self.net(content)[self.net.layers.content].float()
        layer = self.net.layers.content
        content_loss = (
            (out_features[layer] - target).pow(2).mean((1, 2, 3)) / target.pow(2).mean((1, 2, 3))
        ).mean()
        per_image = output.new_zeros(output.shape[0])
        for name in self.net.layers.style:
            diff = (gram(out_features[name]) - self.targets[name][style_ids]).pow(2).mean((1, 2))
            per_image = per_image + diff / self.scales[name][style_ids]
        per_image = per_image / len(self.net.layers.style)
        style_loss = per_image.mean()  # reported unscaled, comparable across styles
        weighted_style = (per_image * self.style_scales[style_ids]).mean()
        tv_loss = total_variation(output)
        range_loss = out_of_range(output)
        w = self.weights
        total = (
            w.content * content_loss
            + w.style * weighted_style
            + w.tv * tv_loss
            + w.range * range_loss
        )
        return {
            "total": total,
            "content": content_loss,
            "style": style_loss,
            "tv": tv_loss,
            "range": range_loss,
        }
