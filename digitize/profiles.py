"""Profiles: the settings an office uses, as YAML files merged over built-in defaults.

A profile file holds only what differs from ``profiles/default.yaml``; every setting has a
default in the stage's own settings model, so an empty profile is valid. Unknown keys and
wrong types are refused with one line naming the key (``ConfigError``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from digitize.errors import ConfigError
from digitize.models import FrozenModel
from digitize.settings import (
    BatchSettings,
    BundleSettings,
    CleanSettings,
    ExtractSettings,
    HubSettings,
    IngestSettings,
    OcrSettings,
    PdfaSettings,
    PipelineSettings,
    SigningSettings,
    StatsSettings,
    WatchSettings,
)


class Profile(FrozenModel):
    name: str = "default"
    description: str = ""
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    clean: CleanSettings = Field(default_factory=CleanSettings)
    ocr: OcrSettings = Field(default_factory=OcrSettings)
    extract: ExtractSettings = Field(default_factory=ExtractSettings)
    pdfa: PdfaSettings = Field(default_factory=PdfaSettings)
    sign: SigningSettings = Field(default_factory=SigningSettings)
    bundle: BundleSettings = Field(default_factory=BundleSettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    batch: BatchSettings = Field(default_factory=BatchSettings)
    watch: WatchSettings = Field(default_factory=WatchSettings)
    stats: StatsSettings = Field(default_factory=StatsSettings)
    hub: HubSettings = Field(default_factory=HubSettings)


def bundled_profile_dir() -> Path:
    return Path(str(resources.files("digitize.bundled_profiles")))


def list_profiles() -> list[str]:
    return sorted(p.stem for p in bundled_profile_dir().glob("*.yaml"))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read profile: {exc.strerror}", path=path) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"invalid YAML{where}", path=path) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("a profile must be a mapping of settings", path=path)
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _resolve(name_or_path: str | Path) -> Path:
    candidate = Path(name_or_path)
    # A bare name is a bundled profile, never a file of the current folder (a profile chooses
    # the PKCS#11 module to load and the trust roots); a file is named by a path.
    is_path = isinstance(name_or_path, Path) or "/" in str(name_or_path)
    if is_path or candidate.suffix in {".yaml", ".yml"}:
        if not candidate.is_file():
            raise ConfigError("profile file not found", path=candidate)
        return candidate
    bundled = bundled_profile_dir() / f"{name_or_path}.yaml"
    if bundled.is_file():
        return bundled
    known = ", ".join(list_profiles())
    raise ConfigError(f"unknown profile {str(name_or_path)!r} (known: {known})")


# Settings that were removed, and where their meaning lives now.
MOVED_SETTINGS = {
    "batch.workers": "page workers are set once, in pipeline.workers",
    "watch.workers": "page workers are set once, in pipeline.workers",
}


def profile_from_mapping(data: dict[str, Any], *, source: str = "<mapping>") -> Profile:
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        if first["type"] == "extra_forbidden":
            raise ConfigError(
                f"unknown setting {key!r}", path=source, hint=MOVED_SETTINGS.get(key)
            ) from None
        raise ConfigError(f"setting {key!r}: {first['msg']}", path=source) from None


def load_profile(
    name_or_path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> Profile:
    """Defaults ← ``default.yaml`` ← the named profile ← ``overrides`` (e.g. from CLI options)."""
    data = _read_yaml(bundled_profile_dir() / "default.yaml")
    source = "default"
    if name_or_path is not None and str(name_or_path) != "default":
        path = _resolve(name_or_path)
        data = _merge(data, _read_yaml(path))
        data.setdefault("name", path.stem)
        if data.get("name") == "default":
            data["name"] = path.stem
        source = str(path)
    if overrides:
        data = _merge(data, overrides)
    return profile_from_mapping(data, source=source)


def profile_as_yaml(profile: Profile) -> str:
    return yaml.safe_dump(
        profile.model_dump(mode="json"), allow_unicode=True, sort_keys=False, width=100
    )
