"""The tail index of the iterates: the estimator on synthetic SαS iterates, the snapshot taken
during training, the replay against training, and the iterates-vs-noise table."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from sgdtail import io
from sgdtail.estimators import sample_sas
from sgdtail.grid import AXES
from sgdtail.iterates import (
    ReplayMismatch,
    WindowSnapshots,
    centred_iterate_stats,
    check_replay,
    finish_snapshots,
    iterates_vs_noise,
    measure_iterates,
    replay_window,
    window_ends,
)
from sgdtail.models import layer_slices
from sgdtail.train import TrainConfig, train_sgd

CPU = torch.device("cpu")
OPTIONS = {"ci_groups": 10}


def sas_chains(alpha: float, steps: int, chains: int, phi: float, seed: int) -> list[torch.Tensor]:
    """``steps`` iterates of ``chains`` independent AR(1) chains x ← φx + ξ, ξ SαS(α), started
    in their stationary law, SαS(α) of scale (1 − |φ|^α)^(−1/α)."""
    rng = np.random.default_rng(seed)
    x = sample_sas(alpha, chains, rng) / (1 - phi**alpha) ** (1 / alpha)
    rows = []
    for _ in range(steps):
        x = phi * x + sample_sas(alpha, chains, rng)
        rows.append(torch.from_numpy(x.astype(np.float32)))
    return rows


def pick(rows: list[dict], estimator: str, scope: str = "pooled") -> dict:
    return next(r for r in rows if (r["estimator"], r["scope"], r["order"]) == (
        estimator, scope, "natural"))  # fmt: skip


LAYERS = [("first", 0, 1500), ("second", 1500, 4000)]


@pytest.mark.parametrize("alpha", [0.8, 1.2, 1.6, 2.0])
def test_centred_sas_iterates_give_their_alpha_within_0_05(alpha):
    """10⁶ values: 250 steps of 4,000 AR(1) chains with φ = 0.9 (relaxation time 10 steps),
    whose stationary law is SαS(α); streamed 64 rows at a time."""
    rows = sas_chains(alpha, 250, 4000, 0.9, seed=1)
    res = centred_iterate_stats(lambda: iter(rows), 250, LAYERS, chunk_rows=64,
                                estimator_options=OPTIONS)  # fmt: skip
    robust = pick(res.rows, "mohammadi_robust")
    assert abs(robust["alpha"] - alpha) <= 0.05, robust
    assert robust["n_values"] == 250 * 4000
    assert robust["ci_low"] <= robust["alpha"] <= robust["ci_high"]
    assert abs(pick(res.rows, "mohammadi_robust", "second")["alpha"] - alpha) <= 0.1


def test_the_chunking_does_not_change_the_rows_and_the_mean_is_taken_out():
    rows = [r + 100.0 for r in sas_chains(1.5, 40, 1000, 0.5, seed=2)]  # far from 0
    layers = [("all", 0, 1000)]
    a = centred_iterate_stats(lambda: iter(rows), 40, layers, chunk_rows=7)
    b = centred_iterate_stats(lambda: iter(rows), 40, layers, chunk_rows=40)
    pd.testing.assert_frame_equal(pd.DataFrame(a.rows), pd.DataFrame(b.rows), rtol=1e-6)
    assert torch.equal(a.last[0], rows[-1]) and torch.equal(a.last[1], rows[-1])
    centred = torch.stack(rows).double() - torch.stack(rows).double().mean(0)
    rms = float(centred.pow(2).sum(1).mean().sqrt())
    assert a.rms_distance == pytest.approx(rms, rel=1e-5)
    # uncentred values this far from 0 would read α̂ ≫ 2 (a near-constant sample)
    assert pick(a.rows, "mohammadi_robust")["alpha"] < 2.1


def test_per_coordinate_estimates_of_slow_chains_read_about_one():
    """Summing K1 consecutive steps of a chain that barely moves in K1 steps multiplies it by
    about K1: the per-coordinate estimator (blocks of K1 = 15 steps of one coordinate, here
    with a relaxation time of 10 steps) reads Gaussian chains as α̂ ≈ 1, while the pooled one
    (blocks across the coordinates of one step) does not (docs/science.md)."""
    rows = sas_chains(2.0, 250, 4000, 0.9, seed=3)
    res = centred_iterate_stats(lambda: iter(rows), 250, [], chunk_rows=250)
    assert pick(res.rows, "per_coordinate")["alpha"] < 1.3
    assert abs(pick(res.rows, "mohammadi_robust")["alpha"] - 2.0) <= 0.05


def test_drift_ratio_tells_a_trend_from_a_stationary_window():
    stationary = sas_chains(2.0, 200, 500, 0.0, seed=4)
    trend = [torch.full((500,), float(k)) + 0.01 * s for k, s in enumerate(stationary)]
    run = centred_iterate_stats(lambda: iter(stationary), 200, [], chunk_rows=50)
    drift = centred_iterate_stats(lambda: iter(trend), 200, [], chunk_rows=50)
    assert run.drift_ratio < 0.3  # about 2/√W for independent steps
    assert drift.drift_ratio == pytest.approx(np.sqrt(3), rel=0.01)  # a pure linear trend


def test_an_iterator_of_the_wrong_length_is_refused():
    rows = sas_chains(1.5, 10, 100, 0.0, seed=5)
    with pytest.raises(ValueError, match="gave 10 rows, not 12"):
        centred_iterate_stats(lambda: iter(rows), 12, [], chunk_rows=4)


# --------------------------------------------------------------------------- on training


def config(**overrides) -> TrainConfig:
    base = dict(
        dataset="synthetic", arch="fcn", width=16, depth=3, batch_size=20, lr=0.1,
        loss="cross_entropy", seed=0, iterations=60, checkpoints=(0, 10, 60),
        eval_batch_size=128, resume_every=25,
    )  # fmt: skip
    base.update(overrides)
    return TrainConfig(**base)


class Recorder:
    """A step hook that keeps the flat weights after every step."""

    def __init__(self):
        self.weights: dict[int, torch.Tensor] = {}

    def __call__(self, run, state):
        self.weights[state.step] = torch.cat([p.detach().reshape(-1) for p in run.params])


def both(*hooks):
    def hook(run, state):
        for h in hooks:
            h(run, state)

    return hook


def train_with_snapshots(tmp_path, data, cfg: TrainConfig, window: int):
    recorder = Recorder()
    snapshots = WindowSnapshots(tmp_path / "snaps", window, window_ends(cfg))
    info = train_sgd(cfg, data, tmp_path, CPU, hook=both(snapshots, recorder))
    reason = finish_snapshots(tmp_path / "snaps", info, window, tmp_path / "start.pt")
    return info, reason, recorder


def test_the_replayed_window_equals_training_step_by_step(tmp_path, small_data):
    cfg = config()
    info, reason, recorder = train_with_snapshots(tmp_path, small_data, cfg, window=15)
    assert reason == "" and not (tmp_path / "snaps").exists()
    assert io.load_torch(tmp_path / "start.pt")["step"] == 45
    replayed = list(replay_window(cfg, small_data, tmp_path / "start.pt", CPU, 15))
    for k, theta in enumerate(replayed):
        assert torch.equal(theta, recorder.weights[46 + k]), k
    trained = io.load_torch(tmp_path / "checkpoints.pt")["state_dicts"]["60"]
    rows = measure_iterates(cfg, small_data, tmp_path / "start.pt", trained, 60, CPU,
                            memory_budget_mb=0.01, estimator_options=OPTIONS)  # fmt: skip
    robust = pick(rows, "mohammadi_robust")
    assert (robust["step"], robust["window_start"], robust["window"]) == (60, 45, 15)
    assert robust["n_parameters"] == info["n_parameters"] and robust["note"] == ""
    assert 0 < robust["alpha"] < 3 and robust["rms_distance"] > 0
    scopes = {r["scope"] for r in rows if r["estimator"] == "mohammadi_robust"}
    assert scopes == {"pooled", *(name for name, _, _ in layer_slices_of(cfg, small_data))}


def layer_slices_of(cfg, data):
    from sgdtail.models import build_model

    return layer_slices(build_model(cfg.arch, cfg.width, cfg.depth, data.input_shape, 10))


def test_a_replay_that_does_not_end_on_the_trained_weights_is_an_error(tmp_path, small_data):
    cfg = config()
    train_with_snapshots(tmp_path, small_data, cfg, window=15)
    trained = io.load_torch(tmp_path / "checkpoints.pt")["state_dicts"]["60"]
    moved = {k: v.clone() for k, v in trained.items()}
    first = next(iter(moved))
    moved[first].view(-1)[0] = torch.nextafter(moved[first].view(-1)[0], torch.tensor(1.0))
    with pytest.raises(ReplayMismatch, match="rerun train_sgd"):
        measure_iterates(cfg, small_data, tmp_path / "start.pt", moved, 60, CPU,
                         memory_budget_mb=1, estimator_options=OPTIONS)  # fmt: skip
    other = dataclasses.replace(cfg, lr=0.05)  # a snapshot of another configuration
    with pytest.raises(ReplayMismatch, match="not written by this run's configuration"):
        list(replay_window(other, small_data, tmp_path / "start.pt", CPU, 15))
    flat = torch.cat([v.reshape(-1) for v in trained.values()])
    check_replay(flat.clone(), flat, CPU)  # equal: no error


def test_a_run_that_stops_early_keeps_the_window_before_its_stop(tmp_path, small_data):
    """With a target accuracy, the run may end at any checkpoint: the snapshot W steps before
    the checkpoint it stopped at is kept, the others are deleted."""
    cfg = config(stop_at_train_accuracy=0.01, checkpoints=(10, 30, 60))
    info, reason, _ = train_with_snapshots(tmp_path, small_data, cfg, window=4)
    assert info["status"] == "converged" and info["steps_done"] == 10
    assert reason == "" and io.load_torch(tmp_path / "start.pt")["step"] == 6
    assert window_ends(cfg) == [10, 30, 60]


def test_runs_without_a_window_say_why(tmp_path, small_data):
    cfg = config(stop_at_train_accuracy=0.01, checkpoints=(10, 60))
    _, reason, _ = train_with_snapshots(tmp_path, small_data, cfg, window=20)
    assert reason == "run ended at step 10, before a window of 20 steps (iterates.window)"
    rows = measure_iterates(cfg, small_data, tmp_path / "start.pt", {}, 10, CPU,
                            memory_budget_mb=1, estimator_options=OPTIONS)  # fmt: skip
    assert rows == [{"step": 10, "estimator": "none", "note": reason}]
    info = {"status": "diverged", "diverged_at": 7, "steps_done": 6}
    reason = finish_snapshots(tmp_path / "none", info, 3, tmp_path / "d.pt")
    assert reason == "run diverged at step 7: no iterates to measure"
    assert io.load_torch(tmp_path / "d.pt") == {"reason": reason}


def test_a_window_as_long_as_the_run_starts_at_the_initialisation(tmp_path, small_data):
    cfg = config(iterations=12, checkpoints=(0, 12))
    _, reason, recorder = train_with_snapshots(tmp_path, small_data, cfg, window=12)
    assert reason == "" and io.load_torch(tmp_path / "start.pt")["step"] == 0
    replayed = list(replay_window(cfg, small_data, tmp_path / "start.pt", CPU, 12))
    assert torch.equal(replayed[-1], recorder.weights[12])


# --------------------------------------------------------------------------- the table


def test_iterates_vs_noise_pairs_each_scope_with_the_last_checkpoint_s_noise():
    axes = {"dataset": "mnist", "arch": "fcn", "width": 4, "depth": 2, "batch_size": 50,
            "lr": 0.1, "loss": "cross_entropy", "seed": 0, "optimizer": "sgd"}  # fmt: skip
    other = {**axes, "seed": 1}

    def row(run, scope, alpha, **extra):
        return {**run, "estimator": "mohammadi_robust", "order": "natural", "scope": scope,
                "alpha": alpha, "ci_low": alpha - 0.1, "ci_high": alpha + 0.1, **extra}  # fmt: skip

    it = pd.DataFrame([
        row(axes, "pooled", 1.5, n_values=40000, step=20, window=10, drift_ratio=0.4),
        row(axes, "w", 1.4, n_values=400, step=20, window=10, drift_ratio=0.4),
        {**other, "estimator": "none", "step": 3, "note": "run ended at step 3, ..."},
    ])  # fmt: skip
    noise = pd.DataFrame([
        row(axes, "pooled", 1.1, n_values=90000, step=20, split="train", noise="gradient"),
        # an optimizer's preconditioned noise of the same checkpoint is not what is paired
        row(axes, "pooled", 0.6, n_values=90000, step=20, split="train", noise="preconditioned"),
        row(axes, "pooled", 1.9, n_values=90000, step=5, split="train"),
        row(axes, "pooled", 1.7, n_values=90000, step=20, split="test"),
        row(axes, "w", 1.2, n_values=90000, step=20, split="train"),
        row(other, "pooled", 1.3, n_values=90000, step=3, split="train"),
    ])  # fmt: skip
    noise["noise"] = noise["noise"].fillna("gradient")  # as estimates.parquet has it
    runs = pd.DataFrame([{**axes, "status": "completed"}, {**other, "status": "converged"}])
    out = iterates_vs_noise(it, noise, runs, "train", 10000).set_index(["seed", "scope"])
    # no block sweep in these tables: the K1 spreads are unknown, not zero
    spreads = ["k1_down_iterates", "k1_up_iterates", "k1_down_noise", "k1_up_noise"]
    assert out[spreads].isna().all().all()
    assert out.loc[(0, "pooled"), ["alpha_iterates", "alpha_noise", "step_noise"]].tolist() == [
        1.5, 1.1, 20]  # fmt: skip
    assert bool(out.loc[(0, "pooled"), "enough"]) and not bool(out.loc[(0, "w"), "enough"])
    assert not bool(out.loc[(0, "w"), "enough_iterates"])
    assert out.loc[(0, "w"), "alpha_noise"] == 1.2
    assert np.isnan(out.loc[(1, "pooled"), "alpha_iterates"])
    assert out.loc[(1, "pooled"), "note"].startswith("run ended at step 3")
    assert out.loc[(1, "pooled"), "status"] == "converged"
    assert set(AXES) <= set(out.reset_index().columns)


def test_iterates_vs_noise_gives_the_k1_spread_of_both_pooled_estimates():
    """K = 10 steps × 4,000 parameters (iterates) = 40 minibatches × 1,000 parameters (noise)
    = 40,000: the robust members are K1 = 64, 128, 256, 512, 1024 (the powers of two nearest
    f·200). The iterates' sweep rises 0.1 per doubling up to K1 = 256 and is flat after it:
    members 1.3, 1.4, 1.5, 1.5, 1.5, so 0.2 below the median and 0 above it."""
    axes = {"dataset": "mnist", "arch": "fcn", "width": 4, "depth": 2, "batch_size": 50,
            "lr": 0.1, "loss": "cross_entropy", "seed": 0, "optimizer": "sgd"}  # fmt: skip
    common = {**axes, "scope": "pooled", "order": "natural", "step": 20, "note": ""}
    robust = {**common, "estimator": "mohammadi_robust", "alpha": 1.5, "ci_low": 1.45,
              "ci_high": 1.55, "n_values": 40000}  # fmt: skip
    k1s = [2**j for j in range(4, 13)]
    it = pd.DataFrame(
        [{**robust, "window": 10, "n_parameters": 4000, "drift_ratio": 0.1}]
        + [{**common, "estimator": "block_sweep", "k1": k1, "window": 10, "n_parameters": 4000,
            "alpha": 1.5 + 0.1 * min(0.0, np.log2(k1 / 256))} for k1 in k1s]
    )  # fmt: skip
    noise = pd.DataFrame(
        [{**robust, "split": "train", "noise": "gradient", "n_minibatches": 40,
          "n_parameters": 1000}]
        + [{**common, "estimator": "block_sweep", "k1": k1, "split": "train", "noise": "gradient",
            "n_minibatches": 40, "n_parameters": 1000, "alpha": 1.0 + 0.01 * np.log2(k1)}
           for k1 in k1s]
    )  # fmt: skip
    # the noise's sweeps at an earlier checkpoint and on the test split are not the ones paired
    others = noise[noise.estimator == "block_sweep"]
    noise = pd.concat(
        [
            noise,
            others.assign(step=5, alpha=9.0),
            others.assign(split="test", alpha=0.1 * others.k1),
        ]
    )
    runs = pd.DataFrame([{**axes, "status": "completed"}])
    row = iterates_vs_noise(it, noise, runs, "train", 10000).iloc[0]
    assert row.k1_down_iterates == pytest.approx(0.2) and row.k1_up_iterates == pytest.approx(0)
    assert row.k1_down_noise == pytest.approx(0.02) and row.k1_up_noise == pytest.approx(0.02)
    # robust members from other factors: K1 = 256 and 512 only, both on the flat part
    row = iterates_vs_noise(it, noise, runs, "train", 10000, k1_factors=(1, 2)).iloc[0]
    assert row.k1_down_iterates == pytest.approx(0) and row.k1_up_iterates == pytest.approx(0)
