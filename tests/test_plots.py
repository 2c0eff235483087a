"""Tests of sgdtail.plots: every figure function on small synthetic tables (no Snakemake)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_claims import c2_runs, make_tables, run, widths

from sgdtail import plots as P
from sgdtail.grid import RunPoint
from sgdtail.validation import synthetic_block_sweep, validate_estimators


def outputs(tmp_path, name: str) -> tuple[str, str]:
    return str(tmp_path / f"{name}.pdf"), str(tmp_path / f"{name}.png")


def assert_drawn(pdf: str, png: str) -> None:
    for path in (pdf, png):
        with open(path, "rb") as fh:
            assert len(fh.read()) > 5000, path


def test_alpha_vs_width_draws_every_estimator_row(tmp_path):
    runs = widths(3) + [run(width=16 * 2**i, depth=3) for i in range(3)]
    summary, _, runs_table = make_tables(runs, alpha=lambda r, s: 1.2 + r["width"] / 1000)
    summary["zero_fraction"] = 0.2  # annotated on the reference row
    pdf, png = outputs(tmp_path, "alpha_vs_width")
    P.plot_alpha_vs_axis(summary, runs_table, "width", "depth", pdf, png, arch="fcn")
    assert_drawn(pdf, png)


def test_alpha_vs_batch_size_draws_one_line_per_network_with_seed_bands(tmp_path):
    runs = [{**r, "seed": s} for r in c2_runs() for s in (0, 1)]
    summary, _, runs_table = make_tables(
        runs, alpha=lambda r, s: 1.3 + 0.05 * r["seed"], status={0: "diverged"}
    )
    pdf, png = outputs(tmp_path, "alpha_vs_batch_size")
    P.plot_alpha_vs_axis(summary, runs_table, "batch_size", "network", pdf, png)
    assert_drawn(pdf, png)


def test_a_figure_without_its_sweep_fails_naming_the_runs_to_add(tmp_path):
    summary, _, runs_table = make_tables(widths(3))
    with pytest.raises(ValueError, match="add alexnet runs at two or more values of width"):
        P.plot_alpha_vs_axis(
            summary, runs_table, "width", "batch_size", *outputs(tmp_path, "f"), arch="alexnet"
        )
    with pytest.raises(ValueError, match="two or more values of lr"):
        P.plot_alpha_vs_axis(summary, runs_table, "lr", "network", *outputs(tmp_path, "g"))
    assert not (tmp_path / "f.pdf").exists()


def test_synthetic_norms_have_the_expected_size_and_spread():
    rng = np.random.default_rng(0)
    gauss, sas = P.synthetic_norms(dim=10_000, n_vectors=200, alpha=1.3, rng=rng, chunk=3000)
    assert gauss.shape == sas.shape == (200,)
    assert abs(np.median(gauss) / 100.0 - 1.0) < 0.01  # √M for unit-variance coordinates
    ratio = lambda x: np.quantile(x, 0.9) / np.quantile(x, 0.1)  # noqa: E731
    assert ratio(gauss) < 1.05 < 2.0 < ratio(sas)


def test_noise_norm_histogram(tmp_path):
    showcase = [run(width=16), run(width=32)]
    summary, _, _ = make_tables(showcase)
    rng = np.random.default_rng(1)
    norms = pd.concat(
        [
            pd.DataFrame(
                {
                    **r,
                    "step": 1000,
                    "split": split,
                    "minibatch": np.arange(60),
                    "norm": rng.lognormal(0, 0.3, 60),
                }
            )
            for r in showcase
            for split in ("train", "test")
        ],
        ignore_index=True,
    )
    pdf, png = outputs(tmp_path, "noise_norm_histogram")
    P.plot_noise_norm_histogram(norms, summary, showcase, pdf, png, max_synthetic_values=30_000)
    assert_drawn(pdf, png)


def test_estimator_validation(tmp_path):
    table = validate_estimators(alphas=[1.0, 1.5, 2.0], sizes=[2000, 5000], repeats=2)
    pdf, png = outputs(tmp_path, "estimator_validation")
    P.plot_estimator_validation(table, pdf, png)
    assert_drawn(pdf, png)
    with pytest.raises(ValueError, match="no 'sas' rows"):
        P.plot_estimator_validation(table[table.case != "sas"], pdf, png)


def test_alpha_and_accuracy_over_training(tmp_path):
    showcase = [run()]
    summary, _, _ = make_tables(showcase, alpha=lambda r, s: 1.8 - 0.1 * np.log1p(s))
    log = pd.DataFrame(
        {
            "step": np.arange(1, 1001),
            "lr": 0.1,
            "loss": 1.0,
            "accuracy": np.linspace(0.1, 0.95, 1000),
        }
    )
    pdf, png = outputs(tmp_path, "alpha_and_accuracy_over_training")
    P.plot_alpha_and_accuracy_over_training(summary, [log], showcase, pdf, png)
    assert_drawn(pdf, png)


def test_alpha_vs_block_size(tmp_path):
    showcase = [run()]
    summary, estimates, _ = make_tables(showcase, sweep=lambda r, s, k1: 1.1 + 0.1 * np.log10(k1))
    estimates["n_values"] = 100_000
    last = summary[(summary.step == 1000) & (summary.split == "train")]
    extra = pd.DataFrame(
        [
            {
                **run(),
                "step": 1000,
                "split": "train",
                "estimator": "mohammadi_reference",
                "scope": "pooled",
                "order": "natural",
                "k1": 250,
                "alpha": float(last.alpha_reference.iloc[0]),
                "ci_low": np.nan,
                "ci_high": np.nan,
                "n_values": 100_000,
            },
            {
                **run(),
                "step": 1000,
                "split": "train",
                "estimator": "mohammadi_robust",
                "scope": "pooled",
                "order": "natural",
                "k1": 316,
                "alpha": 1.3,
                "ci_low": 1.25,
                "ci_high": 1.36,
                "n_values": 100_000,
            },
        ]
    )
    estimates = pd.concat([estimates, extra], ignore_index=True)
    synthetic = synthetic_block_sweep(20_000, 1.5, [10, 30, 100, 300, 1000])
    pdf, png = outputs(tmp_path, "alpha_vs_block_size")
    P.plot_alpha_vs_block_size(estimates, synthetic, showcase, pdf, png)
    assert_drawn(pdf, png)


def test_runtime_by_grid_axis_from_benchmark_files(tmp_path):
    runs = widths(3)
    _, _, runs_table = make_tables(runs)
    paths = []
    for rule, seconds in (("train_sgd", 10.0), ("measure_gradient_noise", 30.0)):
        for r in runs:
            point = RunPoint(**r)
            path = tmp_path / "benchmarks" / rule / f"{point.path}.tsv"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(
                f"s\th:m:s\tmax_rss\tcpu_time\n{seconds * r['width'] / 16}\t0:00:10\t800.5\t9.0\n"
            )
            paths.append(path)
    bench = P.read_benchmarks(paths)
    assert set(bench.rule) == {"train_sgd", "measure_gradient_noise"}
    assert sorted(bench[bench.rule == "train_sgd"].s) == [10.0, 20.0, 40.0]
    assert bench.width.dtype.kind == "i" and bench.lr.iloc[0] == 0.1
    pdf, png = outputs(tmp_path, "runtime_by_grid_axis")
    P.plot_runtime_by_grid_axis(bench, runs_table, pdf, png)
    assert_drawn(pdf, png)
    with pytest.raises(ValueError, match="benchmarks/<rule>"):
        P.read_benchmarks([tmp_path / "benchmarks" / "train_sgd.tsv"])


def test_figure_aggregate_and_claims_jobs_do_not_import_torch():
    """Importing torch costs ~1.7 s of CPU per job; a dozen figure, aggregation, claims,
    validation and simulation jobs per grid do not need it (issue 7: jobs side by side)."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys; sys.path.insert(0, 'scripts')\n"
        "import sgdtail.plots, sgdtail.aggregate, sgdtail.claims, sgdtail.validation\n"
        "import sgdtail.sharpness, sgdtail.dynamics, sgdtail.io, sgdtail.grid, sgdtail.figures\n"
        "import sgdtail.dynamics_claims, sgdtail.plots_dynamics, sgdtail.verdicts\n"
        "import sgdtail.plots_optimizers, sgdtail.optimizer_families, sgdtail.plots_eta_over_b\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_sweep_figure_leaves_out_untrained_runs_and_small_samples_and_says_so(
    tmp_path, monkeypatch
):
    titles = []

    def capture(fig, pdf, png):
        titles.append(fig._suptitle.get_text())
        P.plt.close(fig)

    monkeypatch.setattr(P, "save_figure", capture)
    few = {"pooled_enough": True, "per_coordinate_enough": False}
    summary, _, runs_table = make_tables(
        widths(4), status={1: "not_trained", 3: "diverged"}, flags=lambda r, s: few
    )
    P.plot_alpha_vs_axis(summary, runs_table, "width", "depth", *outputs(tmp_path, "w"), arch="fcn")
    title = " ".join(titles[0].split())  # the title is wrapped
    assert "2 runs drawn" in title, title
    assert "2 excluded from every statistic: 1 diverged" in title, title
    assert "1 did not train (final training accuracy 12%)" in title, title
    assert "per-coordinate α̂ left out of 2 measurement(s) (too few minibatches: P = 20)" in title
