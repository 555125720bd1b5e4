"""Test-only cluster DNS for the process kubelet: pod names under a headless Service → loopback.

In a cluster, a pod with ``hostname: w0`` and ``subdomain: job-workers`` is
reachable as ``w0.job-workers.<namespace>.svc[.cluster.local]`` once the
headless Service ``job-workers`` selects it. Here every pod is a process on
one host, so each such (namespace, subdomain, hostname, container port) gets
one host port, the same every time it is asked for (a later pod with the same
name, e.g. the next attempt's worker 0, listens where the last one did), and
``TF_CONFIG``'s addresses are rewritten to ``127.0.0.1:<host port>`` before the
process starts. Nothing else is rewritten: this stands in for cluster DNS only
where TensorFlow reads addresses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

#: TensorFlow's cluster description (the variable a multi-worker trainer reads).
TF_CONFIG = "TF_CONFIG"

#: ``host.subdomain[.namespace[.svc[.cluster-domain…]]]:port``
_ADDRESS = re.compile(
    r"^(?P<host>[a-z0-9-]+)\.(?P<sub>[a-z0-9-]+)(?:\.(?P<ns>[a-z0-9-]+)(?:\.svc(?:\.[a-z0-9.-]+)?)?)?"
    r":(?P<port>[0-9]+)$"
)

Key = tuple[str, str, str, int]


class ClusterDns:
    """Names of pods under headless Services, each bound to one loopback port."""

    def __init__(self, allocate: Callable[[], int]) -> None:
        """``allocate`` returns a free TCP port on 127.0.0.1."""
        self._allocate = allocate
        self._ports: dict[Key, int] = {}

    def host_port(self, namespace: str, subdomain: str, hostname: str, port: int) -> int:
        """The host port that stands for ``hostname.subdomain.namespace.svc:port``."""
        key = (namespace, subdomain, hostname, port)
        if key not in self._ports:
            self._ports[key] = self.free_port()
        return self._ports[key]

    def free_port(self) -> int:
        """A free port that no pod name holds (for ports that are not behind a name)."""
        taken = set(self._ports.values())
        while True:
            port = self._allocate()
            if port not in taken:
                return port

    def resolve(self, address: str, namespace: str) -> str:
        """``127.0.0.1:<host port>`` for a pod's DNS name and port; anything else as it is."""
        match = _ADDRESS.match(address)
        if match is None:
            return address
        host_port = self.host_port(
            match["ns"] or namespace, match["sub"], match["host"], int(match["port"])
        )
        return f"127.0.0.1:{host_port}"

    def rewrite_tf_config(self, text: str, namespace: str) -> str:
        """``TF_CONFIG`` with every cluster address resolved (unparseable text unchanged)."""
        try:
            doc: Any = json.loads(text)
        except json.JSONDecodeError:
            return text
        cluster = doc.get("cluster") if isinstance(doc, dict) else None
        if not isinstance(cluster, dict):
            return text
        for task, addresses in cluster.items():
            if isinstance(addresses, list):
                cluster[task] = [
                    self.resolve(a, namespace) if isinstance(a, str) else a for a in addresses
                ]
        return json.dumps(doc, separators=(",", ":"), sort_keys=True)
