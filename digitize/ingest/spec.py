"""``dossier.yaml``: what the clerk declared at intake (R4–R6, R9, R28–R29).

Light on purpose (pydantic + PyYAML, no decoder): batch and watch read it while planning, in
the process that holds the signer, so the reader itself is hardened against hostile YAML:

* at most ``MAX_YAML_BYTES``; anchors and aliases are refused outright (an alias bomb of under
  1 kB expands to about 10^9 nodes, and no intake form needs them);
* at most ``MAX_YAML_NODES`` nodes and ``MAX_YAML_DEPTH`` levels of nesting, counted on the
  parser's event stream before any Python object is built;
* ``BaseLoader`` keeps every scalar a string, so codes such as ``1.001612`` or
  ``000.00.12.H62`` never become floats; pydantic then converts counts and dates explicitly.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from digitize.errors import ConfigError, DigitizeError
from digitize.ingest.files import open_regular
from digitize.models import Flag, NotDigitisedReason, Severity, make_flag
from digitize.util import nfc

DOSSIER_YAML = "dossier.yaml"

# A real dossier.yaml is under 5 kB (a dozen components); the caps leave room for hundreds.
MAX_YAML_BYTES = 256 * 1024
MAX_YAML_NODES = 20_000
MAX_YAML_DEPTH = 16

# requirements §6
LEGACY_DOSSIER_CODE = re.compile(r"^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}-\d{6}-\d{4}$")
CENTRALISED_DOSSIER_CODE = re.compile(r"^[A-Z]\d{2}\.\d{3}\.\d{2}-\d{6}-\d{6,}$")
PROCEDURE_CODE = re.compile(r"^\d\.\d{6}(\.\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2})?$")
ORGAN_ID = re.compile(r"[A-Za-z0-9.\-]{1,13}")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ComponentSpec(_Spec):
    path: str | None = None
    name: str | None = None
    declared_pages: int | None = None
    note_slip_pages: tuple[int, ...] = ()
    not_digitised_reason: NotDigitisedReason | None = None
    paper_type: str | None = None  # catalogue key of the paper handed in (Art. 9 paper type)

    @field_validator("declared_pages")
    @classmethod
    def _non_negative(cls, value: int | None) -> int | None:
        if value is not None and value < 0:
            raise ValueError("must be >= 0")
        return value


class DossierSpec(_Spec):
    dossier_code: str | None = None
    procedure_code: str | None = None
    receiving_organ_id: str | None = None
    received_at: datetime | None = None
    components: tuple[ComponentSpec, ...] | None = None


def _nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _nulls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nulls(v) for v in value]
    if isinstance(value, str) and value in ("", "~", "null", "Null", "NULL"):
        return None
    return value


def _check_events(text: str, display: str) -> None:
    """Refuse anchors/aliases and over-large or over-deep documents from the event stream
    (constant memory: no node or Python object is built here)."""
    nodes = 0
    depth = 0
    for event in yaml.parse(text, Loader=yaml.BaseLoader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise ConfigError(
                "anchors and aliases (&name, *name) are not accepted", path=display
            )
        if isinstance(event, yaml.ScalarEvent | yaml.CollectionStartEvent):
            nodes += 1
            if nodes > MAX_YAML_NODES:
                raise ConfigError(f"more than {MAX_YAML_NODES} YAML nodes", path=display)
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise ConfigError(f"nested deeper than {MAX_YAML_DEPTH} levels", path=display)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _read_capped(path: Path, display: str) -> str:
    try:
        with open_regular(path.resolve(strict=True), display) as handle:
            data = handle.read(MAX_YAML_BYTES + 1)
    except DigitizeError as exc:
        raise ConfigError(exc.message, path=display) from exc
    except (OSError, RuntimeError) as exc:
        raise ConfigError(f"cannot read ({getattr(exc, 'strerror', None) or exc})", path=display) from exc
    if len(data) > MAX_YAML_BYTES:
        raise ConfigError(f"dossier.yaml is larger than {MAX_YAML_BYTES // 1024} kB", path=display)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError("not UTF-8 text", path=display) from exc


def load_dossier_yaml(path: Path) -> DossierSpec:
    """Read ``dossier.yaml``; unknown keys, bad values and hostile YAML (aliases, too big, too
    deep) are a ``ConfigError`` naming them. Never raises anything else."""
    display = nfc(Path(path).name)
    text = _read_capped(Path(path), display)
    try:
        _check_events(text, display)
        data = _nulls(yaml.load(text, Loader=yaml.BaseLoader))  # noqa: S506 - strings only
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" at line {line + 1}" if line is not None else ""
        raise ConfigError(f"invalid YAML{where}", path=display) from exc
    except RecursionError as exc:
        raise ConfigError(f"nested deeper than {MAX_YAML_DEPTH} levels", path=display) from exc
    if data is None:
        return DossierSpec()
    if not isinstance(data, dict):
        raise ConfigError("must be a mapping of keys to values", path=display)
    try:
        return DossierSpec.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = ".".join(str(p) for p in error["loc"])
        if error["type"] == "extra_forbidden":
            message = f"unknown key '{error['loc'][-1]}' (at {loc})"
        else:
            message = f"invalid value for '{loc}': {error['msg']}"
        raise ConfigError(message, path=display) from exc


def dossier_code_format(code: str) -> Literal["legacy", "centralised", "unknown"]:
    if LEGACY_DOSSIER_CODE.match(code):
        return "legacy"
    if CENTRALISED_DOSSIER_CODE.match(code):
        return "centralised"
    return "unknown"


def code_flags(spec: DossierSpec) -> list[Flag]:
    """Warnings for codes outside the shapes of requirements §6 (stored as given, R28–R29)."""
    flags: list[Flag] = []
    if spec.procedure_code is not None and not PROCEDURE_CODE.match(spec.procedure_code):
        flags.append(
            make_flag(
                "procedure_code_format_unknown",
                f"procedure code '{spec.procedure_code}' is not in the national format "
                "(R29: 1.001612 or 1.001612.000.00.00.H48)",
                Severity.WARNING,
            )
        )
    organ = spec.receiving_organ_id
    if organ is not None and not ORGAN_ID.fullmatch(organ):
        flags.append(
            make_flag(
                "receiving_organ_id_format",
                f"receiving organ id '{organ}' is not a 13-character agency code (§7)",
                Severity.WARNING,
            )
        )
    if spec.dossier_code is not None and dossier_code_format(spec.dossier_code) == "unknown":
        flags.append(
            make_flag(
                "dossier_code_format_unknown",
                f"dossier code '{spec.dossier_code}' matches neither the legacy nor the "
                "centralised format (R28); stored as given",
                Severity.WARNING,
            )
        )
    return flags
