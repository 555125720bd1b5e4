"""The cluster a scenario runs on, as the scenario sees it: one interface, two backends.

A scenario only talks to :class:`E2ECluster`: it applies a TrainingJob and
reads ``kubectl get tj`` and ``kubectl describe tj``, waits with ``kubectl
wait``, preempts with ``kubectl patch``/``kubectl delete pod`` (all through the
real kubectl, the same commands on both backends: :mod:`tests.e2e.as_user`),
reads the files on the job's volume, and injects what kubectl cannot (a
crash, the operator lost with its node). The emulated backend
(:mod:`tests.e2e.emulated`) and the real one (:mod:`tests.e2e.real`) implement
the abstract methods; the waiting and recording helpers here are shared, so a
scenario body is written once and runs on both.
"""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from tests.e2e.as_user import Description, UserActions

__all__ = ["JOB_LABEL", "Description", "E2ECluster", "PodRecorder", "wait_until"]

#: The label every trainer pod carries with its job's name.
JOB_LABEL = "rekindle.dev/job"
#: Pod phases after which its container no longer runs.
ENDED_PHASES = frozenset({"Succeeded", "Failed"})

T = TypeVar("T")


class E2ECluster(UserActions, abc.ABC):
    """A cluster with the Rekindle operator running, in one namespace."""

    #: ``emulated`` or ``cluster`` (test ids and messages).
    kind: str
    #: The namespace every scenario object lives in.
    namespace: str
    #: The trainer image the scenario manifests use.
    trainer_image: str
    #: Every PodRecorder started on this cluster (their errors fail the test: harness_errors).
    recorders: list[PodRecorder]

    def harness_errors(self) -> list[str]:
        """What the test harness itself caught since the last call (each test's teardown asks).

        Recorders started since then are forgotten; a backend adds its own (the node's).
        """
        found = [
            f"PodRecorder({r.job}): {type(e).__name__}: {e}"
            for r in self.recorders
            for e in r.errors
        ]
        self.recorders.clear()
        return found

    # --- objects -------------------------------------------------------------------------

    @abc.abstractmethod
    def get(self, plural: str, name: str) -> dict[str, Any] | None:
        """``trainingjobs``, ``pods`` or ``persistentvolumeclaims`` object ``name``, or None."""

    @abc.abstractmethod
    def pods(self, job: str) -> list[dict[str, Any]]:
        """The job's trainer pods (label ``rekindle.dev/job``)."""

    @abc.abstractmethod
    def pod_history(self, pod: str) -> list[dict[str, Any]]:
        """Every state of pod ``pod`` the API served, oldest first (also after it went).

        A pod that ends because it was deleted is removed right after its last
        status write; only a watch (or the emulator's record) is sure to see it.
        """

    def termination(self, pod: str) -> dict[str, Any]:
        """The trainer container's last ``state.terminated`` (exitCode, reason, message)."""
        states = [_terminated(p.get("status") or {}) for p in self.pod_history(pod)]
        ended = [s for s in states if s]
        assert ended, f"pod {pod} was never seen terminated ({len(states)} states seen)"
        return ended[-1]

    @abc.abstractmethod
    def volume_report(self, claim: str, job: str) -> dict[str, Any]:
        """:func:`tests.e2e.volume_report.describe` of the job's folder on ``claim``."""

    # --- faults and the operator -----------------------------------------------------------

    @abc.abstractmethod
    def crash(self, pod: str) -> None:
        """SIGKILL the trainer process (exit 137, reason Error: a crash)."""

    @abc.abstractmethod
    def lose_node(self, pod: str) -> None:
        """The pod's node is lost: the process dies unreported, then the taint manager
        marks ``DisruptionTarget`` (DeletionByTaintManager) and force-deletes the pod."""

    @abc.abstractmethod
    def kill_operator(self) -> None:
        """Kill the operator with no chance to clean up (SIGKILL / grace 0)."""

    @abc.abstractmethod
    def start_operator(self) -> None:
        """Bring the operator back and wait until it serves."""

    # --- what kubectl shows (shared) ---------------------------------------------------------

    def job(self, name: str) -> dict[str, Any]:
        """The TrainingJob (AssertionError if it does not exist)."""
        job = self.get("trainingjobs", name)
        assert job is not None, f"TrainingJob {self.namespace}/{name} does not exist"
        return job

    # --- waiting ---------------------------------------------------------------------------------

    def wait_job(
        self,
        name: str,
        predicate: Callable[[dict[str, Any]], bool],
        *,
        timeout: float,
        what: str,
    ) -> dict[str, Any]:
        """Poll the TrainingJob until ``predicate`` holds; TimeoutError names ``what``."""
        return wait_until(
            lambda: _holding(self.get("trainingjobs", name), predicate), timeout, what
        )

    def wait_phase(self, name: str, phase: str, *, timeout: float) -> dict[str, Any]:
        """Wait for ``status.phase``; fails at once if the job ends in another final phase."""

        def reached(job: dict[str, Any]) -> bool:
            current = (job.get("status") or {}).get("phase")
            if current in {"Succeeded", "Failed"} and current != phase:
                raise AssertionError(
                    f"job {name} ended {current} while waiting for {phase}: {job.get('status')}"
                )
            return current == phase

        return self.wait_job(name, reached, timeout=timeout, what=f"phase {phase}")

    def wait_suspended(self, name: str, *, timeout: float) -> dict[str, Any]:
        """Wait for phase Suspended with reason Suspended (not Stopping: the attempt ended)."""
        self.wait_phase(name, "Suspended", timeout=timeout)
        return self.wait_job(
            name,
            lambda job: (job.get("status") or {}).get("reason") == "Suspended",
            timeout=timeout,
            what="reason Suspended (the stopped attempt ended)",
        )

    def wait_pod_running(self, pod: str, *, timeout: float) -> dict[str, Any]:
        """Wait until the pod's phase is Running."""

        def running() -> dict[str, Any] | None:
            found = self.get("pods", pod)
            phase = (found or {}).get("status", {}).get("phase")
            return found if phase == "Running" else None

        return wait_until(running, timeout, f"pod {pod} Running")

    def wait_checkpoint(
        self, claim: str, job: str, *, epoch: int, timeout: float
    ) -> dict[str, Any]:
        """Wait until the volume holds a checkpoint of ``epoch`` or later; the report."""

        def reached() -> dict[str, Any] | None:
            report = self.volume_report(claim, job)
            epochs = [c.get("epoch") or 0 for c in report["checkpoints"]]
            return report if epochs and max(epochs) >= epoch else None

        return wait_until(reached, timeout, f"a checkpoint of epoch >= {epoch} on {claim}")

    def wait_gone(self, plural: str, name: str, *, timeout: float) -> None:
        """Wait until the object no longer exists."""
        wait_until(lambda: self.get(plural, name) is None or None, timeout, f"{plural}/{name} gone")


def _holding(
    obj: dict[str, Any] | None, predicate: Callable[[dict[str, Any]], bool]
) -> dict[str, Any] | None:
    return obj if obj is not None and predicate(obj) else None


def wait_until(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    """Call ``probe`` until it returns something other than None (or False); that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None and value is not False:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached within {timeout:.0f}s")
        time.sleep(0.1)


@dataclass
class PodSeen:
    """One trainer pod as a watcher saw it (``time.monotonic()`` moments)."""

    name: str
    uid: str
    created: float
    ended: float | None = None
    gone: float | None = None
    exit_code: int | None = None
    termination_message: str | None = None


class PodRecorder:
    """Polls a job's pods in a thread and records when each appeared, ended and went.

    The gaps between one pod's end and the next pod's creation are what a
    backoff promises; duplicates show up as two live pods at once.
    """

    def __init__(self, cluster: E2ECluster, job: str, interval: float = 0.1) -> None:
        self.cluster = cluster
        self.job = job
        self.interval = interval
        self.seen: dict[str, PodSeen] = {}
        #: The largest number of pods that were not ended at the same moment.
        self.max_live = 0
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"pods-{job}", daemon=True)
        cluster.recorders.append(self)

    def __enter__(self) -> PodRecorder:
        self._thread.start()
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)
        if self.errors and exc_type is None:
            raise AssertionError(f"PodRecorder({self.job}) failed to poll: {self.errors!r}")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception as exc:  # kept for the test's assertion, never silently lost
                self.errors.append(exc)
            self._stop.wait(self.interval)

    def poll(self) -> None:
        """One look at the job's pods."""
        now = time.monotonic()
        present = set()
        live = 0
        for pod in self.cluster.pods(self.job):
            meta, status = pod["metadata"], pod.get("status") or {}
            uid = meta["uid"]
            present.add(uid)
            seen = self.seen.setdefault(uid, PodSeen(meta["name"], uid, now))
            terminated = _terminated(status)
            if seen.ended is None and (status.get("phase") in ENDED_PHASES or terminated):
                seen.ended = now
            if terminated:
                seen.exit_code = terminated.get("exitCode")
                seen.termination_message = terminated.get("message")
            if seen.ended is None and not meta.get("deletionTimestamp"):
                live += 1
        for seen in self.seen.values():
            if seen.uid not in present and seen.gone is None:
                seen.gone = now
        self.max_live = max(self.max_live, live)

    def pods(self) -> list[PodSeen]:
        """Every pod seen, in order of creation."""
        return sorted(self.seen.values(), key=lambda p: p.created)

    def names(self) -> list[str]:
        """Names of the pods seen, in order of creation (a name twice is a re-created pod)."""
        return [p.name for p in self.pods()]


def _terminated(status: Mapping[str, Any]) -> dict[str, Any] | None:
    for container in status.get("containerStatuses") or []:
        state = (container.get("state") or {}).get("terminated")
        if state:
            return dict(state)
    return None
