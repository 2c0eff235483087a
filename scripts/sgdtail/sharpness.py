"""Sharpness of the end points SGD reaches, and its relation to the tail index (claim C6).

The review argues that heavier-tailed gradient noise (smaller α) makes SGD
leave narrow minima quickly (see :mod:`sgdtail.dynamics`), so runs with smaller
α should end in wider, flatter minima.  What is tested here is narrower: within
families of comparable runs (same data set, architecture, loss and learning
rate), flatter end points go with smaller final α̂, i.e. a positive rank
correlation between α̂ and sharpness.  Only end points that are minima enter
(:func:`exclusion_reasons`); families are combined by one correlation of
within-family ranks (:func:`within_family_spearman`).

Two sharpness measures of the mean training loss at a run's end point:
:func:`random_direction_sharpness` (filter-normalised, Li et al. 2018; the
primary one, invariant to the rescalings of ReLU layers that leave the network
unchanged) and :func:`top_hessian_eigenvalue` (λ_max by Lanczos, not invariant to them).

Units: losses in the loss function's own units (nats for cross-entropy);
the top Hessian eigenvalue in loss units per squared parameter unit;
:func:`random_direction_sharpness` in loss units; gradient norms in loss units
per parameter unit.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from sgdtail.aggregate import ALPHA_COLUMNS, USABLE_STATUSES, gradient_rows
from sgdtail.cost import LANCZOS_VECTORS
from sgdtail.grid import DEFAULT_OPTIMIZER, optimizer_text
from sgdtail.verdicts import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, need_keys, with_reason

if TYPE_CHECKING:  # torch is imported by the functions that compute on networks, so that
    import pandas as pd  # the figure job (C6 verdict and plot only) starts ~1.7 s faster
    import torch
    from matplotlib.figure import Figure
    from torch import nn

log = logging.getLogger(__name__)

LossFn = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]

#: grid axes shared by the runs of one family of comparable runs (the learning rate is one:
#: SGD settles where λ_max ≲ 2/η, so runs at different η are not compared; so is the
#: optimizer, which changes where a step of size η settles)
C6_FAMILY_AXES = ("dataset", "arch", "loss", "lr", "optimizer")
#: the sharpness measures as (column, label); the first is the primary one (the verdict's)
MEASURES = (
    ("random_direction_sharpness", "filter-normalised random-direction sharpness"),
    ("top_hessian_eigenvalue", "top Hessian eigenvalue λ_max"),
)
SHORT_NAMES = {"random_direction_sharpness": "sharpness", "top_hessian_eigenvalue": "λ_max"}
#: per-run fields of sharpness.json that the C6 table needs (NaN where a run lacks them)
SHARPNESS_FIELDS = (
    "finite_weights",
    "top_hessian_eigenvalue",
    "hessian_converged",
    "hessian_products",
    "hessian_relative_residual",
    "random_direction_sharpness",
    "gradient_norm",
    "gradient_noise_norm",
    "gradient_to_noise",
)


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


def _dot(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> torch.Tensor:
    return sum((u * v).sum() for u, v in zip(a, b, strict=True))


class _BudgetSpent(Exception):
    """Raised by :class:`_HessianOperator` when its budget of products is spent."""


class _HessianOperator:
    """``v ↦ Hv`` on flat float64 NumPy vectors (double backward), counting the products;
    raises :class:`_BudgetSpent` instead of making product number ``limit + 1``."""

    def __init__(
        self, grads: Sequence[torch.Tensor], params: Sequence[torch.Tensor], limit: float = math.inf
    ):
        self.grads, self.params, self.limit = grads, params, limit
        self.n = sum(p.numel() for p in params)
        self.products = 0
        self.t0 = time.perf_counter()

    def __call__(self, vec: np.ndarray) -> np.ndarray:
        import torch

        if self.products >= self.limit:
            raise _BudgetSpent
        flat = np.asarray(vec, dtype=np.float64).ravel()
        v, start = [], 0
        for p in self.params:
            chunk = torch.from_numpy(flat[start : start + p.numel()].copy())
            v.append(chunk.view(p.shape).to(device=p.device, dtype=p.dtype))
            start += p.numel()
        hv = torch.autograd.grad(_dot(self.grads, v), self.params, retain_graph=True)
        self.products += 1
        log.info(
            "progress: Hessian-vector product %d (at most %s), %.2f s",
            self.products,
            self.limit,
            time.perf_counter() - self.t0,
        )
        out = np.concatenate([h.detach().reshape(-1).double().cpu().numpy() for h in hv])
        if not np.all(np.isfinite(out)):
            raise FloatingPointError("non-finite Hessian-vector product; check the loss")
        return out


def _start_vector(params: Sequence[torch.Tensor], seed: int) -> np.ndarray:
    """A Gaussian start vector from ``torch.Generator`` seeded with ``seed`` (flat, float64)."""
    import torch

    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    return torch.cat(
        [torch.randn(p.numel(), generator=gen, dtype=torch.float64) for p in params]
    ).numpy()


def _lanczos_top(
    hess: _HessianOperator, v0: np.ndarray, tol: float
) -> tuple[float, np.ndarray | None]:
    """``(θ, v)`` of the largest algebraic eigenvalue by ``eigsh(which='LA')``, or
    ``(nan, None)`` when ARPACK did not converge before ``hess`` spent its budget."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    n = hess.n
    try:  # restarts are unlimited: the operator's budget ends an unconverged solve
        if n < 3:  # ARPACK needs k < ncv <= n: form the tiny Hessian from n products instead
            dense = np.column_stack([hess(e) for e in np.eye(n)])
            vals, vecs = np.linalg.eigh(0.5 * (dense + dense.T))
            return float(vals[-1]), vecs[:, -1]
        op = LinearOperator((n, n), matvec=hess, dtype=np.float64)
        vals, vecs = eigsh(
            op, k=1, which="LA", v0=v0, ncv=min(n, LANCZOS_VECTORS), maxiter=10**9, tol=tol
        )
    except _BudgetSpent:
        return math.nan, None
    return float(vals[0]), vecs[:, 0]


def top_hessian_eigenvalue(
    model: nn.Module,
    loss_fn: LossFn,
    x: torch.Tensor,
    y: torch.Tensor,
    max_products: int = 200,
    seed: int = 0,
    tol: float = 1e-2,
) -> dict[str, Any]:
    """Largest (algebraic) eigenvalue λ_max of the Hessian of the mean training loss on ``(x, y)``.

    Implicitly restarted Lanczos (``scipy.sparse.linalg.eigsh`` with ``which='LA'``, ARPACK)
    on a ``LinearOperator`` whose products are Hessian-vector products ``Hv = ∇(∇L·v)``
    (double backward, no Hessian is formed), over all parameters with ``requires_grad``.
    Unlike power iteration, which converges to the eigenvalue of largest modulus (a negative
    one where the loss curves down more steeply than it curves up), this returns the largest
    one.  ARPACK keeps :data:`LANCZOS_VECTORS` vectors and declares the Ritz value θ converged
    when its residual is at most ``tol·|θ|``; a solve that has not converged after
    ``max_products`` products stops there.  The start vector is Gaussian from
    ``torch.Generator`` seeded with ``seed``, so the result is reproducible.  One more product
    checks the returned pair: ``converged`` is true when ARPACK converged and that residual
    ``‖Hv − θv‖`` is at most ``tol·|θ|`` (H is symmetric, so an eigenvalue then lies within
    ``tol·|θ|`` of θ).

    Returns ``dict(eigenvalue=θ, converged, products, relative_residual=‖Hv − θv‖/|θ|)``,
    ``products`` the Hessian-vector products made (the check included); θ and the residual
    are NaN when the solve did not converge within the budget.  θ is in loss units per
    squared parameter unit.  The model is put in eval mode (dropout off, batch-norm running
    statistics) during the computation and its mode restored after.  ``(x, y)`` is one batch:
    pass the whole training set or a fixed subset.
    """
    import torch

    if max_products < 1:
        raise ValueError(f"max_products must be >= 1, got {max_products}")
    if not (math.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be > 0, got {tol!r}")
    params = _params(model)
    was_training = model.training
    model.eval()
    try:
        grads = torch.autograd.grad(_mean_loss(model, loss_fn, x, y), params, create_graph=True)
        hess = _HessianOperator(grads, params, limit=int(max_products))
        theta, vec = _lanczos_top(hess, _start_vector(params, seed), tol)
        rel = math.nan
        if vec is not None:
            hess.limit = math.inf  # the check below is one product beyond the budget
            vec = vec / np.linalg.norm(vec)
            res = float(np.linalg.norm(hess(vec) - theta * vec))
            rel = res / abs(theta) if theta != 0 else (0.0 if res == 0 else math.inf)
        return dict(
            eigenvalue=theta,
            converged=bool(vec is not None and rel <= tol),
            products=hess.products,
            relative_residual=rel,
        )
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
    mean over directions; it is negative where the loss curves down on
    average, i.e. at a point that is not a minimum.  Eval mode during the
    computation; parameters and mode are restored afterwards, also on error.
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
                    _filter_normalise(
                        torch.randn(p0.shape, generator=gen, dtype=p0.dtype).to(p0.device), p0
                    )
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


def gradient_to_noise(
    model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor, batch_size: int
) -> dict[str, Any]:
    """Full-batch gradient norm on ``(x, y)`` against SGD's minibatch noise at ``batch_size``.

    With ``N = len(x)``, ``m = min(batch_size, N // 2)`` and ``k = N // m ≥ 2``,
    the first ``k·m`` examples are split into ``k`` disjoint minibatches; ``g_j``
    is the gradient of the mean loss on minibatch ``j`` and ``ḡ = mean_j g_j``
    the full-batch gradient on those ``k·m`` examples.
    ``s_m² = Σ_j ‖g_j − ḡ‖²/(k − 1)`` estimates the squared norm of the noise
    of one minibatch of ``m``; the noise at the run's batch size ``b`` is taken
    as ``s_b = s_m·√(m/b)`` (its variance falls as 1/batch size).  ``‖ḡ‖/s_b ≤ 1``
    says the deterministic drift of SGD is no larger than its noise there; SGD
    with step η at rest in a quadratic basin whose top curvature is λ has
    ``E‖ḡ‖² ≤ s_b²·ηλ/(2 − ηλ)``, while a run still descending has a larger ratio.

    Returns ``dict(gradient_norm=‖ḡ‖, noise_norm=s_b, ratio=‖ḡ‖/s_b,
    loss (mean over the k·m examples), examples=k·m, minibatch=m)``.  Eval
    mode during the computation, mode restored after.
    """
    import torch

    n = len(x)
    if batch_size < 1 or n < 2:
        raise ValueError(f"need batch_size >= 1 and >= 2 examples, got {batch_size} and {n}")
    m = min(int(batch_size), n // 2)
    k = n // m
    params = _params(model)
    was_training = model.training
    model.eval()
    try:
        total = [torch.zeros_like(p) for p in params]
        sq, losses = 0.0, []
        for j in range(k):
            loss = _mean_loss(model, loss_fn, x[j * m : (j + 1) * m], y[j * m : (j + 1) * m])
            g = torch.autograd.grad(loss, params)
            sq += float(_dot(g, g))
            total = [t + u for t, u in zip(total, g, strict=True)]
            losses.append(float(loss.detach()))
        gbar = [t / k for t in total]
        gnorm2 = float(_dot(gbar, gbar))
    finally:
        model.train(was_training)
    noise_m2 = max(sq - k * gnorm2, 0.0) / (k - 1)  # Σ‖g_j − ḡ‖² = Σ‖g_j‖² − k‖ḡ‖²
    noise = math.sqrt(noise_m2 * m / int(batch_size))
    gnorm = math.sqrt(gnorm2)
    ratio = gnorm / noise if noise > 0 else (0.0 if gnorm == 0 else math.inf)
    if not all(math.isfinite(v) for v in (gnorm, noise, *losses)):
        raise FloatingPointError("non-finite loss or gradient at the end point")
    return dict(
        gradient_norm=gnorm,
        noise_norm=noise,
        ratio=ratio,
        loss=float(np.mean(losses)),
        examples=k * m,
        minibatch=m,
    )


def family_name(row: Mapping[str, Any]) -> str:
    """The family of comparable runs a run belongs to: ``dataset/arch/loss/lr<η>``, followed
    by the optimizer as in run paths (nothing for plain SGD, ``_adam`` for Adam)."""
    optimizer = optimizer_text(row.get("optimizer", DEFAULT_OPTIMIZER))
    return f"{row['dataset']}/{row['arch']}/{row['loss']}/lr{row['lr']:g}{optimizer}"


def sharpness_vs_alpha_table(sharpness: Sequence[Mapping[str, Any]], summary) -> pd.DataFrame:
    """Join per-run sharpness records with each run's status, final α̂ and family.

    ``sharpness``: one dict per run with the grid axes plus the fields of the
    measure_sharpness output; ``summary``: the summary table (its ``status``
    per run; its α̂ of the train split's gradient noise at the sharpness record's ``step``).
    Fields of :data:`SHARPNESS_FIELDS` a record lacks are NaN.  Returns a
    DataFrame with the axes, ``family`` (:func:`family_name`), ``step``,
    ``status``, ``alpha_robust``, ``alpha_reference``,
    ``alpha_per_coordinate_median`` and the sharpness fields.
    """
    import pandas as pd

    from sgdtail.grid import AXES

    sharp = pd.DataFrame(list(sharpness))
    for col in SHARPNESS_FIELDS:
        if col not in sharp:
            sharp[col] = np.nan
    keys = list(AXES)
    summary = gradient_rows(summary)
    status = summary[keys + ["status"]].drop_duplicates(subset=keys)
    train = summary[summary["split"] == "train"]
    alpha_cols = [ALPHA_COLUMNS[k] for k in ("robust", "reference", "per_coordinate")]
    df = sharp.merge(status, on=keys, how="left")
    flags = [c for c in ("pooled_enough",) if c in train.columns]
    df = df.merge(train[keys + ["step"] + alpha_cols + flags], on=keys + ["step"], how="left")
    df["family"] = [family_name(r) for r in df[list(C6_FAMILY_AXES)].to_dict("records")]
    first = keys + ["family", "step", "status"] + alpha_cols + list(SHARPNESS_FIELDS)
    return df[first + [c for c in df.columns if c not in first]]


def _is_true(value: Any) -> bool:
    return isinstance(value, bool | np.bool_) and bool(value)


#: The exclusion reason of an end point without a positive λ_max (C6, C7c).
NON_POSITIVE_LAMBDA = "non-positive top Hessian eigenvalue"


def exclusion_reason(
    row: Mapping[str, Any], max_gradient_to_noise: float, need_alpha: bool = True
) -> str:
    """Why a run's end point stays out of C6, or ``""`` when it enters.

    The first that applies: the run did not train (status not in
    :data:`sgdtail.aggregate.USABLE_STATUSES`), its weights are not finite, it has no α̂ or
    too few noise values for one (only with ``need_alpha``; C7c reads the sharpness alone), the
    Lanczos solve for λ_max did not converge, the full-batch gradient exceeds
    ``max_gradient_to_noise`` times the minibatch noise (:func:`gradient_to_noise`),
    the random-direction sharpness is negative, or the top (largest) Hessian
    eigenvalue is not positive (the last three: not a minimum).
    """

    def bad(col: str) -> bool:
        v = row.get(col)
        return v is None or not np.isfinite(float(v))

    status = row.get("status")
    checks = (
        (status not in USABLE_STATUSES, f"not trained (status {status})"),
        (not _is_true(row.get("finite_weights")), "non-finite weights"),
        (need_alpha and bad("alpha_robust"), "no alpha estimate"),
        (
            need_alpha and not _is_true(row.get("pooled_enough", True)),
            "too few noise values for α̂",
        ),
        (not _is_true(row.get("hessian_converged")), "Lanczos (λ_max) not converged"),
        (
            bad("gradient_to_noise") or row["gradient_to_noise"] > max_gradient_to_noise,
            f"gradient not small (gradient/noise > {max_gradient_to_noise:g})",
        ),
        (
            bad("random_direction_sharpness") or row["random_direction_sharpness"] < 0,
            "negative random-direction sharpness",
        ),
        (
            bad("top_hessian_eigenvalue") or row["top_hessian_eigenvalue"] <= 0,
            NON_POSITIVE_LAMBDA,
        ),
    )
    return next((why for failed, why in checks if failed), "")


def exclusion_reasons(
    df: pd.DataFrame, max_gradient_to_noise: float, need_alpha: bool = True
) -> pd.Series:
    """:func:`exclusion_reason` of every row of a :func:`sharpness_vs_alpha_table`."""
    import pandas as pd

    records = df.to_dict("records")
    reasons = [exclusion_reason(r, max_gradient_to_noise, need_alpha) for r in records]
    return pd.Series(reasons, index=df.index, dtype=object)


def _centred_ranks(a: np.ndarray) -> np.ndarray:
    """Ranks along axis 1 (ties averaged) minus their mean, divided by the row length."""
    r = stats.rankdata(a, axis=1)
    return (r - r.mean(axis=1, keepdims=True)) / a.shape[1]


def _rank_sums(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(Σuv, Σu², Σv²) of the centred ranks of each row of x and y: shape (3, rows)."""
    u, v = _centred_ranks(x), _centred_ranks(y)
    return np.stack([(u * v).sum(axis=1), (u * u).sum(axis=1), (v * v).sum(axis=1)])


def _rho(sums: np.ndarray) -> np.ndarray:
    den = np.sqrt(sums[1] * sums[2])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, sums[0] / np.where(den > 0, den, 1.0), np.nan)


def within_family_spearman(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    family: Sequence[str] | np.ndarray,
    min_family_runs: int = 3,
    level: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Rank correlation of ``x`` with ``y`` within families, combined across families.

    In each family with ``n_f ≥ min_family_runs`` finite ``(x, y)`` pairs, ``x``
    and ``y`` are ranked (ties averaged) and the ranks centred on the family's
    mean rank and divided by ``n_f``.  ρ is the correlation of these centred
    ranks over all runs of those families, ``Σuv/√(Σu²·Σv²)``; without ties it
    is the mean of the families' Spearman ρ_f weighted by ``(n_f² − 1)/n_f``
    (about the family's size).  Families below ``min_family_runs`` contribute
    nothing.  The percentile interval at ``level`` comes from ``n_boot``
    bootstrap resamples that draw ``n_f`` runs with replacement within each
    family (``numpy.random.default_rng(seed)``); it is NaN when fewer than half
    of the resamples define ρ.

    Returns ``dict(rho, ci_low, ci_high, n, families, skipped)``: ``n`` runs in
    the contributing ``families`` (list of ``dict(family, n, rho)``, ρ the
    family's Spearman ρ), ``skipped`` the others (list of ``dict(family, n)``).
    """
    xa, ya = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    fa = np.asarray(family, dtype=object).ravel()
    if not (xa.shape == ya.shape == fa.shape):
        raise ValueError(f"x, y and family differ in length: {xa.size}, {ya.size}, {fa.size}")
    if not (0.0 < level < 1.0):
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    if min_family_runs < 2:
        raise ValueError(f"min_family_runs must be >= 2, got {min_family_runs}")
    ok = np.isfinite(xa) & np.isfinite(ya)
    rng = np.random.default_rng(seed)
    point, boot = np.zeros((3, 1)), np.zeros((3, int(n_boot)))
    families, skipped = [], []
    for fam in sorted(set(fa[ok])):
        sel = ok & (fa == fam)
        xf, yf, n_f = xa[sel], ya[sel], int(sel.sum())
        if n_f < min_family_runs:
            skipped.append(dict(family=fam, n=n_f))
            continue
        sums = _rank_sums(xf[None, :], yf[None, :])
        point += sums
        idx = rng.integers(0, n_f, size=(int(n_boot), n_f))
        boot += _rank_sums(xf[idx], yf[idx])
        families.append(dict(family=fam, n=n_f, rho=float(_rho(sums)[0])))
    rho = float(_rho(point)[0])
    boots = _rho(boot)
    boots = boots[np.isfinite(boots)]
    lo = hi = math.nan
    if families and boots.size >= 0.5 * n_boot:
        a = 1.0 - level
        lo, hi = (float(q) for q in np.quantile(boots, [a / 2.0, 1.0 - a / 2.0]))
    return dict(
        rho=rho,
        ci_low=lo,
        ci_high=hi,
        n=sum(f["n"] for f in families),
        families=families,
        skipped=skipped,
    )


def _c6_decider(result: Mapping[str, Any], c6: Mapping[str, Any]) -> str:
    """For an interval that straddles ``min_rho``: about how many runs (interval half-width
    shrinking as 1/√n) would put it clear of ``min_rho`` at the measured ρ; "" otherwise."""
    rho, lo, hi, n = (
        float(result["rho"]),
        float(result["ci_low"]),
        float(result["ci_high"]),
        int(result["n"]),
    )
    rmin = float(c6["min_rho"])
    if not (all(math.isfinite(v) for v in (rho, lo, hi)) and lo <= rmin <= hi and n > 0):
        return ""
    gap = abs(rho - rmin)
    if gap < 0.05:
        return (
            f" (ρ is within 0.05 of min_rho = {rmin:g}: no number of runs separates them; "
            "a positive verdict needs a correlation that is not there)"
        )
    needed = math.ceil(n * ((hi - lo) / 2.0 / gap) ** 2)
    return f" (at this ρ about {needed} admitted runs, now {n}, would decide it)"


def claim_c6_verdict(result: Mapping[str, Any], thresholds: Mapping[str, float]) -> dict:
    """Verdict on C6 from a :func:`within_family_spearman` of α̂ with sharpness.

    "Heavier tails (smaller α) → flatter minima" predicts, within comparable
    runs, a positive rank correlation between a run's α̂ and the sharpness of
    its end point.  Thresholds (required): ``min_rho`` (the correlation the
    claim needs), ``min_runs`` (fewest runs, in contributing families, worth
    a verdict).

    * ``n < min_runs`` or an undefined ρ/interval → "inconclusive (...)";
    * CI lower bound ``> min_rho`` → "supported";
    * CI upper bound ``< 0`` (the sign is reversed) or ``< min_rho`` (the data
      rule out a correlation as strong as the claim needs) → "not supported";
    * otherwise (the interval straddles ``min_rho``) → "inconclusive (...)".

    Returns ``dict(verdict, value, ci_low, ci_high, reason)``.
    """
    need_keys(thresholds, ["min_rho", "min_runs"], "C6 thresholds")
    need_keys(result, ["rho", "ci_low", "ci_high", "n"], "C6 results (of within_family_spearman)")
    rmin, nmin = float(thresholds["min_rho"]), int(thresholds["min_runs"])
    rho, lo, hi, n = (
        float(result["rho"]),
        float(result["ci_low"]),
        float(result["ci_high"]),
        int(result["n"]),
    )
    if n < nmin:
        verdict, why = INCONCLUSIVE, f"fewer than {nmin} runs in families large enough"
    elif not all(math.isfinite(v) for v in (rho, lo, hi)):
        verdict, why = INCONCLUSIVE, "correlation or interval undefined"
    elif lo > rmin:
        verdict, why = SUPPORTED, f"CI above min_rho = {rmin:g}"
    elif hi < min(0.0, rmin):
        verdict, why = NOT_SUPPORTED, "CI below 0: sharper end points with heavier tails"
    elif hi < rmin:
        verdict, why = NOT_SUPPORTED, f"CI below min_rho = {rmin:g}: correlation too weak"
    else:
        verdict, why = INCONCLUSIVE, f"CI straddles min_rho = {rmin:g}"
    return dict(verdict=with_reason(verdict, why), value=rho, ci_low=lo, ci_high=hi, reason=why)


def _rho_text(res: Mapping[str, Any]) -> str:
    return f"rho = {res['rho']:.3g} [{res['ci_low']:.3g}, {res['ci_high']:.3g}], n = {res['n']}"


def _exclusion_text(df: pd.DataFrame, primary: Mapping[str, Any], min_family_runs: int) -> str:
    counts = Counter(r for r in df["excluded"] if r)
    out = f"{sum(counts.values())} of {len(df)} runs excluded"
    if counts:
        out += " (" + ", ".join(f"{c} {why}" for why, c in sorted(counts.items())) + ")"
    small = primary["skipped"]
    if small:
        names = ", ".join(f"{s['family']} n = {s['n']}" for s in small)
        out += (
            f"; {sum(s['n'] for s in small)} admitted run(s) in {len(small)} family(ies) "
            f"with fewer than {min_family_runs} runs contribute nothing ({names})"
        )
    return out


def claim_c6(
    df: pd.DataFrame, c6: Mapping[str, Any], n_boot: int = 1000, seed: int = 0
) -> tuple[dict, dict]:
    """The C6 row for the claims table and the per-measure correlations behind it.

    ``df``: a :func:`sharpness_vs_alpha_table` with an ``excluded`` column
    (:func:`exclusion_reasons`; ``""`` = admitted).  ``c6``: ``min_rho``,
    ``min_runs``, ``min_family_runs``, ``max_gradient_to_noise``.  For each of
    :data:`MEASURES` it computes :func:`within_family_spearman` of the final
    robust α̂ with that measure over the admitted runs; the verdict
    (:func:`claim_c6_verdict`) is the primary measure's, the other is reported
    in the detail.  Returns ``(claim, results)``: ``claim`` has the keys
    claim, statistic, value, ci_low, ci_high, threshold, verdict, detail;
    ``results`` maps each measure's column to its correlation.
    """
    ok = df[df["excluded"] == ""]
    results = {
        col: within_family_spearman(
            ok["alpha_robust"],
            ok[col],
            ok["family"],
            int(c6["min_family_runs"]),
            n_boot=n_boot,
            seed=seed,
        )
        for col, _ in MEASURES
    }
    (pcol, plabel), (scol, slabel) = MEASURES
    primary, secondary = results[pcol], results[scol]
    v, v2 = claim_c6_verdict(primary, c6), claim_c6_verdict(secondary, c6)
    per_family = (
        "; ".join(f"{f['family']} rho = {f['rho']:.3g} (n = {f['n']})" for f in primary["families"])
        or "none"
    )
    detail = (
        f"Spearman rho between the final robust alpha (train noise) and the {plabel} of the end "
        f"point, computed within families of comparable runs (same data set, architecture, loss "
        f"and learning rate) and combined as one correlation of within-family centred ranks "
        f"(the family rhos weighted by (n^2 - 1)/n) with a bootstrap that resamples runs within "
        f"families, over {primary['n']} runs in {len(primary['families'])} families; "
        f"{_exclusion_text(df, primary, int(c6['min_family_runs']))}. "
        f"{_rho_text(primary)}: {v['reason']}{_c6_decider(primary, c6)}. Per family: {per_family}. "
        f"With the {slabel} instead (not invariant to reparametrisation): {_rho_text(secondary)}, "
        f"which would read {v2['verdict']}. The claim's 'faster than Brownian theory predicts' "
        f"is not tested by this statistic."
    )
    threshold = (
        f"CI of the within-family rho above min_rho = {c6['min_rho']}; >= {c6['min_runs']} runs "
        f"in families of >= {c6['min_family_runs']}; minima only (gradient/noise <= "
        f"{c6['max_gradient_to_noise']}, sharpness >= 0, Lanczos converged)"
    )
    claim = dict(
        claim="C6",
        statistic=(
            "within comparable runs, flatter end points go with smaller alpha: "
            f"within-family Spearman rho(alpha, {plabel})"
        ),
        value=v["value"],
        ci_low=v["ci_low"],
        ci_high=v["ci_high"],
        threshold=threshold,
        verdict=v["verdict"],
        detail=detail,
    )
    return claim, results


def _y_scale(ax, values: np.ndarray) -> None:
    """Log scale when every value is positive, symmetric log around the smallest one else."""
    v = values[np.isfinite(values)]
    if v.size and (v > 0).all():
        ax.set_yscale("log")
    elif v.size and (v != 0).any():
        ax.set_yscale("symlog", linthresh=float(np.abs(v[v != 0]).min()))


def _family_labels(
    df: pd.DataFrame, admitted: pd.Series, results: Mapping[str, Mapping], fams: Sequence[str]
) -> dict[str, str]:
    """Legend text per family: admitted runs and the family's ρ with each measure."""
    out = {}
    for fam in fams:
        n = int((admitted & (df["family"] == fam)).sum())
        rhos = []
        for col, _ in MEASURES:
            rho_f = {f["family"]: f["rho"] for f in results[col]["families"]}
            if fam in rho_f:
                rhos.append(f"{rho_f[fam]:.2f}")
        name = " / ".join(SHORT_NAMES[c] for c, _ in MEASURES)
        out[fam] = (
            f"{fam}: n = {n}, ρ ({name}) = {' / '.join(rhos)}"
            if rhos
            else f"{fam}: n = {n} (too few runs)"
        )
    return out


def plot_sharpness_vs_alpha(
    df: pd.DataFrame, results: Mapping[str, Mapping[str, Any]], pdf, png
) -> Figure:
    """Each sharpness measure against the final robust α̂, one colour per family.

    ``df``: a :func:`sharpness_vs_alpha_table` with ``excluded``; ``results``:
    the second value of :func:`claim_c6`.  Admitted end points are filled dots
    in their family's colour; excluded ones grey crosses (where their value
    is finite), their number in the title.  Returns the Figure (saved and closed).
    """
    import matplotlib.pyplot as plt

    from sgdtail.plots import save_figure, set_style, suptitle

    set_style()
    fig, axes = plt.subplots(1, len(MEASURES), figsize=(11, 4.2), gridspec_kw={"wspace": 0.3})
    fams = sorted(set(df["family"]))
    colours = dict(zip(fams, plt.get_cmap("tab10")(np.arange(len(fams)) % 10), strict=True))
    admitted = df["excluded"] == ""
    labels = _family_labels(df, admitted, results, fams)
    for i, (ax, (col, label)) in enumerate(zip(axes, MEASURES, strict=True)):
        res = results[col]
        for fam in fams:
            sel = admitted & (df["family"] == fam)
            ax.scatter(
                df.loc[sel, "alpha_robust"],
                df.loc[sel, col],
                color=colours[fam],
                label=labels[fam],
                s=28,
            )
        ax.scatter(
            df.loc[~admitted, "alpha_robust"],
            df.loc[~admitted, col],
            marker="x",
            color="0.5",
            label=f"excluded: n = {int((~admitted).sum())}",
            s=28,
        )
        _y_scale(ax, df[col].to_numpy(dtype=float))
        ax.set_xlabel("final tail index α̂ (pooled, robust; train noise)")
        ax.set_ylabel(label)
        role = "primary (the C6 verdict)" if i == 0 else "reported beside it"
        ax.set_title(
            f"{role}: within-family ρ = {res['rho']:.2f} [{res['ci_low']:.2f}, "
            f"{res['ci_high']:.2f}], n = {res['n']}",
            fontsize=9,
        )
    axes[-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)
    suptitle(
        fig,
        f"Sharpness of the end point vs α̂ within families (data set/arch/loss/lr); "
        f"{int((~admitted).sum())} of {len(df)} end points excluded (not trained or "
        f"not a minimum; grey ×, reasons in results/tables/sharpness.csv)",
    )
    fig.subplots_adjust(top=0.8)
    save_figure(fig, pdf, png)
    return fig
