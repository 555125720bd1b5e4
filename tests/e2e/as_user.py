"""What a scenario does and reads as a user does: through ``kubectl``, the same on both backends.

``kubectl apply -f`` (validation on: the server refuses a misspelt field),
``kubectl get tj -o wide`` (the printer columns as printed), ``kubectl describe
tj`` (its Events section), ``kubectl wait --for=condition=…``, ``kubectl patch``
and ``kubectl delete``, a preemption as ``kubectl patch pod --subresource=status``
(the scheduler's ``DisruptionTarget``) then ``kubectl delete pod``, ``kubectl
logs`` and ``kubectl explain``. The command lines are the same against the
emulated cluster and a real one; only the kubeconfig differs.
"""

from __future__ import annotations

import abc
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.kubectl import Kubectl, parse_table

#: Final phases of a TrainingJob.
FINAL_PHASES = frozenset({"Succeeded", "Failed"})
#: The condition a scheduler's preemption puts on the pod before deleting it.
PREEMPTED = {
    "type": "DisruptionTarget",
    "status": "True",
    "reason": "PreemptionByScheduler",
    "message": "default-scheduler: preempting to accommodate a higher priority pod",
}


@dataclass(frozen=True)
class Description:
    """``kubectl describe tj``: its text and Events, with the status it shows."""

    job: dict[str, Any]
    status: dict[str, Any]
    conditions: dict[str, dict[str, Any]]
    #: (type, reason, message) of each event, in the order describe lists them.
    events: list[tuple[str, str, str]]
    text: str = ""

    def reasons(self) -> list[tuple[str, str]]:
        """(type, reason) of each event, oldest first."""
        return [(kind, reason) for kind, reason, _ in self.events]

    def condition(self, type_: str) -> tuple[str, str]:
        """(status, reason) of a condition; AssertionError when it is absent."""
        assert type_ in self.conditions, f"no {type_} condition in {list(self.conditions)}"
        cond = self.conditions[type_]
        return str(cond.get("status")), str(cond.get("reason"))


def described_events(text: str) -> list[tuple[str, str, str]]:
    """The Events section of ``kubectl describe`` as (type, reason, message) rows."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Events:")]
    assert starts, f"kubectl describe printed no Events section:\n{text}"
    section: list[str] = []
    for line in lines[starts[-1] + 1 :]:
        if not line.startswith("  "):
            break
        section.append(line[2:])
    if not section or section[0].strip() == "<none>":
        return []
    rows = parse_table("\n".join([section[0], *section[2:]]))  # the dashes line skipped
    return [(r["Type"], r["Reason"], r["Message"]) for r in rows]


class UserActions(abc.ABC):
    """The kubectl half of an end-to-end cluster (see the module doc)."""

    namespace: str
    #: Where the applied manifests are written.
    workdir: Path
    #: kubectl on this cluster, bound to :attr:`namespace`.
    kubectl: Kubectl

    @abc.abstractmethod
    def get(self, plural: str, name: str) -> dict[str, Any] | None:
        """An object read through the API (waits poll it: they must not miss a state)."""

    def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """``kubectl apply -f FILE`` (written under the workdir); the object as applied."""
        kind, name = str(manifest["kind"]), str(manifest["metadata"]["name"])
        folder = self.workdir / "manifests"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{kind.lower()}-{name}.yaml"
        path.write_text(yaml.safe_dump(dict(manifest), sort_keys=False))
        self.kubectl.run("apply", "-f", str(path))
        found: dict[str, Any] = self.kubectl.json("get", kind.lower(), name)
        return found

    def patch_job(self, name: str, patch: Mapping[str, Any]) -> None:
        """``kubectl patch tj NAME --type merge -p PATCH``."""
        self.kubectl.run("patch", "tj", name, "--type", "merge", "-p", json.dumps(patch))

    def delete_job(self, name: str) -> None:
        """``kubectl delete tj NAME`` (background propagation: the garbage collector runs)."""
        self.kubectl.run("delete", "tj", name, "--timeout=60s", timeout=90)

    def preempt(self, pod: str) -> None:
        """A preemption as the scheduler makes it: ``DisruptionTarget``, then a graceful delete."""
        body = json.dumps({"status": {"conditions": [PREEMPTED]}})
        self.kubectl.run(
            "patch", "pod", pod, "--subresource=status", "--type=strategic", "-p", body
        )
        self.kubectl.run("delete", "pod", pod, "--wait=false")

    def logs(self, pod: str) -> str:
        """``kubectl logs POD``: what the trainer printed."""
        return self.kubectl.run("logs", pod).stdout

    def explain(self, field: str) -> str:
        """``kubectl explain FIELD``."""
        return self.kubectl.run("explain", field).stdout

    def get_tj_row(self, name: str) -> dict[str, str]:
        """The row ``kubectl get tj NAME -o wide`` prints, by column header."""
        [row] = self.kubectl.table("tj", name, "-o", "wide")
        return row

    def describe(self, name: str) -> Description:
        """``kubectl describe tj NAME`` (its events); the status from ``kubectl get -o json``."""
        text = self.kubectl.run("describe", "tj", name).stdout
        job: dict[str, Any] = self.kubectl.json("get", "tj", name)
        status = job.get("status") or {}
        conditions = {c["type"]: c for c in status.get("conditions") or []}
        return Description(job, status, conditions, described_events(text), text)

    def wait_condition(self, name: str, condition: str, *, timeout: float) -> dict[str, Any]:
        """``kubectl wait --for=condition=CONDITION tj/NAME``; fails at once if the job ends
        in another final phase (kubectl would wait on to its timeout)."""
        waiter = self.kubectl.start(
            "wait", f"--for=condition={condition}", f"tj/{name}", f"--timeout={int(timeout)}s"
        )
        try:
            while waiter.poll() is None:
                phase = ((self.get("trainingjobs", name) or {}).get("status") or {}).get("phase")
                if phase in FINAL_PHASES and phase != condition:
                    raise AssertionError(
                        f"job {name} ended {phase} while kubectl waited for {condition}: "
                        f"{(self.get('trainingjobs', name) or {}).get('status')}"
                    )
                time.sleep(0.5)
            out, err = waiter.communicate()
        finally:
            if waiter.poll() is None:
                waiter.kill()
                waiter.communicate()
        if waiter.returncode != 0:
            raise TimeoutError(f"kubectl wait --for=condition={condition} tj/{name}: {err}")
        assert out.strip() == f"trainingjob.rekindle.dev/{name} condition met", out
        found = self.get("trainingjobs", name)
        assert found is not None
        return found
