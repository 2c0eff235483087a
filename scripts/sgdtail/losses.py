"""Losses of the study: cross-entropy and the linear multi-class hinge loss.

Both take logits ``out`` of shape ``(B, C)`` and integer class labels ``target`` of
shape ``(B,)`` and return the scalar mean over the batch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

__all__ = ["LOSSES", "cross_entropy", "get_loss", "multiclass_hinge"]


def multiclass_hinge(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Linear multi-class hinge loss of the reference code.

    ``mean(max(0, 1 − t·out))`` with ``t[i, c] = +1`` if ``c == target[i]`` and ``−1``
    otherwise. The mean runs over all ``B × C`` entries (batch *and* classes), not a
    sum over classes averaged over the batch; this matches the reference, and scales
    the loss (and its gradient) by 1/C relative to the summed form.
    """
    if out.dim() != 2:
        raise ValueError(f"multiclass_hinge: out must be (B, C), got shape {tuple(out.shape)}")
    if target.shape != out.shape[:1]:
        raise ValueError(
            f"multiclass_hinge: target must be (B,) = {tuple(out.shape[:1])}, "
            f"got shape {tuple(target.shape)}"
        )
    t = F.one_hot(target.long(), num_classes=out.shape[1]).to(out.dtype) * 2 - 1
    return torch.clamp(1 - t * out, min=0).mean()


cross_entropy: LossFn = F.cross_entropy
"""``torch.nn.functional.cross_entropy`` (mean over the batch)."""

LOSSES: dict[str, LossFn] = {
    "cross_entropy": cross_entropy,
    "hinge": multiclass_hinge,
}


def get_loss(name: str) -> LossFn:
    """Loss function by config name: ``"cross_entropy"`` or ``"hinge"``."""
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown loss {name!r}; allowed: {', '.join(map(repr, LOSSES))}"
        ) from None
