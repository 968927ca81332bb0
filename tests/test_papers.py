"""Art. 9 data of citizens' papers (requirements §9a, R35-R40): paper type from the catalogue,
the owner's 12-digit ID (R39), the paper's name, number, dates, issuing body, validity, the
type's fields; handwriting flagged; cross-paper confirmation and result codes (R38); masking.

Every paper is rendered here (Pillow + Noto fonts, made-up people) and read by the real
tesseract; nothing comes from ../shared.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digitize.errors import ConfigError
from digitize.extract import (
    DossierFacts,
    PaperContext,
    build_result_code,
    extract_paper,
    finish_dossier,
    load_catalogue,
    starter_types,
)
from digitize.extract.handwriting import hand_ink_words
from digitize.extract.owner_id import mrz_personal_id, soft_check
from digitize.extract.present import masked_art9, masked_documents
from digitize.extract.values import normalise_date, normalise_id, sentence_case
from digitize.manifest import Art9Block, Art9Value, DocumentEntry
from digitize.models import PageOcr
from digitize.ocr import ocr_page
from digitize.settings import CatalogueSettings, ExtractSettings, OcrSettings
from tests.helpers_papers import Row, card_mrz, render_paper, row, text_row

OWNER = "001190012345"  # Hà Nội, female born in 1990 (older layout), made up
CHILD = "001321054321"  # Hà Nội, female born in 2021


def _ocr(image: np.ndarray) -> PageOcr:
    return ocr_page(image, 300, OcrSettings())


def _card() -> np.ndarray:
    rows = [
        row("Số / No.", OWNER),
        row("Họ và tên / Full name", "TRẦN THỊ MAI"),
        row("Ngày sinh / Date of birth", "07/03/1990"),
        Row((("Giới tính / Sex", "Nữ"), ("Quốc tịch / Nationality", "Việt Nam"))),
        row("Quê quán / Place of origin", "Đông Anh, Hà Nội"),
        row("Có giá trị đến / Date of expiry", "07/03/2030"),
        row("Ngày, tháng, năm / Date, month, year", "15/06/2021"),
        text_row("CỤC TRƯỞNG CỤC CẢNH SÁT QUẢN LÝ HÀNH CHÍNH VỀ TRẬT TỰ XÃ HỘI", bold=True),
    ]
    rows += [text_row(line, mono=True) for line in card_mrz(OWNER, "900307", "F", "300307",
                                                           "TRAN THI MAI")]
    return render_paper("CĂN CƯỚC CÔNG DÂN", rows, subtitle="Citizen Identity Card")


def _birth_certificate() -> np.ndarray:
    rows = [
        Row((("Số", "215"), ("Quyển số", "01/2021"))),
        row("Họ, chữ đệm, tên", "LÊ THU HÀ"),
        row("Ngày, tháng, năm sinh", "12/05/2021"),
        Row((("Giới tính", "Nữ"), ("Dân tộc", "Kinh"), ("Quốc tịch", "Việt Nam"))),
        row("Nơi sinh", "Bệnh viện Phụ sản Hà Nội"),
        row("Số định danh cá nhân", CHILD),
        row("Họ, chữ đệm, tên người mẹ", "TRẦN THỊ MAI"),
        row("Họ, chữ đệm, tên người cha", "LÊ VĂN HÙNG"),
        row("Nơi đăng ký khai sinh", "Ủy ban nhân dân phường Kim Liên"),
        row("Ngày, tháng, năm đăng ký", "20/05/2021"),
    ]
    return render_paper("GIẤY KHAI SINH", rows, closing=("NGƯỜI KÝ GIẤY KHAI SINH", "Đỗ Văn An"))


# --- recognised papers, read by tesseract ------------------------------------------------------
def test_birth_certificate_gives_type_owner_and_registration(tmp_path: Path) -> None:
    """R37: paper type and the owner's ID; the certificate's number, date and body (R37 list)."""
    paper = extract_paper([_ocr(_birth_certificate())])
    art9 = paper.art9
    assert art9.paper_type_key == "giay_khai_sinh"
    assert art9.paper_type_name.value == "Giấy khai sinh"
    assert art9.owner_id.value == CHILD and art9.owner_id_kind.value == "personal"
    assert art9.number_notation.value == "215"
    assert art9.issued_date.value == "2021-05-20"
    assert art9.issuing_body.value == "Ủy ban nhân dân phường Kim Liên"
    assert art9.fields["date_of_birth"].value == "2021-05-12"
    assert art9.fields["mother_name"].value == "TRẦN THỊ MAI"
    assert art9.fields["father_name"].value == "LÊ VĂN HÙNG"
    assert art9.fields["sex"].value == "Nữ"
    # no code configured in the starter catalogue: never invented, flagged (R38)
    assert art9.paper_type_code.value is None and art9.paper_type_code.needs_review
    assert art9.summary.value is None and not art9.summary.needs_review  # not on this type
    for value in (art9.owner_id, art9.issued_date, art9.number_notation):
        assert value.page == 1 and value.bbox is not None and value.source == "ocr"


def test_id_card_copy_is_confirmed_by_its_machine_readable_zone() -> None:
    """R39: the card number, read twice (printed and in the MRZ with its check digit)."""
    art9 = extract_paper([_ocr(_card())]).art9
    assert art9.paper_type_key == "can_cuoc"
    assert art9.owner_id.value == OWNER
    assert not art9.owner_id.needs_review
    assert "machine-readable zone" in (art9.owner_id.note or "")
    assert art9.number_notation.value == OWNER
    assert art9.valid_until.value == "2030-03-07"
    assert art9.issued_date.value == "2021-06-15"
    assert art9.issuing_body.value == "Cục Cảnh sát quản lý hành chính về trật tự xã hội"
    assert art9.fields["date_of_birth"].value == "1990-03-07"


def test_handwritten_values_on_dotted_lines_are_flagged() -> None:
    """Issue point 4: a value written by hand is never presented as read for sure."""
    rows = [
        row("Kính gửi", "Ủy ban nhân dân phường Kim Liên", hand=True),
        row("Họ, chữ đệm, tên người yêu cầu", "Trần Thị Mai", hand=True),
        row("Giấy tờ tùy thân", f"CCCD số {OWNER}", hand=True),
        row("Quan hệ với người được khai sinh", "Mẹ", hand=True),
        text_row("Đề nghị cơ quan đăng ký khai sinh cho người dưới đây:"),
        row("Họ, chữ đệm, tên", "Lê Thu Hà", hand=True),
        row("Ngày, tháng, năm sinh", "12/05/2021", hand=True),
    ]
    image = render_paper("TỜ KHAI ĐĂNG KÝ KHAI SINH", rows)
    art9 = extract_paper([_ocr(image)]).art9
    assert art9.paper_type_key == "to_khai_khai_sinh"
    read = [v for v in art9.fields.values() if v.value is not None]
    assert read, "some handwritten values are read"
    for value in read:
        assert value.needs_review and value.handwritten, value
    assert art9.owner_id.needs_review
    assert art9.needs_review
    # the owner's ID, if read at all, is the one written: never another number
    assert art9.owner_id.value in (None, OWNER)


def test_blue_ink_marks_values_as_handwritten_even_when_read_well() -> None:
    """Issue point 4: hand ink is told from print by its colour against the page's own
    printed words; a value in hand ink is flagged even at high OCR confidence."""
    rows = [row("Kính gửi", "Ủy ban nhân dân phường Kim Liên", hand=True),
            row("Họ, chữ đệm, tên người yêu cầu", "Trần Thị Mai", hand=True),
            row("Giấy tờ tùy thân", f"CCCD số {OWNER}", hand=True),
            row("Ngày, tháng, năm sinh", "12/05/2021", hand=True)]
    image = render_paper("TỜ KHAI ĐĂNG KÝ KHAI SINH", rows)
    ocr = _ocr(image)
    hand = set(hand_ink_words(image, ocr))
    words = {w.text.strip(".:,") for i, w in enumerate(ocr.words) if i in hand}
    printed = {w.text.strip(".:,") for i, w in enumerate(ocr.words) if i not in hand}
    assert {"TỜ", "KHAI", "Giấy", "tùy"} <= printed
    assert {"Kim", "Liên", "Mai", "Trần"} & words, words
    assert not {"TỜ", "KHAI", "Giấy", "tùy", "CỘNG"} & words
    gray = np.repeat(np.asarray(Image.fromarray(image).convert("L"))[:, :, None], 3, axis=2)
    assert set(hand_ink_words(gray, _ocr(gray))), "lighter ink is seen on a gray copy too"
    context = PaperContext(hand_words=(frozenset(hand),))
    art9 = extract_paper([ocr], context=context).art9
    receiving = art9.fields["receiving_body"]
    assert receiving.handwritten and receiving.needs_review


def test_administrative_document_fills_art9_from_its_header() -> None:
    """Documents in the ND 30 layout: the header fields are the Art. 9 values."""
    image = render_paper(
        "KẾ HOẠCH",
        [text_row("Số hóa hồ sơ thủ tục hành chính năm 2025", centre=True),
         text_row("Căn cứ Nghị định số 30/2020/NĐ-CP ngày 05 tháng 3 năm 2020 của Chính phủ.")],
        header_left=("ỦY BAN NHÂN DÂN", "TỈNH VĨNH PHÚC", "", "Số: 60/KH-UBND"),
        header_right="Vĩnh Phúc, ngày 19 tháng 03 năm 2025",
    )
    paper = extract_paper([_ocr(image)])
    art9 = paper.art9
    assert art9.paper_type_key == "van_ban_hanh_chinh"
    assert art9.paper_name.value == "Kế hoạch"
    assert art9.number_notation.value == "60/KH-UBND"
    assert art9.issued_date.value == "2025-03-19"
    assert (art9.issuing_body.value or "").casefold() == "ủy ban nhân dân tỉnh vĩnh phúc"
    assert art9.owner_id_kind.value == "organisation"
    assert art9.owner_id.value is None and art9.owner_id.needs_review  # R37: entered by hand
    assert {f.name for f in paper.header} >= {"code_notation", "issued_date", "organ_name"}


def test_unknown_paper_is_other_and_flagged() -> None:
    """Issue point 2: unknown → type other and a review flag, never a silent guess."""
    image = render_paper("BIÊN LAI THU TIỀN", [row("Người nộp", "Trần Thị Mai"),
                                               row("Số tiền", "50.000 đồng")])
    paper = extract_paper([_ocr(image)])
    art9 = paper.art9
    assert art9.paper_type_key == "other"
    assert art9.paper_type_name.needs_review and art9.owner_id.needs_review
    assert art9.owner_id.value is None
    assert "paper_type_review" in {f.code for f in paper.flags}
    assert "art9_review" in {f.code for f in paper.flags}


def test_declared_paper_type_wins_and_a_disagreement_is_flagged() -> None:
    """dossier.yaml ``paper_type``: the clerk's word is the type; the page disagreeing is
    flagged for a person."""
    ocr = _ocr(_birth_certificate())
    same = extract_paper([ocr], context=PaperContext(declared_type="giay_khai_sinh")).art9
    assert same.paper_type_name.source == "dossier.yaml" and not same.paper_type_name.needs_review
    other = extract_paper([ocr], context=PaperContext(declared_type="giay_uy_quyen")).art9
    assert other.paper_type_key == "giay_uy_quyen"
    assert other.paper_type_name.needs_review and "reads as giay_khai_sinh" in (
        other.paper_type_name.note or "")


# --- pieces without OCR ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("number", "birth", "doubt"),
    [
        ("001190012345", "1990-03-07", None),
        ("001321054321", "2021-05-12", None),
        ("001190012345", "1991-03-07", "year"),  # R39 soft check against the date of birth
        ("001390012345", "1990-03-07", "century"),
        ("099190012345", None, "province"),
    ],
)
def test_personal_id_soft_check(number: str, birth: str | None, doubt: str | None) -> None:
    result = soft_check(number, birth)
    assert (result is None) == (doubt is None)
    if doubt:
        assert result is not None and (doubt in result or "province" in result)


def test_machine_readable_zone_needs_its_check_digit() -> None:
    lines = card_mrz(OWNER, "900307", "F", "300307", "TRAN THI MAI")
    assert mrz_personal_id(lines) == OWNER
    broken = lines[0][:9] + ("7" if lines[0][9] != "7" else "8") + lines[0][10:]
    assert mrz_personal_id([broken, *lines[1:]]) is None


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("CCCD số 001190012345", "001190012345"),
        ("0 0 1 1 9 0 0 1 2 3 4 5", "001190012345"),  # digit boxes
        ("00119001234", None),  # 11 digits: never padded
        ("001190012345 và 001321054321", None),
    ],
)
def test_id_normalisation_takes_exactly_twelve_digits(raw: str, value: str | None) -> None:
    assert normalise_id(raw).value == value


def test_dates_and_caps_names() -> None:
    assert normalise_date("ngày 05 tháng 06 năm 2009").value == "2009-06-05"
    assert normalise_date("31/02/2020").value is None
    assert sentence_case("SỞ TÀI NGUYÊN VÀ MÔI TRƯỜNG TỈNH QUẢNG NAM") == (
        "Sở tài nguyên và môi trường tỉnh Quảng Nam")


def test_starter_catalogue_and_office_codes() -> None:
    """R38: codes are opaque strings the office configures; the starter leaves them empty."""
    starter = starter_types()
    keys = {t.key for t in starter}
    assert {"to_khai_khai_sinh", "giay_khai_sinh", "trich_luc_khai_sinh", "can_cuoc",
            "don_de_nghi", "giay_uy_quyen", "gcn_qsdd", "to_khai_ket_hon",
            "to_khai_cai_chinh", "van_ban_hanh_chinh"} <= keys
    assert all(t.code is None for t in starter)
    catalogue = load_catalogue(CatalogueSettings(codes={"giay_khai_sinh": "GKS-01",
                                                        "other": "KHAC"}))
    assert catalogue.get("giay_khai_sinh").code == "GKS-01"  # type: ignore[union-attr]
    assert catalogue.other.code == "KHAC"
    with pytest.raises(ConfigError, match="giay_khai_snh"):
        load_catalogue(CatalogueSettings(codes={"giay_khai_snh": "X"}))
    with pytest.raises(ValueError, match="owner"):
        CatalogueSettings(result_code_template="{owner}.{n}")


def _document(ordinal: int, block: Art9Block) -> DocumentEntry:
    return DocumentEntry(doc_ordinal=ordinal, component_name=f"c{ordinal}", page_amount=1,
                         image_count=1, file=f"HS.{ordinal:03d}.pdf", art9=block)


def _block(key: str, owner: Art9Value, code: str | None = "MA-1") -> Art9Block:
    return Art9Block(
        paper_type_key=key,
        paper_type_code=Art9Value(value=code, source="catalogue", needs_review=code is None),
        owner_id=owner,
        owner_id_kind=Art9Value(value="personal", source="catalogue"),
        needs_review=owner.needs_review or code is None,
    )


def test_dossier_pass_confirms_an_id_read_on_two_papers_and_numbers_result_codes() -> None:
    """Issue point 4 (cross-paper check) and 5 (R38 codes, unique within the bundle)."""
    hand = Art9Value(value=OWNER, confidence=0.7, needs_review=True, handwritten=True,
                     doubts=("handwritten",))
    printed = Art9Value(value=OWNER, confidence=0.97)
    lonely = Art9Value(value=CHILD, confidence=0.7, needs_review=True, doubts=("handwritten",))
    docs = [_document(1, _block("don_de_nghi", hand)), _document(2, _block("can_cuoc", printed)),
            _document(3, _block("can_cuoc", printed.model_copy())),
            _document(4, _block("giay_khai_sinh", lonely)),
            _document(5, _block("giay_uy_quyen", printed.model_copy(), code=None))]
    out = finish_dossier(docs, DossierFacts("HS", "1.000123"), ExtractSettings())
    first = out[0].art9
    assert first is not None and not first.owner_id.needs_review
    assert "document 2" in (first.owner_id.note or "")
    assert out[3].art9 is not None and out[3].art9.owner_id.needs_review  # read once, by hand
    codes = [d.digitization_result_code for d in out]
    assert codes[:3] == [f"{OWNER}.1.000123.MA-1.01", f"{OWNER}.1.000123.MA-1.02",
                         f"{OWNER}.1.000123.MA-1.03"]
    assert codes[3] is None and codes[4] is None  # owner ID in doubt; no paper-type code
    assert "result_code_missing" in {f.code for f in out[4].flags}
    assert "paper type has no code" in next(f.message for f in out[4].flags if f.code == "result_code_missing")
    no_procedure = finish_dossier(docs, DossierFacts("HS", None), ExtractSettings())
    assert all(d.digitization_result_code is None for d in no_procedure)
    assert build_result_code("{owner_id}.{n:02d}", {"owner_id": OWNER, "n": 3}) == f"{OWNER}.03"


def test_personal_data_is_masked_for_consoles() -> None:
    """Issue point 6: IDs and birth dates masked outside the manifest/report/review page."""
    block = Art9Block(
        paper_type_key="can_cuoc",
        owner_id=Art9Value(value=OWNER),
        fields={"date_of_birth": Art9Value(value="1990-03-07"),
                "id_number": Art9Value(value=OWNER), "full_name": Art9Value(value="TRẦN THỊ MAI")},
    )
    shown = json.dumps(masked_art9(block), ensure_ascii=False)
    assert OWNER not in shown and "1990-03-07" not in shown
    assert "0011••••2345" in shown and "1990-••-••" in shown and "TRẦN THỊ MAI" in shown
    entry = _document(1, block).model_copy(
        update={"digitization_result_code": f"{OWNER}.1.000123.CC.01"}).model_dump(mode="json")
    console = json.dumps(masked_documents([entry]), ensure_ascii=False)
    assert OWNER not in console and "0011••••2345.1.000123.CC.01" in console


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "digitize", *args], capture_output=True,
                          text=True, timeout=600)


def test_ocr_command_masks_the_owner_id(tmp_path: Path) -> None:
    folder = tmp_path / "HS" / "c1"
    folder.mkdir(parents=True)
    Image.fromarray(_card()).save(folder / "p1.png", dpi=(300, 300))
    result = _cli("ocr", str(tmp_path / "HS"), "--json", str(tmp_path / "out.json"))
    assert result.returncode == 0, result.stderr
    assert OWNER not in result.stdout and "0011••••2345" in result.stdout
    data = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    art9 = data[0]["art9"]
    assert art9["owner_id"]["value"] == "0011••••2345"
    assert art9["paper_type_key"] == "can_cuoc"


@pytest.mark.slow
def test_pipeline_writes_art9_and_result_codes(tmp_path: Path) -> None:
    """End to end (R35: copy → extract → code): the manifest carries the Art. 9 block of each
    paper, valid against the published schema, and the result codes."""
    import jsonschema

    import digitize
    from digitize.profiles import load_profile

    source = tmp_path / "HS-ART9"
    for name, image in (("1-giay-khai-sinh", _birth_certificate()), ("2-can-cuoc", _card())):
        (source / name).mkdir(parents=True)
        Image.fromarray(image).save(source / name / "p1.jpg", dpi=(300, 300), quality=92)
    (source / "dossier.yaml").write_text(
        "procedure_code: 1.000123\ncomponents:\n"
        "  - path: 1-giay-khai-sinh\n    paper_type: giay_khai_sinh\n"
        "  - path: 2-can-cuoc\n",
        encoding="utf-8",
    )
    profile = load_profile(None, {"pipeline": {"workers": 1}, "extract": {"catalogue": {
        "codes": {"giay_khai_sinh": "GKS", "can_cuoc": "CC"}}}})
    result = digitize.run_dossier(source, tmp_path / "out", profile=profile)
    manifest = json.loads((result.bundle_path / "manifest.json").read_text(encoding="utf-8"))
    schema = json.loads((Path(__file__).parents[1] / "docs" / "manifest.schema.json").read_text())
    jsonschema.validate(manifest, schema)
    first, second = manifest["documents"]
    assert first["art9"]["paper_type_key"] == "giay_khai_sinh"
    assert first["art9"]["paper_type_name"]["source"] == "dossier.yaml"
    assert first["art9"]["paper_type_code"]["value"] == "GKS"
    assert second["art9"]["paper_type_key"] == "can_cuoc"
    assert second["art9"]["owner_id"]["value"] == OWNER
    assert second["digitization_result_code"] == f"{OWNER}.1.000123.CC.01"
    if not first["art9"]["owner_id"]["needs_review"]:
        assert first["digitization_result_code"] == f"{CHILD}.1.000123.GKS.01"
    started = datetime.fromisoformat(first["extraction"][0]["started_at"]) if first[
        "extraction"] else None
    assert started is None or started >= datetime.fromisoformat(first["signature"]["signed_at"])
    assert digitize.verify_bundle(result.bundle_path, allow_demo=True).ok
