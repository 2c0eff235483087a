"""The tail index of the SGD iterates over the last steps of a run (docs/science.md).

Over a window of the last W steps of a run, the iterates θ_{s+1}, …, θ_{s+W} (s = end − W)
are centred on their window mean θ̄ and the W × M matrix of θ_k − θ̄ goes through the same
estimators as the gradient noise (:class:`sgdtail.estimators.StreamingTailStats`: rows are
steps instead of minibatches), pooled and per layer.

The window is never stored. Training is deterministic and resumes bit-identically, so
:class:`WindowSnapshots` (a training step hook) saves the full training state at step s in
``resume.pt``'s format (:func:`sgdtail.train.save_resume`), and :func:`measure_iterates`
replays the W steps from it twice: pass 1 sums the iterates (the window mean), pass 2
streams θ_k − θ̄ into the estimators in chunks of rows that fit the memory budget. Each pass
must end on the trained weights at step s + W (bit for bit on the CPU), else a
:class:`ReplayMismatch` says so.

A run that may stop early (``stop_at_train_accuracy``) can end at any checkpoint, so a
snapshot is taken W steps before each checkpoint as well as before the last step, and one is
deleted once the run has passed the end it was taken for.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import pandas as pd
import torch

from sgdtail import io
from sgdtail.aggregate import gradient_rows, sweep_spread
from sgdtail.estimators import DEFAULT_ROBUST_FACTORS, StreamingTailStats
from sgdtail.grid import AXES
from sgdtail.models import layer_slices
from sgdtail.noise import groups_per_chunk
from sgdtail.train import (
    STATUS_DIVERGED,
    TrainConfig,
    _build_run,
    _Run,
    _RunState,
    _sgd_step,
    load_resume,
    save_resume,
)

log = logging.getLogger(__name__)

#: Largest relative difference between replayed and trained final weights accepted on CUDA,
#: where cuDNN may pick non-deterministic kernels (a resumed GPU run ended within 1.5e-8 of
#: an uninterrupted one: docs/science.md); on the CPU the two must be bit-identical.
CUDA_REPLAY_RTOL = 1e-5


class ReplayMismatch(RuntimeError):
    """The replayed window did not end on the weights training ended on."""


# --------------------------------------------------------------------------- snapshots


def window_ends(cfg: TrainConfig) -> list[int]:
    """Steps a run of ``cfg`` can end at: its last step and, when it may stop at the accuracy
    target, each checkpoint after step 0."""
    ends = {cfg.iterations}
    if cfg.stop_at_train_accuracy is not None:
        ends |= {c for c in cfg.checkpoints if c > 0}
    return sorted(ends)


def _snapshot_path(folder: Path, start: int) -> Path:
    return folder / f"start{start}.pt"


@dataclasses.dataclass
class WindowSnapshots:
    """Training step hook (:data:`sgdtail.train.StepHook`): at each step ``end − window`` for
    ``end`` in ``ends`` it saves the training state (resume.pt's format, without the
    checkpoints' weights) to ``folder/start<step>.pt``, and it deletes a snapshot once the run
    is past its end."""

    folder: Path
    window: int
    ends: Sequence[int]

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)
        self._end_of = {end - self.window: end for end in self.ends if end >= self.window}

    def __call__(self, run: _Run, state: _RunState) -> None:
        step = state.step
        for start, end in self._end_of.items():
            path = _snapshot_path(self.folder, start)
            if start == step:
                self.folder.mkdir(parents=True, exist_ok=True)
                lean = dataclasses.replace(state, state_dicts={}, metrics=[])
                save_resume(dataclasses.replace(run, resume_path=path), lean)
            elif end < step:
                path.unlink(missing_ok=True)


def finish_snapshots(folder: Path, info: Mapping, window: int, out: Path) -> str:
    """Move the snapshot of the window that ends where the run ended (``info``: run.json's
    content) to ``out`` and remove ``folder``; when there is none, ``out`` holds
    ``{"reason": ...}`` instead. Returns the reason, or "" for a window."""
    folder, out = Path(folder), Path(out)
    end = int(info["steps_done"])
    start = end - window
    path = _snapshot_path(folder, start)
    if info["status"] == STATUS_DIVERGED:
        reason = f"run diverged at step {info['diverged_at']}: no iterates to measure"
    elif start < 0:
        reason = f"run ended at step {end}, before a window of {window} steps (iterates.window)"
    elif not path.exists():
        reason = f"no snapshot at step {start} in {folder}"
    else:
        reason = ""
        os.replace(path, out)
    if reason:
        io.save_torch(out, {"reason": reason})
    shutil.rmtree(folder, ignore_errors=True)
    return reason


# --------------------------------------------------------------------------- the estimator


@dataclasses.dataclass
class IterateResult:
    """What one window produced."""

    rows: list[dict]  # estimator rows (StreamingTailStats.finalize)
    last: tuple[torch.Tensor, torch.Tensor]  # the last iterate of pass 1 and of pass 2
    rms_distance: float  # sqrt(mean over k of ‖θ_k − θ̄‖²)
    drift_ratio: float  # ‖mean of the second half − mean of the first half‖ / rms_distance


def _window_mean(iterates: Iterable[torch.Tensor], n_rows: int):
    """Pass 1: the window mean (float64), the two half-window means and the last iterate."""
    total = first_half = last = None
    for k, theta in enumerate(iterates):
        if total is None:
            total = torch.zeros(theta.numel(), dtype=torch.float64, device=theta.device)
        total += theta.double()
        if k + 1 == n_rows // 2:
            first_half = total.clone()
        last = theta.clone()
    if last is None or k + 1 != n_rows:
        raise ValueError(f"the iterates gave {0 if last is None else k + 1} rows, not {n_rows}")
    half = n_rows // 2
    second = (total - first_half) / (n_rows - half)
    return total / n_rows, second - first_half / half, last


def centred_iterate_stats(
    iterates: Callable[[], Iterable[torch.Tensor]],
    n_rows: int,
    layers: Sequence[tuple[str, int, int]],
    *,
    chunk_rows: int,
    estimator_options: Mapping | None = None,
) -> IterateResult:
    """Tail-index rows of the centred iterates θ_k − θ̄ of a window of ``n_rows`` iterates.

    ``iterates()`` yields the window's iterates, each a flat (M,) tensor, and must yield the
    same ones each time it is called (it is called twice: pass 1 takes the mean θ̄, pass 2
    streams θ_k − θ̄ into :class:`StreamingTailStats` ``chunk_rows`` rows at a time).
    ``layers``: (name, start, stop) column ranges, as :func:`sgdtail.models.layer_slices`.
    """
    mean, drift, last1 = _window_mean(iterates(), n_rows)
    n_cols = mean.numel()
    stats = StreamingTailStats(n_rows, n_cols, layers, **dict(estimator_options or {}))
    chunk = torch.empty(min(chunk_rows, n_rows), n_cols, device=mean.device)
    filled, squares, last2 = 0, 0.0, None
    for theta in iterates():
        chunk[filled] = (theta.double() - mean).float()
        squares += float(torch.linalg.vector_norm(chunk[filled].double()) ** 2)
        filled += 1
        last2 = theta
        if filled == len(chunk):
            stats.update(chunk.cpu())
            filled = 0
    if filled:
        stats.update(chunk[:filled].cpu())
    rms = math.sqrt(squares / n_rows)
    drift_norm = float(torch.linalg.vector_norm(drift))
    return IterateResult(
        rows=stats.finalize(),
        last=(last1, last2.clone()),
        rms_distance=rms,
        drift_ratio=drift_norm / rms if rms > 0 else math.nan,
    )


# --------------------------------------------------------------------------- the replay


def _flat_parameters(params: Sequence[torch.Tensor]) -> torch.Tensor:
    """The parameters as one flat float32 vector, in ``parameters_to_vector`` order."""
    return torch.cat([p.detach().reshape(-1) for p in params])


def replay_window(
    cfg: TrainConfig, data, snapshot: Path, device: torch.device, steps: int
) -> Iterator[torch.Tensor]:
    """Yield the flat weights after each of the ``steps`` SGD steps that follow the training
    state saved in ``snapshot`` (resume.pt's format), replayed exactly as training ran them."""
    run = _build_run(cfg, data, Path(snapshot).parent, device)
    run = dataclasses.replace(run, resume_path=Path(snapshot))
    state = _RunState.fresh(cfg.iterations)
    load_resume(run, state)
    if state.resumed_from is None:
        raise ReplayMismatch(
            f"{snapshot} was not written by this run's configuration and data; rerun train_sgd"
        )
    for step in range(state.step, state.step + steps):
        _sgd_step(run, step)
        yield _flat_parameters(run.params)


def check_replay(replayed: torch.Tensor, trained: torch.Tensor, device: torch.device) -> None:
    """Raise :class:`ReplayMismatch` unless the replayed final weights equal the trained ones:
    bit for bit on the CPU, within :data:`CUDA_REPLAY_RTOL` on CUDA."""
    replayed = replayed.detach().cpu()
    if torch.equal(replayed, trained):
        return
    diff = float(torch.linalg.vector_norm((replayed - trained).double()))
    scale = float(torch.linalg.vector_norm(trained.double()))
    if device.type == "cuda" and diff <= CUDA_REPLAY_RTOL * scale:
        log.warning("replayed weights differ from the trained ones by %.3g relative", diff / scale)
        return
    raise ReplayMismatch(
        f"the replayed window ended {diff:.3g} (relative {diff / max(scale, 1e-300):.3g}) away "
        "from the trained final weights: training is not reproducible here (different code, "
        "torch version or device since train_sgd ran); rerun train_sgd"
    )


def measure_iterates(
    cfg: TrainConfig,
    data,
    snapshot: Path,
    trained: Mapping[str, torch.Tensor],
    end: int,
    device: torch.device,
    *,
    memory_budget_mb: float,
    estimator_options: Mapping,
) -> list[dict]:
    """Rows of ``iterates_tail_index.csv`` for one run (docs/outputs.md).

    ``snapshot``: the training state at the window's first step (or ``{"reason": ...}``);
    ``trained``: the run's state dict at its last step ``end``. Each row is a
    :class:`StreamingTailStats` row plus ``step`` (= ``end``), ``window_start``, ``window``,
    ``n_parameters``, ``rms_distance``, ``drift_ratio``, ``seconds`` and ``note``.
    """
    t0 = time.perf_counter()
    saved = io.load_torch(snapshot)
    if "reason" in saved:
        return [{"step": end, "estimator": "none", "note": saved["reason"]}]
    start = int(saved["step"])
    window = end - start
    model_layers = layer_slices(_build_run(cfg, data, Path(snapshot).parent, device).model)
    n_params = model_layers[-1][2]
    final = torch.cat([trained[name].reshape(-1) for name, _, _ in model_layers])
    budget = int(memory_budget_mb * 2**20)
    result = centred_iterate_stats(
        lambda: replay_window(cfg, data, snapshot, device, window),
        window,
        model_layers,
        chunk_rows=groups_per_chunk(n_params, budget),
        estimator_options=estimator_options,
    )
    for replayed in result.last:
        check_replay(replayed, final, device)
    extra = {
        "step": end,
        "window_start": start,
        "window": window,
        "n_parameters": n_params,
        "rms_distance": result.rms_distance,
        "drift_ratio": result.drift_ratio,
        "seconds": time.perf_counter() - t0,
        "note": "",
    }
    return [{**row, **extra} for row in result.rows]


# --------------------------------------------------------------------------- tables

PAIR_ESTIMATOR = "mohammadi_robust"
"""The estimator whose α̂ of the iterates and of the noise ``iterates_vs_noise.csv`` pairs:
the robust pooled / per-layer estimate with its batch-means interval."""


def _robust(df: pd.DataFrame, suffix: str) -> pd.DataFrame:
    """The robust rows of ``df`` as axes, scope and α̂ columns named with ``suffix``."""
    sel = df[(df.estimator == PAIR_ESTIMATOR) & (df.get("order") == "natural")]
    columns = {c: f"{c}_{suffix}" for c in ("alpha", "ci_low", "ci_high", "n_values", "step")}
    return sel[[*AXES, "scope", *columns]].rename(columns=columns)


def _spread(df: pd.DataFrame, count: str, factors: Sequence[float], suffix: str) -> pd.DataFrame:
    """Per run, the K1 spread of the pooled robust α̂ of ``df`` (one measurement per run, K =
    ``count`` × ``n_parameters`` values) as axes, scope (``pooled``), ``k1_down_<suffix>`` and
    ``k1_up_<suffix>`` (:func:`sgdtail.aggregate.sweep_spread`); no row for a run without a
    sweep."""
    rows = (df.estimator == "block_sweep") & (df.scope == "pooled") & (df.get("order") == "natural")
    sweep = df[rows].reindex(columns=[*AXES, "k1", "alpha", count, "n_parameters"])
    sweep = sweep.assign(k=sweep[count].astype(float) * sweep["n_parameters"].astype(float))
    spread = sweep_spread(sweep, AXES, factors).assign(scope="pooled")
    return spread.rename(columns={c: f"{c}_{suffix}" for c in ("k1_down", "k1_up")})


def iterates_vs_noise(
    iterates: pd.DataFrame,
    estimates: pd.DataFrame,
    runs: pd.DataFrame,
    split: str,
    min_pooled_values: int,
    k1_factors: Sequence[float] = DEFAULT_ROBUST_FACTORS,
) -> pd.DataFrame:
    """One row per run × scope (``pooled`` and each layer): the robust α̂ of the iterates
    (``iterates_estimates.csv``) beside the robust α̂ of the gradient noise on ``split`` at
    the run's last checkpoint (``estimates.parquet``), with both batch-means intervals, the
    pooled estimates' K1 spreads (``k1_down_*``, ``k1_up_*``: :func:`sgdtail.aggregate.sweep_spread`
    with ``k1_factors``; K = window × parameters for the iterates, minibatches × parameters
    for the noise), the run's ``status`` (``runs.csv``), the window and its ``drift_ratio``;
    ``enough_iterates``: the iterates' estimate saw at least ``min_pooled_values`` values,
    ``enough``: both estimates did. A run without a window has one ``pooled`` row with no α̂
    and its reason in ``note``."""
    noise = gradient_rows(estimates)  # the gradient noise, not a preconditioned one
    noise = noise[noise.split == split]
    noise = noise[noise.step == noise.groupby(list(AXES))["step"].transform("max")]
    measured = _robust(iterates, "iterates").assign(note="")
    missing = iterates[iterates.estimator == "none"][[*AXES, "step", "note"]]
    missing = missing.rename(columns={"step": "step_iterates"}).assign(scope="pooled")
    paired = pd.concat([measured, missing], ignore_index=True)
    paired = paired.merge(_robust(noise, "noise"), on=[*AXES, "scope"], how="left")
    for spread in (
        _spread(iterates, "window", k1_factors, "iterates"),
        _spread(noise, "n_minibatches", k1_factors, "noise"),
    ):
        paired = paired.merge(spread, on=[*AXES, "scope"], how="left")
    if "window" in iterates:
        windows = iterates[iterates.estimator != "none"].drop_duplicates(list(AXES))
        paired = paired.merge(windows[[*AXES, "window", "drift_ratio"]], on=list(AXES), how="left")
    paired = paired.merge(runs[[*AXES, "status"]], on=list(AXES), how="left")
    paired["enough_iterates"] = paired.n_values_iterates >= min_pooled_values
    paired["enough"] = paired.enough_iterates & (paired.n_values_noise >= min_pooled_values)
    paired = paired.rename(columns={"step_iterates": "step"})
    return paired.sort_values([*AXES, "scope"]).reset_index(drop=True)
