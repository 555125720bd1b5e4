"""Reads of running trainers' ``GET /progress``, so that a job's status follows its run.

The operator asks only the pods it created, and only while their attempt
runs: the reconciler of a job calls :meth:`LiveReads.follow` when a pass sees
the attempt running, :meth:`LiveReads.forget` otherwise, and between passes
reads the chief's document when :mod:`rekindle_operator.core.live_progress`
says it is due; a reading worth writing wakes the job's reconcile, which
merges it into the status through the engine like any other progress. The
trainer needs no Kubernetes API rights: a pod can only answer for itself.

Where a pod is reached: its ``status.podIP`` and the trainer's metrics port.
An emulated cluster whose pods all share one host (``tests/kube``) maps
container ports to host ports instead: with ``REKINDLE_TRAINER_ADDRESS_DIR``
set, the file ``<dir>/<namespace>/<pod>`` holds the ``host:port`` to ask.
"""

from __future__ import annotations

import enum
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp

from rekindle_operator.core import live_progress
from rekindle_operator.core.live_progress import LivePolicy, StallRule, Track
from rekindle_operator.core.observation import Progress
from rekindle_trainer import contract
from rekindle_trainer.contract.live import MAX_DOCUMENT_BYTES, PROGRESS_PATH, LiveProgress

log = logging.getLogger(__name__)

#: See the module docstring: where an emulated cluster says how to reach each pod.
ENV_ADDRESS_DIR: Final = "REKINDLE_TRAINER_ADDRESS_DIR"

JobKey = tuple[str, str]


class _Absent(enum.Enum):
    """What :meth:`LiveReads.fetch` gives for a trainer without ``GET /progress``."""

    ABSENT = "absent"


ABSENT: Final = _Absent.ABSENT


def pod_address(pod: Mapping[str, Any], address_dir: Path | None = None) -> str | None:
    """``host:port`` of the trainer's metrics port in ``pod``; None while it has no IP."""
    meta = pod.get("metadata") or {}
    if address_dir is not None:
        path = address_dir / str(meta.get("namespace")) / str(meta.get("name"))
        try:
            return path.read_text().strip() or None
        except OSError:
            return None
    ip = (pod.get("status") or {}).get("podIP")
    if not ip:
        return None
    host = f"[{ip}]" if ":" in str(ip) else str(ip)
    return f"{host}:{contract.DEFAULT_METRICS_PORT}"


@dataclass
class _Followed:
    """One job's running attempt: its track, where its chief answers, its stall rule."""

    track: Track
    address: str
    rule: StallRule | None = None
    #: Why it counts as stalled, once it does.
    stalled: str | None = None
    #: It answered 404: a trainer without the endpoint, whose progress cannot be followed.
    absent: bool = False


class LiveReads:
    """Every job's :class:`Track` and where its chief answers; one HTTP session for all."""

    def __init__(self, policy: LivePolicy | None = None, address_dir: Path | None = None) -> None:
        self.policy = policy or LivePolicy()
        env_dir = os.environ.get(ENV_ADDRESS_DIR)
        self.address_dir = address_dir or (Path(env_dir) if env_dir else None)
        self._jobs: dict[JobKey, _Followed] = {}
        self._session: aiohttp.ClientSession | None = None
        #: Reads made, and reads that got no valid answer.
        self.reads = 0
        self.unanswered = 0

    def follow(
        self,
        key: JobKey,
        attempt: int,
        pod: Mapping[str, Any],
        now: float,
        rule: StallRule | None = None,
    ) -> None:
        """The job's attempt ``attempt`` runs in ``pod`` (its chief): read it when due."""
        address = pod_address(pod, self.address_dir)
        current = self._jobs.get(key)
        if address is None:
            self._jobs.pop(key, None)
        elif current is None or current.track.attempt != attempt:
            self._jobs[key] = _Followed(live_progress.start(attempt, now), address, rule)
        else:
            current.address, current.rule = address, rule

    def forget(self, key: JobKey) -> None:
        """The job has no running attempt (or is gone): read nothing of it."""
        self._jobs.pop(key, None)

    def track(self, key: JobKey) -> Track | None:
        """The job's track, if its attempt is followed."""
        followed = self._jobs.get(key)
        return followed.track if followed is not None else None

    def progress(self, key: JobKey, attempt: int) -> Progress | None:
        """The newest reading of attempt ``attempt`` of the job, if any answered."""
        track = self.track(key)
        return track.reading if track is not None and track.attempt == attempt else None

    def saves(self, key: JobKey, attempt: int) -> tuple[int, float | None] | None:
        """Attempt ``attempt``'s saves and their p99 seconds, as last read (None: not read)."""
        track = self.track(key)
        if track is None or track.attempt != attempt or track.reading is None:
            return None
        return track.saves, track.save_p99

    def stalled(self, key: JobKey, attempt: int) -> str | None:
        """Why attempt ``attempt`` of the job counts as stalled, if it does."""
        followed = self._jobs.get(key)
        if followed is None or followed.track.attempt != attempt:
            return None
        return followed.stalled

    def next_poll(self, key: JobKey) -> float | None:
        """When the job's next read is due (``time.monotonic()``); None: never."""
        followed = self._jobs.get(key)
        if followed is None or followed.stalled is not None:
            return None
        return followed.track.next_poll

    def __len__(self) -> int:
        return len(self._jobs)

    async def poll(self, key: JobKey, now: float) -> bool:
        """Read the job's trainer once; whether its reconcile should act now (write, stop)."""
        followed = self._jobs.get(key)
        if followed is None:
            return False
        doc = await self.fetch(followed.address)
        if self._jobs.get(key) is not followed:  # followed anew, or forgotten, meanwhile
            return False
        if doc is ABSENT:
            if not followed.absent:
                log.warning(
                    "The trainer of %s/%s at %s serves no %s (an image older than the "
                    "operator, or a program of its own): its status moves only when its "
                    "attempt ends, and restartPolicy.stallTimeoutSeconds does not apply",
                    *key,
                    followed.address,
                    PROGRESS_PATH,
                )
            followed.absent = True
        live = doc if isinstance(doc, LiveProgress) else None
        followed.track, write = live_progress.observe(followed.track, self.policy, live, now)
        if not followed.absent:  # a trainer that cannot say it steps is never called stalled
            followed.stalled = live_progress.stalled(followed.track, followed.rule, now)
        return write or followed.stalled is not None

    async def read(self, address: str) -> LiveProgress | None:
        """One ``GET /progress``; None when it does not answer in time or answers nonsense."""
        doc = await self.fetch(address)
        return doc if isinstance(doc, LiveProgress) else None

    async def fetch(self, address: str) -> LiveProgress | _Absent | None:
        """:meth:`read`, telling :data:`ABSENT` (HTTP 404: no such endpoint) from no answer.

        A frozen trainer accepts the connection and never answers; one without the
        endpoint answers at once that it has none.
        """
        self.reads += 1
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.policy.timeout_seconds)
            )
        try:
            async with self._session.get(f"http://{address}{PROGRESS_PATH}") as response:
                body = await response.content.read(MAX_DOCUMENT_BYTES + 1)
                if response.status == 404:
                    self.unanswered += 1
                    return ABSENT
                if response.status != 200:
                    raise ValueError(f"HTTP {response.status}")
            return LiveProgress.from_json(body)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            self.unanswered += 1
            log.debug("No progress from %s: %s", address, exc)
            return None

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None
