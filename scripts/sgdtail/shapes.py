"""Sizes of the study's networks without torch: what :mod:`sgdtail.models` builds, by numbers.

The models take their AlexNet feature stages, its hidden width and its fixed depth from
here, and the resource model (:func:`sgdtail.cost.net_size`) counts parameters, FLOPs and
activations with the same definitions, at workflow parse time, where torch is not imported.
The tests check every count against the built models.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

ALEXNET_DEPTH = 8
"""AlexNet has 5 conv + 3 linear weight layers; its ``depth`` axis must be 8."""

ALEXNET_FEATURES: tuple[tuple[str, int, int, int], ...] = (
    ("conv1", 4, 2, 2),
    ("pool1", 3, 2, 0),
    ("conv2", 5, 1, 2),
    ("pool2", 3, 2, 0),
    ("conv3", 3, 1, 1),
    ("conv4", 3, 1, 1),
    ("conv5", 3, 1, 1),
    ("pool3", 3, 2, 0),
)
"""AlexNetCifar's feature stages in order: (name, kernel, stride, padding). Every ``conv``
stage has ``ch`` filters and a ReLU after it; every ``pool`` stage is a max-pool."""


def is_conv(stage: str) -> bool:
    """Whether a stage of :data:`ALEXNET_FEATURES` is a convolution (else a max-pool)."""
    return stage.startswith("conv")


def alexnet_feature_geometry(image_size: int | Sequence[int]) -> list[tuple[str, int, int]]:
    """Spatial size after each stage of ``AlexNetCifar.features``.

    Returns ``[(stage, height, width), ...]`` for conv1, pool1, conv2, pool2, conv3,
    conv4, conv5, pool3. Raises ``ValueError`` naming the stage if any size drops
    below 1 (a max-pool of kernel 3 needs an input of at least 3×3). The smallest
    square input that works is 28×28 (MNIST), which, like 32×32, ends at 1×1.
    """
    if isinstance(image_size, int):
        h = w = image_size
    else:
        if len(image_size) != 2:
            raise ValueError(f"image_size must be an int or (H, W), got {image_size!r}")
        h, w = (int(v) for v in image_size)
    out = []
    size_in = (h, w)
    for name, kernel, stride, padding in ALEXNET_FEATURES:
        new_h, new_w = ((n + 2 * padding - kernel) // stride + 1 for n in (h, w))
        if new_h < 1 or new_w < 1:
            raise ValueError(
                f"AlexNetCifar: input {size_in[0]}x{size_in[1]} is too small; the feature "
                f"map is {h}x{w} before {name} and would become {new_h}x{new_w} "
                f"(square inputs need image_size >= 28)"
            )
        h, w = new_h, new_w
        out.append((name, h, w))
    return out


def alexnet_hidden_width(feature_size: int) -> int:
    """Width h of AlexNet's hidden linear layers for s flattened features: s·⌊1 + log2 s⌋."""
    return feature_size * math.floor(1 + math.log2(feature_size))


def expected_fcn_parameters(in_features: int, width: int, depth: int, num_classes: int) -> int:
    """Closed form for ``FullyConnected``: in·w + (depth−2)·w² + w·classes (no biases)."""
    if depth < 2:
        raise ValueError(f"depth must be >= 2, got {depth!r}")
    return in_features * width + (depth - 2) * width * width + width * num_classes


def fcn_size(in_features: int, width: int, depth: int, num_classes: int) -> tuple[int, int, int]:
    """(parameters, forward FLOPs, activations) per image of ``FullyConnected``."""
    params = expected_fcn_parameters(in_features, width, depth, num_classes)
    return params, 2 * params, 2 * width * (depth - 1) + num_classes


def alexnet_size(
    image_shape: tuple[int, int, int], ch: int, num_classes: int
) -> tuple[int, int, int]:
    """(parameters, forward FLOPs, activations) per image of ``AlexNetCifar`` (biases
    included; activations: the output of every conv, ReLU, pool and linear layer)."""
    channels, h, w = image_shape
    conv_params = conv_flops = maps = 0
    for (name, kernel, _, _), (_, out_h, out_w) in zip(
        ALEXNET_FEATURES, alexnet_feature_geometry((h, w)), strict=True
    ):
        if is_conv(name):
            weights = channels * kernel * kernel * ch
            conv_params += weights + ch
            conv_flops += weights * out_h * out_w
            maps += 2 * out_h * out_w  # the conv's output and its ReLU's
            channels = ch
        else:
            maps += out_h * out_w
    features = ch * out_h * out_w
    hidden = alexnet_hidden_width(features)
    linear = features * hidden + hidden * hidden + hidden * num_classes
    params = conv_params + linear + 2 * hidden + num_classes
    return params, 2 * (conv_flops + linear), ch * maps + 4 * hidden + num_classes
