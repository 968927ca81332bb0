"""The dossier-level pass, after every component is extracted: cross-paper checks of personal
ID numbers and the digitisation-result codes (TT 01/2023 Art. 7 step 3, R38).

Cross-paper checks. Papers of one dossier belong together: the same person's ID number is
printed or written on several of them. A 12-digit number read on one paper and read again,
digit for digit, on another is confirmed (two independent readings do not make the same
mistake): a doubt that a second reading answers (handwritten, weak confidence, single
reading) is lifted, with a note naming the other paper. The same name with two different ID
numbers on two papers flags both. Nothing is filled in from another paper: a value not read on
a paper stays None there.

Result codes. Built by the profile's template (default, after one provincial system:
``<owner id>.<TTHC code>.<paper-type code>.NN``) from the owner's ID, the dossier's procedure
code, the paper-type code and a running number per code prefix, so codes are unique within
the bundle. A part that is missing or still needs review gives no code and a review flag:
a code is never built from a guess.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

from digitize.extract.catalogue import Catalogue, load_catalogue
from digitize.extract.reader import LIFTABLE, with_doubt_codes
from digitize.extract.text import fold
from digitize.manifest import Art9Block, Art9Value, DocumentEntry
from digitize.models import Flag, make_flag
from digitize.settings import ExtractSettings

_ID = re.compile(r"\d{12}")


@dataclass(frozen=True)
class DossierFacts:
    """What the dossier pass needs besides the documents."""

    dossier_code: str
    procedure_code: str | None = None


def finish_dossier(
    documents: Sequence[DocumentEntry], facts: DossierFacts, settings: ExtractSettings
) -> list[DocumentEntry]:
    """The documents with their Art. 9 blocks cross-checked across papers and their
    digitisation-result codes assigned (in ``digitization_result_code``)."""
    blocks = {d.doc_ordinal: d.art9 for d in documents if d.art9 is not None}
    blocks = _confirm_ids(blocks)
    blocks = _name_conflicts(blocks, load_catalogue(settings.catalogue))
    codes, code_flags = _result_codes(documents, blocks, facts, settings)
    out = []
    for document in documents:
        block = blocks.get(document.doc_ordinal)
        if block is None:
            out.append(document)
            continue
        block = with_doubt_codes(block)
        flags = [f for f in document.flags if f.code != "art9_review"]
        if block.needs_review:
            flags.append(art9_flag(block))
        flags.extend(code_flags.get(document.doc_ordinal, ()))
        out.append(
            document.model_copy(
                update={
                    "art9": block,
                    "digitization_result_code": codes.get(document.doc_ordinal)
                    or document.digitization_result_code,
                    "flags": tuple(flags),
                }
            )
        )
    return out


def art9_flag(block: Art9Block) -> Flag:
    keys = [k for k, v in block.values().items() if v.needs_review]
    keys += [f"fields.{k}" for k, v in block.fields.items() if v.needs_review]
    return make_flag("art9_review", "Art. 9 values to check: " + ", ".join(keys))


def _readings(blocks: dict[int, Art9Block]) -> dict[str, set[int]]:
    """12-digit number → the papers it was read on."""
    seen: dict[str, set[int]] = {}
    for ordinal, block in blocks.items():
        for value in (block.owner_id, *block.fields.values()):
            if value.value and _ID.fullmatch(value.value):
                seen.setdefault(value.value, set()).add(ordinal)
    return seen


def _confirm(value: Art9Value, others: set[int]) -> Art9Value:
    if not value.value or not _ID.fullmatch(value.value) or not value.doubts:
        return value
    if not others or not set(value.doubts) <= LIFTABLE:
        return value
    where = ", ".join(f"document {n}" for n in sorted(others))
    note = f"confirmed: the same number is read on {where}"
    return value.model_copy(
        update={
            "doubts": (),
            "needs_review": False,
            "note": f"{value.note}; {note}" if value.note else note,
        }
    )


def _confirm_ids(blocks: dict[int, Art9Block]) -> dict[int, Art9Block]:
    seen = _readings(blocks)
    out = {}
    for ordinal, block in blocks.items():

        def confirmed(value: Art9Value, ordinal: int = ordinal) -> Art9Value:
            return _confirm(value, seen.get(value.value or "", set()) - {ordinal})

        out[ordinal] = block.model_copy(
            update={
                "owner_id": confirmed(block.owner_id),
                "fields": {k: confirmed(v) for k, v in block.fields.items()},
            }
        )
    return out


def _name_conflicts(blocks: dict[int, Art9Block], catalogue: Catalogue) -> dict[int, Art9Block]:
    """The same owner name with two different unflagged owner IDs: both flagged."""
    by_name: dict[str, list[int]] = {}
    for ordinal, block in blocks.items():
        name = _holder_name(block, catalogue)
        if name and block.owner_id.value and not block.owner_id.needs_review:
            by_name.setdefault(name, []).append(ordinal)
    out = dict(blocks)
    for ordinals in by_name.values():
        numbers = {blocks[o].owner_id.value for o in ordinals}
        if len(numbers) < 2:
            continue
        for o in ordinals:
            owner = out[o].owner_id
            note = "the same name carries another ID number on another paper of the dossier"
            out[o] = out[o].model_copy(
                update={
                    "owner_id": owner.model_copy(
                        update={
                            "needs_review": True,
                            "doubts": (*owner.doubts, "conflict"),
                            "note": f"{owner.note}; {note}" if owner.note else note,
                        }
                    )
                }
            )
    return out


def _holder_name(block: Art9Block, catalogue: Catalogue) -> str | None:
    paper_type = catalogue.get(block.paper_type_key)
    source = paper_type.art9.owner_name if paper_type else None
    value = block.fields.get(source) if source else None
    if value is None or not value.value or value.needs_review:
        return None
    return " ".join(fold(value.value).split())


def _result_codes(
    documents: Sequence[DocumentEntry],
    blocks: dict[int, Art9Block],
    facts: DossierFacts,
    settings: ExtractSettings,
) -> tuple[dict[int, str], dict[int, list[Flag]]]:
    template = settings.catalogue.result_code_template
    codes: dict[int, str] = {}
    flags: dict[int, list[Flag]] = {}
    running: dict[str, int] = {}
    for document in sorted(documents, key=lambda d: d.doc_ordinal):
        block = blocks.get(document.doc_ordinal)
        if block is None or document.file is None:
            continue
        parts = result_code_parts(block, document.doc_ordinal, facts)
        missing = missing_result_code_parts(template, parts)
        if missing:
            flags[document.doc_ordinal] = [result_code_flag(missing)]
            continue
        prefix = template.split("{n")[0].format(**parts, n=0) if "{n" in template else ""
        running[prefix] = running.get(prefix, 0) + 1
        codes[document.doc_ordinal] = template.format(**parts, n=running[prefix])
    return codes, flags


# Why a part of the result code is missing (the flag's message names each; a review reads
# them back with ``missing_parts_in``).
RESULT_CODE_WHY = {
    "owner_id": "the owner's ID is not read or needs review",
    "procedure_code": "the dossier has no procedure code (dossier.yaml procedure_code)",
    "paper_type_code": "the paper type has no code (extract.catalogue.codes)",
    "dossier_code": "no dossier code",
    "ordinal": "no ordinal",
}


def result_code_parts(block: Art9Block, ordinal: int, facts: DossierFacts) -> dict[str, object]:
    """The values the result-code template may use (None where missing or still doubtful);
    the running number ``n`` is the caller's."""
    return {
        "owner_id": _trusted(block.owner_id),
        "procedure_code": facts.procedure_code,
        "paper_type_code": block.paper_type_code.value,
        "dossier_code": facts.dossier_code,
        "ordinal": ordinal,
    }


def missing_result_code_parts(template: str, parts: dict[str, object]) -> list[str]:
    """The placeholders of ``template`` (but ``n``) that ``parts`` does not fill, sorted."""
    wanted = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    return sorted(k for k in wanted - {"n"} if parts.get(k) in (None, ""))


def result_code_flag(missing: Sequence[str]) -> Flag:
    """The review flag of a document that gets no result code, naming why."""
    return make_flag(
        "result_code_missing",
        "no digitisation-result code: " + ", ".join(RESULT_CODE_WHY[k] for k in missing),
    )


def missing_parts_in(flag: Flag) -> list[str]:
    """The parts a ``result_code_missing`` flag names (read back from its message)."""
    return [key for key, why in RESULT_CODE_WHY.items() if why in flag.message]


def _trusted(value: Art9Value) -> str | None:
    return value.value if value.value and not value.needs_review else None


def build_result_code(template: str, parts: dict[str, object]) -> str | None:
    """The result code from ``parts`` (e.g. after a value was corrected at review); None when
    a part the template uses is missing."""
    wanted = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    if any(parts.get(name) in (None, "") for name in wanted):
        return None
    return template.format(**parts)
