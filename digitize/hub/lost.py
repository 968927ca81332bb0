"""Finding messages the broker lost, so that no dossier and no page waits for ever.

kombu's Redis transport moves a message from its queue (a list) to the unacknowledged set
(``unacked``, a hash) in two steps: ``BRPOP`` and then, from the consumer, one ``HSET``. A
worker killed between the two, or a Redis stopped while a popped message's reply was still
on its way, loses that message: it is in no queue, in no unacknowledged set, and nothing
ever hands it out again. Celery cannot tell; a job or page waiting for it would wait for
ever (until a long deadline).

So the hub looks for itself. A message is *present* while some list of its queue or the
unacknowledged set holds it — queued, reserved by a worker (an ETA retry included), being
run, or handed back. ``present_in_broker`` asks Redis, in one Lua script (atomic: a message
cannot move between the places it looks at), which of the given task ids are present. A
task that has no result yet and is absent at two checks at least ``interval`` apart
(``AbsenceTracker``; two, because the ``BRPOP``→``HSET`` step is absent for a moment) is
lost and is sent again. A second delivery is harmless by design: dossiers run under their
bundle's lease and end once (``hubjob``), pages are looked up by id and run under a page
lease (``tasks``).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import redis

from digitize.hub.config import DOSSIER_QUEUE, KEY_PREFIX
from digitize.hub.registry import Registry

log = logging.getLogger("digitize.hub")

# kombu's key names for the Redis transport (``Channel.unacked_key``; a queue's extra lists
# per priority step are ``<queue>\x06\x16<step>``, Celery's default steps 0, 3, 6, 9).
UNACKED_KEY = "unacked"
_PRIORITY_SEP = "\x06\x16"
_PRIORITY_STEPS = (3, 6, 9)

# KEYS: the queue's lists, then the unacknowledged hash. ARGV: task ids. Returns the ids
# found. Each message (JSON: the body in base64, then the headers) holds exactly one
# ``"id": "<task id>"``, its own id header (``root_id``/``parent_id`` are other keys: a page
# message naming its dossier there does not make the dossier's message present). One plain
# search per message reads that id, then a table lookup: the cost is one pass over the
# queue, whatever the number of ids (``bench/lost.py``).
_PRESENT = """
local want, left, found = {}, 0, {}
for _, id in ipairs(ARGV) do want[id] = true; left = left + 1 end
local function look(item)
  local skip = 7
  local at = string.find(item, '"id": "', 1, true)
  if not at then
    skip = 6
    at = string.find(item, '"id":"', 1, true)
    if not at then return end
  end
  local stop = string.find(item, '"', at + skip, true)
  if not stop then return end
  local id = string.sub(item, at + skip, stop - 1)
  if want[id] then found[#found + 1] = id; want[id] = nil; left = left - 1 end
end
for k = 1, #KEYS - 1 do
  local n = redis.call('llen', KEYS[k])
  local i = 0
  while i < n and left > 0 do
    for _, item in ipairs(redis.call('lrange', KEYS[k], i, i + 499)) do look(item) end
    i = i + 500
  end
end
if left > 0 then
  for _, item in ipairs(redis.call('hvals', KEYS[#KEYS])) do look(item) end
end
return found
"""


def queue_keys(queue: str) -> list[str]:
    return [queue, *(f"{queue}{_PRIORITY_SEP}{step}" for step in _PRIORITY_STEPS)]


def present_in_broker(client: redis.Redis, queue: str, task_ids: Iterable[str]) -> set[str]:
    """The ids among ``task_ids`` whose message is in ``queue`` or unacknowledged."""
    ids = sorted(set(task_ids))
    if not ids:
        return set()
    keys = [*queue_keys(queue), UNACKED_KEY]
    found = client.eval(_PRESENT, len(keys), *keys, *ids)
    return {str(i) for i in found or ()}


class AbsenceTracker:
    """Which tasks were absent from the broker at two checks ``interval_s`` apart or more.

    ``lost(absent)`` is called with the ids found absent by one check; it returns those that
    were absent at an earlier check too, at least ``interval_s`` before, and forgets them
    (they are sent again). An id present at a check is forgotten (``absent`` omits it).
    """

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._first_absent: dict[str, float] = {}

    def lost(self, absent: set[str], checked: Iterable[str], now: float | None = None) -> set[str]:
        now = time.monotonic() if now is None else now
        for task_id in set(checked) - absent:
            self._first_absent.pop(task_id, None)
        lost = set()
        for task_id in absent:
            since = self._first_absent.setdefault(task_id, now)
            if now - since >= self.interval_s:
                lost.add(task_id)
                del self._first_absent[task_id]
        return lost

    def forget(self, task_id: str) -> None:
        self._first_absent.pop(task_id, None)


LOST_JOBS_KEY = f"{KEY_PREFIX}lost-jobs"  # job id -> when its message was first missed
SWEEP_LOCK_KEY = f"{KEY_PREFIX}lost-sweep"


class LostJobSweeper:
    """Dossier messages the broker lost, found and sent again (see the module docstring).

    Every dossier worker runs one (``start``); each round, the first worker to take the
    sweep lock (a key with a TTL of most of a round) looks at the jobs that have not ended.
    A job whose message is absent from the ``dossiers`` queue and from the unacknowledged
    set at two rounds ``interval_s`` apart or more is sent again from the message kept
    beside its record (``Registry.message``). The first absence is kept in Redis, so the
    two rounds may be any two workers'.
    """

    def __init__(self, client: redis.Redis, registry: Registry,
                 send: Callable[[str, dict[str, Any]], None], interval_s: float) -> None:  # fmt: skip
        self.client = client
        self.registry = registry
        self.send = send
        self.interval_s = interval_s
        self.token = uuid.uuid4().hex

    def start(self, stopping: threading.Event) -> None:
        """A daemon thread sweeping every ``interval_s`` until ``stopping`` (an Event) is set."""

        def loop() -> None:
            while not stopping.wait(self.interval_s):
                try:
                    self.sweep()
                except redis.RedisError as exc:
                    log.warning("lost jobs: cannot reach Redis (%s); next round in %.0f s",
                                type(exc).__name__, self.interval_s)  # fmt: skip
                except Exception:  # noqa: BLE001 - the sweeper must outlive one bad round
                    log.exception("lost jobs: unexpected error; next round in %.0f s",
                                  self.interval_s)  # fmt: skip

        threading.Thread(target=loop, name="lost-jobs", daemon=True).start()

    def sweep(self, now: float | None = None) -> list[str]:
        """One round; returns the ids sent again (empty when another worker has the round)."""
        ttl_ms = max(100, int(self.interval_s * 900))
        if not self.client.set(SWEEP_LOCK_KEY, self.token, nx=True, px=ttl_ms):
            return []
        now = time.time() if now is None else now
        open_ids = self.registry.open_ids()
        if not open_ids:
            self.client.delete(LOST_JOBS_KEY)
            return []
        present = present_in_broker(self.client, DOSSIER_QUEUE, open_ids)
        first_missed = self.client.hgetall(LOST_JOBS_KEY)
        stale = [i for i in first_missed if i not in open_ids or i in present]
        if stale:
            self.client.hdel(LOST_JOBS_KEY, *stale)
        sent = []
        for job_id in (i for i in open_ids if i not in present):
            since = first_missed.get(job_id)
            if since is None:
                self.client.hset(LOST_JOBS_KEY, job_id, f"{now:.3f}")
                continue
            if now - float(since) < self.interval_s:
                continue
            self.client.hdel(LOST_JOBS_KEY, job_id)
            record = self.registry.get(job_id)
            message = self.registry.message(job_id)
            if record is None or record.final:
                continue
            if message is None:
                log.error("job %s: its message is lost and was not kept: submit it again",
                          job_id)  # fmt: skip
                continue
            log.warning("job %s (%s, %s): its message was lost by the broker (absent at two "
                        "checks %.0f s apart): sent again", job_id, record.dossier, record.state,
                        self.interval_s)  # fmt: skip
            self.send(job_id, message)
            sent.append(job_id)
        self.client.expire(LOST_JOBS_KEY, 7 * 24 * 3600)
        return sent


__all__ = [
    "AbsenceTracker",
    "LOST_JOBS_KEY",
    "LostJobSweeper",
    "UNACKED_KEY",
    "present_in_broker",
    "queue_keys",
]
