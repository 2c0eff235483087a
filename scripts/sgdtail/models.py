"""Networks of the study: a bias-free fully connected net, a CIFAR-style AlexNet, and
torchvision's classification models adapted to small images.

Both follow the Setup section of the replication brief (Şimşekli et al., ICML 2019):

* ``FullyConnected``: ``depth`` linear layers (in→w, (depth−2)×(w→w), w→classes),
  ReLU between them, **no biases**, the input is flattened.
* ``AlexNetCifar``: five conv layers of ``ch`` filters, ReLU after each, max-pool 3/2
  after conv 1, 2 and 5, then Dropout → Linear(s→h) → ReLU → Dropout → Linear(h→h) →
  ReLU → Linear(h→classes), with s the flattened feature size and
  h = s·⌊1 + log2 s⌋. Conv and linear layers keep PyTorch's defaults, **biases
  included**: that is what the reference code does, unlike the bias-free FCN.

* :func:`build_torchvision`: a torchvision model of a family in
  :data:`sgdtail.archs.FAMILIES` (ResNet, VGG, MobileNet, EfficientNet, MNASNet, DenseNet,
  ShuffleNet), without pretrained weights, with a small-image stem and, for VGG, a small
  classifier (docs/science.md, "Torchvision models").

The built-in layers use PyTorch's default initialisation, torchvision's models their own;
the caller seeds (``torch.manual_seed``) before ``build_model`` so that a run is reproducible.

``layer_slices`` maps the flat parameter vector (``parameters_to_vector``) back to
named layers, so that per-layer gradient noise can be cut out of the full vector.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from torch import nn

from sgdtail.archs import BUILTIN_ARCHS, NO_SIZE, allowed_archs, arch_error, family_of
from sgdtail.shapes import (
    ALEXNET_DEPTH,
    ALEXNET_FEATURES,
    alexnet_feature_geometry,
    alexnet_hidden_width,
    expected_fcn_parameters,
    is_conv,
)

ARCHS = BUILTIN_ARCHS

__all__ = [
    "ALEXNET_DEPTH",
    "ARCHS",
    "AlexNetCifar",
    "FullyConnected",
    "Hardsigmoid",
    "alexnet_feature_geometry",
    "build_model",
    "build_torchvision",
    "count_parameters",
    "expected_fcn_parameters",
    "layer_slices",
    "torchvision_size",
]


class FullyConnected(nn.Module):
    """Bias-free ReLU MLP with ``depth`` linear layers.

    Layers: Linear(in_features→width), (depth−2)×Linear(width→width),
    Linear(width→num_classes), with ReLU between consecutive linear layers (none after
    the last). Inputs of any shape ``(B, ...)`` are flattened to ``(B, in_features)``.
    """

    def __init__(self, in_features: int, width: int, depth: int, num_classes: int) -> None:
        super().__init__()
        for name, value in (
            ("in_features", in_features),
            ("width", width),
            ("num_classes", num_classes),
        ):
            if int(value) != value or value < 1:
                raise ValueError(
                    f"FullyConnected: {name} must be a positive integer, got {value!r}"
                )
        if int(depth) != depth or depth < 2:
            raise ValueError(
                f"FullyConnected: depth (number of linear layers) must be an integer >= 2, "
                f"got {depth!r}"
            )
        self.in_features = int(in_features)
        self.width = int(width)
        self.depth = int(depth)
        self.num_classes = int(num_classes)

        dims = [self.in_features] + [self.width] * (self.depth - 1) + [self.num_classes]
        layers: list[nn.Module] = [nn.Flatten()]
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            layers.append(nn.Linear(d_in, d_out, bias=False))
            if i < self.depth - 1:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class AlexNetCifar(nn.Module):
    """AlexNet variant for small images (the reference's CIFAR AlexNet).

    features: conv1 (4×4, stride 2, pad 2) → ReLU → MaxPool(3, 2) → conv2 (5×5, pad 2)
    → ReLU → MaxPool(3, 2) → conv3, conv4, conv5 (3×3, pad 1, each followed by ReLU)
    → MaxPool(3, 2); every conv has ``ch`` filters.

    classifier: Dropout → Linear(s→h) → ReLU → Dropout → Linear(h→h) → ReLU →
    Linear(h→num_classes), s = ch·H'·W' (flattened features), h = s·⌊1 + log2 s⌋.

    Biases are on everywhere (PyTorch defaults), as in the reference implementation.
    For 28×28 and 32×32 inputs the feature map ends at 1×1, so s = ch.
    """

    def __init__(
        self,
        in_channels: int,
        image_size: int | Sequence[int],
        ch: int,
        num_classes: int,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("ch", ch),
            ("num_classes", num_classes),
        ):
            if int(value) != value or value < 1:
                raise ValueError(f"AlexNetCifar: {name} must be a positive integer, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"AlexNetCifar: dropout must be in [0, 1), got {dropout!r}")
        geometry = alexnet_feature_geometry(image_size)
        _, out_h, out_w = geometry[-1]
        self.in_channels = int(in_channels)
        self.ch = int(ch)
        self.num_classes = int(num_classes)
        self.feature_size = self.ch * out_h * out_w  # s
        self.hidden = alexnet_hidden_width(self.feature_size)  # h

        layers: list[nn.Module] = []
        channels = self.in_channels
        for name, kernel, stride, padding in ALEXNET_FEATURES:
            if is_conv(name):
                conv = nn.Conv2d(channels, self.ch, kernel, stride=stride, padding=padding)
                layers += [conv, nn.ReLU()]
                channels = self.ch
            else:
                layers.append(nn.MaxPool2d(kernel_size=kernel, stride=stride))
        self.features = nn.Sequential(*layers)
        s, h = self.feature_size, self.hidden
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(s, h),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(h, h),
            nn.ReLU(),
            nn.Linear(h, self.num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def build_model(
    arch: str,
    width: int,
    depth: int,
    input_shape: tuple[int, int, int],
    num_classes: int,
) -> nn.Module:
    """Build a network of the study; the caller seeds torch beforehand.

    ``arch="fcn"``: ``FullyConnected(C·H·W, width, depth, num_classes)``.
    ``arch="alexnet"``: ``AlexNetCifar(C, (H, W), ch=width, num_classes)``; ``depth``
    must be 8 (its 5 conv + 3 linear weight layers), it is only checked.
    Any other ``arch``: :func:`build_torchvision`; ``width`` and ``depth`` must be 0
    (:data:`sgdtail.archs.NO_SIZE`: a torchvision model has neither).
    ``input_shape`` is ``(C, H, W)`` of one example, e.g. ``(1, 28, 28)``.
    """
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (C, H, W), got {input_shape!r}")
    c, h, w = (int(v) for v in input_shape)
    if arch == "fcn":
        return FullyConnected(c * h * w, width, depth, num_classes)
    if arch == "alexnet":
        if depth != ALEXNET_DEPTH:
            raise ValueError(
                f"arch 'alexnet' has a fixed depth of {ALEXNET_DEPTH} weight layers "
                f"(5 conv + 3 linear); got depth={depth!r}. Vary its width (= ch) instead."
            )
        return AlexNetCifar(c, (h, w), width, num_classes)
    why = arch_error(arch)
    if why is not None:
        raise ValueError(f"unknown arch {arch!r}: {why}; allowed: {allowed_archs()}")
    if (width, depth) != (NO_SIZE, NO_SIZE):
        raise ValueError(
            f"arch {arch!r} is a torchvision model, which has no width or depth; got "
            f"width={width!r}, depth={depth!r}, allowed: {NO_SIZE} for both"
        )
    return build_torchvision(arch, (c, h, w), num_classes)


VGG_HIDDEN = 512
"""Width of VGG's two hidden classifier layers here: the channels of its last convolution
(torchvision's 4096 are sized for 7×7 maps of 224-pixel images)."""


def build_torchvision(arch: str, input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """A torchvision classification model for small images, without pretrained weights.

    ``torchvision.models.get_model(arch, weights=None, num_classes=num_classes)``, then:

    * the stem (:attr:`sgdtail.archs.Family.stem`, the first convolution) becomes a 3×3
      convolution with stride 1 and padding 1 from the ``C`` input channels, with the old
      one's output channels and bias, initialised as the family initialises its
      convolutions; the max-pool after it (``stem_pool``) becomes ``nn.Identity``. The
      CIFAR ResNet's stem, applied to every family: the network downsamples 28×28 and
      32×32 images 2–4× less than 224-pixel ones.
    * VGG: its max-pools round up (``ceil_mode``, so that 28×28 ends at 1×1 as 32×32
      does), its average pool is global, and its classifier keeps its layers (Linear,
      ReLU, Dropout, Linear, ReLU, Dropout, Linear) at width :data:`VGG_HIDDEN`,
      initialised as torchvision's (normal, std 0.01; zero bias).
    * every ``nn.Hardsigmoid`` (MobileNetV3's squeeze-excitation) becomes
      :class:`Hardsigmoid`, the same function with a second derivative.

    Module names stay torchvision's (the stem is still ``conv1`` in a ResNet). Raises
    ``ValueError`` for a name that is not a supported torchvision model.
    """
    why = arch_error(arch)
    if why is not None:
        raise ValueError(f"unknown arch {arch!r}: {why}; allowed: {allowed_archs()}")
    import torchvision.models

    family = family_of(arch)
    model = torchvision.models.get_model(arch, weights=None, num_classes=int(num_classes))
    _replace_stem(model, family.stem, int(input_shape[0]), family.stem_init)
    if family.stem_pool is not None:
        _set_module(model, family.stem_pool, nn.Identity())
    if family.name == "vgg":
        _small_vgg_head(model, int(num_classes))
    for name, module in list(model.named_modules()):
        if type(module) is nn.Hardsigmoid:
            _set_module(model, name, Hardsigmoid())
    return model


class Hardsigmoid(nn.Hardsigmoid):
    """``nn.Hardsigmoid`` computed as relu6(x + 3) / 6: the same values and gradient, and a
    second derivative (zero almost everywhere), which torch's kernel lacks and the
    Hessian-vector products of :mod:`sgdtail.sharpness` need."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.relu6(x + 3) / 6


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    """Put ``module`` in the place of ``model``'s submodule ``name`` (dotted path)."""
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent), child, module)


def _replace_stem(model: nn.Module, name: str, in_channels: int, init: str | None) -> None:
    """Replace the convolution ``name`` by a 3×3, stride-1, padding-1 one from
    ``in_channels``; ``init``: the ``kaiming_normal_`` mode of its weights (zero bias), or
    None for PyTorch's default initialisation."""
    old = model.get_submodule(name)
    if not isinstance(old, nn.Conv2d) or old.groups != 1:
        raise ValueError(f"{name} of {type(model).__name__} is not the stem convolution: {old}")
    new = nn.Conv2d(
        in_channels, old.out_channels, 3, stride=1, padding=1, bias=old.bias is not None
    )
    if init is not None:
        nn.init.kaiming_normal_(new.weight, mode=init, nonlinearity="relu")
        if new.bias is not None:
            nn.init.zeros_(new.bias)
    _set_module(model, name, new)


def _small_vgg_head(model: nn.Module, num_classes: int) -> None:
    """VGG for 28×28 and 32×32 images: max-pools that round up, a global average pool, and
    a classifier of width :data:`VGG_HIDDEN` (see :func:`build_torchvision`)."""
    for layer in model.features:
        if isinstance(layer, nn.MaxPool2d):
            layer.ceil_mode = True
    model.avgpool = nn.AdaptiveAvgPool2d(1)
    channels = [m.out_channels for m in model.features if isinstance(m, nn.Conv2d)][-1]
    old = model.classifier
    widths = [channels, VGG_HIDDEN, VGG_HIDDEN, num_classes]
    for index, (d_in, d_out) in zip(
        (0, 3, 6), zip(widths[:-1], widths[1:], strict=True), strict=True
    ):
        if not isinstance(old[index], nn.Linear):
            raise ValueError(f"VGG classifier layer {index} is not linear: {old[index]}")
        linear = nn.Linear(d_in, d_out)
        nn.init.normal_(linear.weight, 0, 0.01)
        nn.init.zeros_(linear.bias)
        old[index] = linear


@functools.lru_cache(maxsize=64)
def torchvision_size(
    arch: str, input_shape: tuple[int, int, int], num_classes: int
) -> tuple[int, int, int]:
    """(parameters, forward FLOPs, activations) per image of :func:`build_torchvision`'s
    model, counted on the meta device (shapes only: nothing is allocated or initialised).

    FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` on one image in eval mode, 2 per
    multiply-add of the convolutions and matrix products (as :mod:`sgdtail.shapes` counts
    the built-in networks); activations: the output sizes of every module without children
    except those that copy nothing (Flatten, Dropout, Identity). Cached per network.
    """
    from torch.utils.flop_counter import FlopCounterMode

    copies = (nn.Flatten, nn.Dropout, nn.Identity)
    sizes: list[int] = []
    with torch.device("meta"):
        model = build_torchvision(arch, input_shape, num_classes).eval()
        params = count_parameters(model)
        handles = [
            m.register_forward_hook(lambda _m, _i, out: sizes.append(out[0].numel()))
            for m in model.modules()
            if not list(m.children()) and not isinstance(m, copies)
        ]
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.empty(1, *input_shape))
    for h in handles:
        h.remove()
    return params, int(counter.get_total_flops()), sum(sizes)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalar parameters (shared parameters counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def layer_slices(model: nn.Module) -> list[tuple[str, int, int]]:
    """``(name, start, stop)`` of each trainable parameter in the flat parameter vector.

    The order and offsets are those of
    ``torch.nn.utils.parameters_to_vector(p for p in model.parameters() if p.requires_grad)``,
    which is ``parameters_to_vector(model.parameters())`` whenever every parameter is
    trainable (always the case for ``build_model``). Slices are contiguous and cover
    ``0 .. count_parameters(model)``.
    """
    out: list[tuple[str, int, int]] = []
    start = 0
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        stop = start + p.numel()
        out.append((name, start, stop))
        start = stop
    return out
