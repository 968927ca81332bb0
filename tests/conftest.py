"""Shared fixtures: paths to the shared evaluation data (or its vendored subset), an isolated
data dir, one real sample bundle.

The shared data sets (``corpus``, ``real-scans``) live in ``../shared/`` beside the repository,
or under ``$DIGITIZE_SHARED``. A clone without them still passes: ``shared_dir`` falls back to
the byte-identical subset in ``tests/data/`` (same layout), and ``shared_item`` skips the test,
with a one-line reason, when an item is in neither. ``DIGITIZE_REQUIRE_SHARED=1`` (CI) makes a
missing shared set a failure instead, so CI never passes on the subset by accident.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
SAMPLE_DOSSIER = SAMPLES / "000.00.12.H62-251125-0001"
SAMPLE_DOSSIER_2 = SAMPLES / "ho-so-cap-ban-sao"
VENDORED = REPO / "tests" / "data"
SHARED_SETS = ("corpus", "real-scans")


def shared_root() -> Path:
    """``$DIGITIZE_SHARED``, else ``../shared`` beside the repository."""
    return Path(os.environ.get("DIGITIZE_SHARED") or REPO.parent / "shared")


def _missing(what: str) -> None:
    reason = f"{what} (set DIGITIZE_SHARED to the folder holding {', '.join(SHARED_SETS)})"
    if os.environ.get("DIGITIZE_REQUIRE_SHARED") == "1":
        pytest.fail(f"DIGITIZE_REQUIRE_SHARED=1: {reason}")
    pytest.skip(reason)


def shared_dir(name: str, *, complete: bool = False) -> Path:
    """The shared data set ``name``: ``../shared/<name>`` when present, else (unless the test
    needs the ``complete`` set) the vendored subset ``tests/data/<name>``; otherwise the test
    is skipped (failed under ``DIGITIZE_REQUIRE_SHARED=1``)."""
    if name not in SHARED_SETS:
        raise ValueError(f"unknown shared data set {name!r}")
    full = shared_root() / name
    if full.is_dir():
        return full
    if not complete and (VENDORED / name).is_dir():
        return VENDORED / name
    _missing(f"needs the complete shared {name}, not found at {full}" if complete
             else f"shared {name} not found at {full}")  # fmt: skip
    raise AssertionError("unreachable")  # pytest.skip/fail raise


def shared_item(name: str, relative: str) -> Path:
    """One file or folder of a shared data set, from ``../shared`` or the vendored subset;
    skipped (one line) when neither has it."""
    base = shared_dir(name)
    path = base / relative
    if not path.exists():
        _missing(f"{name}/{relative} not found in {base}")
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


@pytest.fixture
def redis_server(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real ``redis-server`` of the hub's tests: loopback port, AOF ``appendfsync always``,
    the password ``HUB_PASSWORD`` (distinctive: leak checks grep for it)."""
    from tests.helpers_redis import HUB_PASSWORD, RedisServer, require_redis

    require_redis()
    server = RedisServer.start_new(tmp_path / "redis", password=HUB_PASSWORD)
    yield server
    server.stop()


@pytest.fixture
def hub_dirs(tmp_path: Path, isolated_data_dir: Path) -> dict[str, Path]:
    """Input and output folders and a profile with short hub timings (``hub_profile``)."""
    from digitize.sign import ensure_demo_identity
    from tests.helpers_redis import hub_profile

    ensure_demo_identity(isolated_data_dir)  # before the workers: one demo identity, no race
    return {"in": tmp_path / "in", "out": tmp_path / "out",
            "profile": hub_profile(tmp_path / "hub.yaml")}  # fmt: skip
