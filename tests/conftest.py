"""Test-wide isolation: a fresh salrank cache per session and a non-interactive matplotlib.

Tests never read or write the user's ``~/.cache/salrank``; tests that need their own cache set
``SALRANK_CACHE`` again with ``monkeypatch``.
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_salrank_environment(tmp_path_factory):
    saved = {k: os.environ.get(k) for k in ("SALRANK_CACHE", "SALRANK_PROFILE", "SALRANK_DEVICE", "MPLBACKEND")}
    os.environ["SALRANK_CACHE"] = str(tmp_path_factory.mktemp("salrank-cache"))
    os.environ["SALRANK_PROFILE"] = "sample"
    os.environ["SALRANK_DEVICE"] = "cpu"
    os.environ["MPLBACKEND"] = "Agg"
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def torch_one_thread():
    """Run a module's torch work on one thread (small tensors: threads only add overhead)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def notebook_runner(tmp_path_factory):
    """Executes each notebook at most once per session (see notebook_runner.py)."""
    from notebook_runner import NotebookRunner

    return NotebookRunner(tmp_path_factory.mktemp("executed-notebooks"))
