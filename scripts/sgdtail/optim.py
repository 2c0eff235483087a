"""The optimizers of the grid axis ``optimizer``, and the preconditioner of the adaptive ones.

``sgd`` is plain SGD, w ← w − η g, one ``torch._foreach_add_`` in the training loop (no
optimizer object). The others are ``torch.optim`` optimizers with ``foreach=True`` (one
fused update over all parameters), built from the run's hyper-parameters
(:func:`sgdtail.grid.optimizer_settings`); with d = g + λw (λ: ``weight_decay``):

- ``momentum``: ``torch.optim.SGD(momentum=μ)``: b ← μ b + d (b = d at the first step),
  w ← w − η b;
- ``nesterov``: ``torch.optim.SGD(momentum=μ, nesterov=True)``: b ← μ b + d (b = d at the first
  step), w ← w − η (d + μ b);
- ``adam``: ``torch.optim.Adam(betas=(β1, β2), eps=ε)``: t ← t + 1, m ← β1 m + (1 − β1) d,
  v ← β2 v + (1 − β2) d², w ← w − η m̂ / (√v̂ + ε) with m̂ = m / (1 − β1^t),
  v̂ = v / (1 − β2^t).

Their state (momentum buffers; Adam's moments and step count) is what ``state_dict()``
returns: saved in ``resume.pt`` and, at each checkpoint, in ``checkpoints.pt``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from sgdtail.grid import DEFAULT_OPTIMIZER, OPTIMIZERS, PRECONDITIONED_OPTIMIZERS


def build_optimizer(
    name: str, params: Sequence[torch.nn.Parameter], settings: Mapping[str, Any]
) -> torch.optim.Optimizer | None:
    """The ``torch.optim`` optimizer ``name`` over ``params`` with hyper-parameters
    ``settings`` (its keys of :data:`sgdtail.grid.OPTIMIZERS`); None for plain SGD. Its
    learning rate is set before every step (:func:`set_lr`)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer {name!r}; allowed: {', '.join(OPTIMIZERS)}")
    if name == DEFAULT_OPTIMIZER:
        return None
    params = list(params)
    decay = float(settings["weight_decay"])
    if name == "adam":
        beta1, beta2 = (float(b) for b in settings["adam_betas"])
        return torch.optim.Adam(
            params,
            lr=0.0,
            betas=(beta1, beta2),
            eps=float(settings["adam_eps"]),
            weight_decay=decay,
            foreach=True,
        )
    momentum = float(settings["nesterov_momentum" if name == "nesterov" else "momentum"])
    return torch.optim.SGD(
        params,
        lr=0.0,
        momentum=momentum,
        nesterov=name == "nesterov",
        weight_decay=decay,
        foreach=True,
    )


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Use learning rate ``lr`` for the next step."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def cpu_state(optimizer: torch.optim.Optimizer) -> dict:
    """A copy of ``optimizer.state_dict()`` with every tensor on the CPU (for saving)."""

    def copy(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.detach().to("cpu", copy=True)
        if isinstance(value, dict):
            return {k: copy(v) for k, v in value.items()}
        if isinstance(value, list):
            return [copy(v) for v in value]
        return value

    return copy(optimizer.state_dict())


def adam_preconditioner(state: Mapping[str, Any], n_params: int) -> torch.Tensor | None:
    """Adam's elementwise divisor √v̂ + ε at a saved state (``state_dict()`` of
    ``torch.optim.Adam`` over ``n_params`` parameter tensors), as one float32 vector in
    parameter order; None before its first step (no second moment yet).

    v̂ = v / (1 − β2^t) is the bias-corrected second moment after t steps.
    """
    moments = state["state"]
    if any(i not in moments for i in range(n_params)):
        return None
    group = state["param_groups"][0]
    _, beta2 = group["betas"]
    parts = []
    for i in range(n_params):
        t = float(moments[i]["step"])
        v_hat = moments[i]["exp_avg_sq"].double() / (1 - beta2**t)
        parts.append((v_hat.sqrt() + group["eps"]).reshape(-1))
    return torch.cat(parts).float()


def preconditioner(
    name: str, state: Mapping[str, Any] | None, n_params: int
) -> torch.Tensor | None:
    """The elementwise divisor of optimizer ``name``'s step at ``state`` (see
    :func:`adam_preconditioner`); None for an optimizer that does not precondition (not in
    :data:`sgdtail.grid.PRECONDITIONED_OPTIMIZERS`) or a state without one."""
    if name not in PRECONDITIONED_OPTIMIZERS or state is None:
        return None
    return adam_preconditioner(state, n_params)
