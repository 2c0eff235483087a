"""Atomic writes and provenance records.

Every file the workflow produces is written to a temporary file in the same
folder and renamed into place, so a crash (or a full disk) never leaves a
truncated file that a later rule would read as complete.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _write_error(target: Path, err: OSError) -> OSError:
    """The OSError to raise when ``target`` cannot be written, saying what to do."""
    return OSError(
        err.errno,
        f"could not write {target}: {err.strerror or err}; "
        "free disk space or fix permissions on that folder, then rerun",
    )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched.
    Errors such as a full disk are re-raised with the target named.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
    except OSError as err:
        raise _write_error(target, err) from err
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp's 0600 would hide results from a group
        os.replace(tmp_path, target)
    except OSError as err:
        tmp_path.unlink(missing_ok=True)
        raise _write_error(target, err) from err
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_table(path: str | os.PathLike, df) -> None:
    """Write a pandas DataFrame as CSV (``.csv``) or Parquet (``.parquet``), atomically."""
    suffix = Path(path).suffix
    with atomic_path(path) as tmp:
        if suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        elif suffix == ".csv":
            df.to_csv(tmp, index=False)
        else:
            raise ValueError(
                f"unsupported table format {suffix!r} for {path}: use .csv or .parquet"
            )


USAGE_COLUMNS = ("s", "h:m:s", "max_rss", "io_in", "io_out", "mean_load", "cpu_time")
"""Columns of :func:`write_job_usage`: those of Snakemake's benchmark files that one reading
at a job's end gives exactly (seconds, MB, percent of one CPU, CPU seconds)."""


def _process_seconds(proc) -> float:
    """Wall-clock seconds since this process started. On Linux from its start tick in
    /proc/self/stat and the boot clock (psutil's create_time adds the boot time in whole
    seconds, up to 1 s off); elsewhere from psutil."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        start = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime
        return time.clock_gettime(time.CLOCK_BOOTTIME) - start
    except (OSError, AttributeError, ValueError, IndexError):
        return time.time() - proc.create_time()


def job_usage() -> dict[str, Any]:
    """This process's resource use so far, in :data:`USAGE_COLUMNS`: wall-clock seconds since
    it started, peak resident memory, bytes read and written on storage, and CPU seconds
    (user + system, its own and those of its finished children)."""
    import resource

    import psutil

    proc = psutil.Process()
    seconds = max(_process_seconds(proc), 1e-9)
    own, children = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    rss_unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KB on Linux
    try:
        io = proc.io_counters()
        io_in, io_out = io.read_bytes / 2**20, io.write_bytes / 2**20
    except (AttributeError, NotImplementedError, psutil.Error):  # macOS keeps no I/O counters
        io_in = io_out = float("nan")
    return {
        "s": round(seconds, 4),
        "h:m:s": str(datetime.timedelta(seconds=round(seconds))),
        "max_rss": round(max(own.ru_maxrss, children.ru_maxrss) * rss_unit / 2**20, 2),
        "io_in": round(io_in, 2),
        "io_out": round(io_out, 2),
        "mean_load": round(100 * cpu / seconds, 2),
        "cpu_time": round(cpu, 2),
    }


def write_job_usage(path: str | os.PathLike) -> None:
    """Write :func:`job_usage` to ``path`` as a one-row TSV, atomically: the record the per-run
    jobs keep in ``benchmarks/`` (one reading at the end instead of Snakemake's
    ``benchmark:``, which samples every running job's memory map twice a second from the
    workflow's own process)."""
    usage = job_usage()
    with atomic_path(path) as tmp:
        tmp.write_text(
            "\t".join(USAGE_COLUMNS) + "\n" + "\t".join(str(usage[c]) for c in USAGE_COLUMNS) + "\n"
        )


def save_torch(path: str | os.PathLike, obj: Any) -> None:
    """``torch.save`` tensors / dicts of tensors atomically (never whole modules)."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_torch(path: str | os.PathLike) -> Any:
    """Load a file written by :func:`save_torch` without unpickling arbitrary objects."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def code_version() -> str:
    """The git commit of the workflow (with ``-dirty`` when modified), or ``unknown``."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


#: Distributions whose versions a result can depend on, recorded in every run.json and data
#: manifest (``None`` where one is not installed; snakemake is absent outside a rule).
PROVENANCE_PACKAGES: tuple[str, ...] = (
    "torch",
    "torchvision",
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "matplotlib",
    "seaborn",
    "numba",
    "snakemake",
)


def package_version(name: str) -> str | None:
    """The installed version of distribution ``name`` (without importing it), or None."""
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def cuda_provenance(device: Any = None) -> dict[str, Any] | None:
    """CUDA, cuDNN and the GPU model when ``device`` is a CUDA device, else None.

    ``cuda`` is the CUDA version torch was built with, ``cudnn`` cuDNN's version as torch
    reports it (e.g. 90100 for 9.1.0), ``gpu`` the device's name, ``capability`` its compute
    capability and ``memory_mib`` its memory."""
    import torch

    if device is None or torch.device(device).type != "cuda":
        return None
    device = torch.device(device)
    props = torch.cuda.get_device_properties(device)
    return {
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "gpu": torch.cuda.get_device_name(device),
        "capability": f"{props.major}.{props.minor}",
        "memory_mib": int(props.total_memory // 2**20),
        "device_count": torch.cuda.device_count(),
    }


def provenance(device: Any = None) -> dict[str, Any]:
    """Versions of the code, Python and every package a result depends on, to store beside
    results; with a CUDA ``device``, also CUDA, cuDNN and the GPU model (``cuda``: None on the
    CPU)."""
    import numpy
    import torch

    versions = {name: package_version(name) for name in PROVENANCE_PACKAGES}
    # the imported modules' own versions (a local build's may differ from its metadata)
    versions["torch"], versions["numpy"] = torch.__version__, numpy.__version__
    return {
        "code_version": code_version(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        **versions,
        "cuda": cuda_provenance(device),
    }


def setup_logging(log_path: str | os.PathLike | None) -> None:
    """Send the library's log records (INFO and up) to ``log_path`` (or stderr)."""
    import logging

    kwargs = {"filename": str(log_path), "filemode": "w"} if log_path else {}
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        force=True,
        **kwargs,
    )

    def log_uncaught(kind, error, tb) -> None:
        """Errors go to the job's log too (on a cluster stderr is elsewhere)."""
        logging.getLogger("sgdtail").critical("%s", error, exc_info=(kind, error, tb))
        sys.__excepthook__(kind, error, tb)

    sys.excepthook = log_uncaught
