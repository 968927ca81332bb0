"""The broker address and the one Celery application of the hub.

The broker URL (``redis://[:PASSWORD@]HOST:PORT/DB``, ``rediss://`` for TLS) may carry a
password, so it is taken from ``--broker`` or, better, from ``DIGITIZE_BROKER_URL`` (a command
line is visible to every user of the machine through ``ps``), and it is only ever shown masked
(``mask_url``): in logs, in ``digitize jobs`` and in error messages.

One ``Celery`` object, ``app``, holds the task definitions (``digitize.hub.tasks``); its broker
and settings are filled in by ``configure(app, url, settings)`` before a worker starts or a job
is submitted. Broker and result store are the same Redis; every message is JSON (never pickle:
a message is data, not code).
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from celery import Celery

from digitize.errors import ConfigError, OutputError
from digitize.settings import HubSettings

BROKER_ENV = "DIGITIZE_BROKER_URL"
DOSSIER_QUEUE = "dossiers"
PAGE_QUEUE = "pages"
DOSSIER_TASK = "digitize.hub.dossier"
PAGE_TASK = "digitize.hub.page"
KEY_PREFIX = "digitize:"  # every key the hub itself writes in Redis starts with this

app = Celery("digitize")


class BrokerUnavailableError(OutputError):
    """The broker (Redis) could not be reached or refused the command: nothing was queued
    (or, for ``jobs``/``wait``, nothing could be read). A station fault: retry later."""


def broker_url(given: str | None = None) -> str:
    """``given`` (``--broker``), else ``DIGITIZE_BROKER_URL``; refused when neither is set or
    the scheme is not Redis."""
    url = given or os.environ.get(BROKER_ENV, "")
    if not url:
        raise ConfigError(
            "no broker: give --broker URL or set DIGITIZE_BROKER_URL",
            hint="e.g. redis://127.0.0.1:6379/0; a password belongs in the variable, not argv",
        )
    scheme = urlsplit(url).scheme
    if scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"broker scheme {scheme!r} is not supported (redis or rediss)",
                          path=mask_url(url))  # fmt: skip
    return url


_PASSWORD_IN_URL = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:@/]*:)(?P<secret>[^@/]*)@",
                              re.IGNORECASE)  # fmt: skip


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (``redis://:***@host:6379/0``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _PASSWORD_IN_URL.sub(r"\g<head>***@", url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, ""))


def mask_text(text: str, url: str) -> str:
    """``text`` with the password of ``url`` (wherever it appears) replaced by ``***``."""
    secret = urlsplit(url).password if "://" in url else None
    text = _PASSWORD_IN_URL.sub(r"\g<head>***@", text)
    return text.replace(secret, "***") if secret else text


def transport_options(settings: HubSettings) -> dict[str, Any]:
    """kombu's Redis transport: when an unacknowledged message is handed out again."""
    return {
        "visibility_timeout": settings.visibility_timeout_s,
        # Sweep for such messages every restore_interval_s (throttle 1: every sweep looks).
        "unacked_restore_interval": settings.restore_interval_s,
        "unacked_restore_throttle": 1,
        # The sweep holds a mutex in Redis for milliseconds; one left by a sweep cut short
        # (a worker killed, Redis restarted) would stop every sweep until it expires
        # (kombu's default: 300 s). A short expiry bounds that wait.
        "unacked_mutex_expire": max(5, int(settings.restore_interval_s * 3)),
        "socket_timeout": settings.broker_timeout_s,
        "socket_connect_timeout": settings.broker_timeout_s,
        "socket_keepalive": True,
        "retry_on_timeout": True,
    }


def configure(celery_app: Celery, url: str, settings: HubSettings, *, events: bool = False) -> None:
    """Point ``celery_app`` at the broker ``url`` with the hub's delivery guarantees."""
    celery_app.conf.update(
        broker_url=url,
        result_backend=url,
        broker_transport_options=transport_options(settings),
        result_backend_transport_options={"retry_policy": {"timeout": settings.broker_timeout_s}},
        redis_socket_timeout=settings.broker_timeout_s,
        redis_socket_connect_timeout=settings.broker_timeout_s,
        redis_retry_on_timeout=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        # Exactly once whatever dies: a message is acknowledged only when its task has ended,
        # a worker holds one message at a time, and a task whose process died goes back.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_track_started=True,
        task_default_queue=DOSSIER_QUEUE,
        task_routes={DOSSIER_TASK: {"queue": DOSSIER_QUEUE}, PAGE_TASK: {"queue": PAGE_QUEUE}},
        result_expires=int(settings.result_expires_s),
        # A result written while Redis restarts is written again, not lost with its task.
        result_backend_always_retry=True,
        result_backend_max_retries=30,
        result_backend_base_sleep_between_retries_ms=200,
        result_backend_max_sleep_between_retries_ms=2000,
        # A worker that cannot reach the broker keeps trying (Celery logs each attempt and
        # its back-off), at start-up too.
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_channel_error_retry=True,
        worker_send_task_events=events,
        task_send_sent_event=events,
        worker_hijack_root_logger=True,
        worker_redirect_stdouts=False,
        enable_utc=True,
        timezone="Asia/Ho_Chi_Minh",
    )


__all__ = [
    "BROKER_ENV",
    "BrokerUnavailableError",
    "DOSSIER_QUEUE",
    "DOSSIER_TASK",
    "KEY_PREFIX",
    "PAGE_QUEUE",
    "PAGE_TASK",
    "app",
    "broker_url",
    "configure",
    "mask_text",
    "mask_url",
    "transport_options",
]
