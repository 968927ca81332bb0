"""Reading bundles for the statistics: verify (or reuse a verdict), then take their facts.

Only a bundle that verifies is counted (``digitize.verify.verify_bundle``: checksums, the
manifest's detached signature, every PDF's signature and its chain to a trusted root): a
count used for payment must not be forgeable by editing ``manifest.json``. Every other bundle
is listed with the reason of its first failing check. Verification runs in worker processes
on a first run; later runs reuse the verdicts of unchanged bundles (``digitize.stats.index``).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import zipfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from digitize.errors import ExitCode
from digitize.manifest import MANIFEST_FILE, Manifest
from digitize.stats.facts import BundleFacts, facts_from_manifest
from digitize.stats.index import BundleRef, StatsIndex, Verdict, fingerprint, trust_key

if TYPE_CHECKING:
    from digitize.verify import VerifyReport

ProgressCallback = Callable[[int, int], None]
MAX_MANIFEST_BYTES = 64 * 1024**2  # a manifest is kilobytes; more is not a bundle
_BATCH = 256  # verdicts written to the index per transaction


@dataclass(frozen=True, slots=True)
class TrustOptions:
    """What verification trusts; passed through to ``verify_bundle`` unchanged."""

    roots: tuple[Path, ...]
    allow_demo: bool = False
    lang: str = "vi"


@dataclass(frozen=True, slots=True)
class Excluded:
    path: str
    reason: str
    exit_code: int


@dataclass(frozen=True, slots=True)
class Counted:
    path: str
    is_zip: bool
    facts: BundleFacts


@dataclass
class Collected:
    counted: list[Counted] = field(default_factory=list)
    excluded: list[Excluded] = field(default_factory=list)
    verified_now: int = 0  # full verifications this run
    reused: int = 0  # verdicts taken from the index


def stats_trust_roots(explicit: Sequence[Path], profile_roots: Sequence[str]
                      ) -> tuple[Path, ...]:
    """Roots for the statistics: ``--trust`` files, ``DIGITIZE_TRUST_ROOTS`` and the profile's
    ``sign.trust_roots`` (existing files, each once). The DEMO root is never one of them: a
    demo signature counts only with ``TrustOptions.allow_demo``, the same decision
    ``digitize verify --allow-demo`` makes (it proves nothing about who did the work)."""
    roots = [Path(p) for p in explicit]
    roots += [Path(p) for p in os.environ.get("DIGITIZE_TRUST_ROOTS", "").split(os.pathsep)
              if p]
    roots += [Path(p) for p in profile_roots]
    unique: dict[str, Path] = {}
    for root in roots:
        if root.is_file():
            unique.setdefault(os.path.abspath(root), root)
    return tuple(unique.values())


def _verify(path: str, trust: TrustOptions) -> VerifyReport:
    from digitize.verify import verify_bundle

    # The statistics never trust more than `digitize verify` would: the same demo decision.
    return verify_bundle(
        Path(path), trust.roots, lang=trust.lang, offline=True, allow_demo=trust.allow_demo
    )


def read_manifest_bytes(path: str, is_zip: bool) -> bytes:
    """The bytes of a bundle's ``manifest.json`` (inside the zip's one top folder)."""
    if not is_zip:
        with open(os.path.join(path, MANIFEST_FILE), "rb") as handle:
            data = handle.read(MAX_MANIFEST_BYTES + 1)
    else:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist()
                     if n.count("/") == 1 and n.endswith("/" + MANIFEST_FILE)]
            if len(names) != 1:
                raise OSError("the zip holds no single top-level manifest.json")
            info = archive.getinfo(names[0])
            if info.file_size > MAX_MANIFEST_BYTES:
                raise OSError("manifest.json is implausibly large")
            data = archive.read(info)
    if len(data) > MAX_MANIFEST_BYTES:
        raise OSError("manifest.json is implausibly large")
    return data


@dataclass(frozen=True, slots=True)
class _Outcome:
    path: str
    verdict: Verdict
    facts_json: str | None
    remember: bool  # False when the bundle changed while it was being verified


def verify_one(job: tuple[BundleRef, TrustOptions]) -> _Outcome:
    """Verify one bundle and, when it verifies, take its facts (runs in a worker process)."""
    ref, trust = job
    report = _verify(ref.path, trust)
    if not report.ok:
        first = report.failures[0] if report.failures else None
        reason = f"{first.name}: {first.message}" if first else "verification failed"
        verdict = Verdict(ref.fingerprint, False, int(report.exit_code or ExitCode.VERIFY),
                          reason, None)
        facts_json = None
    else:
        try:
            data = read_manifest_bytes(ref.path, ref.is_zip)
            sha = hashlib.sha256(data).hexdigest()
            facts = facts_from_manifest(Manifest.model_validate_json(data), sha)
            verdict = Verdict(ref.fingerprint, True, 0, "", sha)
            facts_json = facts.to_json()
        except (OSError, ValueError, ValidationError, zipfile.BadZipFile) as exc:
            verdict = Verdict(ref.fingerprint, False, int(ExitCode.VERIFY_STRUCTURE),
                              f"manifest: {str(exc).splitlines()[0][:200]}", None)
            facts_json = None
    after = fingerprint(ref.path, ref.is_zip)
    if after != ref.fingerprint:
        changed = Verdict(ref.fingerprint, False, int(ExitCode.VERIFY),
                          "the bundle changed while it was being verified: run again", None)
        return _Outcome(ref.path, changed, None, False)
    return _Outcome(ref.path, verdict, facts_json, True)


def _pool_map(jobs: list[tuple[BundleRef, TrustOptions]], workers: int
              ) -> Iterator[_Outcome]:
    # A handful of bundles is verified faster here than worker start-up would allow.
    if workers <= 1 or len(jobs) <= 4:
        for job in jobs:
            yield verify_one(job)
        return
    # spawn: the caller may have threads (progress display); fork could inherit held locks.
    with ProcessPoolExecutor(max_workers=workers,
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from pool.map(verify_one, jobs, chunksize=max(1, min(32, len(jobs) // workers // 8)))


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class CollectOptions:
    """How to read the bundles (one context object instead of a long parameter list)."""

    trust: TrustOptions
    verify: bool = True
    index: StatsIndex | None = None
    reverify: bool = False  # ignore remembered verdicts (they are still refreshed)
    workers: int = 0  # 0: usable cores
    scanned_roots: tuple[str, ...] = ()  # absolute; verdicts under them for gone paths go
    on_progress: ProgressCallback | None = None


def collect(refs: Sequence[BundleRef], options: CollectOptions) -> Collected:
    """Verdicts and facts for ``refs`` (see the module docstring)."""
    if not options.verify:
        return _collect_unverified(refs, options)
    result = Collected()
    index = options.index
    key = trust_key(options.trust.roots, options.trust.allow_demo, options.trust.lang)
    known = index.verdicts(key) if index is not None else {}
    stored_facts = index.facts_json() if index is not None else {}
    parsed: dict[str, BundleFacts] = {}

    def facts_of(sha: str, text: str) -> BundleFacts:
        facts = parsed.get(sha)
        if facts is None:
            facts = parsed[sha] = BundleFacts.from_json(text)
        return facts

    def take(ref: BundleRef, verdict: Verdict, facts_text: str | None) -> None:
        if verdict.ok and verdict.manifest_sha256 is not None and facts_text is not None:
            result.counted.append(Counted(ref.path, ref.is_zip,
                                          facts_of(verdict.manifest_sha256, facts_text)))
        else:
            result.excluded.append(Excluded(ref.path, verdict.reason, verdict.exit_code))

    todo: list[tuple[BundleRef, TrustOptions]] = []
    by_path = {ref.path: ref for ref in refs}
    done = 0
    for ref in refs:
        old = known.get(ref.path)
        reusable = (old is not None and not options.reverify
                    and old.fingerprint == ref.fingerprint
                    and (not old.ok or (old.manifest_sha256 or "") in stored_facts))
        if reusable and old is not None:
            take(ref, old, stored_facts.get(old.manifest_sha256 or ""))
            result.reused += 1
            done += 1
        else:
            todo.append((ref, options.trust))
    if options.on_progress is not None:
        options.on_progress(done, len(refs))
    pending: list[tuple[str, Verdict, str | None]] = []
    workers = options.workers or usable_cores()
    try:
        for outcome in _pool_map(todo, workers):
            ref = by_path[outcome.path]
            take(ref, outcome.verdict, outcome.facts_json)
            if outcome.facts_json is not None and outcome.verdict.manifest_sha256:
                stored_facts[outcome.verdict.manifest_sha256] = outcome.facts_json
            result.verified_now += 1
            done += 1
            if outcome.remember:
                pending.append((outcome.path, outcome.verdict, outcome.facts_json))
            if index is not None and len(pending) >= _BATCH:
                index.store(key, pending)
                pending = []
            if options.on_progress is not None:
                options.on_progress(done, len(refs))
    finally:
        # Work already done survives an interruption: each row is a complete verdict.
        if index is not None:
            index.store(key, pending)
    if index is not None and options.scanned_roots:
        gone = [p for p in known if p not in by_path and _under(p, options.scanned_roots)]
        if gone:
            index.forget(key, gone)
    return result


def _under(path: str, roots: Sequence[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _collect_unverified(refs: Sequence[BundleRef], options: CollectOptions) -> Collected:
    """``--no-verify``: every readable manifest is counted as it says (figures unverified)."""
    result = Collected()
    stored = options.index.facts_json() if options.index is not None else {}
    for done, ref in enumerate(refs, 1):
        try:
            data = read_manifest_bytes(ref.path, ref.is_zip)
            sha = hashlib.sha256(data).hexdigest()
            text = stored.get(sha)
            facts = (BundleFacts.from_json(text) if text is not None
                     else facts_from_manifest(Manifest.model_validate_json(data), sha))
            result.counted.append(Counted(ref.path, ref.is_zip, facts))
        except (OSError, ValueError, ValidationError, zipfile.BadZipFile, json.JSONDecodeError
                ) as exc:
            result.excluded.append(Excluded(ref.path, f"manifest: {str(exc).splitlines()[0][:200]}",
                                            int(ExitCode.VERIFY_STRUCTURE)))
        if options.on_progress is not None:
            options.on_progress(done, len(refs))
    return result
