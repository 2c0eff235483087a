"""The SLURM executor's job-status query, checked before the first job is submitted.

The executor plugin reads job states with ``sacct`` whenever the command exists, but on a
cluster without job accounting (``AccountingStorageType=accounting_storage/none``) sacct
answers nothing and Snakemake waits forever for jobs that finished long ago. ``squeue``
works instead as long as finished jobs stay in its list long enough: the plugin itself goes
back to sacct unless ``MinJobAge`` is known and at least three times its
``init_seconds_before_status_checks``, and a job that leaves squeue's list between two status
checks (up to 180 s apart) is never seen to finish (:func:`min_job_age_needed`).
"""

from __future__ import annotations

import re
import subprocess

__all__ = [
    "DEFAULT_INIT_SECONDS",
    "choose_status_command",
    "min_job_age_needed",
    "read_slurm_config",
]

#: The executor plugin's default ``init_seconds_before_status_checks``.
DEFAULT_INIT_SECONDS: int = 40


#: The executor plugin's longest wait between two status checks (``max_sleep_time``): a
#: finished job must stay in squeue's list longer than that, or it is never seen to finish.
PLUGIN_MAX_WAIT_S: int = 180
#: Margin on top of that wait.
MARGIN_S: int = 60


def min_job_age_needed(init_seconds: int | None) -> int:
    """Shortest MinJobAge (seconds) at which squeue can follow every job: at least three
    times the plugin's first wait before a status check (below that the plugin itself goes
    back to sacct) and longer than its longest wait between two checks, with a margin."""
    init = DEFAULT_INIT_SECONDS if init_seconds is None else int(init_seconds)
    return max(3 * init, max(init, PLUGIN_MAX_WAIT_S) + MARGIN_S)


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
    """A slurm.conf duration such as "300 sec", "1h" or "600" in seconds (None if unreadable),
    read as the executor plugin reads MinJobAge."""
    match = re.match(r"\s*(\d+)\s*([a-zA-Z]*)", value or "")
    if not match:
        return None
    return int(match[1]) * (3600 if match[2].lower() in ("h", "hour", "hours") else 1)


def choose_status_command(
    configured: str | None, config: dict[str, str], init_seconds: int | None = None
) -> tuple[str | None, str]:
    """The status command to use and a one-line note for the log (empty when nothing changes).

    ``configured`` is the executor's ``status_command``; ``config`` is
    :func:`read_slurm_config`; ``init_seconds`` the executor's
    ``init_seconds_before_status_checks``. Without job accounting, ``sacct`` is replaced by
    ``squeue`` when MinJobAge is at least :func:`min_job_age_needed`; when it is shorter or
    unreadable (the plugin would then go back to sacct and wait forever), ValueError with a
    one-line message saying what to change. Anything else (accounting on, or the
    configuration unreadable) is left alone.
    """
    accounting = config.get("AccountingStorageType", "")
    if not accounting.endswith("/none") or configured not in ("sacct", "squeue"):
        return configured, ""
    min_age, needed = _seconds(config.get("MinJobAge")), min_job_age_needed(init_seconds)
    if min_age is None or min_age < needed:
        shown = "unreadable" if min_age is None else f"{min_age} s"
        raise ValueError(
            f"SLURM has no job accounting (AccountingStorageType={accounting}) and MinJobAge is "
            f"{shown}, so neither sacct nor squeue can tell when jobs finish: set MinJobAge "
            f">= {needed} in slurm.conf (longer than the executor's longest wait between "
            "status checks), or enable accounting"
        )
    if configured == "squeue":
        return configured, ""
    return "squeue", (
        f"SLURM has no job accounting (AccountingStorageType={accounting}): job states are "
        f"read with squeue instead of sacct (MinJobAge {min_age} s)"
    )
