"""The paper-type catalogue an extraction runs against: the built-in starter catalogue
(``digitize/data/paper_catalogue.yaml``) merged with the profile's types and codes.

Codes are opaque strings the office configures (R38); a type without one keeps ``code`` None,
and then no digitisation-result code can be built for its papers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml
from pydantic import ValidationError

from digitize.errors import ConfigError
from digitize.settings import CatalogueSettings, PaperType

OTHER = "other"
OTHER_NAME = "Giấy tờ khác"
STARTER_FILE = "paper_catalogue.yaml"


@dataclass(frozen=True)
class Catalogue:
    types: tuple[PaperType, ...]
    other: PaperType  # the type of a paper that was not recognised

    def get(self, key: str) -> PaperType | None:
        if key == OTHER:
            return self.other
        return next((t for t in self.types if t.key == key), None)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(t.key for t in self.types)


@lru_cache(maxsize=1)
def starter_types() -> tuple[PaperType, ...]:
    """The starter catalogue shipped with the package (codes empty)."""
    text = resources.files("digitize").joinpath("data", STARTER_FILE).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    try:
        return tuple(PaperType.model_validate(item) for item in data["types"])
    except ValidationError as exc:  # pragma: no cover - the shipped file is tested
        raise ConfigError(
            f"starter catalogue: {exc.errors()[0]['msg']}", path=STARTER_FILE
        ) from None


def load_catalogue(settings: CatalogueSettings) -> Catalogue:
    """Starter types (unless ``starter`` is off), replaced or extended by the profile's
    ``types``, then the profile's ``codes`` filled in (a null code is a blank still to fill:
    it leaves the type's own code). A code for an unknown key is a
    ``ConfigError``: a typo must not silently leave a type without its code."""
    types = {t.key: t for t in (starter_types() if settings.starter else ())}
    for paper_type in settings.types:
        types[paper_type.key] = paper_type
    other = PaperType(key=OTHER, name=OTHER_NAME)
    for key, code in settings.codes.items():
        if code is None and key in types:
            continue  # a blank left to fill in: the type keeps the code it has
        if key == OTHER:
            other = other.model_copy(update={"code": code})
        elif key in types:
            types[key] = types[key].model_copy(update={"code": code})
        else:
            known = ", ".join(sorted(types))
            raise ConfigError(
                f"extract.catalogue.codes: unknown paper type {key!r} (known: {known})"
            )
    return Catalogue(types=tuple(types.values()), other=other)
