"""The review web application: a WSGI app on Werkzeug, pages rendered on the server with
Jinja2 (autoescape), one small script of our own for the keyboard flow. No build step, no
external resource: it works in a plain browser on a machine with no network.

Why Werkzeug and not Flask: routing, request parsing, a threaded development server and test
tools are all the app needs, and Werkzeug has them in one package; Flask would add its
app/session globals, ``itsdangerous`` and ``blinker`` for nothing we use.

Security (file names, OCR text and certificate names are untrusted; the page changes signed
records):

* every value goes through Jinja's autoescape; nothing untrusted is put in a script or a style;
  Content-Security-Policy allows only this origin's script and styles, no frames, form posts
  only to itself;
* the server listens on loopback unless told otherwise (``server.py``); the ``Host`` header must
  name an address it serves (a DNS-rebinding page cannot talk to it);
* every POST needs the session cookie (``SameSite=Strict``, ``HttpOnly``), a form token bound to
  it (HMAC with a per-process secret) and an ``Origin`` (or, without one, ``Referer``) of this
  server; a cross-site form post is refused with 403 and changes nothing;
* bundles are looked up by name in the folder listing, never by a path from the request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader
from werkzeug.exceptions import BadRequest, Forbidden, HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from digitize.errors import DigitizeError, InvalidReviewValueError
from digitize.manifest import MANIFEST_FILE
from digitize.report.build import DossierReport, ReportDocument, ReportField, build_report
from digitize.report.html import TEXT as REPORT_TEXT
from digitize.report.html import display_time
from digitize.review.corrections import (
    Corrections,
    DocumentCorrection,
    FieldCorrection,
    PageCorrection,
)
from digitize.review.render import PageRenderer
from digitize.review.save import read_manifest, save_review
from digitize.review.state import open_items
from digitize.review.texts import field_label, ui
from digitize.review.values import rule_for
from digitize.settings import ExtractSettings
from digitize.util import sha256_bytes

if TYPE_CHECKING:
    from digitize.sign import DigitiserSigner
    from digitize.verify import VerifyReport

PAGE_WIDTH = 1240  # px: an A4 page at 150 dpi, readable at 100 % on a counter screen
SESSION_COOKIE = "digitize_review_session"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


@dataclass
class ReviewSettings:
    """What the app serves and how it trusts (given by the CLI)."""

    root: Path  # a bundle folder or a folder of bundle folders
    signer: DigitiserSigner
    verify: Callable[[Path], VerifyReport]
    allowed_hosts: frozenset[str]  # "host:port" values accepted in the Host header
    lang: str = "vi"
    # the reviewer's profile: the paper-type catalogue (kinds of Art. 9 fields) and the
    # result-code template a correction of Art. 9 values rebuilds codes with
    extract: ExtractSettings = field(default_factory=ExtractSettings)
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))


class ReviewApp:
    """WSGI application: ``ReviewApp(settings)`` is callable as ``app(environ, start_response)``."""

    def __init__(self, settings: ReviewSettings) -> None:
        self.settings = settings
        self.renderer = PageRenderer()
        from digitize.extract.catalogue import load_catalogue

        self.catalogue = load_catalogue(settings.extract.catalogue)
        self._save_lock = threading.Lock()  # one signer, one save at a time
        self.env = Environment(loader=PackageLoader("digitize.review", "templates"),
                               autoescape=True, trim_blocks=True, lstrip_blocks=True)
        self.env.filters["when"] = display_time
        self.env.filters["pct"] = lambda v: "—" if v is None else f"{float(v) * 100:.0f} %"
        self.env.globals.update(ui=ui, field_label=field_label, rule_for=rule_for,
                                text=_text)
        self.url_map = Map([
            Rule("/", endpoint="index", methods=["GET"]),
            Rule("/b/<name>", endpoint="bundle", methods=["GET"]),
            Rule("/b/<name>/save", endpoint="save", methods=["POST"]),
            Rule("/b/<name>/page/<int:ordinal>/<int:page>.jpg", endpoint="page",
                 methods=["GET"]),
            Rule("/b/<name>/crop/<int:ordinal>/<int:index>.png", endpoint="crop",
                 methods=["GET"]),
            Rule("/static/<any('review.js', 'review.css'):file>", endpoint="static",
                 methods=["GET"]),
        ])

    # -- WSGI ---------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        request = Request(environ)
        response = self.dispatch(request)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        try:
            if request.host.lower() not in self.settings.allowed_hosts:
                raise BadRequest("Host không hợp lệ")
            adapter = self.url_map.bind_to_environ(request.environ)
            endpoint, values = adapter.match()
            if request.method == "POST":
                self._check_post(request)
            handler = getattr(self, f"on_{endpoint}")
            response: Response = handler(request, **values)
        except HTTPException as exc:
            response = Response(f"{exc.code} {exc.description or exc.name}\n",
                                status=exc.code, mimetype="text/plain")
        except DigitizeError as exc:  # a broken bundle or an unrenderable page: say which
            response = Response(f"409 {exc.one_line()}\n", status=409, mimetype="text/plain")
        self._harden(request, response)
        return response

    # -- security -------------------------------------------------------------------------
    def _session(self, request: Request) -> str | None:
        value = request.cookies.get(SESSION_COOKIE)
        return value if value and len(value) >= 32 else None

    def csrf_token(self, session: str) -> str:
        return hmac.new(self.settings.secret, session.encode(), hashlib.sha256).hexdigest()

    def _check_post(self, request: Request) -> None:
        session = self._session(request)
        token = request.form.get("csrf_token", "")
        if session is None or not hmac.compare_digest(token, self.csrf_token(session)):
            raise Forbidden("Thiếu hoặc sai mã chống giả mạo (CSRF)")
        origin = request.headers.get("Origin")
        source = origin if origin and origin != "null" else request.headers.get("Referer")
        if not source:
            raise Forbidden("Yêu cầu không cho biết nguồn (Origin/Referer)")
        parts = urlsplit(source)
        if parts.scheme not in ("http", "https") or parts.netloc.lower() not in \
                self.settings.allowed_hosts or parts.netloc.lower() != request.host.lower():
            raise Forbidden("Yêu cầu từ trang khác bị từ chối")

    def _harden(self, request: Request, response: Response) -> None:
        headers = response.headers
        headers["Content-Security-Policy"] = CSP
        headers["X-Content-Type-Options"] = "nosniff"
        headers["X-Frame-Options"] = "DENY"
        headers["Referrer-Policy"] = "same-origin"
        headers["Cache-Control"] = "no-store"  # personal data: nothing stays in a cache
        if self._session(request) is None:
            response.set_cookie(SESSION_COOKIE, getattr(request, "new_session", None)
                                or secrets.token_urlsafe(32), httponly=True, samesite="Strict",
                                path="/")

    def _session_for_page(self, request: Request) -> str:
        """The session a page's form token is bound to (a new one is set with the page)."""
        session = self._session(request)
        if session is None:
            session = secrets.token_urlsafe(32)
            request.new_session = session  # type: ignore[attr-defined]
        return session

    # -- bundles ----------------------------------------------------------------------------
    def bundles(self) -> dict[str, Path]:
        root = self.settings.root
        if (root / MANIFEST_FILE).is_file():
            return {root.name: root}
        found = {}
        for path in sorted(root.iterdir(), key=lambda p: p.name):
            if path.name.startswith(".") or not path.is_dir() or path.is_symlink():
                continue
            if (path / MANIFEST_FILE).is_file():
                found[path.name] = path
        return found

    def _bundle(self, name: str) -> Path:
        path = self.bundles().get(name)
        if path is None:
            raise NotFound("Không có gói hồ sơ này")
        return path

    def _doc(self, report: DossierReport, ordinal: int) -> ReportDocument:
        for doc in report.documents:
            if doc.ordinal == ordinal and doc.file:
                return doc
        raise NotFound("Không có thành phần này")

    # -- pages ------------------------------------------------------------------------------
    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        html = self.env.get_template(template).render(lang=self.settings.lang, **context)
        return Response(html, status=status, mimetype="text/html")

    def on_index(self, request: Request) -> Response:
        bundles = self.bundles()
        if (self.settings.root / MANIFEST_FILE).is_file():
            return redirect(f"/b/{next(iter(bundles))}", code=303)
        rows: list[dict[str, Any]] = []
        for name, path in bundles.items():
            try:
                manifest, _ = read_manifest(path)
            except DigitizeError as exc:
                rows.append({"name": name, "error": exc.message})
                continue
            items = open_items(manifest)
            rows.append({"name": name, "code": manifest.dossier_code,
                         "open": len(items), "reviews": len(manifest.reviews),
                         "created_at": manifest.created_at})
        rows.sort(key=lambda r: (r.get("open", 0) == 0, r["name"]))
        return self.render("list.html", rows=rows, root=str(self.settings.root))

    def on_bundle(self, request: Request, name: str) -> Response:
        path = self._bundle(name)
        return self._bundle_page(request, name, path)

    def _bundle_page(self, request: Request, name: str, path: Path, *, status: int = 200,
                     errors: dict[str, str] | None = None, values: dict[str, str] | None = None,
                     message: str | None = None) -> Response:
        manifest, raw = read_manifest(path)
        verified = self.settings.verify(path)
        report = build_report(path, verified, self.settings.lang, manifest=manifest,
                              catalogue=self.catalogue)
        saved = None
        if request.args.get("saved") and manifest.reviews:
            saved = manifest.reviews[-1]
        session = self._session_for_page(request)
        return self.render(
            "bundle.html", status=status, name=name, r=report, verified=verified,
            manifest_sha256=sha256_bytes(raw), csrf_token=self.csrf_token(session),
            reviewer=self.settings.signer.identity, errors=errors or {}, values=values or {},
            message=message, saved=saved, field_key=field_key,
        )

    def on_page(self, request: Request, name: str, ordinal: int, page: int) -> Response:
        path = self._bundle(name)
        report = build_report(path, None, self.settings.lang)
        doc = self._doc(report, ordinal)
        if page not in {p.index for p in doc.pages}:
            raise NotFound()
        data = self.renderer.page_jpeg(path / (doc.file or ""), page, PAGE_WIDTH)
        return Response(data, mimetype="image/jpeg")

    def on_crop(self, request: Request, name: str, ordinal: int, index: int) -> Response:
        path = self._bundle(name)
        report = build_report(path, None, self.settings.lang)
        doc = self._doc(report, ordinal)
        fields = (*doc.fields, *doc.art9)
        if not 0 <= index < len(fields) or fields[index].bbox is None:
            raise NotFound()
        target = fields[index]
        width = next((p.width_px for p in doc.pages if p.index == target.page), None)
        if width is None or target.page is None or target.bbox is None:
            raise NotFound()
        data = self.renderer.crop(path / (doc.file or ""), target.page, target.bbox, width)
        return Response(data, mimetype="image/png")

    def on_static(self, request: Request, file: str) -> Response:
        data = (Path(__file__).parent / "static" / file).read_bytes()
        mime = "text/javascript" if file.endswith(".js") else "text/css"
        return Response(data, mimetype=mime)

    def on_save(self, request: Request, name: str) -> Response:
        path = self._bundle(name)
        manifest, _ = read_manifest(path)
        report = build_report(path, None, self.settings.lang, manifest=manifest,
                              catalogue=self.catalogue)
        corrections, errors, values = corrections_from_form(report, request.form)
        if errors:
            return self._bundle_page(request, name, path, status=400, errors=errors,
                                     values=values, message=_text("form_errors", self.settings.lang))
        if corrections.empty:
            return self._bundle_page(request, name, path, status=400, values=values,
                                     message=_text("nothing", self.settings.lang))
        try:
            with self._save_lock:
                save_review(path, corrections, self.settings.signer, self.settings.verify,
                            expected_manifest_sha256=request.form.get("manifest_sha256", ""),
                            extract=self.settings.extract)
        except DigitizeError as exc:
            return self._bundle_page(request, name, path, status=409 if not isinstance(
                exc, InvalidReviewValueError) else 400, values=values, message=exc.one_line())
        return redirect(f"/b/{name}?saved=1#top", code=303)


def field_key(ordinal: int, index: int) -> str:
    """Form key of a field row: its component ordinal and index (never its untrusted name)."""
    return f"{ordinal}-{index}"


def corrections_from_form(report: DossierReport, form: Any
                          ) -> tuple[Corrections, dict[str, str], dict[str, str]]:
    """The form's decisions as ``Corrections`` (the same model ``--apply`` reads), with
    per-input errors (in the page's language) and the values to show again."""
    from digitize.review.values import normalise_value

    lang = report.lang
    fields: list[FieldCorrection] = []
    pages: list[PageCorrection] = []
    documents: list[DocumentCorrection] = []
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    for doc in report.documents:
        if not doc.file:
            continue
        for index, item in enumerate((*doc.fields, *doc.art9)):
            key = field_key(doc.ordinal, index)
            typed = form.get(f"value-{key}")
            if typed is None:
                continue
            values[f"value-{key}"] = typed
            confirmed = form.get(f"confirm-{key}") == "1"
            changed = _differs(typed, item)
            if not changed and not confirmed:
                continue
            if not item.editable:
                continue  # a value of the configuration: never taken from the form
            try:
                normalise_value(item.name, typed if changed else (item.value or ""),
                                kind=item.kind)
            except InvalidReviewValueError:
                errors[f"value-{key}"] = rule_for(item.name, item.kind).hint(lang)
                continue
            if changed:
                fields.append(FieldCorrection(file=doc.file, field=item.name, value=typed))
            else:
                fields.append(FieldCorrection(file=doc.file, field=item.name, confirm=True))
        for page in doc.pages:
            key = f"{doc.ordinal}-{page.index}"
            decision = form.get(f"decision-{key}", "")
            reason = (form.get(f"reason-{key}") or "").strip()
            values[f"decision-{key}"] = decision
            values[f"reason-{key}"] = reason
            if decision not in ("accept", "rescan"):
                continue
            if decision == page.decision and (decision == "accept"
                                              or reason == (page.decision_reason or "")):
                continue  # unchanged since the last review
            if decision == "rescan" and not reason:
                errors[f"reason-{key}"] = _text("reason_needed", lang)
                continue
            pages.append(PageCorrection(file=doc.file, page=page.index, decision=decision,
                                        reason=reason or None))
        if form.get(f"accept-doc-{doc.ordinal}") == "1":
            values[f"accept-doc-{doc.ordinal}"] = "1"
            if doc.config_gaps and doc.accepted_by is None:
                documents.append(DocumentCorrection(file=doc.file, decision="accept"))
    return (Corrections(fields=tuple(fields), pages=tuple(pages), documents=tuple(documents)),
            errors, values)


def _differs(typed: str, item: ReportField) -> bool:
    import re
    import unicodedata

    def norm(text: str) -> str:
        return re.sub(r"[ \t]+", " ", unicodedata.normalize("NFC", text).replace("\r\n", "\n")
                      ).strip()

    return norm(typed) != norm(item.value or "")


_APP_TEXT: dict[str, tuple[str, str]] = {
    "app_title": ("Rà soát hồ sơ số hóa", "Review of digitised dossiers"),
    "review_title": ("Rà soát hồ sơ", "Review of dossier"),
    "list_title": ("Gói hồ sơ trong thư mục", "Bundles in the folder"),
    "open_items": ("Việc cần xem", "Open items"),
    "none_open": ("Không còn việc cần xem", "Nothing left to review"),
    "open": ("Mở", "Open"),
    "form_errors": ("Có giá trị chưa đúng định dạng: xem các ô được đánh dấu.",
                    "Some values are not in the right format: see the marked boxes."),
    "nothing": ("Chưa có quyết định nào để lưu.", "There is no decision to save."),
    "reason_needed": ("Ghi lý do cần quét lại.", "Give the reason for a new scan."),
    "to_confirm": ("Thông tin cần xác nhận", "Values to confirm"),
    "other_fields": ("Các thông tin khác", "Other values"),
    "pages": ("Các trang", "Pages"),
    "confirm": ("Xác nhận", "Confirm"),
    "decision": ("Quyết định cho trang {page}", "Decision for page {page}"),
    "undecided": ("Chưa quyết định", "Not decided"),
    "reason": ("Lý do cần quét lại (trang {page})", "Reason for a new scan (page {page})"),
    "save": ("Lưu và ký lại", "Save and re-sign"),
    "saved": ("Đã lưu và ký lại bản kê: {name}, {time}.", "Saved and re-signed: {name}, {time}."),
    "reviewer": ("Người rà soát (chứng thư ký)", "Reviewer (signing certificate)"),
    "keys": ("Bàn phím: Tab chuyển ô, Enter xác nhận giá trị và sang ô sau, gõ để sửa.",
             "Keyboard: Tab moves on, Enter confirms a value and moves to the next, type to "
             "correct."),
    "machine_read": ("Máy đọc", "Machine read"),
    "full_page": ("Mở trang cỡ lớn", "Open the page full size"),
    "back": ("Danh sách hồ sơ", "All bundles"),
    "status_confirmed": ("Đã xác nhận", "Confirmed"),
    "status_corrected": ("Đã sửa", "Corrected"),
    "status_pending": ("Sẽ sửa khi lưu", "Will be corrected on save"),
    "crop_alt": ("Vùng trên trang {page} nơi máy đọc {label}",
                 "Where {label} was read on page {page}"),
    "page_alt": ("Trang {page} của {name}", "Page {page} of {name}"),
    "not_verified": ("Gói hồ sơ không kiểm tra được: không thể lưu rà soát.",
                     "The bundle does not verify: a review cannot be saved."),
    "art9_title": ("Thông tin theo Điều 9 (loại giấy tờ: {paper})",
                   "Art. 9 data (paper type: {paper})"),
    "result_code": ("Mã kết quả số hóa", "Digitisation-result code"),
    "no_result_code": ("chưa có", "none yet"),
    "config_gap": ("Người rà soát không sửa được trên trang này: {gaps}.",
                   "A reviewer cannot fix this on the page: {gaps}."),
    "owner_first": ("Mã còn cần số định danh của chủ sở hữu: nhập hoặc xác nhận ở trên.",
                    "The code also needs the owner's identifier: enter or confirm it above."),
    "accept_doc": ("Tôi biết thành phần này chưa có mã kết quả số hóa và chấp nhận nó",
                   "I know this component has no digitisation-result code and accept it"),
    "from_catalogue": ("Lấy từ danh mục loại giấy tờ của cấu hình: không sửa ở đây.",
                       "From the profile's paper-type catalogue: not changed here."),
    "why_doubt": ("Máy nghi ngờ", "Machine's doubt"),
    "entered_by": ("người nhập", "entered by"),
}


def _text(key: str, lang: str, **values: object) -> str:
    pair = _APP_TEXT.get(key) or REPORT_TEXT[key]
    return (pair[1] if lang == "en" else pair[0]).format(**values)
