"""Inference-only rewrite of a trained StyleBankNet's encoder and decoder: the same function,
computed faster.

`fast_model(model)` walks the model's own `nn.Sequential` encoder and decoder (so the network's
structure lives only in `model.py`) and replaces runs of layers by faster equivalents:

* InstanceNorm + ReLU -> per-channel statistics, then the affine and the ReLU in one pass,
  written straight into the padded input buffer of the next convolution;
* nearest x2 upsample + 3x3 reflect conv + InstanceNorm + ReLU -> four 2x2 convolutions at the
  low resolution (one per output phase, 4/9 of the multiply-adds); the normalisation reads each
  phase where the convolution left it and writes it to its pixels of the next convolution's
  input, so the full-resolution image is written once;
* the last conv (32 -> 3 channels, 9x9) -> a conv on the 2x2 space-to-depth image with 12
  outputs (oneDNN vectorises over output channels: 3 of 16 lanes would be used); the
  normalisation before it writes its input in that layout;
* activations in channels_last (the layout oneDNN's convolutions run fastest in), in blocks of
  memory kept from one call to the next: the page faults of a fresh activation cost more than
  the pass that fills it (docs/stylize.md has the measurements). Padded inputs are written there, and on
  the CPU in float32 so are the convolutions' outputs, through PyTorch's oneDNN convolution
  that adds into a given tensor (`torch.ops.mkldnn._convolution_pointwise_`, a private
  operator: checked against F.conv2d once, F.conv2d where it is missing);
* optionally bfloat16 weights and activations (the normalisations' scale and shift are computed
  in float32; the bank runs in float32 between the bfloat16 encoder and decoder).

The bank keeps using the fused `bank_conv2d`, so `StyleBankNet.forward` (mixes, region masks,
strength, cropping) is reused unchanged.

`fast_model` and `FastLayers` (the public part; FastLayers maps layers to steps and wires
each step's output layout to the next step's input) live in `network.py`. The steps live in `convolutions.py` and
`normalisations.py`, the padded buffers and their layouts in `buffers.py`, the per-channel
statistics in `statistics.py`.
"""

from .network import FastLayers, fast_model

__all__ = ["fast_model", "FastLayers"]
