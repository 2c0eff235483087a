"""Datasets: fetch (download / local folder / .npz), prepare a canonical file, load it.

Three stages, each a plain function the Snakemake rules call:

``fetch_dataset(name, source, path, manifest_path)``  (rule ``download_dataset``)
    Makes the raw data available and checks it, then writes a JSON manifest naming every
    file that will be read, with its size and SHA-256.

    * ``download``: torchvision's own download code (``MNIST`` / ``CIFAR10`` / ``CIFAR100``
      with ``download=True``), which verifies the MD5 of every archive, and for CIFAR the MD5
      of every extracted batch file. Nothing is downloaded when the files are already there.
    * ``folder``: ``path`` already holds torchvision's layout; opened with ``download=False``.
      Missing files are named; CIFAR files are MD5-checked against torchvision's list; the
      uncompressed MNIST files (torchvision only knows the MD5 of the ``.gz``) are checked
      structurally (IDX magic number, dimensions, exact file size, labels 0..9).
    * ``npz``: a ``.npz`` with ``x_train, y_train, x_test, y_test`` (Keras' convention:
      uint8 images N×H×W or N×H×W×C, integer labels), loaded with ``allow_pickle=False``.

``prepare_dataset(name, manifest_path, out_path, mean, std)``  (rule ``prepare_dataset``)
    Re-checks the SHA-256 of the files in the manifest, reads the whole dataset at once
    (``ds.data`` / ``ds.targets``: no per-sample transforms, no DataLoader) and saves the
    canonical tensors (uint8 N×C×H×W, int64 labels, mean, std) with a content hash.

``load_prepared(path, device)``
    Loads that file (``weights_only=True``), checks it, and normalises the images once,
    ``(x / 255 - mean) / std`` in float32, on the requested device.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import sys
import urllib.error
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sgdtail.io import load_torch, provenance, save_torch, write_json

__all__ = [
    "DATASETS",
    "DEFAULT_NORMALISATION",
    "MANIFEST_VERSION",
    "PREPARED_KEYS",
    "PREPARED_VERSION",
    "SOURCES",
    "DatasetSpec",
    "PreparedData",
    "SourceChangedError",
    "content_hash",
    "fetch_dataset",
    "load_prepared",
    "prepare_dataset",
]


# --------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class DatasetSpec:
    """What the workflow knows about one dataset."""

    name: str
    torchvision_class: str  # attribute of torchvision.datasets
    channels: int
    height: int
    width: int
    num_classes: int
    n_train: int  # sizes of the official splits (a folder / .npz may hold a subset)
    n_test: int
    folder: str  # torchvision's sub-folder of ``root``

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W)."""
        return (self.channels, self.height, self.width)

    def tv_class(self) -> Any:
        """The torchvision dataset class (imported lazily)."""
        import torchvision.datasets

        return getattr(torchvision.datasets, self.torchvision_class)


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec("mnist", "MNIST", 1, 28, 28, 10, 60000, 10000, "MNIST/raw"),
    "cifar10": DatasetSpec(
        "cifar10", "CIFAR10", 3, 32, 32, 10, 50000, 10000, "cifar-10-batches-py"
    ),
    "cifar100": DatasetSpec(
        "cifar100", "CIFAR100", 3, 32, 32, 100, 50000, 10000, "cifar-100-python"
    ),
}

#: Per-channel mean / std of pixels in [0, 1] (the values of the 2019 code); the workflow
#: takes them from config.
DEFAULT_NORMALISATION: dict[str, dict[str, tuple[float, ...]]] = {
    "mnist": {"mean": (0.1307,), "std": (0.3081,)},
    "cifar10": {"mean": (0.491, 0.482, 0.447), "std": (0.247, 0.243, 0.262)},
    "cifar100": {"mean": (0.5071, 0.4867, 0.4408), "std": (0.2675, 0.2565, 0.2761)},
}

SOURCES = ("download", "folder", "npz")
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
MANIFEST_VERSION = 1
PREPARED_VERSION = 1
PREPARED_KEYS = (
    "x_train",
    "y_train",
    "x_test",
    "y_test",
    "mean",
    "std",
    "num_classes",
    "content_hash",
    "dataset",
    "format_version",
)

# MD5 of the four *uncompressed* official MNIST files (torchvision only lists those of the
# .gz archives). Recorded in the manifest as ``official`` so a subset or a modified copy shows.
MNIST_OFFICIAL_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension

# What a failed download raises (torchvision wraps some of these in RuntimeError itself).
_NETWORK_ERRORS = (
    urllib.error.URLError,
    http.client.HTTPException,
    socket.timeout,
    ConnectionError,
    OSError,
    RuntimeError,
)


class SourceChangedError(RuntimeError):
    """A raw file changed (or vanished) since ``fetch_dataset`` wrote the manifest."""


def get_spec(name: str) -> DatasetSpec:
    """The registry entry for ``name``; a clear error for an unknown dataset."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(
            f"unknown dataset {name!r}: choose one of {', '.join(sorted(DATASETS))}"
        ) from None


# --------------------------------------------------------------------------- file hashing
def _hash_file(path: Path, chunk: int = 1 << 20) -> dict[str, Any]:
    """Size, SHA-256 and MD5 of a file, in one pass."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            sha.update(block)
            md5.update(block)
    return {"size": path.stat().st_size, "sha256": sha.hexdigest(), "md5": md5.hexdigest()}


def _file_entry(path: Path, root: Path) -> dict[str, Any]:
    """Manifest entry; ``relpath`` is relative to the dataset root (the file name for .npz)."""
    relpath = path.name if path == root else path.relative_to(root).as_posix()
    return {"path": str(path), "relpath": relpath, **_hash_file(path)}


# --------------------------------------------------------------------------- torchvision files
def _expected_files(spec: DatasetSpec) -> list[tuple[str, str | None]]:
    """(path relative to root, torchvision's MD5 or None) of every file torchvision reads."""
    cls = spec.tv_class()
    if spec.name == "mnist":
        return [
            (f"{spec.folder}/{os.path.splitext(os.path.basename(url))[0]}", None)
            for url, _ in cls.resources
        ]
    files = [(f"{cls.base_folder}/{fn}", md5) for fn, md5 in cls.train_list + cls.test_list]
    files.append((f"{cls.base_folder}/{cls.meta['filename']}", cls.meta["md5"]))
    return files


def _layout_hint(spec: DatasetSpec, root: Path) -> str:
    """Guess what went wrong when torchvision's files are not where expected."""
    first = Path(_expected_files(spec)[0][0])  # e.g. MNIST/raw/train-images-idx3-ubyte
    # the user pointed at a folder inside torchvision's layout: walk up to the right root
    for depth in range(1, len(first.parts)):
        if (root / Path(*first.parts[depth:])).is_file():
            return (
                f"path points inside torchvision's layout: set it to {root.parents[depth - 1]} "
                f"(the folder that contains {first.parts[0]}/)"
            )
    if spec.name == "mnist":
        if (root / f"{first}.gz").is_file():
            return f"only the .gz archives are there: gunzip them in {root / spec.folder}"
    elif (root / spec.tv_class().filename).is_file():
        return f"the archive is there but not extracted: extract {spec.tv_class().filename}"
    return f"path must be the folder that contains {first.parts[0]}/ (torchvision's layout)"


def _check_files_present(spec: DatasetSpec, root: Path) -> None:
    missing = [rel for rel, _ in _expected_files(spec) if not (root / rel).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{spec.name}: missing file(s) in {root}: {', '.join(missing)}; "
            f"{_layout_hint(spec, root)}. Use source: download to let torchvision fetch them."
        )


def _check_cifar_md5(spec: DatasetSpec, root: Path) -> None:
    from torchvision.datasets.utils import check_integrity

    for rel, md5 in _expected_files(spec):
        if not check_integrity(str(root / rel), md5):
            raise ValueError(
                f"{spec.name}: {root / rel} is corrupted: its MD5 differs from torchvision's "
                f"({md5}); delete {root / spec.folder} and use source: download, or copy an "
                "intact cifar archive there and extract it"
            )


def _read_idx_header(path: Path, magic: int, ndim: int) -> list[int]:
    size = path.stat().st_size
    header = 4 * (ndim + 1)
    if size < header:
        raise ValueError(
            f"{path}: truncated IDX file ({size} bytes, the header alone is {header}); "
            "copy the file again"
        )
    with open(path, "rb") as fh:
        raw = fh.read(header)
    if raw[:2] == b"\x1f\x8b":
        raise ValueError(f"{path}: is gzip-compressed; gunzip it (torchvision reads it unzipped)")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise ValueError(
            f"{path}: IDX magic number is {found}, expected {magic} "
            f"({'images' if magic == IDX_IMAGES_MAGIC else 'labels'}, unsigned bytes); "
            "not an MNIST file of this kind"
        )
    dims = [int.from_bytes(raw[4 * (i + 1) : 4 * (i + 2)], "big") for i in range(ndim)]
    expected = header + int(np.prod(dims, dtype=np.int64))
    if size != expected:
        what = "truncated" if size < expected else "has trailing bytes"
        raise ValueError(
            f"{path}: {what}: {size} bytes but the header {dims} implies {expected}; "
            "copy the file again (or download it with source: download)"
        )
    return dims


def _check_mnist_files(spec: DatasetSpec, root: Path) -> dict[str, int]:
    """Structural checks of the four uncompressed IDX files; returns split sizes."""
    raw = root / spec.folder
    counts = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = raw / f"{prefix}-images-idx3-ubyte"
        labels = raw / f"{prefix}-labels-idx1-ubyte"
        n, h, w = _read_idx_header(images, IDX_IMAGES_MAGIC, 3)
        if (h, w) != (spec.height, spec.width):
            raise ValueError(
                f"{images}: images are {h}×{w}, MNIST's are {spec.height}×{spec.width}"
            )
        (m,) = _read_idx_header(labels, IDX_LABELS_MAGIC, 1)
        if n != m:
            raise ValueError(f"{images} holds {n} images but {labels} holds {m} labels")
        if n == 0:
            raise ValueError(f"{images}: holds no images")
        y = np.fromfile(labels, dtype=np.uint8, offset=8)
        if int(y.max()) >= spec.num_classes:
            raise ValueError(
                f"{labels}: label {int(y.max())} out of range 0..{spec.num_classes - 1}"
            )
        counts[split] = n
    return counts


def _check_mnist_legacy(spec: DatasetSpec, root: Path) -> None:
    """torchvision prefers MNIST/processed/{training,test}.pt over raw files when present."""
    if spec.name != "mnist":
        return
    processed = root / "MNIST" / "processed"
    if (processed / "training.pt").is_file() and (processed / "test.pt").is_file():
        raise ValueError(
            f"{processed} holds an old torchvision cache (training.pt, test.pt) that torchvision "
            f"would read instead of the raw files; delete {processed} and rerun"
        )


def _check_torchvision_folder(spec: DatasetSpec, root: Path) -> None:
    _check_files_present(spec, root)
    _check_mnist_legacy(spec, root)
    if spec.name == "mnist":
        _check_mnist_files(spec, root)
    else:
        _check_cifar_md5(spec, root)


def _open_torchvision(spec: DatasetSpec, root: Path, train: bool, download: bool = False) -> Any:
    return spec.tv_class()(root=str(root), train=train, download=download)


def _archives(spec: DatasetSpec, root: Path) -> list[tuple[Path, str, str]]:
    """(local path, torchvision's MD5, URL) of every archive torchvision downloads."""
    cls = spec.tv_class()
    if spec.name == "mnist":
        return [
            (root / spec.folder / fn, md5, f"{cls.mirrors[0]}{fn}") for fn, md5 in cls.resources
        ]
    return [(root / cls.filename, cls.tgz_md5, cls.url)]


def _corrupted_download(spec: DatasetSpec, root: Path) -> str | None:
    """One line naming a downloaded archive whose MD5 is not torchvision's, or None."""
    from torchvision.datasets.utils import calculate_md5

    for path, md5, url in _archives(spec, root):
        if path.is_file() and (found := calculate_md5(path)) != md5:
            return (
                f"could not download {spec.name}: {path} (from {url}) has MD5 {found}, "
                f"torchvision expects {md5}: the download is corrupted or the server sent "
                f"something else (a proxy's error page?). Rerun to download it again, or fetch "
                f"it on another machine and set datasets.{spec.name}.source: folder"
            )
    return None


def _download(spec: DatasetSpec, root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for train in (True, False):
        try:
            _open_torchvision(spec, root, train, download=True)
        except _NETWORK_ERRORS as err:
            corrupted = _corrupted_download(spec, root)
            if corrupted:
                raise RuntimeError(corrupted) from err
            reason = " ".join(str(err).split())  # torchvision's messages span several lines
            raise RuntimeError(
                f"could not download {spec.name} into {root} "
                f"({type(err).__name__}: {reason}). No network? Then download it on a "
                f"machine that has one (e.g. torchvision.datasets.{spec.torchvision_class}(root, "
                f"download=True)), copy the folder here and set datasets.{spec.name}.source: "
                f"folder and datasets.{spec.name}.path: <that folder> in config.yaml (or save "
                f"x_train, y_train, x_test, y_test to an .npz and use source: npz)"
            ) from err


# --------------------------------------------------------------------------- npz
def _npz_error(path: Path, key: str, problem: str, fix: str) -> ValueError:
    return ValueError(f"{path}: key {key!r}: {problem}; {fix}")


def _load_npz(spec: DatasetSpec, path: Path) -> dict[str, np.ndarray]:
    """Load and validate the four arrays; images N×C×H×W uint8, labels 1-D int64."""
    arrays = _read_npz(spec, path)
    out = {}
    for split in ("train", "test"):
        xk, yk = f"x_{split}", f"y_{split}"
        x = _npz_images(spec, path, xk, arrays[xk])
        y = _npz_labels(spec, path, yk, arrays[yk], xk, len(x))
        out[xk] = np.ascontiguousarray(x)
        out[yk] = y.astype(np.int64)
    return out


def _read_npz(spec: DatasetSpec, path: Path) -> dict[str, np.ndarray]:
    """The arrays ``NPZ_KEYS`` of the ``.npz`` at ``path``, each read into memory."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{spec.name}: {path} does not exist; set datasets.{spec.name}.path to an .npz file "
            f"with keys {', '.join(NPZ_KEYS)}"
        )
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise ValueError(
            f"{path}: not a readable .npz file ({err}); write it with np.savez"
        ) from err
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ValueError(
            f"{path}: holds a single array, not an .npz archive; use np.savez("
            f"path, {'=..., '.join(NPZ_KEYS)}=...)"
        )
    with npz:
        for key in NPZ_KEYS:
            if key not in npz.files:
                raise _npz_error(
                    path,
                    key,
                    f"missing (keys found: {', '.join(npz.files) or 'none'})",
                    f"save it with np.savez(path, {'=..., '.join(NPZ_KEYS)}=...)",
                )
        try:
            return {key: npz[key] for key in NPZ_KEYS}
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
            raise ValueError(
                f"{path}: could not read its arrays ({err}); write it again with "
                "np.savez (object arrays are not allowed)"
            ) from err


def _npz_images(spec: DatasetSpec, path: Path, key: str, x: np.ndarray) -> np.ndarray:
    """Images stored N×H×W (one channel) or N×H×W×C, uint8, at least one: as N×C×H×W."""
    c, h, w = spec.image_shape
    if x.dtype != np.uint8:
        raise _npz_error(
            path,
            key,
            f"dtype is {x.dtype}, expected uint8 pixels 0..255",
            "convert with np.clip(np.round(x), 0, 255).astype(np.uint8) "
            "(multiply by 255 first if the images are scaled to [0, 1])",
        )
    if x.ndim == 3 and c == 1 and x.shape[1:] == (h, w):
        x = x[:, None, :, :]
    elif x.ndim == 4 and x.shape[1:] == (h, w, c):
        x = x.transpose(0, 3, 1, 2)
    else:
        want = f"N×{h}×{w}" + (" or N×" if c == 1 else "×") + f"{h}×{w}×{c}"
        fix = "images must be channels-last (Keras' layout)"
        if x.ndim == 4 and x.shape[1:] == (c, h, w):
            fix += "; this looks channels-first: save x.transpose(0, 2, 3, 1)"
        raise _npz_error(
            path, key, f"shape {x.shape} does not fit {spec.name} (expected {want})", fix
        )
    if x.shape[0] == 0:
        raise _npz_error(path, key, "holds no images", "save at least one image per split")
    return x


def _npz_labels(
    spec: DatasetSpec, path: Path, key: str, y: np.ndarray, images_key: str, n_images: int
) -> np.ndarray:
    """Integer class indices, N or N×1 (Keras' CIFAR labels), one per image, in range: as N."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if not np.issubdtype(y.dtype, np.integer):
        raise _npz_error(
            path,
            key,
            f"dtype is {y.dtype}, expected integer class labels",
            "save the labels with .astype(np.int64) (class indices, not one-hot)",
        )
    if y.ndim != 1:
        raise _npz_error(
            path,
            key,
            f"shape {y.shape}, expected (N,) class indices",
            "save class indices, not one-hot rows (y.argmax(1))",
        )
    if len(y) != n_images:
        raise _npz_error(
            path,
            key,
            f"{len(y)} labels but {images_key} holds {n_images} images",
            "save one label per image",
        )
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= spec.num_classes:
        raise _npz_error(
            path,
            key,
            f"labels span {lo}..{hi}, outside 0..{spec.num_classes - 1} for {spec.name}",
            "use class indices 0..num_classes-1 (or check the dataset name)",
        )
    return y


# --------------------------------------------------------------------------- stage 1: fetch
def fetch_dataset(name: str, source: str, path: str, manifest_path: str) -> dict:
    """Make ``name`` available from ``source`` at ``path``, check it, write the manifest.

    Returns the manifest (also written, atomically, as JSON to ``manifest_path``)::

        {"format_version": 1, "dataset": "mnist", "source": "folder",
         "path": "/abs/root/or/file.npz",
         "files": [{"relpath": "MNIST/raw/train-images-idx3-ubyte", "path": "/abs/...",
                    "size": 47040016, "sha256": "...", "md5": "...",
                    "official": true}, ...],      # "official": MNIST only
         "n_train": 60000, "n_test": 10000, "num_classes": 10, "image_shape": [1, 28, 28],
         "torchvision": "0.19.0", "provenance": {...}}

    Raises ``FileNotFoundError`` (missing files, named), ``ValueError`` (malformed or
    corrupted data, the file / key named) or ``RuntimeError`` (download failed).
    """
    spec = get_spec(name)
    if source not in SOURCES:
        raise ValueError(
            f"unknown source {source!r} for {name}: choose one of {', '.join(SOURCES)}"
        )
    root = Path(path).expanduser().resolve()

    if source == "npz":
        arrays = _load_npz(spec, root)
        n_train, n_test = len(arrays["y_train"]), len(arrays["y_test"])
        files = [_file_entry(root, root)]
    else:
        if source == "download":
            _download(spec, root)
        elif not root.is_dir():
            raise FileNotFoundError(
                f"{name}: folder {root} does not exist; set datasets.{name}.path to the folder "
                f"that contains {spec.folder}/ (torchvision's layout), or use source: download"
            )
        _check_torchvision_folder(spec, root)
        n_train = len(_open_torchvision(spec, root, train=True))
        n_test = len(_open_torchvision(spec, root, train=False))
        files = [_file_entry(root / rel, root) for rel, _ in _expected_files(spec)]
        if name == "mnist":
            for entry in files:
                entry["official"] = (
                    MNIST_OFFICIAL_MD5.get(Path(entry["relpath"]).name) == entry["md5"]
                )

    import torchvision

    manifest = {
        "format_version": MANIFEST_VERSION,
        "dataset": name,
        "source": source,
        "path": str(root),
        "files": files,
        "n_train": int(n_train),
        "n_test": int(n_test),
        "num_classes": spec.num_classes,
        "image_shape": list(spec.image_shape),
        "torchvision": torchvision.__version__,
        "provenance": provenance(),
    }
    write_json(manifest_path, manifest)
    return manifest


# --------------------------------------------------------------------------- stage 2: prepare
def _read_manifest(name: str, manifest_path: str | os.PathLike) -> dict:
    import json

    mpath = Path(manifest_path)
    try:
        manifest = json.loads(mpath.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(
            f"manifest {mpath} not found: run the download_dataset rule for {name} first"
        ) from None
    except json.JSONDecodeError as err:
        raise ValueError(
            f"manifest {mpath} is not valid JSON ({err}); rerun download_dataset"
        ) from err
    for key in ("dataset", "source", "path", "files", "n_train", "n_test"):
        if key not in manifest:
            raise ValueError(f"manifest {mpath} lacks {key!r}; rerun download_dataset for {name}")
    if manifest["dataset"] != name:
        raise ValueError(
            f"manifest {mpath} describes {manifest['dataset']!r}, not {name!r}; "
            "check the rule's input"
        )
    if manifest["source"] not in SOURCES:
        raise ValueError(f"manifest {mpath}: unknown source {manifest['source']!r}")
    return manifest


def _verify_files(manifest: dict, manifest_path: str | os.PathLike) -> None:
    for entry in manifest["files"]:
        fpath = Path(entry["path"])
        hint = (
            f"the source of {manifest['dataset']} changed since {manifest_path} was written: "
            f"rerun download_dataset (e.g. delete {manifest_path}) to record the new data"
        )
        if not fpath.is_file():
            raise SourceChangedError(f"{fpath} no longer exists; {hint}")
        if fpath.stat().st_size != entry["size"]:
            raise SourceChangedError(
                f"{fpath} is now {fpath.stat().st_size} bytes, the manifest says "
                f"{entry['size']}; {hint}"
            )
        sha = _hash_file(fpath)["sha256"]
        if sha != entry["sha256"]:
            raise SourceChangedError(
                f"{fpath} has SHA-256 {sha}, the manifest says {entry['sha256']}; {hint}"
            )


def _as_channel_vector(values: Any, what: str, channels: int, name: str):
    import torch

    vec = torch.as_tensor(np.asarray(values, dtype=np.float64).reshape(-1), dtype=torch.float32)
    if vec.numel() != channels:
        raise ValueError(
            f"{name}: {what} has {vec.numel()} value(s) but the images have {channels} channel(s);"
            f" set datasets.{name}.{what} to {channels} number(s)"
        )
    if not torch.isfinite(vec).all():
        raise ValueError(f"{name}: {what} {vec.tolist()} is not finite")
    if what == "std" and not (vec > 0).all():
        raise ValueError(f"{name}: std {vec.tolist()} must be positive")
    return vec.contiguous()


def content_hash(tensors: dict[str, Any], dataset: str) -> str:
    """SHA-256 (hex) of the canonical tensors of a prepared file.

    Covers the dataset name and, in this order, ``x_train, y_train, x_test, y_test, mean,
    std, num_classes``: each key, dtype, shape and raw little-endian bytes. Two prepared
    files with the same hash hold the same data and the same normalisation.
    """
    h = hashlib.sha256()
    h.update(f"sgdtail-prepared-v{PREPARED_VERSION}\0{dataset}\0".encode())
    for key in ("x_train", "y_train", "x_test", "y_test", "mean", "std", "num_classes"):
        arr = tensors[key].detach().cpu().contiguous().numpy()
        if arr.dtype.byteorder == ">" or (arr.dtype.byteorder == "=" and sys.byteorder == "big"):
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        h.update(f"{key}\0{arr.dtype.str}\0{arr.shape}\0".encode())
        h.update(np.ascontiguousarray(arr).reshape(-1).view(np.uint8).data)
    return h.hexdigest()


def _load_canonical(spec: DatasetSpec, manifest: dict) -> dict[str, Any]:
    """x uint8 N×C×H×W contiguous, y int64, straight from the source arrays."""
    import torch

    root = Path(manifest["path"])
    if manifest["source"] == "npz":
        arrays = _load_npz(spec, root)
        return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}

    _check_mnist_legacy(spec, root)
    out = {}
    for split, train in (("train", True), ("test", False)):
        ds = _open_torchvision(spec, root, train=train)
        data, targets = ds.data, ds.targets
        if spec.name == "mnist":  # torch uint8 N×H×W, int64 targets
            x = torch.as_tensor(data, dtype=torch.uint8).unsqueeze(1)
        else:  # numpy uint8 N×H×W×C, list of ints
            x = torch.from_numpy(np.asarray(data, dtype=np.uint8)).permute(0, 3, 1, 2)
        out[f"x_{split}"] = x.contiguous()
        out[f"y_{split}"] = torch.as_tensor(np.asarray(targets), dtype=torch.int64).contiguous()
    return out


def prepare_dataset(name: str, manifest_path: str, out_path: str, mean, std) -> None:
    """Read the source named by the manifest and save the canonical tensors to ``out_path``.

    ``out_path`` (``torch.save``, loadable with ``weights_only=True``) holds::

        x_train, x_test   uint8  N×C×H×W contiguous
        y_train, y_test   int64  (N,)
        mean, std         float32 (C,)
        num_classes       int64 scalar tensor
        content_hash      str, sha256 hex (see :func:`content_hash`)
        dataset           str, e.g. "mnist"
        format_version    int

    Raises :class:`SourceChangedError` when a file's size or SHA-256 no longer matches the
    manifest.
    """
    import torch

    spec = get_spec(name)
    manifest = _read_manifest(name, manifest_path)
    mean_t = _as_channel_vector(mean, "mean", spec.channels, name)
    std_t = _as_channel_vector(std, "std", spec.channels, name)
    _verify_files(manifest, manifest_path)
    tensors = _load_canonical(spec, manifest)
    for split in ("train", "test"):
        n = len(tensors[f"y_{split}"])
        if n != manifest[f"n_{split}"]:
            raise SourceChangedError(
                f"{name} {split} split now has {n} examples, {manifest_path} says "
                f"{manifest[f'n_{split}']}; rerun download_dataset"
            )
        y = tensors[f"y_{split}"]
        if int(y.min()) < 0 or int(y.max()) >= spec.num_classes:
            raise ValueError(f"{name} {split} labels outside 0..{spec.num_classes - 1}")
    tensors["mean"] = mean_t
    tensors["std"] = std_t
    tensors["num_classes"] = torch.tensor(spec.num_classes, dtype=torch.int64)
    tensors["content_hash"] = content_hash(tensors, name)
    tensors["dataset"] = name
    tensors["format_version"] = PREPARED_VERSION
    save_torch(out_path, tensors)


# --------------------------------------------------------------------------- stage 3: load
@dataclass
class PreparedData:
    """A prepared dataset, images normalised to float32 on one device."""

    x_train: Any  # torch.Tensor float32 N×C×H×W
    y_train: Any  # torch.Tensor int64 (N,)
    x_test: Any
    y_test: Any
    num_classes: int
    input_shape: tuple[int, int, int]  # (C, H, W)
    content_hash: str
    dataset: str
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])


def load_prepared(path: str, device: Any = "cpu", verify: bool = True) -> PreparedData:
    """Load a file written by :func:`prepare_dataset` and normalise it once.

    ``x = (x_uint8 / 255 - mean) / std`` in float32, computed on ``device`` (the uint8 tensors
    are moved first, so only a quarter of the bytes cross to an accelerator). With ``verify``
    the content hash is recomputed and compared.
    """
    import torch

    fpath = Path(path)
    blob = _read_prepared(fpath)
    _check_prepared_tensors(fpath, blob)
    if verify:
        found = content_hash(blob, blob["dataset"])
        if found != blob["content_hash"]:
            raise _prepared_error(
                fpath,
                f"content hash {found} differs from the stored {blob['content_hash']}: "
                "the file is corrupted",
            )

    device = torch.device(device)
    mean, std = blob["mean"], blob["std"]
    scale_mean = mean.to(device=device, dtype=torch.float32).view(1, -1, 1, 1)
    scale_std = std.to(device=device, dtype=torch.float32).view(1, -1, 1, 1)

    def normalise(x):
        out = x.to(device=device).to(torch.float32)
        return out.div_(255.0).sub_(scale_mean).div_(scale_std)

    return PreparedData(
        x_train=normalise(blob["x_train"]),
        y_train=blob["y_train"].to(device),
        x_test=normalise(blob["x_test"]),
        y_test=blob["y_test"].to(device),
        num_classes=int(blob["num_classes"]),
        input_shape=tuple(int(s) for s in blob["x_train"].shape[1:]),
        content_hash=str(blob["content_hash"]),
        dataset=str(blob["dataset"]),
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
    )


def _prepared_error(fpath: Path, problem: str) -> ValueError:
    return ValueError(f"{fpath}: {problem}; delete {fpath} and rerun prepare_dataset")


def _read_prepared(fpath: Path) -> dict:
    """The dict saved by :func:`prepare_dataset`, with every key and the current format."""
    try:
        blob = load_torch(fpath)
    except FileNotFoundError:
        raise FileNotFoundError(f"{fpath} not found: run prepare_dataset first") from None
    except Exception as err:  # corrupted zip, unsafe pickle, truncated file, ...
        raise _prepared_error(fpath, f"not a readable prepared dataset ({err})") from err
    if not isinstance(blob, dict):
        raise _prepared_error(fpath, f"holds a {type(blob).__name__}, not a prepared dataset")
    missing = [k for k in PREPARED_KEYS if k not in blob]
    if missing:
        raise _prepared_error(fpath, f"missing key(s) {', '.join(missing)}")
    if blob["format_version"] != PREPARED_VERSION:
        raise _prepared_error(
            fpath, f"format {blob['format_version']}, expected {PREPARED_VERSION}"
        )
    return blob


def _check_prepared_tensors(fpath: Path, blob: dict) -> None:
    """uint8 N×C×H×W images (C = len(mean), same H×W in both splits), one int64 label per
    image, labels in 0..num_classes-1."""
    import torch

    channels = blob["mean"].numel()
    for split in ("train", "test"):
        x, y = blob[f"x_{split}"], blob[f"y_{split}"]
        if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] != channels:
            raise _prepared_error(
                fpath,
                f"x_{split} is {x.dtype} {tuple(x.shape)}, expected uint8 N×{channels}×H×W",
            )
        if y.dtype != torch.int64 or y.shape != (x.shape[0],):
            raise _prepared_error(
                fpath,
                f"y_{split} is {y.dtype} {tuple(y.shape)}, expected int64 ({x.shape[0]},)",
            )
    if blob["x_train"].shape[1:] != blob["x_test"].shape[1:]:
        raise _prepared_error(fpath, "train and test images differ in shape")
    num_classes = int(blob["num_classes"])
    for key in ("y_train", "y_test"):
        y = blob[key]
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
            raise _prepared_error(fpath, f"{key} has labels outside 0..{num_classes - 1}")
