"""What every handler shares: the API client, the metrics and the wake-ups (kept in kopf's memo)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rekindle_operator.cluster.kubeapi import KubeApi
from rekindle_operator.cluster.live import LiveReads
from rekindle_operator.cluster.operator_metrics import OperatorMetrics
from rekindle_operator.cluster.wakeups import Wakeups


@dataclass
class OperatorContext:
    """The operator's shared state, created once at start-up."""

    api: KubeApi
    metrics: OperatorMetrics
    wakeups: Wakeups = field(default_factory=Wakeups)
    #: The running trainers' ``/progress`` reads (live status, stall detection).
    live: LiveReads = field(default_factory=LiveReads)
    #: This replica's name (its pod name), reported in events.
    instance: str = ""
    #: Whether it may read Node objects (watching every namespace: the chart's
    #: ClusterRole grants ``nodes get``; namespaced installs have no cluster access).
    read_nodes: bool = False
