"""Shared fixtures: paths to the shared corpus, an isolated data dir, one real sample bundle."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
SAMPLE_DOSSIER = SAMPLES / "000.00.12.H62-251125-0001"
SAMPLE_DOSSIER_2 = SAMPLES / "ho-so-cap-ban-sao"


def shared_dir(name: str) -> Path:
    """``../shared/<name>`` beside the repository (or $DIGITIZE_SHARED/<name>)."""
    base = Path(os.environ.get("DIGITIZE_SHARED", REPO.parent / "shared"))
    path = base / name
    if not path.is_dir():
        pytest.fail(f"{path} is missing: the tests need the shared {name} beside the repo "
                    "(set DIGITIZE_SHARED to its parent folder)")
    return path


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    return shared_dir("corpus")


@pytest.fixture(scope="session")
def real_scans_dir() -> Path:
    return shared_dir("real-scans")


@pytest.fixture(scope="session", autouse=True)
def isolated_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keep the demo identity and caches of the test run out of the user's home."""
    data = tmp_path_factory.mktemp("digitize-data")
    os.environ["DIGITIZE_DATA_DIR"] = str(data)
    os.environ["OMP_THREAD_LIMIT"] = "1"
    return data


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One real end-to-end run of the first sample dossier (shared, read-only for tests)."""
    from digitize.pipeline import run_dossier
    from digitize.profiles import load_profile

    out = tmp_path_factory.mktemp("sample-out")
    events = []
    result = run_dossier(SAMPLE_DOSSIER, out, profile=load_profile(None, {"pipeline": {"workers": 2}}),
                         on_event=events.append)
    return result, events


@pytest.fixture
def bundle_copy(sample_run, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """A private copy of the sample bundle that a test may tamper with."""
    result, _ = sample_run
    target = tmp_path / result.bundle_path.name
    shutil.copytree(result.bundle_path, target)
    return target
