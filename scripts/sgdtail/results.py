"""The results page: each figure and claim, what the papers report beside what was measured.

:data:`FINDINGS` holds what the papers report (text, where, and the direction
it implies); :func:`results_markdown` sets beside each one the number this run
of the workflow computed and whether they agree:

* a trend (α̂ against width, depth, filters, batch size or learning rate):
  the change of α̂ per doubling of the axis (:func:`sgdtail.claims.sweep_slopes`,
  median over the sweeps, interval ± z median standard errors), with the
  papers' estimator (pooled reference) and with the robust one; *agrees* when
  the interval lies on the papers' side of 0, *disagrees* when it lies on the
  other side, *no clear trend* otherwise;
* a level (α̂ well below 2): the share of runs whose α̂ (robust upper bound)
  is below ``claims.c1_alpha_max``;
* a claim: the claims table's primary verdict (supported → agrees, not
  supported → disagrees, inconclusive → undecided) and whether it survives
  every estimator.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from sgdtail.claims import (
    CLAIM_TEXT,
    ITERATES,
    Thresholds,
    share_verdict,
    sweep_rows,
    sweep_slopes,
)
from sgdtail.verdicts import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED

PAPER_2019 = "Şimşekli, Sagun & Gürbüzbalaban (ICML 2019)"
REVIEW = "Şimşekli et al. (2019 review)"


@dataclasses.dataclass(frozen=True)
class Finding:
    """One row of the results page."""

    key: str  # figure target or claim id
    topic: str
    papers: str  # what the papers report, in words
    source: str
    expect: str  # "falls", "rises", "below", "none", "validation", or "claim" (see CLAIM_OF)
    axis: str = ""  # grid axis of a trend
    arch: str = ""  # restrict to one architecture ("" = all)


FINDINGS: list[Finding] = [
    Finding(
        "alpha_vs_width",
        "α̂ against FCN width (MNIST)",
        "heavier tails (smaller α̂) in wider networks on MNIST; direction only, no number "
        "in the text",
        f"{PAPER_2019}, §4, figure of α̂ vs width",
        "falls",
        "width",
        "fcn",
    ),
    Finding(
        "alpha_vs_depth",
        "α̂ against FCN depth (MNIST)",
        "heavier tails (smaller α̂) in deeper networks; direction only",
        f"{PAPER_2019}, §4",
        "falls",
        "depth",
        "fcn",
    ),
    Finding(
        "alpha_vs_filters",
        "AlexNet: α̂ level and against filters ch (CIFAR10)",
        "α̂ well below 2 for AlexNet in every setting; direction only",
        f"{PAPER_2019}, §4, AlexNet figures",
        "below",
        "",
        "alexnet",
    ),
    Finding(
        "alpha_vs_batch_size",
        "α̂ against batch size",
        "a small effect of the batch size on α̂, smaller than that of the network size (claim C2)",
        f"{PAPER_2019}, §4; {REVIEW}",
        "claim",
        "batch_size",
    ),
    Finding(
        "alpha_vs_learning_rate",
        "α̂ against learning rate",
        "not reported for the gradient noise in 2019; Gürbüzbalaban, Şimşekli & Zhu (ICML "
        "2021) report heavier-tailed iterates for larger η/b (a different quantity)",
        "ICML 2021",
        "none",
        "lr",
    ),
    Finding(
        "noise_norm_histogram",
        "noise norms against Gaussian and SαS vectors",
        "the norms of the measured noise look like those of SαS, not Gaussian, vectors "
        "(AlexNet, CIFAR10)",
        f"{PAPER_2019}, figure 1",
        "claim",
    ),
    Finding(
        "estimator_validation",
        "the estimator on synthetic data",
        "the estimator recovers α on synthetic SαS data",
        f"{PAPER_2019}, §4",
        "validation",
    ),
    Finding(
        "alpha_vs_eta_over_b",
        "trained networks: α̂ against η/b",
        "heavier tails for larger η/b, with η/b rather than η or b alone setting the tail; "
        "shown for the SGD iterates of fully connected networks, measured here on the "
        "gradient noise (C7a; C7b in the claims table)",
        "Gürbüzbalaban, Şimşekli & Zhu (ICML 2021); " + REVIEW,
        "claim",
    ),
    Finding(
        "sharpness_vs_eta_over_b",
        "trained networks: sharpness of the end point against η/b",
        "larger η/b leads SGD to wider (flatter) minima, the classical Brownian-theory result "
        "the review builds on (C7c)",
        REVIEW,
        "claim",
    ),
    Finding(
        "alpha_vs_eta_over_b_linear",
        "SGD on Gaussian linear regression: the iterates' α against η/b",
        "the stationary iterates are heavy-tailed; α decreases in the step η, increases in the "
        "batch size b at fixed η, and decreases in the dimension d (a theorem for this model); "
        "compared here: α along η/b at fixed b (C7a) and at the same η/b across b (C7b)",
        "Gürbüzbalaban, Şimşekli & Zhu (ICML 2021)",
        "claim",
    ),
]
"""What the papers report, per figure (the claims C1-C7 follow from the claims table)."""

AGREEMENT = {SUPPORTED: "agrees", NOT_SUPPORTED: "disagrees", INCONCLUSIVE: "undecided"}

CLAIM_OF = {
    "alpha_vs_batch_size": "C2",
    "noise_norm_histogram": "C5 (SGD)",
    "alpha_vs_eta_over_b": "C7a",
    "sharpness_vs_eta_over_b": "C7c",
    "alpha_vs_eta_over_b_linear": "C7a (linear regression)",
}
"""Figures whose comparison with the papers is a claim of the claims table."""


def trend(last: pd.DataFrame, axis: str, z: float) -> dict[str, float]:
    """Median change of α̂ per doubling of ``axis`` over its sweeps, ± z median standard errors.

    ``last``: one row per run (columns: the grid axes, alpha, se). NaN when no sweep.
    """
    sweeps = sweep_slopes(last, [axis])
    if sweeps.empty:
        return {"slope": math.nan, "low": math.nan, "high": math.nan, "sweeps": 0, "runs": 0}
    slope, se = float(sweeps["slope"].median()), float(sweeps["se"].median())
    return {
        "slope": slope,
        "low": slope - z * se,
        "high": slope + z * se,
        "sweeps": len(sweeps),
        "runs": int(sweeps["n_runs"].sum()),
    }


def trend_agreement(t: Mapping[str, float], expect: str) -> str:
    """``agrees`` when the interval lies on the expected side of 0 ("falls": below, "rises":
    above), ``disagrees`` when on the other side, else ``no clear trend``."""
    if not np.isfinite(t["slope"]):
        return "not measured (no sweep in the grid)"
    sign = -1.0 if expect == "falls" else 1.0
    lo, hi = sorted((sign * t["low"], sign * t["high"]))
    if lo > 0:
        return "agrees"
    if hi < 0:
        return "disagrees"
    return "no clear trend"


def last_alphas(m: pd.DataFrame, estimator: str, arch: str = "") -> pd.DataFrame:
    """Each usable run's last-checkpoint α̂ of ``estimator`` (measurements with enough
    samples), from :func:`sgdtail.claims.alpha_measurements`."""
    sel = m[(m["estimator"] == estimator) & m["last"] & m["enough"] & np.isfinite(m["alpha"])]
    return sel[sel["arch"] == arch] if arch else sel


def _trend_text(t: Mapping[str, float], label: str) -> str:
    if not np.isfinite(t["slope"]):
        return f"{label}: no sweep"
    return (
        f"{label}: {t['slope']:+.3f} [{t['low']:+.3f}, {t['high']:+.3f}] per doubling "
        f"({t['sweeps']} sweep(s), {t['runs']} runs)"
    )


def _range_text(last: pd.DataFrame) -> str:
    if last.empty:
        return "no runs"
    a = last["alpha"]
    return f"α̂ {a.min():.2f}-{a.max():.2f} (median {a.median():.2f})"


def trend_row(f: Finding, m: pd.DataFrame, th: Thresholds) -> dict[str, str]:
    """A trend finding: judged with the papers' estimator (reference), the robust one beside."""
    ref, rob = last_alphas(m, "reference", f.arch), last_alphas(m, "robust", f.arch)
    t_ref, t_rob = trend(ref, f.axis, th.z), trend(rob, f.axis, th.z)
    measured = (
        f"{_trend_text(t_ref, 'reference (the papers’ estimator)')}; "
        f"{_trend_text(t_rob, 'robust')}; {_range_text(sweep_rows(ref, f.axis))} "
        f"(reference, runs in the sweeps)"
    )
    if f.expect == "none":
        return {"measured": measured, "agreement": "— (the papers give no direction)"}
    agree, agree_rob = trend_agreement(t_ref, f.expect), trend_agreement(t_rob, f.expect)
    if agree_rob != agree:
        agree += f" (robust estimator: {agree_rob})"
    return {"measured": measured, "agreement": agree}


def level_row(f: Finding, m: pd.DataFrame, th: Thresholds) -> dict[str, str]:
    """ "α̂ well below 2", judged by C1's rule on the finding's runs: a run is below when its
    robust interval lies below c1_alpha_max, at or above when it lies at or above it, else
    undecided (:func:`sgdtail.claims.share_verdict`, min_runs included)."""
    rob, ref = last_alphas(m, "robust", f.arch), last_alphas(m, "reference", f.arch)
    if rob.empty:
        return {"measured": "no runs", "agreement": "not measured (no such runs in the grid)"}
    below = int((rob["high"] < th.c1_alpha_max).sum())
    above = int((rob["low"] >= th.c1_alpha_max).sum())
    verdict, reason = share_verdict(below, above, len(rob) - below - above, th)[3:]
    t = trend(ref, "width", th.z)
    measured = (
        f"{below} of {len(rob)} runs with robust α̂ interval below {th.c1_alpha_max}, {above} "
        f"at or above; robust {_range_text(rob)}; reference {_range_text(ref)}; "
        f"{_trend_text(t, 'reference against ch')}"
    )
    agreement = AGREEMENT[verdict] + (f" ({reason})" if reason else "")
    return {"measured": measured, "agreement": agreement}


def claim_row(claim: str, claims: pd.DataFrame) -> dict[str, str]:
    """The claims table's primary row of ``claim``, with its verdict as agreement."""
    rows = claims[(claims["claim"] == claim) & claims["estimator"].isin(["robust", "n/a"])]
    if rows.empty:
        return {"measured": "not in the claims table", "agreement": "not measured"}
    row = rows.iloc[0]
    value = f"{row['value']:.3g}" if np.isfinite(row["value"]) else "n/a"
    if not (np.isnan(row["ci_low"]) or np.isnan(row["ci_high"])):
        value += f" [{row['ci_low']:.3g}, {row['ci_high']:.3g}]"
    reason = f" ({row['reason']})" if isinstance(row["reason"], str) and row["reason"] else ""
    agreement = AGREEMENT.get(row["verdict"], row["verdict"]) + reason
    others = claims[(claims["claim"] == claim) & (claims["estimator"] != row["estimator"])]
    others = others[others["estimator"] != ITERATES]  # another quantity, its own column
    differ = sorted(others.loc[others["verdict"] != row["verdict"], "estimator"])
    if differ:
        agreement += f"; other estimators differ: {', '.join(differ)}"
    return {"measured": f"{row['statistic']}: {value}; {row['verdict']}", "agreement": agreement}


def validation_row(validation: pd.DataFrame, tolerance: float) -> dict[str, str]:
    """Largest |α̂ − α| of the robust estimator on SαS data at the largest sample size."""
    sas = validation[
        (validation["case"] == "sas") & (validation["estimator"] == "mohammadi_robust")
    ]
    if sas.empty:
        return {"measured": "no validation rows", "agreement": "not measured"}
    n = int(sas["size"].max())
    top = sas[sas["size"] == n]
    err = float((top["alpha_hat"] - top["true_alpha"]).abs().max())
    alphas = f"{top['true_alpha'].min():g}-{top['true_alpha'].max():g}"
    return {
        "measured": f"robust estimator, n = {n:,}, α = {alphas}: largest |α̂ − α| = {err:.3f}",
        "agreement": "agrees" if err <= tolerance else f"disagrees (> {tolerance})",
    }


def finding_row(
    f: Finding,
    m: pd.DataFrame,
    claims: pd.DataFrame,
    validation: pd.DataFrame,
    th: Thresholds,
    tolerance: float,
) -> dict[str, str]:
    """The measured side of one finding (see the module docstring)."""
    if f.key in CLAIM_OF:
        row = claim_row(CLAIM_OF[f.key], claims)
        if f.axis:
            t = trend(last_alphas(m, "reference", f.arch), f.axis, th.z)
            row["measured"] += "; " + _trend_text(t, "reference")
        return row
    if f.expect == "below":
        return level_row(f, m, th)
    if f.expect == "validation":
        return validation_row(validation, tolerance)
    return trend_row(f, m, th)


def results_table(
    m: pd.DataFrame,
    claims: pd.DataFrame,
    validation: pd.DataFrame,
    th: Thresholds,
    tolerance: float,
) -> pd.DataFrame:
    """One row per figure of :data:`FINDINGS` and per claim of the claims table."""
    rows = []
    for f in FINDINGS:
        rows.append(
            {
                "figure or claim": f"`{f.key}`: {f.topic}",
                "the papers report": f"{f.papers} ({f.source})",
                **finding_row(f, m, claims, validation, th, tolerance),
            }
        )
    for claim in sorted(claims["claim"].unique()):
        text = claims.loc[claims["claim"] == claim, "statistic"].iloc[0]
        said = CLAIM_TEXT.get(claim, "")
        rows.append(
            {
                "figure or claim": f"{claim}",
                "the papers report": f"{said} ({REVIEW}); tested here as: {text}",
                **claim_row(claim, claims),
            }
        )
    return pd.DataFrame(rows).rename(columns={"measured": "measured here", "agreement": "agree?"})


def results_markdown(table: pd.DataFrame, grid: str, runs_note: str) -> str:
    """The results page: how it was made, then the table."""
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "---|" * len(table.columns)
    body = [
        "| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |"
        for row in table.itertuples(index=False)
    ]
    return "\n".join(
        [
            "# Results beside the papers",
            "",
            f"Computed by the workflow on grid `{grid}` "
            f"(`snakemake --cores N --config grid={grid}`, see `results/tables/runs.csv` "
            "for every run's settings). " + runs_note,
            "",
            "Trends are the change of α̂ per doubling of the axis (least-squares slope against log2 "
            "of the value, every seed a point, median over the sweeps, interval ± z standard "
            "errors), judged with the papers' estimator (pooled reference) and, beside it, the "
            "robust one. Claims: the claims table's primary (robust) verdict; supported = agrees, "
            "not supported = disagrees, inconclusive = undecided.",
            "",
            header,
            rule,
            *body,
            "",
        ]
    )
