"""``digitize report``: one self-contained HTML (offline, A4 print CSS, pictures embedded) and
the same content as JSON.

Checked on a real bundle from the pipeline: one thumbnail per page rendered from the signed
PDF, every field value present, no external URL anywhere (every src/href parsed), flags in
plain Vietnamese (a message for every flag code the code base raises, R15), times a person
reads in Vietnam time and Vietnamese form while the JSON keeps ISO 8601 with the offset, and a
dossier that stays in review says why.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from digitize.manifest import MANIFEST_FILE, Manifest
from tests.helpers_review import flagged_copy

REPO = Path(__file__).resolve().parents[1]
DIGITIZE = [sys.executable, "-m", "digitize"]
DOC3 = "000.00.12.H62-251125-0001.003.pdf"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DIGITIZE, *args], capture_output=True, text=True, timeout=300)


class Collector(HTMLParser):
    """Every tag with its attributes, and the visible text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Collector:
    collector = Collector()
    collector.feed(html)
    return collector


@pytest.fixture(scope="module")
def reviewed(sample_run, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    """The sample bundle with doubts, then a review that corrects one value and sends page 2
    of the third component back for a new scan."""
    result, _ = sample_run
    bundle = flagged_copy(result.bundle_path, tmp_path_factory.mktemp("report"))
    corrections = bundle.parent / "c.json"
    corrections.write_text(json.dumps({
        "fields": [{"file": DOC3, "field": "code_number", "value": "215"},
                   {"file": DOC3, "field": "art9.owner_id", "value": "000.00.12.H62"}],
        "pages": [{"file": DOC3, "page": 2, "decision": "rescan",
                   "reason": "góc phải <bị> gấp"}]}, ensure_ascii=False), encoding="utf-8")
    done = run("review", str(bundle), "--apply", str(corrections))
    assert done.returncode == 0, done.stderr
    return bundle


@pytest.fixture(scope="module")
def report_html(reviewed: Path) -> str:
    out = reviewed.parent / "report.html"
    done = run("report", str(reviewed), "--html", str(out))
    assert done.returncode == 0, done.stderr
    return out.read_text(encoding="utf-8")


def test_one_thumbnail_per_page_from_the_signed_pdf(reviewed: Path, report_html: str) -> None:
    manifest = Manifest.model_validate(json.loads((reviewed / MANIFEST_FILE).read_bytes()))
    html = parse(report_html)
    thumbs = [a for tag, a in html.tags if tag == "img" and "crop" not in (a.get("class") or "")]
    assert len(thumbs) == sum(len(d.pages) for d in manifest.documents) == 6
    for attrs in thumbs:
        assert (attrs.get("src") or "").startswith("data:image/jpeg;base64,")
        assert attrs.get("alt")
    # the signed PDF is what is drawn: its page 1 carries the visible signature note, so the
    # thumbnail differs from a render of the same page with annotations hidden
    import base64
    import io

    from PIL import Image, ImageChops

    first = Image.open(io.BytesIO(base64.b64decode(thumbs[0]["src"].split(",", 1)[1])))  # type: ignore[union-attr]
    plain = subprocess.run(["pdftoppm", "-f", "1", "-l", "1", "-scale-to-x", str(first.width),
                            "-scale-to-y", "-1", "-png", "-singlefile", "-hide-annotations",
                            str(reviewed / manifest.documents[0].file)],  # type: ignore[operator]
                           capture_output=True, check=True).stdout
    diff = ImageChops.difference(first.convert("L"),
                                 Image.open(io.BytesIO(plain)).convert("L").resize(first.size))
    assert diff.getbbox() is not None
    box = diff.getbbox()
    assert box[1] < first.height * 0.2 and box[0] < first.width * 0.4  # top-left note (R19)


def test_every_field_value_is_in_the_report(reviewed: Path, report_html: str) -> None:
    manifest = Manifest.model_validate(json.loads((reviewed / MANIFEST_FILE).read_bytes()))
    text = "".join(parse(report_html).text)
    values = [e.value for d in manifest.documents for e in d.extraction]
    assert values and all(value in text for value in values)
    assert "2l5" in text  # the machine reading stays beside the person's value
    # the Art. 9 block of every paper (R37): each value read, shown in full (not masked)
    art9 = [(d, v) for d in manifest.documents if d.art9 is not None
            for v in (*d.art9.values().values(), *d.art9.fields.values())]
    read = [v.value for _, v in art9 if v.value is not None]
    assert len(read) > 10 and all(value in text for value in read)
    # one crop per value with a place on a page of its component: header fields and Art. 9
    crops = [a for tag, a in parse(report_html).tags
             if tag == "img" and "crop" in (a.get("class") or "")]
    with_box = sum(1 for d in manifest.documents for e in d.extraction if e.bbox)
    with_box += sum(1 for d, v in art9 if v.bbox and v.page in {p.page_index for p in d.pages})
    assert len(crops) == with_box


def test_art9_block_with_source_who_entered_and_doubts_in_plain_words(
        reviewed: Path, report_html: str) -> None:
    """Issue 19: per paper the Art. 9 values with their source, who entered a manual value,
    why the machine doubted a value, and why there is no result code, in plain Vietnamese."""
    manifest = Manifest.model_validate(json.loads((reviewed / MANIFEST_FILE).read_bytes()))
    reviewer = manifest.reviews[0].reviewer.full_name
    text = " ".join(parse(report_html).text)
    assert "Dữ liệu theo Điều 9 Thông tư 01/2023" in text
    assert f"người nhập: {reviewer}" in text  # the owner ID typed at review (R36)
    assert "nguồn: người nhập" in text
    assert "máy nghi ngờ: chưa đọc được" in text  # an unread value, in words
    assert "chưa cấu hình mã loại giấy tờ (extract.catalogue.codes)" in text
    assert "Chưa lập được mã kết quả số hóa" in text  # result_code_missing, in words
    assert "no digitisation-result code" not in text  # not the manifest's English message


def test_no_external_url_script_or_font(report_html: str) -> None:
    html = parse(report_html)
    for tag, attrs in html.tags:
        for name in ("src", "href", "action", "srcset", "poster", "data"):
            value = attrs.get(name)
            if value is None:
                continue
            assert value.startswith(("data:", "#")), (tag, name, value[:80])
        assert tag not in ("script", "link", "iframe", "object", "embed", "base")
    assert not re.search(r"url\(|@import", report_html)
    assert "@page { size: A4" in report_html and "@media print" in report_html


def test_flags_and_status_in_plain_vietnamese(report_html: str) -> None:
    text = " ".join(parse(report_html).text)
    assert "Nội dung chạm mép ảnh" in text  # content_at_border, not its English message
    assert "content reaches the image edge" not in text
    assert "Cần rà soát" in text
    assert "trang 2 cần quét lại: góc phải <bị> gấp" in text  # why it stays in review
    assert re.search(r"\d{2}:\d{2} ngày \d{2}/\d{2}/\d{4}", text)  # Vietnam time, VN form
    assert "HỢP LỆ" in text


def test_json_has_the_same_content_with_iso_times(reviewed: Path) -> None:
    done = run("report", str(reviewed), "--json", "-")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["verified"] is True and data["needs_review"] is True
    assert any("góc phải <bị> gấp" in reason for reason in data["open_reasons"])
    doc = data["documents"][2]
    number = next(f for f in doc["fields"] if f["name"] == "code_number")
    assert (number["value"], number["machine_value"], number["state"]) == ("215", "2l5",
                                                                            "corrected")
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+07:00", data["created_at"])
    assert [len(d["pages"]) for d in data["documents"]] == [2, 2, 2]
    assert "base64" not in done.stdout  # pictures are for the HTML only


def test_english_report(reviewed: Path, tmp_path: Path) -> None:
    out = tmp_path / "en.html"
    assert run("report", str(reviewed), "--html", str(out), "--lang", "en").returncode == 0
    text = " ".join(parse(out.read_text(encoding="utf-8")).text)
    assert "Content touches the image edge" in text and "Needs review" in text
    assert "(Vietnam time)" in text


def test_report_of_a_zip_bundle(sample_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from digitize.bundle import write_zip

    result, _ = sample_run
    archive = tmp_path / "b.zip"
    write_zip(result.bundle_path, archive, result.bundle_path.name)
    out = tmp_path / "z.html"
    done = run("report", str(archive), "--html", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_text(encoding="utf-8").count('alt="Trang ') == 6


def test_report_needs_an_output(sample_run) -> None:  # type: ignore[no-untyped-def]
    result, _ = sample_run
    assert run("report", str(result.bundle_path)).returncode == 2


def test_every_flag_code_in_the_code_base_has_plain_words() -> None:
    """R15: a flag nobody can read is a flag nobody acts on. Finds the codes the stages raise
    (``make_flag(``, ``Flag(code=``, ``_flag(`` and friends) and requires a sentence for each."""
    from digitize.review.texts import FLAG_TEXT

    codes: set[str] = set()
    for path in (REPO / "digitize").rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        codes.update(re.findall(r"code=\"([a-z][a-z0-9_]+)\"", source))
        codes.update(re.findall(r"(?:make_flag|_flag|Flag)\(\s*\"([a-z][a-z0-9_]+)\"", source))
    assert len(codes) > 25
    missing = sorted(codes - FLAG_TEXT.keys())
    assert not missing, f"add a plain-words message to digitize/review/texts.py for {missing}"


def test_report_of_an_unreviewed_bundle_lists_open_fields(sample_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from digitize.report import build_report

    result, _ = sample_run
    bundle = flagged_copy(result.bundle_path, tmp_path)
    report = build_report(bundle, None, "vi")
    assert report.verified is None and report.needs_review
    assert any("Ngày ban hành" in reason for reason in report.open_reasons)
    page2 = report.documents[2].pages[1]
    assert {r.kind for r in page2.regions} == {"border"}
    shutil.rmtree(bundle)
