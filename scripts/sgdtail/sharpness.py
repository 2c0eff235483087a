"""Sharpness of the minima SGD reaches, and its correlation with the tail index (claim C6).

The review argues that heavier-tailed gradient noise (smaller α) makes SGD
leave narrow minima quickly (see :mod:`sgdtail.dynamics`), so runs with smaller
α should end in wider, flatter minima.  Here a run's end point is summarised by
two sharpness measures of its mean training loss, and the claim becomes: across
runs, sharpness increases with α (positive Spearman correlation).

Units: losses in the loss function's own units (nats for cross-entropy);
the top Hessian eigenvalue in loss units per squared parameter unit;
:func:`random_direction_sharpness` in loss units.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

if TYPE_CHECKING:  # torch is imported by the functions that compute on networks, so that
    import torch  # the figure job (C6 verdict and plot only) starts ~1.7 s faster
    from torch import nn

LossFn = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]


def _params(model: nn.Module) -> list[torch.Tensor]:
    ps = [p for p in model.parameters() if p.requires_grad]
    if not ps:
        raise ValueError("the model has no trainable parameters (requires_grad=True)")
    return ps


def _mean_loss(model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    loss = loss_fn(model(x), y)
    if loss.dim() != 0:
        raise ValueError(
            f"loss_fn must return a scalar (the mean loss), got shape {tuple(loss.shape)}; "
            "use reduction='mean'"
        )
    return loss


def top_hessian_eigenvalue(
    model: nn.Module,
    loss_fn: LossFn,
    x: torch.Tensor,
    y: torch.Tensor,
    iters: int = 20,
    seed: int = 0,
    tol: float = 1e-4,
) -> float:
    """Largest-magnitude eigenvalue of the Hessian of the mean training loss on ``(x, y)``.

    Power iteration on Hessian-vector products ``Hv = ∇(∇L·v)`` (double
    backward, no Hessian is formed), over all parameters with
    ``requires_grad``.  The start vector is Gaussian from ``torch.Generator``
    seeded with ``seed``.  Stops after ``iters`` iterations or when the Rayleigh
    quotient ``vᵀHv`` changes by less than ``tol`` relative.  Returns that
    Rayleigh quotient (loss units per squared parameter unit); power iteration
    finds the eigenvalue of largest modulus, which near a minimum is the top
    (positive) one.  The model is put in eval mode (dropout off, batch-norm
    running statistics) during the computation and its mode restored after.
    ``(x, y)`` is one batch: pass the whole training set or a fixed subset.
    """
    import torch

    if iters < 1:
        raise ValueError(f"iters must be >= 1, got {iters}")
    params = _params(model)
    was_training = model.training
    model.eval()
    try:
        loss = _mean_loss(model, loss_fn, x, y)
        grads = torch.autograd.grad(loss, params, create_graph=True)
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
        v = [torch.randn(p.shape, generator=gen, dtype=p.dtype).to(p.device) for p in params]
        norm = torch.sqrt(sum((u * u).sum() for u in v))
        v = [u / norm for u in v]
        lam = None
        for _ in range(int(iters)):
            gv = sum((g * u).sum() for g, u in zip(grads, v, strict=True))
            hv = torch.autograd.grad(gv, params, retain_graph=True)
            new = float(sum((h * u).sum() for h, u in zip(hv, v, strict=True)))
            hnorm = torch.sqrt(sum((h * h).sum() for h in hv))
            if not math.isfinite(new) or not torch.isfinite(hnorm):
                raise FloatingPointError("non-finite Hessian-vector product; check the loss")
            if float(hnorm) == 0.0:
                return 0.0
            v = [h.detach() / hnorm for h in hv]
            if lam is not None and abs(new - lam) <= tol * max(abs(lam), 1e-12):
                lam = new
                break
            lam = new
        return float(lam)
    finally:
        model.train(was_training)


def _filter_normalise(d: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Scale ``d`` so each filter (slice along dim 0) has the norm of ``p``'s slice.

    Tensors with ``dim ≥ 2`` (weights: rows of a Linear, filters of a Conv):
    filter-wise, as Li et al. (2018).  1-D tensors (biases, norm layers):
    the whole tensor is scaled to ``‖p‖`` (layer-wise).
    """
    if p.dim() >= 2:
        dn = d.flatten(1).norm(dim=1).clamp_min(1e-12)
        pn = p.detach().flatten(1).norm(dim=1)
        return d * (pn / dn).view(-1, *([1] * (p.dim() - 1)))
    return d * (p.detach().norm() / d.norm().clamp_min(1e-12))


def random_direction_sharpness(
    model: nn.Module,
    loss_fn: LossFn,
    x: torch.Tensor,
    y: torch.Tensor,
    n_dirs: int = 5,
    radius: float = 0.05,
    seed: int = 0,
) -> float:
    """Mean loss increase at relative distance ``radius`` along random directions.

    For each of ``n_dirs`` Gaussian directions ``d`` (``torch.Generator`` seeded
    with ``seed``), normalised filter-wise for weight tensors and layer-wise
    for 1-D tensors so that each filter of ``d`` has the norm of the
    corresponding filter of the parameters (Li et al. 2018, "Visualizing the
    loss landscape"), it evaluates
    ``[L(θ + r·d) + L(θ - r·d)]/2 - L(θ)`` (loss units).  The two-sided
    average cancels the first-order (gradient) term, so the number measures
    curvature, ≈ ``r²·dᵀHd/2``; the normalisation makes it invariant to the
    rescalings of ReLU layers that leave the function unchanged.  Returns the
    mean over directions.  Eval mode during the computation; parameters and
    mode are restored afterwards, also on error.
    """
    import torch

    if n_dirs < 1:
        raise ValueError(f"n_dirs must be >= 1, got {n_dirs}")
    if not (math.isfinite(radius) and radius > 0):
        raise ValueError(f"radius must be > 0, got {radius!r}")
    params = _params(model)
    saved = [p.detach().clone() for p in params]
    was_training = model.training
    model.eval()
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    try:
        with torch.no_grad():
            base = float(_mean_loss(model, loss_fn, x, y))
            rises = []
            for _ in range(int(n_dirs)):
                # normalised against the saved (unperturbed) parameters
                dirs = [
                    _filter_normalise(torch.randn(p0.shape, generator=gen, dtype=p0.dtype)
                                      .to(p0.device), p0)
                    for p0 in saved
                ]
                vals = []
                for sign in (1.0, -1.0):
                    for p, p0, d in zip(params, saved, dirs, strict=True):
                        p.copy_(p0 + sign * radius * d)
                    vals.append(float(_mean_loss(model, loss_fn, x, y)))
                rises.append(0.5 * (vals[0] + vals[1]) - base)
        if not np.all(np.isfinite(rises)):
            raise FloatingPointError("non-finite loss along a random direction; lower radius")
        return float(np.mean(rises))
    finally:
        with torch.no_grad():
            for p, p0 in zip(params, saved, strict=True):
                p.copy_(p0)
        model.train(was_training)


def spearman_with_ci(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    level: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
    method: str = "bootstrap",
) -> dict[str, Any]:
    """Spearman rank correlation with a confidence interval.

    ``method="bootstrap"`` (default): percentile interval from ``n_boot``
    resamples of the ``(x, y)`` pairs (``numpy.random.default_rng(seed)``);
    resamples with a constant column (undefined ρ) are skipped.
    ``method="fisher"``: ``tanh(atanh ρ ± z·√(1.06/(n-3)))`` (Fieller, Hartley &
    Pearson 1957 variance for Spearman's ρ), needs ``n ≥ 4``.

    Returns ``dict(rho, ci_low, ci_high, n, method)``.  Needs ``n ≥ 3`` finite
    pairs (NaN pairs are dropped and not counted); ρ is NaN if a column is
    constant.
    """
    xa = np.asarray(x, dtype=float).ravel()
    ya = np.asarray(y, dtype=float).ravel()
    if xa.shape != ya.shape:
        raise ValueError(f"x and y must have the same length, got {xa.size} and {ya.size}")
    if not (0.0 < level < 1.0):
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    ok = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[ok], ya[ok]
    n = int(xa.size)
    if n < 3:
        raise ValueError(f"need at least 3 finite (x, y) pairs for a rank correlation, got {n}")
    nan = float("nan")
    if np.ptp(xa) == 0 or np.ptp(ya) == 0:
        return dict(rho=nan, ci_low=nan, ci_high=nan, n=n, method=method)
    rho = float(stats.spearmanr(xa, ya).statistic)
    if method == "fisher":
        if n < 4:
            return dict(rho=rho, ci_low=nan, ci_high=nan, n=n, method=method)
        z = float(stats.norm.ppf(0.5 + level / 2.0))
        half = z * math.sqrt(1.06 / (n - 3))
        r = min(max(rho, -0.999999), 0.999999)
        return dict(rho=rho, ci_low=math.tanh(math.atanh(r) - half),
                    ci_high=math.tanh(math.atanh(r) + half), n=n, method=method)
    if method != "bootstrap":
        raise ValueError(f"method must be 'bootstrap' or 'fisher', got {method!r}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(int(n_boot), n))
    rx = stats.rankdata(xa[idx], axis=1)
    ry = stats.rankdata(ya[idx], axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    den = np.sqrt((rx * rx).sum(axis=1) * (ry * ry).sum(axis=1))
    good = den > 0
    boots = (rx * ry).sum(axis=1)[good] / den[good]
    if boots.size < 0.5 * n_boot:
        return dict(rho=rho, ci_low=nan, ci_high=nan, n=n, method=method)
    a = 1.0 - level
    lo, hi = np.quantile(boots, [a / 2.0, 1.0 - a / 2.0])
    return dict(rho=rho, ci_low=float(lo), ci_high=float(hi), n=n, method=method)


def claim_c6_verdict(rho_result: Mapping[str, Any], thresholds: Mapping[str, float]) -> dict:
    """Verdict on C6 from the Spearman correlation of α with sharpness across runs.

    The review's claim "heavier tails (smaller α) → wider (flatter) minima"
    predicts a positive correlation between a run's α and the sharpness of
    its end point.  Thresholds (required): ``min_rho`` (the correlation the
    claim needs, e.g. 0.3), ``min_runs`` (fewest runs worth a verdict).

    * ``n < min_runs`` or an undefined ρ/interval → "inconclusive";
    * CI lower bound ``> min_rho`` → "supported";
    * CI upper bound ``< 0`` (the sign is reversed) or ``< min_rho`` (the data
      rule out a correlation as strong as the claim needs, e.g. a tight
      interval around 0) → "not supported";
    * otherwise (the interval straddles the threshold, e.g. a wide interval
      around 0) → "inconclusive".

    Returns ``dict(verdict, statistic, value, detail)``.
    """
    for k in ("min_rho", "min_runs"):
        if k not in thresholds:
            raise KeyError(f"C6 thresholds lack {k!r}; give min_rho and min_runs")
    for k in ("rho", "ci_low", "ci_high", "n"):
        if k not in rho_result:
            raise KeyError(f"rho_result lacks {k!r}; pass the output of spearman_with_ci")
    rmin = float(thresholds["min_rho"])
    nmin = int(thresholds["min_runs"])
    rho, lo, hi, n = (float(rho_result["rho"]), float(rho_result["ci_low"]),
                      float(rho_result["ci_high"]), int(rho_result["n"]))
    head = f"Spearman rho(alpha, sharpness) = {rho:.3g} [{lo:.3g}, {hi:.3g}], n = {n}"
    if n < nmin:
        verdict, why = "inconclusive", f"fewer than {nmin} runs"
    elif not all(math.isfinite(v) for v in (rho, lo, hi)):
        verdict, why = "inconclusive", "correlation or interval undefined"
    elif lo > rmin:
        verdict, why = "supported", f"CI above min_rho = {rmin:g}"
    elif hi < 0:
        verdict, why = "not supported", "CI below 0: sharper minima with heavier tails"
    elif hi < rmin:
        verdict, why = "not supported", f"CI below min_rho = {rmin:g}: correlation too weak"
    else:
        verdict, why = "inconclusive", f"CI straddles min_rho = {rmin:g}"
    return dict(verdict=verdict, statistic="Spearman rho between alpha and sharpness",
                value=rho, detail=f"{head}: {why}")


def sharpness_vs_alpha_table(sharpness: Sequence[Mapping[str, Any]], summary) -> Any:
    """Join per-run sharpness records with each run's final α (train split).

    ``sharpness``: one dict per run with the grid axes plus the fields of the
    measure_sharpness output; ``summary``: the summary table. Runs whose
    weights are not finite (diverged) get NaN sharpness and are dropped by
    :func:`spearman_with_ci`'s caller. Returns a DataFrame with the axes,
    ``step``, ``alpha_robust``, ``alpha_reference``, ``alpha_per_coordinate_median``,
    ``top_hessian_eigenvalue`` and ``random_direction_sharpness``.
    """
    import pandas as pd

    from sgdtail.grid import AXES

    sharp = pd.DataFrame(list(sharpness))
    for col in ("top_hessian_eigenvalue", "random_direction_sharpness"):
        if col not in sharp:
            sharp[col] = np.nan
    train = summary[summary["split"] == "train"]
    keys = list(AXES) + ["step"]
    alpha_cols = ["alpha_robust", "alpha_reference", "alpha_per_coordinate_median"]
    return sharp.merge(train[keys + alpha_cols], on=keys, how="left")


def plot_sharpness_vs_alpha(df, rho: Mapping[str, Any], pdf, png) -> None:
    """Top Hessian eigenvalue and random-direction sharpness against the final robust α."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from sgdtail.plots import save_figure, set_style

    set_style()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), gridspec_kw={"wspace": 0.35})
    for ax, col, label in (
        (axes[0], "top_hessian_eigenvalue", "top Hessian eigenvalue λ_max"),
        (axes[1], "random_direction_sharpness", "loss increase along random directions"),
    ):
        sns.scatterplot(data=df, x="alpha_robust", y=col, hue="width", style="depth",
                        palette="viridis", ax=ax, legend=ax is axes[1])
        ax.set_xlabel("final tail index α̂ (pooled, robust; train noise)")
        ax.set_ylabel(label)
        if (df[col] > 0).all():
            ax.set_yscale("log")
    if axes[1].get_legend() is not None:
        sns.move_legend(axes[1], "upper left", bbox_to_anchor=(1.02, 1))
    fig.suptitle(
        f"Sharpness of the end point vs α: Spearman ρ(α, λ_max) = {rho['rho']:.2f} "
        f"[{rho['ci_low']:.2f}, {rho['ci_high']:.2f}], n = {rho['n']}", y=1.02,
    )
    save_figure(fig, pdf, png)
