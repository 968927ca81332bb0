"""Manifest schema (requirements §7): published JSON Schema is current and validates bundles."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from digitize.manifest import manifest_json_schema

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "docs" / "manifest.schema.json"


def test_published_schema_is_generated_from_the_model() -> None:
    published = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert published == manifest_json_schema(), (
        "docs/manifest.schema.json is stale: run "
        "`python -m digitize.manifest > docs/manifest.schema.json`"
    )


def test_schema_validates_the_sample_manifest_and_rejects_a_broken_one(sample_run) -> None:  # type: ignore[no-untyped-def]
    result, _ = sample_run
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    data = json.loads((result.bundle_path / "manifest.json").read_text(encoding="utf-8"))
    jsonschema.validate(data, schema)
    data["documents"][0]["doc_ordinal"] = "first"
    try:
        jsonschema.validate(data, schema)
    except jsonschema.ValidationError:
        pass
    else:  # pragma: no cover - the assertion is the point
        raise AssertionError("schema accepted a non-integer doc_ordinal")


def test_times_carry_the_vietnam_offset(sample_run) -> None:  # type: ignore[no-untyped-def]
    result, _ = sample_run
    data = json.loads((result.bundle_path / "manifest.json").read_text(encoding="utf-8"))
    assert data["created_at"].endswith("+07:00")
    signature = data["documents"][0]["signature"]
    assert signature["signed_at"].endswith("+07:00")
    assert signature["scan_time_shown"].endswith("+07:00")
