"""Fuzzing verify (issue 15 points 3 and 5, review H10): structured strategies for
``checksums.sha256``, ``manifest.json``, zip entries and the manifest's CMS signature.

Two properties for every generated bundle: ``verify_bundle`` returns a report (it never
raises), and it never passes a bundle that says something other than the genuine one — a
passing ``checksums.sha256`` lists the same files with the same hashes, a passing
``manifest.json`` is byte-identical, a passing zip holds exactly the genuine files, a passing
signature keeps the genuine signer's signed attributes and signature value.

The base is a one-component bundle signed with the test run's DEMO identity (fast to verify);
examples are derandomized so a failure reproduces.
"""

from __future__ import annotations

import json
import shutil
import stat
import tempfile
import unicodedata
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digitize.verify import verify_bundle
from tests.helpers_bundle import demo_identity, forge_bundle

FUZZ = settings(max_examples=30, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return forge_bundle(tmp_path_factory.mktemp("fuzz"), [demo_identity()])


def _verify(path: Path) -> Any:
    report = verify_bundle(path, lang="en", allow_demo=True)
    assert report.exit_code != 0 or report.ok  # a report, coherent with itself
    return report


def _copy(base: Path) -> Path:
    target = Path(tempfile.mkdtemp(prefix="fuzz-")) / base.name
    shutil.copytree(base, target)
    return target


def test_base_bundle_passes(base: Path) -> None:
    """Control: the unmodified base passes, so a failure below is the mutation's doing."""
    assert _verify(base).ok


# --- checksums.sha256 -------------------------------------------------------------------------
def _checksum_entries(text: str) -> set[tuple[str, str]] | None:
    entries = []
    for line in text.splitlines():
        if not line.strip():
            continue
        digest, sep, name = line.partition("  ")
        if not sep:
            return None
        entries.append((digest.lower(), name))
    return set(entries) if len(entries) == len(set(n for _, n in entries)) else None


_NAMES = st.sampled_from(["manifest.json", "manifest.json.p7s", "HS-TEST-0001.001.pdf",
                          "HS-TEST-0001.002.pdf", "notes.txt", "MANIFEST.JSON", "../x",
                          "a/b", "", "checksums.sha256", "hồ sơ.pdf"])  # fmt: skip
_DIGESTS = st.one_of(st.text("0123456789abcdefABCDEF", min_size=63, max_size=65),
                     st.sampled_from(["0" * 64, "f" * 64]))  # fmt: skip


@FUZZ
@given(data=st.data())
def test_checksums_fuzz(base: Path, data: st.DataObject) -> None:
    genuine = (base / "checksums.sha256").read_text(encoding="utf-8").splitlines()
    line = st.one_of(
        st.sampled_from(genuine),
        st.builds(lambda d, n: f"{d}  {n}", _DIGESTS, _NAMES),
        st.builds(lambda g: g.upper(), st.sampled_from(genuine)),
        st.text(max_size=80),
    )
    lines = data.draw(st.lists(line, max_size=8), label="lines")
    bundle = _copy(base)
    text = "\n".join(lines) + ("\n" if lines else "")
    (bundle / "checksums.sha256").write_text(text, encoding="utf-8", errors="surrogatepass")
    report = _verify(bundle)
    if report.ok:
        assert _checksum_entries(text) == _checksum_entries("\n".join(genuine)), text


# --- manifest.json ------------------------------------------------------------------------------
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8),
                                                                      children, max_size=3),
    max_leaves=10,
)  # fmt: skip


def _edit(document: Any, path: list[int], value: Any, delete: bool) -> Any:
    """Replace (or delete) the node reached by following ``path`` (indices into keys/items)."""
    node = document
    for step in path:
        if isinstance(node, dict) and node:
            key = sorted(node)[step % len(node)]
            if delete and not isinstance(node[key], (dict, list)):
                del node[key]
                return document
            if not isinstance(node[key], (dict, list)):
                node[key] = value
                return document
            node = node[key]
        elif isinstance(node, list) and node:
            index = step % len(node)
            if not isinstance(node[index], (dict, list)):
                node[index] = value
                return document
            node = node[index]
        else:
            break
    if isinstance(node, dict):
        node["fuzz"] = value
    elif isinstance(node, list):
        node.append(value)
    return document


@FUZZ
@given(kind=st.sampled_from(["json", "bytes", "nesting"]), path=st.lists(st.integers(0, 50), max_size=6),
       value=_JSON, delete=st.booleans(), flips=st.lists(st.integers(0, 10**6), max_size=4),
       depth=st.integers(1, 50_000))  # fmt: skip
def test_manifest_fuzz(base: Path, kind: str, path: list[int], value: Any, delete: bool,
                       flips: list[int], depth: int) -> None:  # fmt: skip
    genuine = (base / "manifest.json").read_bytes()
    if kind == "json":
        mutated = json.dumps(_edit(json.loads(genuine), path, value, delete)).encode()
    elif kind == "bytes":
        raw = bytearray(genuine)
        for flip in flips:
            raw[flip % len(raw)] ^= 1 << (flip % 8)
        mutated = bytes(raw[: len(raw) - (flips[0] % 7 if flips else 0)])
    else:
        mutated = b'{"documents": ' + b"[" * depth + b"]" * depth + b"}"
    bundle = _copy(base)
    (bundle / "manifest.json").write_bytes(mutated)
    report = _verify(bundle)
    assert not report.ok or mutated == genuine


# --- zip entries ----------------------------------------------------------------------------------
def _entry_names(root: str, genuine: list[str]) -> st.SearchStrategy[str]:
    pdf = next(n for n in genuine if n.endswith(".pdf"))
    return st.sampled_from([
        *(f"{root}/{n}" for n in genuine), f"{root}/{pdf.upper()}", f"{root}/sub/{pdf}",
        f"{root}/", "other/manifest.json", f"../{root}/x", f"/{root}/x", f"{root}/a\\b",
        f"{root}/" + unicodedata.normalize("NFD", "hồ.txt"), f"{root}/hồ.txt", f"{root}/x\n",
    ])  # fmt: skip


@FUZZ
@given(data=st.data())
def test_zip_fuzz(base: Path, data: st.DataObject, tmp_path_factory: pytest.TempPathFactory) -> None:
    genuine = {p.name: p.read_bytes() for p in sorted(base.iterdir())}
    root = base.name
    entry = st.tuples(
        _entry_names(root, list(genuine)),
        st.one_of(st.sampled_from(list(genuine.values())), st.binary(max_size=64)),
        st.sampled_from([None, stat.S_IFDIR | 0o755, stat.S_IFLNK | 0o777, 0o644 | stat.S_IFREG]),
    )
    keep = data.draw(st.lists(st.sampled_from(list(genuine)), unique=True), label="keep")
    extra = data.draw(st.lists(entry, max_size=4), label="extra")
    target = tmp_path_factory.mktemp("zip") / "fuzz.zip"
    written: list[tuple[str, bytes]] = []
    with zipfile.ZipFile(target, "w") as archive:
        for name in keep:
            archive.writestr(f"{root}/{name}", genuine[name])
            written.append((f"{root}/{name}", genuine[name]))
        for name, payload, mode in extra:
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.external_attr = mode << 16
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # duplicate names are the point here
                archive.writestr(info, payload)
            written.append((name, payload))
    report = _verify(target)
    if report.ok:
        assert sorted(written) == sorted((f"{root}/{n}", d) for n, d in genuine.items())


# --- the manifest's CMS signature -----------------------------------------------------------------
def _signer_core(blob: bytes) -> tuple[bytes, bytes] | None:
    from asn1crypto import cms

    try:
        info = cms.ContentInfo.load(blob)["content"]["signer_infos"][0]
        return info["signed_attrs"].dump(), info["signature"].native
    except Exception:  # noqa: BLE001 - unparsable: no core
        return None


@FUZZ
@given(kind=st.sampled_from(["flip", "truncate", "garbage", "splice"]),
       positions=st.lists(st.integers(0, 10**6), min_size=1, max_size=4),
       garbage=st.binary(min_size=1, max_size=300))  # fmt: skip
def test_cms_fuzz(base: Path, kind: str, positions: list[int], garbage: bytes) -> None:
    genuine = (base / "manifest.json.p7s").read_bytes()
    raw = bytearray(genuine)
    if kind == "flip":
        for p in positions:
            raw[p % len(raw)] ^= 1 << (p % 8)
        mutated = bytes(raw)
    elif kind == "truncate":
        mutated = genuine[: positions[0] % len(genuine)]
    elif kind == "garbage":
        mutated = b"\x30\x82" + garbage
    else:
        at = positions[0] % len(genuine)
        mutated = genuine[:at] + garbage + genuine[at + len(garbage):]
    bundle = _copy(base)
    (bundle / "manifest.json.p7s").write_bytes(mutated)
    from digitize.bundle import write_checksums

    write_checksums(bundle)  # the attacker fixes the unsigned checksums too
    report = _verify(bundle)
    if report.ok:
        assert _signer_core(mutated) == _signer_core(genuine)
