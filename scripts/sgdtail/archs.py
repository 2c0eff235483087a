"""Which architectures a grid may name: the built-in networks and torchvision's models.

``arch`` is ``fcn`` or ``alexnet`` (:mod:`sgdtail.models`), or the name of a torchvision
classification model (``torchvision.models.list_models(module=torchvision.models)``) of one
of the families in :data:`FAMILIES`, built for small images by
:func:`sgdtail.models.build_torchvision`. Nothing here imports torch or torchvision
except :func:`arch_error`, and that only for a name that is not built in.

A torchvision model has no ``width`` or ``depth``: both are :data:`NO_SIZE` (0) in its grid
point and run path (``w0_d0``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BUILTIN_ARCHS = ("fcn", "alexnet")
"""The study's own networks (:mod:`sgdtail.models`); their ``width`` and ``depth`` are axes."""

NO_SIZE = 0
"""``width`` and ``depth`` of a torchvision model: the value a sub-grid may omit."""

LIST_MODELS = "python -c 'import torchvision.models as m; print(m.list_models(module=m))'"
"""Shell command that prints every torchvision classification model name."""


@dataclass(frozen=True)
class Family:
    """A torchvision model family and how :func:`sgdtail.models.build_torchvision` adapts it.

    ``stem``: the module path of its first convolution, replaced by a 3×3, stride-1,
    padding-1 convolution from the data's channels; ``stem_pool``: the max-pool after it,
    removed (None: there is none); ``stem_init``: the ``mode`` of the
    ``kaiming_normal_`` (ReLU gain) that torchvision initialises the family's convolutions
    with, given to the new stem too (None: PyTorch's default initialisation, which
    torchvision keeps for this family).
    """

    name: str
    pattern: str
    stem: str
    stem_pool: str | None
    stem_init: str | None


FAMILIES: tuple[Family, ...] = (
    Family("resnet", r"resnet\d+|resnext\d+_\w+|wide_resnet\d+_2", "conv1", "maxpool", "fan_out"),
    Family("vgg", r"vgg\d+(_bn)?", "features.0", None, "fan_out"),
    Family(
        "mobilenet", r"mobilenet_v2|mobilenet_v3_(small|large)", "features.0.0", None, "fan_out"
    ),
    Family("efficientnet", r"efficientnet_(b\d|v2_[sml])", "features.0.0", None, "fan_out"),
    Family("mnasnet", r"mnasnet\d_\d+", "layers.0", None, "fan_out"),
    Family("densenet", r"densenet\d+", "features.conv0", "features.pool0", "fan_in"),
    Family("shufflenet", r"shufflenet_v2_x\d_\d", "conv1.0", "maxpool", None),
)
"""The supported torchvision families, each with its small-image adaptation."""

UNSUPPORTED = (
    "alexnet (the name of the built-in CIFAR AlexNet), convnext, googlenet, inception_v3, "
    "maxvit, regnet, squeezenet, swin, vit"
)
"""torchvision's other classification families, named in the error for one of them."""


def family_of(arch: str) -> Family | None:
    """The supported family whose pattern matches the whole name ``arch``, or None."""
    return next((f for f in FAMILIES if re.fullmatch(f.pattern, arch)), None)


def is_torchvision(arch: str) -> bool:
    """Whether ``arch`` names a torchvision model (anything that is not built in)."""
    return arch not in BUILTIN_ARCHS


def allowed_archs() -> str:
    """What ``arch`` accepts, in words (the end of every error about it)."""
    families = ", ".join(f.name for f in FAMILIES)
    return (
        f"{', '.join(BUILTIN_ARCHS)}, or a torchvision classification model of the families "
        f"{families} (e.g. resnet18, vgg11_bn, mobilenet_v3_small; list the names with "
        f"{LIST_MODELS})"
    )


def arch_error(arch: str) -> str | None:
    """Why ``arch`` cannot be built, in words, or None when it can."""
    if arch in BUILTIN_ARCHS:
        return None
    import torchvision.models

    if arch not in torchvision.models.list_models(module=torchvision.models):
        return f"{arch!r} is neither a built-in network nor a torchvision classification model"
    if family_of(arch) is None:
        return (
            f"{arch!r} is a torchvision model of a family not adapted to 28×28 and 32×32 "
            f"images ({UNSUPPORTED})"
        )
    return None
