"""Profiles: defaults, office overrides, one-line errors naming the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from digitize.cli.main import main, run_main  # noqa: F401 - registers commands
from digitize.errors import ConfigError, ExitCode
from digitize.profiles import list_profiles, load_profile


def test_bundled_profiles_load_and_differ_from_default() -> None:
    names = list_profiles()
    assert {"default", "so-tu-phap", "xa-mot-cua"} <= set(names)
    default = load_profile("default")
    commune = load_profile("xa-mot-cua")
    assert default.ingest.min_dpi == 200  # R10
    assert default.ingest.allow_grayscale is False  # R11
    assert commune.ingest.allow_grayscale is True
    assert commune.sign.backend == "csc"
    assert commune.ingest.min_dpi == 200  # inherited, not repeated
    assert load_profile("so-tu-phap").sign.level is not None


def test_unknown_key_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "office.yaml"
    bad.write_text("ocr:\n  langauge: vie\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_profile(bad)
    assert "ocr.langauge" in info.value.one_line()
    assert info.value.exit_code == ExitCode.CONFIG


def test_invalid_yaml_and_wrong_type(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("ocr: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_profile(broken)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("ingest:\n  min_dpi: lots\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="ingest.min_dpi"):
        load_profile(wrong)


def test_unknown_profile_name_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match="xa-mot-cua"):
        load_profile("no-such-office")


def test_profile_show_prints_merged_settings() -> None:
    from digitize.cli import commands_pipeline  # noqa: F401

    result = CliRunner().invoke(main, ["profile", "show", "xa-mot-cua"])
    assert result.exit_code == 0, result.output
    assert "allow_grayscale: true" in result.output
    assert "min_dpi: 200" in result.output
    bad = CliRunner().invoke(main, ["profile", "show", "nope"])
    assert bad.exit_code == int(ExitCode.CONFIG)
    assert "unknown profile" in bad.output
