"""Shared fixtures: small in-memory data sets (no network, no data from outside the repository)."""

from __future__ import annotations

import pytest
import torch

from sgdtail.data import PreparedData


def make_prepared(n_train: int = 600, n_test: int = 200, shape=(1, 8, 8), classes: int = 10,
                  seed: int = 0) -> PreparedData:
    """Random but learnable images: each class has its own mean pattern plus noise."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, *shape, generator=g)

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, classes, (n,), generator=g)
        return centres[y] + 0.7 * torch.randn(n, *shape, generator=g), y

    x_train, y_train = split(n_train)
    x_test, y_test = split(n_test)
    return PreparedData(
        x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, num_classes=classes,
        input_shape=tuple(shape), content_hash=f"synthetic-{seed}", dataset="synthetic",
        mean=(0.0,) * shape[0], std=(1.0,) * shape[0],
    )


@pytest.fixture
def small_data() -> PreparedData:
    return make_prepared()
