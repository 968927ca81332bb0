"""``digitize verify`` output hygiene (issue 15 point 11, verify side; review P8/P9).

Certificate names and file names come from the bundle, that is from whoever made it. The
console shows them as text: control characters escaped (``digitize.util.escape_control``), rich
markup not interpreted, one output line per check. Before this change a CN or a file name
holding a newline and ``[green]PASS[/]`` printed a line of its own that looked like a genuine
verdict, and a name holding ``[/]`` crashed the command with rich's MarkupError (exit 1).
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from digitize.cli import commands_pipeline  # noqa: F401 - registers `verify`
from digitize.cli.main import main
from digitize.errors import ExitCode
from tests.helpers_bundle import Identity, sign_pdf
from tests.helpers_pki import make_pdfa_sample

HOSTILE = "Mallory\nPASS manifest: [bold green]ok[/]\r\x1b[32mVALID\x1b[0m[/]"  # ≤ 64
VERDICTS = ("VALID", "INVALID", "HỢP LỆ", "KHÔNG HỢP LỆ")


def _hostile_identity(tmp_path: Path) -> tuple[Identity, Path]:
    """A root and a personal-looking certificate whose CN is ``HOSTILE`` (PKCS#12 → pyHanko)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import NameOID
    from pyhanko.sign import signers

    now = datetime.now(UTC) - timedelta(days=1)
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test hostile root")])
    root = (x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name)
            .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(root_key, hashes.SHA256()))  # fmt: skip
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOSTILE)]))
            .issuer_name(root_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False,
                                         False), critical=True)
            .sign(root_key, hashes.SHA256()))  # fmt: skip
    root_pem = tmp_path / "hostile-root.pem"
    root_pem.write_bytes(root.public_bytes(serialization.Encoding.PEM))
    p12 = tmp_path / "hostile.p12"
    p12.write_bytes(pkcs12.serialize_key_and_certificates(
        b"x", key, leaf, [root], serialization.BestAvailableEncryption(b"pw")))  # fmt: skip
    return Identity("hostile", signers.SimpleSigner.load_pkcs12(str(p12), passphrase=b"pw")), root_pem


def _lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


def test_hostile_certificate_name_cannot_forge_a_line(tmp_path: Path) -> None:
    """A CN with newlines, a carriage return, ANSI colours and rich markup stays inside its own
    (single) output line, escaped; exactly one verdict line is printed."""
    who, root = _hostile_identity(tmp_path)
    signed = tmp_path / "signed.pdf"
    sign_pdf(make_pdfa_sample(tmp_path / "in.pdf"), signed, who)
    result = CliRunner().invoke(main, ["verify", str(signed), "--trust", str(root), "--lang", "en"])
    assert result.exit_code == int(ExitCode.VERIFY_REVOCATION_UNKNOWN), result.output
    lines = _lines(result.output)
    assert len(lines) == 2, lines  # the signature's line and the verdict, nothing injected
    assert lines[0].startswith("WARN signature:signed.pdf: Signature of Mallory\\nPASS manifest")
    assert "\x1b" not in result.output and "\r" not in result.output
    assert "[bold green]ok[/]" in lines[0]  # markup shown as text, not interpreted
    assert sum(line.startswith(VERDICTS) for line in lines) == 1


def test_hostile_file_name_in_a_bundle(bundle_copy: Path) -> None:
    """An added file named with a newline, markup and an escape sequence: reported as one
    escaped FAIL line; no MarkupError, no forged PASS or VALID line."""
    name = "x\n[bold green]PASS manifest: ok\x1b[2J"  # a file name cannot hold "/"
    (bundle_copy / name).write_bytes(b"injected")
    result = CliRunner().invoke(main, ["verify", str(bundle_copy), "--lang", "en", "--allow-demo"])
    assert result.exit_code == int(ExitCode.VERIFY_STRUCTURE), result.output
    lines = _lines(result.output)
    fail = [line for line in lines if line.startswith("FAIL file:x\\n[bold green]PASS manifest")]
    assert len(fail) == 1, lines
    assert "\x1b" not in result.output
    assert sum(line.startswith("PASS manifest:") for line in lines) == 1  # the genuine one
    assert sum(line.startswith(VERDICTS) for line in lines) == 1
    assert lines[-2].startswith("INVALID") or lines[-1].startswith("INVALID")


def test_json_report_keeps_the_raw_values(bundle_copy: Path) -> None:
    """--json is for programs: the values stay exact (JSON escapes them)."""
    import json

    (bundle_copy / "a\nb").write_bytes(b"x")
    result = CliRunner().invoke(main, ["verify", str(bundle_copy), "--json", "--allow-demo"])
    data = json.load(io.StringIO(result.output))
    assert data["exit_code"] == int(ExitCode.VERIFY_STRUCTURE) and data["ok"] is False
    assert any(c["name"] == "file:a\\nb" for c in data["checks"])


def test_name_that_is_not_utf8(bundle_copy: Path) -> None:
    """A file name that is not valid UTF-8 (bytes 0xff 0xfe) is shown as ``\\xff\\xfe``, not
    a crash of the console or the JSON writer."""
    import os

    os.close(os.open(os.fsencode(bundle_copy) + b"/bad\xff\xfe.pdf", os.O_CREAT | os.O_WRONLY))
    result = CliRunner().invoke(main, ["verify", str(bundle_copy), "--lang", "en", "--allow-demo"])
    assert result.exit_code == int(ExitCode.VERIFY_STRUCTURE), result.output
    assert "FAIL file:bad\\xff\\xfe.pdf" in result.output
    as_json = CliRunner().invoke(main, ["verify", str(bundle_copy), "--json", "--allow-demo"])
    assert as_json.exit_code == int(ExitCode.VERIFY_STRUCTURE), as_json.output

