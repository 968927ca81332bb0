"""Page work on the hub: a dossier's pages fan out to the ``pages`` queue, any worker's page
processes run them, and the dossier's own process fans the results in and packages them.

``HubPageExecutor`` is the job layer's ``PageExecutor``: ``current()`` gives a
``concurrent.futures.Executor`` whose ``submit(process_page, page, component, *settings)``
sends one JSON message (``PageTask``: the page reference — the scan's path on the shared
storage, its SHA-256 and frame — and the stage settings) and returns a ``Future``. One poller
thread per process reads finished results from Redis (one ``MGET`` for all pages in flight)
and completes the futures. The result (``encode_page_work``) is the page's clean and OCR
records and its encoded image: inline (base64) up to ``inline_image_max_bytes``, else in a
spool file on the shared storage that the reader removes.

The page worker re-checks the scan's SHA-256 (``load_page_pixels`` raises
``SourceChangedError``): a page is read from the shared storage, never trusted blindly.
Errors cross as data (class name, exit code, message) and are raised again as the same
``DigitizeError`` subclass in the dossier's process.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Executor, Future, InvalidStateError
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from kombu.exceptions import OperationalError

from digitize.errors import DigitizeError, OutputError, PageWorkerDiedError, all_error_classes
from digitize.hub.config import KEY_PREFIX, PAGE_QUEUE, PAGE_TASK, BrokerUnavailableError
from digitize.hub.lost import AbsenceTracker, present_in_broker
from digitize.models import EncodedImage, FrozenModel, IngestedPage
from digitize.pipeline import PageWork, process_page
from digitize.settings import CleanSettings, IngestSettings, OcrSettings, PdfaSettings
from digitize.util import write_atomic

log = logging.getLogger("digitize.hub")

_BYTES_FIELDS = ("data", "jbig2_globals", "icc_profile")


class PageTask(FrozenModel):
    """One page's work, as it crosses the broker (JSON)."""

    page: IngestedPage  # source path on the shared storage, sha256, frame, QA
    component: int
    ingest: IngestSettings
    clean: CleanSettings
    ocr: OcrSettings
    pdfa: PdfaSettings
    spool_dir: str  # where an image over inline_max goes (shared storage)
    inline_max: int


def page_task_args(page: IngestedPage, component: int, ingest: IngestSettings,
                   clean: CleanSettings, ocr: OcrSettings, pdfa: PdfaSettings,
                   spool_dir: Path, inline_max: int) -> dict[str, Any]:  # fmt: skip
    task = PageTask(page=page, component=component, ingest=ingest, clean=clean, ocr=ocr,
                    pdfa=pdfa, spool_dir=str(spool_dir), inline_max=inline_max)  # fmt: skip
    return task.model_dump(mode="json")


def encode_page_work(work: PageWork, spool_dir: Path, inline_max: int, name: str) -> dict[str, Any]:
    """``work`` as JSON data: the image bytes base64, or in ``spool_dir/name`` when large."""
    data: dict[str, Any] = work.model_dump(mode="json", exclude={"image"})
    image: dict[str, Any] = work.image.model_dump(mode="python")
    for field in _BYTES_FIELDS:
        if image[field] is not None:
            image[field] = base64.b64encode(image[field]).decode("ascii")
    if len(work.image.data) > inline_max:
        spool_dir.mkdir(parents=True, exist_ok=True)
        target = spool_dir / name
        write_atomic(target, work.image.data)
        image["data"] = None
        image["spool"] = str(target)
    data["image"] = image
    return data


def decode_page_work(data: dict[str, Any]) -> PageWork:
    """The ``PageWork`` of ``encode_page_work``'s data (a spool file is read and removed)."""
    image = dict(data["image"])
    spool = image.pop("spool", None)
    for field in _BYTES_FIELDS:
        if image.get(field) is not None:
            image[field] = base64.b64decode(image[field])
    if spool is not None:
        path = Path(spool)
        try:
            image["data"] = path.read_bytes()
        except OSError as exc:
            raise OutputError(f"cannot read a page image from the spool: {exc.strerror}",
                              path=path) from None  # fmt: skip
        path.unlink(missing_ok=True)
        try:
            path.parent.rmdir()  # gone when empty: the spool leaves nothing behind
        except OSError:
            pass
    fields = {k: v for k, v in data.items() if k != "image"}
    return PageWork.model_validate({**fields, "image": EncodedImage.model_validate(image)})


def error_data(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, DigitizeError):
        return {"type": type(exc).__name__, "message": exc.message, "path": exc.path,
                "page": exc.page, "hint": exc.hint}  # fmt: skip
    return {"type": "DigitizeError", "message": f"internal error in a page worker: "
            f"{type(exc).__name__}: {' '.join(str(exc).split())}", "path": None, "page": None,
            "hint": None}  # fmt: skip


def error_from_data(data: dict[str, Any]) -> DigitizeError:
    """The ``DigitizeError`` subclass named in ``data`` (its exit code comes with the class)."""
    classes = {cls.__name__: cls for cls in all_error_classes()}
    cls = classes.get(str(data.get("type")), DigitizeError)
    return cls(str(data.get("message", "")), path=data.get("path"), page=data.get("page"),
               hint=data.get("hint"))  # fmt: skip


def run_page_task(args: dict[str, Any], task_id: str) -> dict[str, Any]:
    """The body of the page task: ``{"work": ...}`` or ``{"error": ...}`` (never raises for
    the page's own failure: the dossier's process decides what it means)."""
    task = PageTask.model_validate(args)
    try:
        work = process_page(task.page, task.component, task.ingest, task.clean, task.ocr,
                            task.pdfa)  # fmt: skip
        return {"work": encode_page_work(work, Path(task.spool_dir), task.inline_max,
                                         f"{task_id}.img")}  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - the error crosses back as data
        return {"error": error_data(exc)}


def cancel_key(task_id: str) -> str:
    return f"{KEY_PREFIX}page-cancel:{task_id}"


@dataclass
class _Waiting:
    future: Future[PageWork]
    resend: Callable[[], str]  # sends the page again under a new id, returns it
    since: float  # monotonic time it was (re)sent
    resent: int = 0  # times it was sent again (not started, or its message lost)


MAX_RESENDS = 3  # a page whose message is lost more often than this fails its dossier


def _settle(future: Future[PageWork], result: PageWork | None = None,
            error: BaseException | None = None) -> None:  # fmt: skip
    """Complete ``future`` unless its dossier already gave up on it (cancelled): the poller
    serves every dossier of the process, one dossier's end must not stop it."""
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]
    except InvalidStateError:
        pass


class _Poller:
    """One thread per process completing the futures of page tasks from Redis.

    Lost messages (``digitize.hub.lost``): every ``lost_check_s``, the pages without a
    result that were sent at least that long ago are looked for in the broker; one absent at
    two checks is sent again under a new id (``MAX_RESENDS`` times at most). A page that no
    worker has even started ``not_started_s`` after it was sent (a message that is there but
    nobody takes: no page worker running) is sent once more, and after another
    ``not_started_s`` fails as a station fault (retryable). So a dossier never waits for
    ever. The thread itself survives any error of one round (logged; the next round runs)."""

    def __init__(self, client: redis.Redis, key_of: Callable[[str], str],
                 decode: Callable[[Any], dict[str, Any]], forget: Callable[[str], None],
                 not_started_s: float, lost_check_s: float = 30.0,
                 interval_s: float = 0.1) -> None:  # fmt: skip
        self.client = client
        self.key_of = key_of
        self.decode = decode
        self.forget = forget
        self.not_started_s = not_started_s
        self.lost_check_s = lost_check_s
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._waiting: dict[str, _Waiting] = {}
        self._thread: threading.Thread | None = None
        self._absent = AbsenceTracker(lost_check_s)
        self._last_check = time.monotonic()

    def watch(self, task_id: str, future: Future[PageWork], resend: Callable[[], str]) -> None:
        with self._lock:
            self._waiting[task_id] = _Waiting(future, resend, time.monotonic())
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="page-results",
                                                daemon=True)  # fmt: skip
                self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                self._round()
            except redis.RedisError as exc:
                log.warning("page results: cannot reach Redis (%s); retrying", type(exc).__name__)
                time.sleep(1.0)
            except Exception:  # noqa: BLE001 - a bug in one round must not strand every dossier
                log.exception("page results: unexpected error; going on")
                time.sleep(1.0)

    def _round(self) -> None:
        with self._lock:
            waiting = dict(self._waiting)
        if not waiting:
            time.sleep(self.interval_s)
            return
        ids = list(waiting)
        raws = self.client.mget([self.key_of(i) for i in ids])
        unfinished = []
        for task_id, raw in zip(ids, raws, strict=True):
            entry = waiting[task_id]
            future = entry.future
            if future.cancelled():
                self._drop(task_id, cancelled=True)
                continue
            if raw is None:
                unfinished.append(task_id)
                self._unstarted(task_id, entry)
                continue
            meta = self.decode(raw)
            status = meta.get("status")
            if status == "FAILURE":  # the task itself broke (not the page: that is data)
                self._drop(task_id)
                _settle(future, error=DigitizeError(
                    f"a page task failed in its worker: {meta.get('result')}"))  # fmt: skip
                continue
            if status != "SUCCESS":
                # STARTED, RETRY: on its way. The pipeline's page deadline counts from
                # when a worker started it (first seen here), not from when it was sent.
                if status == "STARTED" and getattr(future, "started_at", None) is None:
                    future.started_at = time.monotonic()  # type: ignore[attr-defined]
                unfinished.append(task_id)
                continue
            self._drop(task_id)
            self._complete(future, meta.get("result") or {})
        self._find_lost(unfinished, waiting)
        time.sleep(self.interval_s)

    def _find_lost(self, unfinished: list[str], waiting: dict[str, _Waiting]) -> None:
        now = time.monotonic()
        if now - self._last_check < self.lost_check_s:
            return
        self._last_check = now
        with self._lock:  # not those dropped or sent again earlier in this round
            old = [i for i in unfinished
                   if i in self._waiting and now - waiting[i].since >= self.lost_check_s]  # fmt: skip
        if not old:
            return
        absent = set(old) - present_in_broker(self.client, PAGE_QUEUE, old)
        for task_id in self._absent.lost(absent, old, now):
            entry = waiting[task_id]
            raw = self.client.get(self.key_of(task_id))
            if raw is not None and self.decode(raw).get("status") in ("SUCCESS", "FAILURE"):
                continue  # it ended in between: the next round reads it
            self._drop(task_id, cancelled=True)
            if entry.resent >= MAX_RESENDS:
                _settle(entry.future, error=PageWorkerDiedError(
                    f"the hub lost this page's message {entry.resent + 1} times: given up",
                    hint="is Redis losing data (memory, persistence)? see its log"))  # fmt: skip
                continue
            self._send_again(entry, f"lost by the broker (absent at two checks "
                             f"{self.lost_check_s:.0f} s apart)", task_id)  # fmt: skip

    def _send_again(self, entry: _Waiting, why: str, task_id: str) -> None:
        try:
            new_id = entry.resend()
        except DigitizeError as exc:
            _settle(entry.future, error=exc)
            return
        log.warning("page %s %s: sent again as %s", task_id, why, new_id)
        with self._lock:
            self._waiting[new_id] = _Waiting(entry.future, entry.resend, time.monotonic(),
                                             entry.resent + 1)  # fmt: skip

    def _unstarted(self, task_id: str, entry: _Waiting) -> None:
        if time.monotonic() - entry.since < self.not_started_s:
            return
        self._drop(task_id, cancelled=True)
        if entry.resent:
            _settle(entry.future, error=PageWorkerDiedError(
                f"no worker started this page in {2 * self.not_started_s:.0f} s (sent twice)",
                hint="are page workers running (digitize worker --pages)?"))  # fmt: skip
            return
        self._send_again(entry, f"not started after {self.not_started_s:.0f} s", task_id)

    def _drop(self, task_id: str, cancelled: bool = False) -> None:
        with self._lock:
            self._waiting.pop(task_id, None)
        self._absent.forget(task_id)
        try:
            if cancelled:  # nobody waits for it: a worker that has not started it skips it
                self.client.set(cancel_key(task_id), "1", ex=24 * 3600)
            self.forget(task_id)
        except redis.RedisError:
            pass  # the result expires by itself

    @staticmethod
    def _complete(future: Future[PageWork], result: dict[str, Any]) -> None:
        try:
            if "error" in result:
                _settle(future, error=error_from_data(result["error"]))
            else:
                _settle(future, decode_page_work(result["work"]))
        except DigitizeError as exc:
            _settle(future, error=exc)
        except Exception as exc:  # noqa: BLE001 - a malformed result fails this page only
            _settle(future, error=DigitizeError(f"unreadable page result: {exc}"))


class HubExecutor(Executor):
    """``submit(process_page, page, component, ingest, clean, ocr, pdfa)`` → a ``Future``
    completed when some worker of the hub has run the page (see the module docstring)."""

    def __init__(self, owner: HubPageExecutor,
                 on_work: Callable[[PageWork], None] | None = None) -> None:  # fmt: skip
        self._owner = owner
        self._on_work = on_work

    # Futures get ``started_at`` when a worker starts their page (``_Poller``): the pipeline's
    # page deadline (``pipeline.page_timeout_s``) counts from then.
    reports_page_starts = True

    @property
    def max_in_flight(self) -> int:
        """Pages of one dossier the pipeline keeps in flight: the hub's, not this machine's."""
        return self._owner.window

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if fn is not process_page or kwargs:
            raise TypeError("the hub runs process_page only")
        future = self._owner.send(*args)
        on_work = self._on_work
        if on_work is not None:
            future.add_done_callback(
                lambda done: on_work(done.result())
                if not done.cancelled() and done.exception() is None
                else None
            )
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pass  # the hub's page workers belong to the hub, not to one dossier


class HubPageExecutor:
    """The job layer's ``PageExecutor`` for a hub worker (one per process, thread-safe)."""

    def __init__(self, celery_app: Any, client: redis.Redis, spool_dir: Path, window: int,
                 inline_max: int, not_started_s: float = 3600.0,
                 lost_check_s: float = 30.0) -> None:  # fmt: skip
        self.app = celery_app
        self.spool_dir = spool_dir
        self.window = window
        self.inline_max = inline_max
        backend = celery_app.backend
        self._poller = _Poller(client, lambda i: backend.get_key_for_task(i),
                               backend.decode_result, backend.forget, not_started_s,
                               lost_check_s)  # fmt: skip
        self._executor = HubExecutor(self)

    def current(self) -> Executor | None:
        return self._executor

    def replace_broken(self, broken: Executor | None) -> None:
        # Nothing breaks for good here: a dead page worker's message is handed out again.
        return None

    def send(self, page: IngestedPage, component: int, ingest: IngestSettings,
             clean: CleanSettings, ocr: OcrSettings, pdfa: PdfaSettings) -> Future[PageWork]:  # fmt: skip
        future: Future[PageWork] = Future()
        args = page_task_args(page, component, ingest, clean, ocr, pdfa, self.spool_dir,
                              self.inline_max)  # fmt: skip

        def send() -> str:
            task_id = f"page-{uuid.uuid4().hex}"
            self._send(args, task_id)
            return task_id

        self._poller.watch(send(), future, send)
        return future

    def _send(self, args: dict[str, Any], task_id: str, patience_s: float = 60.0) -> None:
        """Send one page task, waiting out a Redis restart; past ``patience_s`` the dossier
        fails as a station fault (retryable), not as a bug."""
        deadline = time.monotonic() + patience_s
        own_connection = False
        while True:
            try:
                if own_connection:
                    with self.app.connection_for_write() as conn:
                        self.app.send_task(PAGE_TASK, args=[args], task_id=task_id,
                                           producer=self.app.amqp.Producer(conn))  # fmt: skip
                    return
                with self.app.producer_or_acquire() as producer:
                    try:
                        self.app.send_task(PAGE_TASK, args=[args], task_id=task_id,
                                           producer=producer)  # fmt: skip
                    except AttributeError:
                        # "'NoneType' object has no attribute ...": kombu closed this pooled
                        # producer's channel under us while the consumer thread reconnected
                        # (a known race of kombu's Redis transport). Drop the dead channel so
                        # the pool opens a new one; this page goes on its own connection.
                        producer.connection.collect()
                        raise
                return
            except (OperationalError, redis.RedisError, AttributeError) as exc:
                own_connection = own_connection or isinstance(exc, AttributeError)
                if time.monotonic() > deadline:
                    raise BrokerUnavailableError(
                        f"cannot send page work to the hub: {type(exc).__name__}",
                        path=args["page"]["source"], page=args["page"]["index"],
                    ) from None  # fmt: skip
                log.warning("cannot send a page to the hub (%s: %s); retrying", type(exc).__name__,
                            " ".join(str(exc).split())[:200])  # fmt: skip
                time.sleep(1.0)


class JobPageExecutor:
    """A ``PageExecutor`` for one job over the process's ``HubPageExecutor``, telling
    ``on_work`` of every page that comes back (the prepared bundle keeps the OCR)."""

    def __init__(self, hub: HubPageExecutor, on_work: Callable[[PageWork], None]) -> None:
        self._executor = HubExecutor(hub, on_work)

    def current(self) -> Executor | None:
        return self._executor

    def replace_broken(self, broken: Executor | None) -> None:
        return None


def spool_dir_for(out_dir: Path) -> Path:
    return Path(os.path.join(out_dir, ".digitize-spool"))


__all__ = [
    "HubExecutor",
    "HubPageExecutor",
    "JobPageExecutor",
    "PageTask",
    "cancel_key",
    "decode_page_work",
    "encode_page_work",
    "error_from_data",
    "page_task_args",
    "run_page_task",
    "spool_dir_for",
]
