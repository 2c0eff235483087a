"""The SLURM executor's job-status query, checked before the first job is submitted.

The executor plugin reads job states with ``sacct`` whenever the command exists, but on a
cluster without job accounting (``AccountingStorageType=accounting_storage/none``) sacct
answers nothing and Snakemake waits forever for jobs that finished long ago. ``squeue``
works instead as long as finished jobs stay in its list long enough (``MinJobAge`` of at
least :data:`MIN_JOB_AGE_S`, the plugin's own rule).
"""

from __future__ import annotations

import re
import subprocess

__all__ = ["MIN_JOB_AGE_S", "choose_status_command", "read_slurm_config"]

#: Shortest MinJobAge (seconds) at which squeue still lists a finished job when the
#: executor plugin next looks (its own threshold).
MIN_JOB_AGE_S: int = 120


def read_slurm_config(timeout_s: float = 20.0) -> dict[str, str]:
    """``scontrol show config`` as key -> value (empty when scontrol is missing or fails)."""
    try:
        res = subprocess.run(
            ["scontrol", "show", "config"], capture_output=True, text=True, timeout=timeout_s
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    pairs = (line.split("=", 1) for line in res.stdout.splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs} if res.returncode == 0 else {}


def _seconds(value: str | None) -> int | None:
    match = re.match(r"\s*(\d+)", value or "")
    return int(match[1]) if match else None


def choose_status_command(configured: str | None, config: dict[str, str]) -> tuple[str | None, str]:
    """The status command to use and a one-line note for the log (empty when nothing changes).

    ``configured`` is the executor's ``status_command``; ``config`` is
    :func:`read_slurm_config`. Without job accounting, ``sacct`` is replaced by ``squeue``
    when MinJobAge allows it; otherwise ValueError with a one-line message saying what to
    change. Anything else (accounting on, or the configuration unreadable) is left alone.
    """
    accounting = config.get("AccountingStorageType", "")
    min_age = _seconds(config.get("MinJobAge"))
    no_accounting = accounting.endswith("/none")
    if not no_accounting or configured not in ("sacct", "squeue"):
        return configured, ""
    if min_age is not None and min_age < MIN_JOB_AGE_S:
        raise ValueError(
            f"SLURM has no job accounting (AccountingStorageType={accounting}) and MinJobAge is "
            f"{min_age} s, so neither sacct nor squeue can tell when jobs finish: set MinJobAge "
            f">= {MIN_JOB_AGE_S} in slurm.conf, or enable accounting"
        )
    if configured == "squeue":
        return configured, ""
    return "squeue", (
        f"SLURM has no job accounting (AccountingStorageType={accounting}): job states are "
        f"read with squeue instead of sacct (MinJobAge {min_age} s)"
    )
