"""The hub's two Celery tasks, registered on ``digitize.hub.config.app``.

* ``digitize.hub.dossier`` (queue ``dossiers``): one ``HubJob`` → ``run_hub_job`` → the
  ``JobOutcome`` as JSON. A thin caller: everything a dossier needs is in the job layer.
* ``digitize.hub.page`` (queue ``pages``): one ``PageTask`` → ``run_page_task`` under a page
  lease, so a page redelivered while its first worker still runs it waits
  (``deliver_later``) instead of running twice; a page whose workers died ``max_attempts``
  times fails its dossier instead of killing worker after worker.

Both are acknowledged late and rejected back to the queue when their worker process dies
(``configure``); ``max_retries=None``: deferrals are not failures, attempts are counted in
Redis instead.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery.exceptions import Ignore, Reject, Retry
from kombu.exceptions import OperationalError

from digitize.errors import PageWorkerDiedError
from digitize.hub.config import KEY_PREFIX, app
from digitize.hub.hubjob import HubJob, deliver_later, end_with_internal_error, run_hub_job
from digitize.hub.pages import cancel_key, error_data, run_page_task
from digitize.hub.registry import Lease
from digitize.hub.state import current

log = logging.getLogger("digitize.hub")


@app.task(bind=True, name="digitize.hub.dossier", max_retries=None)
def dossier_task(self: Any, job: dict[str, Any]) -> dict[str, Any]:
    hub_job = HubJob.model_validate(job)
    try:
        return run_hub_job(self, hub_job, current())
    except (Retry, Reject, Ignore):
        raise
    except (redis.RedisError, OperationalError) as exc:
        # Redis stayed away longer than the registry's patience: hand the message back (it
        # is in Redis's unacknowledged set meanwhile, so it comes back either way).
        log.warning("job %s: Redis unreachable (%s): handed back", self.request.id,
                    type(exc).__name__)  # fmt: skip
        raise Reject(str(exc), requeue=True) from None
    except Exception as exc:  # noqa: BLE001 - a bug ends the job with its reason, not silently
        log.exception("job %s: internal error", self.request.id)
        return end_with_internal_error(hub_job, exc, current())


@app.task(bind=True, name="digitize.hub.page", max_retries=None)
def page_task(self: Any, args: dict[str, Any]) -> dict[str, Any]:
    try:
        return _page(self, args)
    except (redis.RedisError, OperationalError) as exc:
        log.warning("page %s: Redis unreachable (%s): handed back", self.request.id,
                    type(exc).__name__)  # fmt: skip
        raise Reject(str(exc), requeue=True) from None


def _page(self: Any, args: dict[str, Any]) -> dict[str, Any]:
    state = current()
    task_id = str(self.request.id)
    client = state.client
    if client.exists(cancel_key(task_id)):
        raise Ignore()  # its dossier gave up on it
    if self.AsyncResult(task_id).state == "SUCCESS":
        raise Ignore()  # a second delivery of a page already done
    lease = Lease(client, f"page:{task_id}", state.settings.lease_ttl_s)
    if not lease.acquire():
        deliver_later(self, state.settings.defer_s)
    try:
        runs_key = f"{KEY_PREFIX}page-attempts:{task_id}"
        runs = int(client.incr(runs_key))
        client.expire(runs_key, int(state.settings.result_expires_s))
        if runs > state.settings.max_attempts:
            died = PageWorkerDiedError(
                f"page workers died {runs - 1} times on this page (out of memory or a "
                "decoder crash?): given up", path=args.get("page", {}).get("source"),
                page=args.get("page", {}).get("index"),
            )  # fmt: skip
            return {"error": error_data(died)}
        return run_page_task(args, task_id)
    finally:
        lease.release()


__all__ = ["dossier_task", "page_task"]
