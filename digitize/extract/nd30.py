"""Header fields of a document in the ND 30/2020 layout: organ, number and notation, place and
date, type heading and trích yếu, signer block and ``Nơi nhận`` (requirements §8)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

from digitize.extract.fields import FieldCollector, text_field
from digitize.extract.header import Header, find_header
from digitize.extract.lines import Line, lines_of, min_word_confidence
from digitize.extract.parsers import DIGIT_LOOKALIKES, match_doc_type, type_of_notation
from digitize.extract.text import fold, is_caps, similarity, strip_marks
from digitize.extract.vietnamese import restore_admin_words
from digitize.extract.vocab import BODY_START, CONG_VAN, LEVEL_WORDS, SIGNER_PREFIX, VBHN
from digitize.models import ExtractedField, PageOcr
from digitize.settings import ExtractSettings


def _read_number(header: Header, out: FieldCollector) -> None:
    if header.number is None:
        return
    line, parsed = header.number
    settings = out.settings
    notation_words = line.words_in(parsed.notation_span)
    notes = ["notation spelling corrected (Đ)"] if parsed.corrected else []
    review = False
    if not parsed.anchored:
        review = True
        notes.append('"Số:" not read')
    odd = sorted({ch for ch in parsed.notation if not (ch.isalnum() or ch in "&.-")})
    if odd or not re.fullmatch(r"[^\W\d_][\w&.]*(-[\w&.]+)*", parsed.notation):
        review = True
        notes.append("unexpected characters in the notation: " + "".join(odd))
    out.add(
        "code_notation",
        parsed.notation,
        header.page,
        notation_words,
        review=review,
        note="; ".join(notes) or None,
    )
    if parsed.number is None:
        read = f" (read as {parsed.number_text!r})" if parsed.number_text else ""
        out.add(
            "code_number",
            "",
            header.page,
            line.words_in(parsed.number_span or parsed.span),
            confidence=0.0,
            review=True,
            note=f"number not read (handwritten or blank){read}",
        )
    else:
        words = line.words_in(parsed.number_span or parsed.span)
        notes = []
        if min_word_confidence(words) < settings.min_number_confidence:
            notes.append("digits read with low confidence (handwritten?)")
        if parsed.number_in_blank:
            notes.append("number filled into the blank before the slash (handwritten or stamped)")
        out.add(
            "code_number",
            parsed.number,
            header.page,
            words,
            review=bool(notes),
            note="; ".join(notes) or None,
        )
    if parsed.year:
        out.add("code_year", parsed.year, header.page, line.words_in(parsed.span))


def _read_date(header: Header, out: FieldCollector) -> None:
    if header.date is None:
        return
    line, parsed = header.date
    settings = out.settings
    words = line.words_in(parsed.span)
    if parsed.place:
        place, restored = restore_admin_words(parsed.place)
        out.add(
            "issued_place",
            place,
            header.page,
            line.words_in(parsed.place_span or parsed.span),
            note="diacritics restored from the place-name list" if restored else None,
        )
    number_words = [w for w in words if any(ch.isdigit() for ch in w.text)]
    digits_conf = min_word_confidence(number_words)
    if parsed.date is None:
        unread = [
            part
            for part, text in (("day", parsed.day_text), ("month", parsed.month_text))
            if not text.isdigit()
        ]
        note = f"{' and '.join(unread)} not read (handwritten?)" if unread else "not a valid date"
        out.add(
            "issued_date",
            parsed.partial,
            header.page,
            words,
            confidence=0.0,
            review=True,
            note=note,
        )
        return
    notes = []
    review = False
    if digits_conf < settings.min_number_confidence:
        review = True
        notes.append("digits read with low confidence (handwritten?)")
    if not parsed.leading_zero_ok:
        review = True
        notes.append("day < 10 or month 1–2 without a leading zero (ND 30)")
    # Handwritten day or month digits stand taller than the printed year beside them.
    year_words = [w for w in words if parsed.year_text in w.text.translate(DIGIT_LOOKALIKES)]
    if year_words:
        printed = year_words[-1].bbox[3] - year_words[-1].bbox[1]
        filled = [
            w
            for w in words
            if w not in year_words
            and re.fullmatch(r"\W*\d{1,2}\W*", w.text)
            and w.bbox[3] - w.bbox[1] > 1.15 * printed
        ]
        if filled:
            review = True
            notes.append("day/month digits taller than the printed year (handwritten?)")
    if not 1945 <= parsed.date.year <= date.today().year + 1:
        review = True
        notes.append(f"year {parsed.date.year} out of range")
    out.add(
        "issued_date",
        parsed.date.isoformat(),
        header.page,
        words,
        confidence=min(min_word_confidence(words), 1.0),
        review=review,
        note="; ".join(notes) or None,
    )


def _read_organ(header: Header, out: FieldCollector) -> None:
    """Caps lines of the left header column, above the number line."""
    top_limit = header.motto.bbox[1] - 2 * header.motto.height if header.motto else 0
    bottom = None
    if header.number is not None:
        bottom = header.number[0].bbox[1]
    elif header.motto is not None:
        bottom = header.motto.bbox[3] + 4 * header.motto.height
    if bottom is None:
        return
    right_edge = min(0.62 * header.width, header.split_x + 0.05 * header.width)
    block = [
        line
        for line in header.lines
        if line.bbox[3] <= bottom + 2
        and line.bbox[1] >= top_limit
        and line.bbox[2] < right_edge
        and line.centre_x < 0.45 * header.width
        and is_caps(line.text)
        and line is not header.motto
        and not re.search(r"[/:]|\bden\b", fold(strip_marks(line.text)))  # "Số:", stamp
    ]
    if not block:
        return
    # Specks and seal strokes read as one capital ("R") are not organ lines.
    tallest = max(line.height for line in block)
    block = [
        line
        for line in block
        if line.height >= 0.5 * tallest and sum(ch.isalpha() for ch in line.text) >= 2
    ]
    block.sort(key=lambda line: line.bbox[1])
    if not block:
        return
    texts = [fold(strip_marks(line.text)) for line in block]
    # "ỦY BAN NHÂN DÂN / TỈNH X" is one organ over two lines; otherwise the first line is the
    # parent organ (cơ quan chủ quản) and the rest the issuing organ.
    one_organ = (
        len(block) >= 2
        and texts[1].startswith(LEVEL_WORDS)
        and re.fullmatch(r"(uy ban nhan dan|hoi dong nhan dan|ubnd|hdnd)", texts[0].strip())
    )
    if len(block) == 1 or one_organ:
        organ_lines, parent = block, None
    else:
        parent, organ_lines = block[0], block[1:]
    if parent is not None:
        text_field(out, "parent_organ", [parent], header.page, restore=True)
    text_field(out, "organ_name", organ_lines, header.page, restore=True)


_VV = re.compile(r"^\W*v\s*[/|l1]\s*[vwy]\b")


def _read_type_and_subject(header: Header, out: FieldCollector) -> None:
    below = (
        header.number[0].bbox[3] if header.number else (header.motto.bbox[3] if header.motto else 0)
    )
    if header.date is not None:
        below = max(below, header.date[0].bbox[3])
    candidates = [
        line
        for line in header.lines
        if line.bbox[1] >= below - 2 and line.bbox[1] < below + 0.35 * header.height
    ]
    candidates.sort(key=lambda line: line.bbox[1])
    width = header.width
    type_line = None
    for line in candidates[:8]:
        if abs(line.centre_x - width / 2) > 0.12 * width:
            continue
        matched = match_doc_type(line.text, out.settings.phrase_match)
        if matched:
            type_line = (line, matched)
            break
    subject_lines: list[Line] = []
    subject_note = None
    if type_line is not None:
        line, (name, ratio) = type_line
        out.add(
            "type_name",
            name,
            header.page,
            line.words,
            confidence=min(ratio, min_word_confidence(line.words)),
        )
        previous = line
        for nxt in candidates[candidates.index(line) + 1 :]:
            gap = nxt.bbox[1] - previous.bbox[3]
            if (
                gap > 1.2 * max(previous.height, 1)
                or abs(nxt.centre_x - width / 2) > 0.12 * width
                or BODY_START.match(nxt.folded)
                or (subject_lines and is_caps(nxt.text) and not is_caps(subject_lines[0].text))
                or len(subject_lines) >= 6
            ):
                break
            subject_lines.append(nxt)
            previous = nxt
    else:
        left = [line for line in candidates if line.centre_x < header.split_x]
        start = next((line for line in left if _VV.match(line.folded)), None)
        if start is None and header.number is not None:
            # Công văn whose "V/v" was lost (stamp, faint print): the lines right under the
            # number in the left column, flagged.
            number_line = header.number[0]
            start = next(
                (
                    line
                    for line in left
                    if 0 <= line.bbox[1] - number_line.bbox[3] < 1.5 * max(number_line.height, 1)
                    and not is_caps(line.text)
                    and not BODY_START.match(line.folded)
                ),
                None,
            )
            subject_note = '"V/v" not read'
        if start is not None:
            subject_lines = [start]
            for nxt in left[left.index(start) + 1 :]:
                if nxt.bbox[1] - subject_lines[-1].bbox[3] > 1.2 * max(start.height, 1) or (
                    BODY_START.match(nxt.folded)
                ):
                    break
                subject_lines.append(nxt)
        if subject_lines and subject_note is None:
            out.add("type_name", CONG_VAN, header.page, subject_lines[0].words[:1], confidence=0.9)
    if subject_lines:
        text_field(
            out,
            "subject",
            subject_lines,
            header.page,
            note=subject_note,
            review=subject_note is not None,
        )


def _check_notation_type(out: FieldCollector) -> None:
    notation = out.items.get("code_notation")
    type_field = out.items.get("type_name")
    if notation is None:
        return
    implied = type_of_notation(notation.value)
    if type_field is None:
        # No heading read: the notation says which type it is (a notation without a type
        # abbreviation is a công văn's), but a human should confirm.
        out.add(
            "type_name",
            implied or CONG_VAN,
            notation.page,
            (),
            confidence=0.5,
            review=True,
            note=f"no type heading read; type inferred from notation {notation.value}",
            bbox=notation.bbox,
        )
        return
    if implied == VBHN and type_field.value not in (VBHN, CONG_VAN):
        # A consolidated text keeps the heading of the type it consolidates (Luật Ban hành
        # VBQPPL, hợp nhất văn bản): "THÔNG TƯ" + VBHN-… is a consolidated thông tư.
        out.items["type_name"] = type_field.model_copy(
            update={"value": f"{type_field.value} ({VBHN})"}
        )
        return
    if implied is None and type_field.value != CONG_VAN:
        note = f"notation {notation.value} has no type abbreviation for {type_field.value}"
    elif implied is not None and implied != type_field.value:
        note = f"notation {notation.value} implies {implied}, heading reads {type_field.value}"
    else:
        return
    out.flag("code_notation", note)
    out.flag("type_name", note)


def _read_closing(page: PageOcr, page_no: int, out: FieldCollector) -> None:
    """Signature block (right) and "Nơi nhận" list (left) of the last page."""
    lines = lines_of(page, page_no)
    width = page.width_px or 1
    anchor = None
    for line in lines:
        head = fold(line.text)[:12]
        if similarity(head[:9], "noi nhan:") >= 0.8 or re.match(r"\s*noi\s*nhan\b", head):
            anchor = line
    if anchor is not None:
        items: list[Line] = []
        for line in sorted(lines, key=lambda ln: ln.bbox[1]):
            if line.bbox[1] <= anchor.bbox[1] or line.centre_x >= 0.5 * width:
                continue
            if items and line.bbox[1] - items[-1].bbox[3] > 2.0 * max(line.height, 1):
                break
            items.append(line)
        if items:
            words = [w for line in items for w in line.words]
            values = [re.sub(r"^\s*[-–•+]\s*", "", line.text).strip() for line in items]
            out.add("recipients", "\n".join(values), page_no, words)
    top = anchor.bbox[1] - 3 * anchor.height if anchor else 0.45 * (page.height_px or 1)
    right = [
        line
        for line in lines
        if line.bbox[0] >= 0.4 * width and line.bbox[1] >= top and line.centre_x > 0.5 * width
    ]
    right.sort(key=lambda ln: ln.bbox[1])
    start = next(
        (i for i, ln in enumerate(right) if SIGNER_PREFIX.match(ln.folded) or is_caps(ln.text)),
        None,
    )
    if start is None:
        return
    position = [ln for ln in right[start:] if is_caps(ln.text)][:4]
    names = [
        ln
        for ln in right[start:]
        if not is_caps(ln.text)
        and 2 <= len(ln.text.split()) <= 6
        and all(w[:1].isupper() for w in ln.text.split() if w[:1].isalpha())
    ]
    if position:
        words = [w for ln in position for w in ln.words]
        out.add("signer_position", " / ".join(ln.text.strip() for ln in position), page_no, words)
    if names:
        name = names[-1]
        out.add("signer_full_name", name.text.strip(), page_no, name.words)


def extract_fields(
    pages: Sequence[PageOcr], settings: ExtractSettings | None = None
) -> tuple[ExtractedField, ...]:
    """Header fields of one component from its pages' OCR.

    Applies only when a page shows the national motto or a ``Số:``/date line (requirements §8:
    other papers use per-type templates). Page 1 is read first; without a header there, the
    last page and then the others are searched (consolidated texts carry number and date in
    the closing block)."""
    settings = settings or ExtractSettings()
    if not settings.enabled or not pages:
        return ()
    order = [0] + ([len(pages) - 1] if len(pages) > 1 else []) + list(range(1, len(pages) - 1))
    out = FieldCollector(settings)
    first = find_header(pages[0], 1, settings)
    header = first
    if first.number is None:
        for index in order[1:]:
            other = find_header(pages[index], index + 1, settings)
            if other.number is not None and other.date is not None:
                header = other
                break
    if not (first.found or header.found):
        return ()
    # Organ, type and subject live on page 1 when it has the header block; number and date
    # where they were found.
    layout_page = first if first.motto is not None or first.number is not None else header
    _read_organ(header if header.number else layout_page, out)
    if "organ_name" not in out.items and layout_page is not header:
        _read_organ(layout_page, out)
    _read_number(header, out)
    if first.date is not None and header is first:
        _read_date(first, out)
    else:
        _read_date(header if header.date else first, out)
    _read_type_and_subject(layout_page, out)
    if header is not first:
        # Outside page 1's header the "Số:" may belong to an attachment or a reference: a
        # human confirms it.
        for name in [n for n, f in out.items.items() if f.page == header.page]:
            out.flag(name, f"found on page {header.page}, not in a page-1 header")
    _check_notation_type(out)
    _read_closing(pages[-1], len(pages), out)
    return tuple(out.items.values())
