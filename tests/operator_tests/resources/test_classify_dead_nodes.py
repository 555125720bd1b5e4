"""A pod on a dead node is replaced at once; a replacement blocked on a volume attach waits.

Issue #16 point 5: Kubernetes keeps a dead node's pod ``Terminating`` for as
long as the Node object exists, so "being deleted, no terminated state" must
not mean "wait" for ever.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from rekindle_operator.core.observation import AttemptEnd, AttemptPending
from rekindle_operator.core.reasons import Cause
from rekindle_operator.resources import classify, nodes
from tests.support.engine_cases import NOW, disruption, pod, ts


def _classify(p: dict[str, Any], **kwargs: Any) -> object:
    return classify.classify_pod(p, now=NOW, pending_timeout_seconds=600, **kwargs)


def _node(*, ready: str = "True", taints: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "metadata": {"name": "gpu-node-1"},
        "spec": {"taints": [{"key": key, "effect": "NoExecute"} for key in taints]},
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": ready,
                    "reason": "NodeStatusUnknown",
                    "message": "Kubelet stopped posting node status.",
                }
            ]
        },
    }


def test_the_taint_managers_deletion_a_day_later_is_a_lost_node_not_nothing() -> None:
    """The issue's check: Running, deletionTimestamp, DisruptionTarget, "now" a day later."""
    stranded = pod(
        running=True,
        deleting=True,
        conditions=(disruption("DeletionByTaintManager", "Taint manager: deleting"),),
    )
    ended = classify.classify_pod(
        stranded, now=NOW + timedelta(days=1), pending_timeout_seconds=600
    )
    assert isinstance(ended, AttemptEnd)
    assert ended.cause is Cause.NODE_LOST
    assert "DeletionByTaintManager" in ended.message


def test_the_taint_managers_deletion_is_acted_on_before_the_grace_period_ends() -> None:
    stranded = pod(running=True, deleting=True, conditions=(disruption("DeletionByPodGC", ""),))
    stranded["metadata"]["deletionTimestamp"] = ts(NOW + timedelta(seconds=20))
    ended = _classify(stranded)
    assert isinstance(ended, AttemptEnd)
    assert ended.cause is Cause.NODE_LOST


def test_a_deletion_the_node_ignores_past_its_grace_is_a_lost_node() -> None:
    stopping = pod(running=True, deleting=True)
    stopping["metadata"]["deletionTimestamp"] = ts(NOW - timedelta(seconds=5))
    assert _classify(stopping) is None  # a kubelet may still be reporting
    overdue = classify.overdue_at(stopping)
    assert overdue == NOW + timedelta(seconds=classify.KUBELET_SILENCE_SECONDS - 5)
    ended = classify.classify_pod(stopping, now=overdue, pending_timeout_seconds=600)
    assert isinstance(ended, AttemptEnd)
    assert ended.cause is Cause.NODE_LOST
    assert "node gpu-node-1 did not stop the pod 30s after its grace period ended" in ended.message


@pytest.mark.parametrize(
    ("node", "words"),
    [
        (_node(ready="Unknown"), "node gpu-node-1 is not ready (Ready=Unknown: NodeStatusUnknown"),
        (_node(ready="False"), "Ready=False"),
        (_node(taints=("node.kubernetes.io/unreachable",)), "node.kubernetes.io/unreachable"),
        (_node(taints=(nodes.OUT_OF_SERVICE_TAINT,)), "out-of-service"),
    ],
    ids=["unknown", "not-ready", "unreachable-taint", "out-of-service"],
)
def test_a_running_pod_on_a_down_node_is_replaced_at_once(node: dict[str, Any], words: str) -> None:
    down = nodes.node_down(node, "gpu-node-1")
    assert down is not None
    assert words in down
    ended = _classify(pod(running=True), node_down=down)
    assert isinstance(ended, AttemptEnd)
    assert ended.cause is Cause.NODE_LOST
    assert words in ended.message


def test_a_ready_or_unknown_node_is_not_down() -> None:
    assert nodes.node_down(_node(), "gpu-node-1") is None
    assert nodes.node_down(None, "gpu-node-1") is None
    soft = _node()
    soft["spec"]["taints"] = [{"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}]
    assert nodes.node_down(soft, "gpu-node-1") is None


def test_a_pod_the_operator_stopped_on_a_down_node_ends_as_stopped() -> None:
    """A gang's worker told to stop never reports on a dead node: it must not hold the gang."""
    stopped = pod(running=True, deleting=True, annotations={classify.STOP_ANNOTATION: "Suspended"})
    stopped["metadata"]["deletionTimestamp"] = ts(NOW + timedelta(seconds=20))
    ended = _classify(stopped, node_down="node gpu-node-1 is not ready")
    assert isinstance(ended, AttemptEnd)
    assert ended.cause is Cause.STOPPED


def _event(reason: str, message: str, at: int) -> dict[str, Any]:
    return {
        "reason": reason,
        "message": message,
        "involvedObject": {"kind": "Pod", "name": "digits-1", "uid": "pod-uid-1"},
        "lastTimestamp": ts(NOW - timedelta(seconds=at)),
    }


MULTI_ATTACH = (
    'Multi-Attach error for volume "pvc-1" Volume is already exclusively attached to one '
    "node and can't be attached to another"
)


def test_a_pod_blocked_on_a_multi_attach_waits_without_a_timeout() -> None:
    waiting = pod(phase="Pending", created=NOW - timedelta(hours=3))
    state = nodes.attach_state(
        [_event(nodes.FAILED_ATTACH, MULTI_ATTACH, at=10)], waiting, holder="gpu-node-0"
    )
    seen = _classify(waiting, attach=state)
    assert isinstance(seen, AttemptPending)
    assert seen.blocked == nodes.MULTI_ATTACH
    assert seen.since is None  # three hours on the node, and no pending timeout
    assert "still attached to node gpu-node-0" in seen.message
    assert nodes.ADMIN_COMMAND.format(node="gpu-node-0") in seen.message
    assert "pod digits-1 on node gpu-node-1" in seen.message


def test_the_pending_timeout_counts_from_the_attach_once_it_succeeds() -> None:
    waiting = pod(phase="Pending", created=NOW - timedelta(hours=3))
    events = [
        _event(nodes.FAILED_ATTACH, MULTI_ATTACH, at=100),
        _event(nodes.SUCCESSFUL_ATTACH, 'AttachVolume.Attach succeeded for volume "pvc-1"', 60),
    ]
    state = nodes.attach_state(events, waiting)
    assert state.blocked is None
    assert _classify(waiting, attach=state) == AttemptPending(
        attempt=1, since=NOW - timedelta(seconds=60)
    )


def test_events_about_another_pod_of_that_name_are_not_read() -> None:
    waiting = pod(phase="Pending")
    other = _event(nodes.FAILED_ATTACH, MULTI_ATTACH, at=10)
    other["involvedObject"]["uid"] = "an-older-pod"
    assert nodes.attach_state([other], waiting) == nodes.AttachState()
