"""Signer back-ends behind one interface (R27): the ``digitize.signers`` registry, a back-end
from another package plugged in without touching the built-ins, per-back-end settings (and
the flat keys of older profiles), the package as installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from digitize.errors import ConfigError, SignerConfigError
from digitize.profiles import load_profile
from digitize.sign import SigningSettings, backend_names, get_backend, open_signer
from digitize.sign.backends import BUILTIN_BACKENDS, ENTRY_POINT_GROUP, SignerBackend
from tests import helpers_pki
from tests.helpers_pki import NAMES, PFX_PASSWORD, PkiServices, make_pdfa_sample

vn_pki = helpers_pki.vn_pki
REPO = Path(__file__).resolve().parents[1]


def test_builtin_backends_are_declared_entry_points() -> None:
    """The installed metadata lists the four built-ins in the group, each loading a back-end
    whose name is its entry-point name."""
    from importlib.metadata import entry_points

    declared = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert {"demo", "pkcs12", "pkcs11", "csc"} <= set(declared)
    for name in ("demo", "pkcs12", "pkcs11", "csc"):
        cls = declared[name].load()
        assert issubclass(cls, SignerBackend) and cls.name == name
        assert declared[name].value == BUILTIN_BACKENDS[name]


def test_builtins_are_found_without_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    """An in-tree checkout with no installed metadata still finds every built-in."""
    import digitize.sign.backends as registry

    monkeypatch.setattr(registry, "entry_points", lambda group: [])
    assert backend_names() == ["csc", "demo", "pkcs11", "pkcs12"]
    assert get_backend("pkcs11").name == "pkcs11"


def test_unknown_backend_names_the_known_ones() -> None:
    with pytest.raises(SignerConfigError) as exc:
        open_signer(SigningSettings(backend="smartca"))
    assert "smartca" in str(exc.value) and "pkcs11" in str(exc.value)


PLUGIN = '''
from pathlib import Path
from pydantic import BaseModel, ConfigDict
from digitize.sign.backends import KeyMaterial, OpenContext, SignerBackend
from digitize.sign.backends.pkcs12 import load_pkcs12
from digitize.sign.secrets import read_secret


class AcmeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key_file: str
    secret_env: str = "ACME_SECRET"


class AcmeBackend(SignerBackend):
    """A third-party key source: here a key file read its own way."""

    name = "acme"
    options_model = AcmeOptions

    async def open(self, ctx: OpenContext) -> KeyMaterial:
        options = self.options(ctx.settings)
        secret = read_secret(options.secret_env, "Acme secret")
        return load_pkcs12(Path(options.key_file).read_bytes(), secret.encode(),
                           options.key_file, ctx.prefer_pss)
'''

PLUGIN_USER = '''
import json, sys
from datetime import datetime, timezone
from pathlib import Path
from digitize.errors import DigitizeError
from digitize.sign import SigningSettings, backend_names, get_backend, open_signer
key_file, root, src, out = sys.argv[1:5]
settings = SigningSettings(backend="acme", level="B-B", trust_roots=(root,),
                           backend_options={"key_file": key_file})
signer = open_signer(settings)
try:
    record = signer.sign_pdf(Path(src), Path(out), scan_time=datetime.now(timezone.utc))
finally:
    signer.close()
try:
    open_signer(settings.model_copy(update={"backend_options": {"keyfile": key_file}}))
    bad = None
except DigitizeError as e:
    bad = [type(e).__name__, str(e)]
print(json.dumps({"signer": record.signer.full_name, "names": backend_names(), "bad": bad,
                  "pkcs11": type(get_backend("pkcs11")).__module__}))
'''


def test_a_backend_from_another_package_plugs_in(vn_pki: PkiServices, tmp_path: Path) -> None:
    """R27: a distribution that declares ``[digitize.signers] acme = ...`` adds a back-end
    with its own settings model; it signs like the built-ins; an entry point cannot replace a
    built-in name (``pkcs11`` here stays the token back-end)."""
    import json

    site = tmp_path / "site"
    (site / "acme_signer").mkdir(parents=True)
    (site / "acme_signer" / "__init__.py").write_text(PLUGIN)
    dist = site / "acme_signer-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-signer\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[digitize.signers]\nacme = acme_signer:AcmeBackend\npkcs11 = acme_signer:AcmeBackend\n"
    )
    src = make_pdfa_sample(tmp_path / "in.pdf")
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{REPO}", "ACME_SECRET": PFX_PASSWORD}
    done = subprocess.run(
        [sys.executable, "-c", PLUGIN_USER, str(vn_pki.pkcs12_path("hoa")), str(vn_pki.root_cert),
         str(src), str(tmp_path / "out.pdf")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.splitlines()[-1])
    assert answer["signer"] == NAMES["hoa"] and (tmp_path / "out.pdf").is_file()
    assert "acme" in answer["names"]
    assert answer["bad"][0] == "SignerConfigError" and "backend_options" in answer["bad"][1]
    assert answer["pkcs11"] == "digitize.sign.backends.pkcs11"


# --- settings -----------------------------------------------------------------------------------
def test_flat_keys_of_older_profiles_still_load(tmp_path: Path) -> None:
    """Profiles written before the per-back-end blocks keep working; a time zone other than
    Vietnam's is refused (the note and signing time are Vietnam time)."""
    old = tmp_path / "office.yaml"
    old.write_text(textwrap.dedent("""\
        sign:
          backend: pkcs11
          pkcs11_module: /usr/lib/x86_64-linux-gnu/libvnpt-ca.so
          pkcs11_key_label: hoa
          csc_url: https://csc.example.vn
          timezone: Asia/Ho_Chi_Minh
        """))  # fmt: skip
    sign = load_profile(old).sign
    assert sign.pkcs11.module == "/usr/lib/x86_64-linux-gnu/libvnpt-ca.so"
    assert sign.pkcs11.key_label == "hoa" and sign.pkcs11.pin_env == "DIGITIZE_PKCS11_PIN"
    assert sign.csc.url == "https://csc.example.vn"
    paris = tmp_path / "paris.yaml"
    paris.write_text("sign:\n  timezone: Europe/Paris\n")
    with pytest.raises(ConfigError, match="timezone"):
        load_profile(paris)
    typo = tmp_path / "typo.yaml"
    typo.write_text("sign:\n  pkcs11:\n    modul: /x.so\n")
    with pytest.raises(ConfigError, match="sign.pkcs11.modul"):
        load_profile(typo)


def test_bundled_profiles_use_the_backend_blocks() -> None:
    token = load_profile("so-tu-phap").sign
    assert token.backend == "pkcs11" and token.pkcs11.key_label == "hoa" and token.trust_roots
    remote = load_profile("xa-mot-cua").sign
    assert remote.csc.url is not None and remote.csc.url.startswith("https://")
    assert load_profile("default").sign.time_format == "vn"


@pytest.mark.slow
def test_wheel_ships_the_sign_package_and_its_entry_points(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(REPO)], check=True, capture_output=True)  # fmt: skip
    wheel = zipfile.ZipFile(next(tmp_path.glob("digitize-*.whl")))
    names = wheel.namelist()
    for module in ("base", "certs", "stamp", "demo", "secrets", "pades", "prepare", "opening",
                   "backends/__init__", "backends/pkcs11", "backends/csc"):  # fmt: skip
        assert f"digitize/sign/{module}.py" in names, module
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = wheel.read(entry_points).decode()
    assert "[digitize.signers]" in text and "pkcs11 = digitize.sign.backends.pkcs11" in text
