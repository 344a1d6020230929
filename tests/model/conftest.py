"""Shared fixtures for the GemsDiff tests (CPU, single thread, tiny models)."""
from pathlib import Path

import pytest
import torch

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)   # small graphs: extra threads only add contention
    yield


@pytest.fixture
def data_dir() -> Path:
    return DATA


def _tiny_config(**train):
    from gemsdiff_model.config import Config, ModelConfig, TrainConfig

    t = {"epochs": 2, "batch_size": 3, "val_fraction": 0.0, "seed": 0}
    t.update(train)
    return Config(model=ModelConfig(hidden=16, enc_layers=1, dec_layers=1, n_freq=4, n_rbf=4),
                  train=TrainConfig(**t))


@pytest.fixture
def tiny_config():
    """Factory: Config of a very small model; keyword arguments override TrainConfig."""
    return _tiny_config
