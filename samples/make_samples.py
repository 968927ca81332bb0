"""Render the sample dossiers in samples/ (deterministic; run from the repo root).

    python samples/make_samples.py

They look like counter scans of Vietnamese paperwork: A4 pages at 200–300 dpi, tinted paper,
a little noise and blur, a red seal, a signature scribble, pages skewed by a few degrees, one
page fed upside down, one multi-page CCITT G4 TIFF and one image-only "scan to PDF" file.
The text is written for these samples (no personal data); names are invented.

A third dossier holds citizens' papers for the Art. 9 data (TT 01/2023): a birth-registration
form filled in by hand (blue ink on the dotted lines, in a handwriting-like font when Debian has
one covering Vietnamese, else Noto Sans Italic), a birth certificate and a photocopy of a chip ID
card with its machine-readable zone. The ID numbers are made up (older layout, valid check
digits) and belong to nobody.
"""

from __future__ import annotations

import io
import math
import random
import shutil
from pathlib import Path

import numpy as np
import pikepdf
from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = Path(__file__).resolve().parent
FONT_DIR = Path("/usr/share/fonts/truetype/noto")
SERIF = FONT_DIR / "NotoSerif-Regular.ttf"
SERIF_BOLD = FONT_DIR / "NotoSerif-Bold.ttf"
SERIF_ITALIC = FONT_DIR / "NotoSerif-Italic.ttf"

A4_MM = (210, 297)


def font(path: Path, pt: float, dpi: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), int(round(pt * dpi / 72)))


def wrap(draw: ImageDraw.ImageDraw, text: str, fnt: ImageFont.FreeTypeFont, width: int) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        trial = f"{line} {word}".strip()
        if draw.textlength(trial, font=fnt) <= width:
            line = trial
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    return lines


def render_page(spec: dict, dpi: int, seed: int) -> Image.Image:
    """Draw one page: optional header block, title, body paragraphs, optional signature."""
    rng = random.Random(seed)
    w, h = (round(mm / 25.4 * dpi) for mm in A4_MM)
    tint = (rng.randint(240, 250), rng.randint(236, 246), rng.randint(222, 236))
    page = Image.new("RGB", (w, h), tint)
    draw = ImageDraw.Draw(page)
    mm = dpi / 25.4
    left, right = int(30 * mm), int(w - 15 * mm)
    y = int(20 * mm)
    body = font(SERIF, 13, dpi)
    bold = font(SERIF_BOLD, 13, dpi)
    small_bold = font(SERIF_BOLD, 12, dpi)
    italic = font(SERIF_ITALIC, 13, dpi)
    ink = (25, 25, 30)
    if spec.get("page_number"):
        text = str(spec["page_number"])
        draw.text(((w - draw.textlength(text, font=body)) / 2, int(10 * mm)), text, font=body,
                  fill=ink)
    if spec.get("header"):
        hd = spec["header"]
        col_l, col_r = left + int(35 * mm), left + int(120 * mm)
        for i, line in enumerate(hd["agency"]):
            f = small_bold if i == len(hd["agency"]) - 1 else font(SERIF, 12, dpi)
            draw.text((col_l - draw.textlength(line, font=f) / 2, y + i * int(6 * mm)), line,
                      font=f, fill=ink)
        motto = ["CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc"]
        for i, line in enumerate(motto):
            f = small_bold if i == 0 else bold
            draw.text((col_r - draw.textlength(line, font=f) / 2, y + i * int(6 * mm)), line,
                      font=f, fill=ink)
        y += int(16 * mm)
        draw.text((col_l - draw.textlength(hd["number"], font=body) / 2, y), hd["number"],
                  font=body, fill=ink)
        draw.text((col_r - draw.textlength(hd["date"], font=italic) / 2, y), hd["date"],
                  font=italic, fill=ink)
        y += int(16 * mm)
    for line in spec.get("title", []):
        draw.text(((w - draw.textlength(line, font=bold)) / 2, y), line, font=bold, fill=ink)
        y += int(7 * mm)
    if spec.get("title"):
        y += int(5 * mm)
    line_h = int(7.2 * mm)
    for para in spec.get("body", []):
        lines = wrap(draw, para, body, right - left - int(10 * mm))
        for j, line in enumerate(lines):
            x = left + (int(10 * mm) if j == 0 else 0)
            draw.text((x, y), line, font=body, fill=ink)
            y += line_h
        y += int(2 * mm)
    if spec.get("signature"):
        sx = left + int(110 * mm)
        for line in spec["signature"]["title"]:
            draw.text((sx - draw.textlength(line, font=bold) / 2, y), line, font=bold, fill=ink)
            y += int(6 * mm)
        # red seal over the left third of the signature (as on real papers)
        cx, cy, r = sx - int(12 * mm), y + int(14 * mm), int(19 * mm)
        seal = Image.new("RGBA", page.size, (0, 0, 0, 0))
        sd = ImageDraw.Draw(seal)
        red = (200, 30, 40, 150)
        sd.ellipse((cx - r, cy - r, cx + r, cy + r), outline=red, width=int(1.2 * mm))
        sd.ellipse((cx - r * 0.72, cy - r * 0.72, cx + r * 0.72, cy + r * 0.72), outline=red,
                   width=int(0.6 * mm))
        sd.regular_polygon((cx, cy, r * 0.25), 5, fill=red)
        page.paste(Image.alpha_composite(page.convert("RGBA"), seal).convert("RGB"))
        draw = ImageDraw.Draw(page)
        # scribbled signature in blue ink
        pts = []
        for k in range(60):
            t = k / 59
            pts.append((sx - int(15 * mm) + t * int(30 * mm),
                        y + int(12 * mm) + math.sin(t * 13 + seed) * int(4 * mm) * (1 - t / 2)))
        draw.line(pts, fill=(30, 40, 140), width=max(2, int(0.5 * mm)))
        y += int(28 * mm)
        name = spec["signature"]["name"]
        draw.text((sx - draw.textlength(name, font=bold) / 2, y), name, font=bold, fill=ink)
    arr = np.asarray(page, dtype=np.float32)
    nrng = np.random.default_rng(seed)
    arr += nrng.normal(0, 4.0, arr.shape)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    return img.filter(ImageFilter.GaussianBlur(0.6))


def skew(img: Image.Image, degrees: float) -> Image.Image:
    """Counter-clockwise by ``degrees`` about the centre, scanner-lid grey outside the paper."""
    return img.rotate(degrees, resample=Image.BICUBIC, expand=False, fillcolor=(235, 235, 232))


def save_jpeg(img: Image.Image, path: Path, dpi: int, quality: int = 80) -> None:
    img.save(path, "JPEG", quality=quality, dpi=(dpi, dpi), optimize=True)


def save_g4_tiff(pages: list[Image.Image], path: Path, dpi: int) -> None:
    bilevel = [p.convert("L").point(lambda v: 255 if v > 150 else 0).convert("1") for p in pages]
    bilevel[0].save(path, "TIFF", compression="group4", dpi=(dpi, dpi), save_all=True,
                    append_images=bilevel[1:])


def save_image_pdf(pages: list[Image.Image], path: Path, dpi: int) -> None:
    """A scanner-style image-only PDF: one JPEG per A4 page, no text."""
    pdf = pikepdf.new()
    for img in pages:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=78)
        w, h = img.size
        image = pikepdf.Stream(pdf, buf.getvalue())
        image.Type, image.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
        image.Width, image.Height = w, h
        image.ColorSpace = pikepdf.Name.DeviceRGB
        image.BitsPerComponent = 8
        image.Filter = pikepdf.Name.DCTDecode
        pw, ph = w / dpi * 72, h / dpi * 72
        content = pikepdf.Stream(pdf, f"q {pw:.2f} 0 0 {ph:.2f} 0 0 cm /Im0 Do Q".encode())
        page = pikepdf.Dictionary(
            Type=pikepdf.Name.Page, MediaBox=[0, 0, pw, ph], Contents=content,
            Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image)),
        )
        pdf.pages.append(pikepdf.Page(page))
    pdf.docinfo["/Producer"] = "Scanner sample"
    pdf.save(path, deterministic_id=True)


BODY_TO_KHAI = [
    "Kính gửi: Ủy ban nhân dân xã Tam Dương, tỉnh Phú Thọ.",
    "Họ, chữ đệm, tên người yêu cầu: Phạm Thị Lan. Nơi cư trú: thôn Đồng Tĩnh, xã Tam Dương, "
    "tỉnh Phú Thọ. Giấy tờ tùy thân: Căn cước số 0251900000xx do Bộ Công an cấp.",
    "Quan hệ với người được khai sinh: mẹ. Đề nghị cơ quan đăng ký khai sinh cho người dưới đây.",
    "Họ, chữ đệm, tên: Nguyễn Minh Khôi. Ngày, tháng, năm sinh: ngày 02 tháng 10 năm 2025. "
    "Giới tính: Nam. Dân tộc: Kinh. Quốc tịch: Việt Nam.",
    "Nơi sinh: Bệnh viện Đa khoa tỉnh Phú Thọ. Quê quán: xã Tam Dương, tỉnh Phú Thọ.",
    "Tôi cam đoan nội dung đề nghị đăng ký khai sinh trên đây là đúng sự thật, được sự thỏa thuận "
    "nhất trí của các bên liên quan theo quy định pháp luật.",
    "Tôi chịu hoàn toàn trách nhiệm trước pháp luật về nội dung cam đoan của mình.",
]
BODY_TO_KHAI_2 = [
    "Thông tin về cha: Họ, chữ đệm, tên: Nguyễn Văn Hùng. Năm sinh: 1994. Dân tộc: Kinh. "
    "Quốc tịch: Việt Nam. Nơi cư trú: thôn Đồng Tĩnh, xã Tam Dương, tỉnh Phú Thọ.",
    "Thông tin về mẹ: Họ, chữ đệm, tên: Phạm Thị Lan. Năm sinh: 1996. Dân tộc: Kinh. "
    "Quốc tịch: Việt Nam. Nơi cư trú: thôn Đồng Tĩnh, xã Tam Dương, tỉnh Phú Thọ.",
    "Đề nghị cấp bản sao Giấy khai sinh: có, số lượng 02 bản.",
    "Giấy tờ kèm theo: giấy chứng sinh do cơ sở y tế cấp; giấy chứng nhận kết hôn của cha, mẹ; "
    "văn bản ủy quyền có chứng thực trong trường hợp ủy quyền thực hiện thủ tục.",
]
BODY_UY_QUYEN = [
    "Căn cứ Bộ luật Dân sự ngày 24 tháng 11 năm 2015 và các văn bản hướng dẫn thi hành.",
    "Hôm nay, tại Ủy ban nhân dân xã Tam Dương, chúng tôi gồm: bên ủy quyền là bà Phạm Thị Lan, "
    "bên được ủy quyền là ông Nguyễn Văn Hùng, cùng cư trú tại thôn Đồng Tĩnh.",
    "Nội dung ủy quyền: bên được ủy quyền thay mặt bên ủy quyền nộp hồ sơ, nhận kết quả đăng ký "
    "khai sinh và bản sao Giấy khai sinh tại Bộ phận Một cửa.",
    "Thời hạn ủy quyền: kể từ ngày ký đến khi hoàn thành công việc được ủy quyền.",
    "Hai bên cam kết chịu trách nhiệm trước pháp luật về nội dung ủy quyền và thực hiện đúng các "
    "thỏa thuận đã ghi trong giấy này.",
]
BODY_QD = [
    "Căn cứ Luật Tổ chức chính quyền địa phương ngày 19 tháng 02 năm 2025;",
    "Căn cứ Nghị định số 118/2025/NĐ-CP ngày 09 tháng 6 năm 2025 của Chính phủ về thực hiện thủ "
    "tục hành chính theo cơ chế một cửa, một cửa liên thông tại Bộ phận Một cửa và Cổng Dịch vụ "
    "công quốc gia;",
    "Theo đề nghị của Trưởng Bộ phận Một cửa xã Tam Dương.",
]
BODY_QD_2 = [
    "Điều 1. Giao Bưu điện xã Tam Dương thực hiện việc hướng dẫn, tiếp nhận, số hóa hồ sơ và trả "
    "kết quả giải quyết thủ tục hành chính tại Bộ phận Một cửa xã theo quy định.",
    "Điều 2. Nhân viên bưu điện được giao nhiệm vụ chịu trách nhiệm về tính chính xác, đầy đủ của "
    "bản sao điện tử so với bản giấy và ký số bằng chữ ký số cá nhân.",
    "Điều 3. Quyết định này có hiệu lực kể từ ngày ký. Văn phòng, Bộ phận Một cửa và các cá nhân "
    "có liên quan chịu trách nhiệm thi hành Quyết định này.",
]
BODY_DON = [
    "Kính gửi: Bộ phận Một cửa Ủy ban nhân dân xã Tam Dương.",
    "Tôi tên là: Trần Quốc Bảo, sinh năm 1988, cư trú tại thôn Hợp Thịnh, xã Tam Dương, tỉnh "
    "Phú Thọ.",
    "Tôi làm đơn này đề nghị Ủy ban nhân dân xã cấp bản sao từ sổ gốc Giấy chứng nhận kết hôn "
    "đã đăng ký ngày 15 tháng 8 năm 2014 tại Ủy ban nhân dân xã Tam Dương.",
    "Mục đích sử dụng: bổ sung hồ sơ vay vốn tại Ngân hàng Chính sách xã hội. Số lượng bản sao "
    "đề nghị cấp: 03 bản.",
    "Tôi xin cam đoan những thông tin khai trên đây là đúng sự thật và chịu trách nhiệm trước pháp "
    "luật về lời khai của mình.",
]
HEADER_QD = {
    "agency": ["ỦY BAN NHÂN DÂN", "XÃ TAM DƯƠNG"],
    "number": "Số: 215/QĐ-UBND",
    "date": "Tam Dương, ngày 14 tháng 10 năm 2025",
}
SIGN_QD = {"title": ["TM. ỦY BAN NHÂN DÂN", "CHỦ TỊCH"], "name": "Lê Văn Thành"}


# --- citizens' papers ---------------------------------------------------------------------
HAND_CANDIDATES = (
    Path("/usr/share/fonts/truetype/dkg-handwriting/DkgHandwriting.ttf"),
    Path("/usr/share/fonts/opentype/dancingscript/DancingScript-Regular.otf"),
    Path("/usr/share/fonts/opentype/comic-neue/ComicNeue-Regular.otf"),
)
VIETNAMESE = "ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹĐ"
MOTHER_ID = "025196004321"  # Phú Thọ, female born in 1996 (made up)
CHILD_ID = "025225001234"  # Phú Thọ, male born in 2025 (made up)


def hand_font() -> Path:
    """A handwriting-like font that covers Vietnamese, else Noto Sans Italic."""
    from fontTools.ttLib import TTFont

    for candidate in HAND_CANDIDATES:
        if candidate.is_file():
            cmap = TTFont(str(candidate)).getBestCmap()
            if all(ord(ch) in cmap for ch in VIETNAMESE):
                return candidate
    return FONT_DIR.parent / "noto" / "NotoSans-Italic.ttf"


def paper_page(title: str, rows: list[list[tuple[str, str]]], dpi: int, seed: int,
               hand: bool = False, closing: tuple[str, ...] = (),
               gray: bool = False) -> Image.Image:
    """A form or certificate: motto, title, "label: value" rows (values by hand on dotted
    lines, or typed), closing block on the right."""
    rng = random.Random(seed)
    w, h = (round(mm / 25.4 * dpi) for mm in A4_MM)
    tint = (rng.randint(242, 250), rng.randint(238, 246), rng.randint(226, 236))
    page = Image.new("RGB", (w, h), tint)
    draw = ImageDraw.Draw(page)
    mm = dpi / 25.4
    body, bold = font(SERIF, 12.5, dpi), font(SERIF_BOLD, 12.5, dpi)
    ink = font(hand_font(), 13.5, dpi)
    line_h = int(body.size * 1.8)
    y = int(18 * mm)
    draw.text((w // 2, y), "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", font=bold, fill="black",
              anchor="mt")
    draw.text((w // 2, y + line_h), "Độc lập - Tự do - Hạnh phúc", font=bold, fill="black",
              anchor="mt")
    y += 3 * line_h
    draw.text((w // 2, y), title, font=font(SERIF_BOLD, 15, dpi), fill="black", anchor="mt")
    y += 2 * line_h
    left = int(25 * mm)
    for pairs in rows:
        x = left
        for label, value in pairs:
            shown = f"{label}: " if value else label
            draw.text((x, y), shown, font=body, fill="black")
            x += int(draw.textlength(shown, font=body))
            if hand and value:
                end = x + int(draw.textlength(value, font=ink)) + int(10 * mm)
                dot = x
                while dot < end:
                    draw.text((dot, y), ".", font=body, fill="black")
                    dot += int(draw.textlength(" . ", font=body))
                blue = (20 + rng.randint(0, 20), 40 + rng.randint(0, 20), 150 + rng.randint(0, 30))
                draw.text((x + int(2 * mm), y - int(0.8 * mm) + rng.randint(-3, 3)), value,
                          font=ink, fill=blue)
                x = end + int(4 * mm)
            elif value:
                draw.text((x, y), value, font=body, fill="black")
                x += int(draw.textlength(value + "    ", font=body))
        y += line_h
    y += line_h
    for i, text in enumerate(closing):
        fnt = bold if text.isupper() else body
        draw.text((int(145 * mm), y + i * line_h * (3 if i == len(closing) - 1 else 1)), text,
                  font=fnt, fill="black", anchor="mt")
    page = page.filter(ImageFilter.GaussianBlur(0.5))
    return page.convert("L").convert("RGB") if gray else page


def icao_check(data: str) -> str:
    total = 0
    for i, ch in enumerate(data):
        value = int(ch) if ch.isdigit() else (ord(ch) - 55 if ch.isalpha() else 0)
        total += value * (7, 3, 1)[i % 3]
    return str(total % 10)


def card_mrz(personal_id: str, birth: str, sex: str, expiry: str, name: str) -> list[str]:
    document = personal_id[3:]
    line1 = f"IDVNM{document}{icao_check(document)}{personal_id}<<".ljust(30, "<")
    line2 = f"{birth}{icao_check(birth)}{sex}{expiry}{icao_check(expiry)}VNM".ljust(29, "<")
    line2 += icao_check(line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29])
    return [line1, line2, name.upper().replace(" ", "<<", 1).replace(" ", "<").ljust(30, "<")]


def make_papers_dossier() -> None:
    """Dossier 3: citizens' papers for a birth registration (Art. 9 demo)."""
    d3 = HERE / "ho-so-dang-ky-khai-sinh"
    shutil.rmtree(d3, ignore_errors=True)
    form = paper_page("TỜ KHAI ĐĂNG KÝ KHAI SINH", [
        [("Kính gửi", "Ủy ban nhân dân xã Tam Dương")],
        [("Họ, chữ đệm, tên người yêu cầu", "Phạm Thị Lan")],
        [("Giấy tờ tùy thân", f"CCCD số {MOTHER_ID}")],
        [("Quan hệ với người được khai sinh", "Mẹ")],
        [("Đề nghị cơ quan đăng ký khai sinh cho người dưới đây:", "")],  # printed
        [("Họ, chữ đệm, tên", "Nguyễn Minh Khôi")],
        [("Ngày, tháng, năm sinh", "02/10/2025")],
        [("Giới tính", "Nam"), ("Dân tộc", "Kinh")],
        [("Nơi sinh", "Bệnh viện Đa khoa tỉnh Phú Thọ")],
        [("Họ, chữ đệm, tên người mẹ", "Phạm Thị Lan")],
        [("Họ, chữ đệm, tên người cha", "Nguyễn Văn Hùng")],
        [("Làm tại", "Tam Dương, ngày 06 tháng 10 năm 2025")],
    ], 200, 11, hand=True, closing=("Người yêu cầu", "Phạm Thị Lan"))
    certificate = paper_page("GIẤY KHAI SINH", [
        [("Số", "112"), ("Quyển số", "01/2025")],
        [("Họ, chữ đệm, tên", "NGUYỄN MINH KHÔI")],
        [("Ngày, tháng, năm sinh", "02/10/2025")],
        [("Giới tính", "Nam"), ("Dân tộc", "Kinh"), ("Quốc tịch", "Việt Nam")],
        [("Nơi sinh", "Bệnh viện Đa khoa tỉnh Phú Thọ")],
        [("Số định danh cá nhân", CHILD_ID)],
        [("Họ, chữ đệm, tên người mẹ", "PHẠM THỊ LAN")],
        [("Họ, chữ đệm, tên người cha", "NGUYỄN VĂN HÙNG")],
        [("Nơi đăng ký khai sinh", "Ủy ban nhân dân xã Tam Dương")],
        [("Ngày, tháng, năm đăng ký", "08/10/2025")],
    ], 200, 12, closing=("NGƯỜI KÝ GIẤY KHAI SINH", "Lê Văn Thành"))
    card = paper_page("CĂN CƯỚC CÔNG DÂN", [
        [("Số / No.", MOTHER_ID)],
        [("Họ và tên / Full name", "PHẠM THỊ LAN")],
        [("Ngày sinh / Date of birth", "14/07/1996")],
        [("Giới tính / Sex", "Nữ"), ("Quốc tịch / Nationality", "Việt Nam")],
        [("Quê quán / Place of origin", "Tam Dương, Phú Thọ")],
        [("Có giá trị đến / Date of expiry", "14/07/2036")],
        [("Ngày, tháng, năm / Date, month, year", "20/03/2022")],
        [("CỤC TRƯỞNG CỤC CẢNH SÁT QUẢN LÝ HÀNH CHÍNH VỀ TRẬT TỰ XÃ HỘI", "")],
        *[[(line, "")] for line in card_mrz(MOTHER_ID, "960714", "F", "360714", "PHAM THI LAN")],
    ], 200, 13, gray=True)
    for folder, image, turn in (("1-to-khai", form, 0.8), ("2-giay-khai-sinh", certificate, -1.2),
                                ("3-can-cuoc", card, 1.5)):
        (d3 / folder).mkdir(parents=True)
        save_jpeg(skew(image, turn), d3 / folder / "p1.jpg", 200, quality=75)
    (d3 / "dossier.yaml").write_text(
        "# Written by the counter clerk at intake (R4): what was handed in.\n"
        "procedure_code: 1.001193.000.00.00.H62\n"
        "components:\n"
        "  - path: 1-to-khai\n    name: Tờ khai đăng ký khai sinh\n"
        "    paper_type: to_khai_khai_sinh\n"
        "  - path: 2-giay-khai-sinh\n    name: Giấy khai sinh (bản chính)\n"
        "  - path: 3-can-cuoc\n    name: Căn cước công dân của mẹ (bản sao)\n",
        encoding="utf-8",
    )


def main() -> None:
    # Dossier 1: code from the one-stop system, dossier.yaml, three components.
    d1 = HERE / "000.00.12.H62-251125-0001"
    shutil.rmtree(d1, ignore_errors=True)
    (d1 / "01-to-khai-khai-sinh").mkdir(parents=True)
    p1 = render_page({"title": ["TỜ KHAI ĐĂNG KÝ KHAI SINH"], "body": BODY_TO_KHAI}, 200, 1)
    p2 = render_page({"page_number": 2, "body": BODY_TO_KHAI_2,
                      "signature": {"title": ["NGƯỜI YÊU CẦU"], "name": "Phạm Thị Lan"}}, 200, 2)
    save_jpeg(skew(p1, 1.6), d1 / "01-to-khai-khai-sinh" / "p1.jpg", 200)
    save_jpeg(skew(p2, -2.2), d1 / "01-to-khai-khai-sinh" / "p2.jpg", 200)
    uq = [
        render_page({"title": ["GIẤY ỦY QUYỀN"], "body": BODY_UY_QUYEN}, 300, 3),
        render_page({"page_number": 2, "body": BODY_UY_QUYEN[2:],
                     "signature": {"title": ["BÊN ỦY QUYỀN"], "name": "Phạm Thị Lan"}}, 300, 4),
    ]
    save_g4_tiff([skew(uq[0], -0.8), uq[1]], d1 / "02-giay-uy-quyen.tif", 300)
    qd = [
        render_page({"header": HEADER_QD, "title": ["QUYẾT ĐỊNH", "Về việc giao nhiệm vụ tiếp "
                     "nhận, số hóa hồ sơ"], "body": BODY_QD}, 200, 5),
        render_page({"page_number": 2, "body": BODY_QD_2, "signature": SIGN_QD}, 200, 6),
    ]
    save_image_pdf([skew(qd[0], 1.1), qd[1]], d1 / "03-quyet-dinh-giao-nhiem-vu.pdf", 200)
    (d1 / "dossier.yaml").write_text(
        "# Written by the counter clerk at intake (R4): codes and declared page counts.\n"
        "dossier_code: 000.00.12.H62-251125-0001\n"
        "procedure_code: 1.001193.000.00.00.H62\n"
        "components:\n"
        "  - path: 01-to-khai-khai-sinh\n    name: Tờ khai đăng ký khai sinh\n"
        "    declared_pages: 2\n"
        "  - path: 02-giay-uy-quyen.tif\n    name: Giấy ủy quyền\n    declared_pages: 2\n"
        "  - path: 03-quyet-dinh-giao-nhiem-vu.pdf\n    name: Quyết định giao nhiệm vụ (bản sao)\n"
        "    declared_pages: 2\n",
        encoding="utf-8",
    )
    (d1 / "ghi-chu.txt").write_text("Ghi chú của cán bộ: hồ sơ nhận lúc 8 giờ 30.\n",
                                    encoding="utf-8")

    # Dossier 2: no dossier.yaml (folder-name convention), one page fed upside down.
    d2 = HERE / "ho-so-cap-ban-sao"
    shutil.rmtree(d2, ignore_errors=True)
    (d2 / "1-don-de-nghi").mkdir(parents=True)
    don = render_page({"title": ["ĐƠN ĐỀ NGHỊ CẤP BẢN SAO", "TỪ SỔ GỐC"], "body": BODY_DON,
                       "signature": {"title": ["NGƯỜI LÀM ĐƠN"], "name": "Trần Quốc Bảo"}}, 200, 7)
    save_jpeg(skew(don, 0.7).rotate(180), d2 / "1-don-de-nghi" / "trang-1.jpg", 200)
    (d2 / "2-quyet-dinh").mkdir()
    save_jpeg(skew(qd[0], -1.4), d2 / "2-quyet-dinh" / "p1.jpg", 200)
    save_jpeg(qd[1], d2 / "2-quyet-dinh" / "p2.jpg", 200)
    make_papers_dossier()


if __name__ == "__main__":
    main()
