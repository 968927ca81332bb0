"""Walking a dossier folder: which files are scans, which component each belongs to (R3, R5).

Light (stdlib + models): batch and watch use ``natural_key`` without importing any decoder.
Nothing here opens a scan: entries are classified from ``os.scandir``/``stat`` alone, and a
FIFO, device or socket named like a scan is refused before anything could block on it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from digitize.errors import ConfigError, UnsafePathError
from digitize.ingest.files import refuse_non_regular
from digitize.ingest.spec import DOSSIER_YAML, ComponentSpec, DossierSpec
from digitize.models import Flag, PageVariant, Severity, make_flag
from digitize.util import nfc

SCAN_EXTENSIONS = {
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".jpe": "jpeg",
    ".jfif": "jpeg",
    ".png": "png",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".bmp": "bmp",
    ".dib": "bmp",
    ".pdf": "pdf",
}


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """``p2`` < ``p10``; case- and normalisation-insensitive."""
    parts = re.split(r"(\d+)", nfc(name).casefold())
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts if p != "")


def is_ignorable_name(name: str) -> bool:
    lowered = name.casefold()
    return (
        name.startswith(".")
        or name.startswith("~$")
        or lowered in ("thumbs.db", "desktop.ini")
        or lowered.endswith((".part", ".tmp", ".crdownload", ".partial"))
    )


def is_scan_name(name: str) -> bool:
    return not is_ignorable_name(name) and Path(name).suffix.casefold() in SCAN_EXTENSIONS


@dataclass
class DossierWalk:
    root: Path  # the dossier folder (or the parent of a single file), resolved
    label: str  # NFC name shown in messages (the dossier folder name)
    ignored: list[Path] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)

    def display(self, path: Path) -> str:
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            rel = Path(path.name)
        return nfc(f"{self.label}/{rel.as_posix()}") if self.label else nfc(rel.as_posix())

    def check_inside(self, path: Path) -> Path:
        """Symlinks may point anywhere inside the dossier tree, never outside it. Returns the
        resolved path."""
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            raise UnsafePathError(
                "path cannot be resolved (broken or looping link)", path=self.display(path)
            ) from exc
        if real != self.root and self.root not in real.parents:
            raise UnsafePathError(
                "symbolic link points outside the dossier folder", path=self.display(path)
            )
        return real

    @property
    def yaml_display(self) -> str:
        return self.display(self.root / DOSSIER_YAML)


@dataclass
class ComponentPlan:
    name: str
    files: list[Path]
    spec: ComponentSpec | None = None
    flags: list[Flag] = field(default_factory=list)


def _list_dir(directory: Path) -> list[os.DirEntry[str]]:
    with os.scandir(directory) as entries:
        return sorted(entries, key=lambda e: natural_key(e.name))


def _accept_file(entry: os.DirEntry[str], path: Path, walk: DossierWalk) -> bool:
    """A scan-named entry is a regular file (checked with stat, never opened), else refused."""
    if entry.is_symlink():
        walk.check_inside(path)
    if not entry.is_file():
        refuse_non_regular(path, walk.display(path))
    return True


def scan_files_in(directory: Path, walk: DossierWalk) -> list[Path]:
    files: list[Path] = []
    for entry in _list_dir(directory):
        path = directory / entry.name
        if entry.is_symlink():
            walk.check_inside(path)
        if entry.is_dir():
            walk.ignored.append(path)  # pages of a component sit directly in its folder
            continue
        if is_scan_name(entry.name) and _accept_file(entry, path, walk):
            files.append(path)
        else:
            walk.ignored.append(path)
    return files


def find_entry(root: Path, wanted: str) -> Path | None:
    """The entry named in dossier.yaml; names are compared in NFC (yaml typed in NFC, folder
    written by macOS in NFD), the real on-disk name is what we keep."""
    direct = root / wanted
    if os.path.lexists(direct):
        return direct
    current = root
    for part in Path(wanted).parts:
        if not current.is_dir():
            return None
        with os.scandir(current) as entries:
            matches = [e.name for e in entries if nfc(e.name) == nfc(part)]
        if not matches:
            return None
        current = current / matches[0]
    return current


def _declared_component(
    number: int, cspec: ComponentSpec, root: Path, walk: DossierWalk, used: set[Path]
) -> ComponentPlan:
    files: list[Path] = []
    flags: list[Flag] = []
    if cspec.path is not None:
        rel = Path(cspec.path)
        if rel.is_absolute() or ".." in rel.parts:
            raise UnsafePathError(
                f"component {number} path '{cspec.path}' leaves the dossier folder",
                path=walk.yaml_display,
            )
        found = find_entry(root, cspec.path)
        if found is None:
            raise ConfigError(
                f"component {number}: '{cspec.path}' does not exist", path=walk.yaml_display
            )
        walk.check_inside(found)
        used.add(found)
        if found.is_dir():
            files = scan_files_in(found, walk)
        elif is_scan_name(found.name):
            refuse_non_regular(found, walk.display(found))
            files = [found]
        else:
            raise ConfigError(
                f"component {number}: '{cspec.path}' is not a scan file or folder",
                path=walk.yaml_display,
            )
    elif cspec.not_digitised_reason is None:
        raise ConfigError(
            f"component {number} needs a 'path' (or a not_digitised_reason)",
            path=walk.yaml_display,
        )
    name = cspec.name or (Path(cspec.path).stem if cspec.path else f"component {number}")
    if cspec.not_digitised_reason is not None and files:
        flags.append(
            make_flag(
                "not_digitised_has_scans",
                f"component '{nfc(name)}' is marked not digitised "
                f"({cspec.not_digitised_reason.value}); its {len(files)} file(s) are not used",
                Severity.WARNING,
            )
        )
        files = []
    return ComponentPlan(nfc(name), files, cspec, flags)


def plan_components(root: Path, spec: DossierSpec | None, walk: DossierWalk) -> list[ComponentPlan]:
    """Components in order: as listed in dossier.yaml, else one per sub-folder or scan file."""
    candidates: dict[str, Path] = {}
    for entry in _list_dir(root):
        path = root / entry.name
        if entry.name == DOSSIER_YAML:
            continue
        if entry.is_symlink():
            walk.check_inside(path)
        if entry.is_dir():
            candidates[entry.name] = path
        elif is_scan_name(entry.name) and _accept_file(entry, path, walk):
            candidates[entry.name] = path
        else:
            walk.ignored.append(path)
    if spec is not None and spec.components is not None:
        used: set[Path] = set()
        plans = [
            _declared_component(number, cspec, root, walk, used)
            for number, cspec in enumerate(spec.components, start=1)
        ]
        for name, path in candidates.items():
            if path not in used:
                has_scans = path.is_file() or bool(scan_files_in(path, DossierWalk(walk.root, "")))
                if has_scans:
                    raise ConfigError(
                        f"'{nfc(name)}' holds scans but is not listed in components",
                        path=walk.yaml_display,
                    )
                walk.ignored.append(path)
        return plans
    plans = []
    for name, path in candidates.items():
        if path.is_dir():
            files = scan_files_in(path, walk)
            if not files:
                walk.flags.append(
                    make_flag(
                        "empty_folder_ignored",
                        f"{walk.display(path)}: folder holds no scans",
                        Severity.INFO,
                    )
                )
                continue
            plans.append(ComponentPlan(nfc(name), files))
        else:
            plans.append(ComponentPlan(nfc(Path(name).stem), [path]))
    return plans


def assign_physical_pages(
    count: int, spec: ComponentSpec | None, name: str, walk: DossierWalk
) -> list[tuple[int, PageVariant]]:
    """R5/R6: the physical page and variant of each image, in order; a page listed in
    ``note_slip_pages`` is captured twice (with the slip, then without)."""
    notes = set(spec.note_slip_pages) if spec is not None else set()
    if spec is not None:
        if len(notes) != len(spec.note_slip_pages):
            raise ConfigError(
                f"component '{name}': note_slip_pages lists a page twice", path=walk.yaml_display
            )
        limit = spec.declared_pages
        bad = [p for p in notes if p < 1 or (limit is not None and p > limit)]
        if bad:
            raise ConfigError(
                f"component '{name}': note_slip_pages {sorted(bad)} outside 1..{limit or '∞'}",
                path=walk.yaml_display,
            )
    result: list[tuple[int, PageVariant]] = []
    physical = 1
    while len(result) < count:
        if physical in notes:
            result.append((physical, PageVariant.WITH_NOTE))
            if len(result) < count:
                result.append((physical, PageVariant.NOTE_REMOVED))
        else:
            result.append((physical, PageVariant.SINGLE))
        physical += 1
    return result
