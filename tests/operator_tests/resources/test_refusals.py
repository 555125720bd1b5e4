"""An API server's refusal of a create, read as a cluster words it."""

from __future__ import annotations

import pytest

from rekindle_operator.resources import refusals

CASES = [
    (
        403,
        'pods "digits-1" is forbidden: exceeded quota: gpus, requested: '
        "requests.nvidia.com/gpu=1, used: requests.nvidia.com/gpu=4, limited: "
        "requests.nvidia.com/gpu=4",
        "ExceededQuota",
        False,
    ),
    (
        403,
        'persistentvolumeclaims "digits-checkpoints" is forbidden: exceeded quota: storage, '
        "requested: requests.storage=10Gi, used: requests.storage=95Gi, limited: "
        "requests.storage=100Gi",
        "ExceededQuota",
        False,
    ),
    (
        403,
        'pods "digits-1" is forbidden: violates PodSecurity "restricted:latest": '
        'allowPrivilegeEscalation != false (container "trainer" must set '
        "securityContext.allowPrivilegeEscalation=false)",
        "PodSecurity",
        True,
    ),
    (
        400,
        'admission webhook "validate.gatekeeper.sh" denied the request: [require-team-label] '
        "you must provide labels: {team}",
        "AdmissionWebhook",
        True,
    ),
    (
        422,
        "pods \"digits-1\" is forbidden: ValidatingAdmissionPolicy 'no-latest' with binding "
        "'no-latest' denied request: images must be pinned",
        "AdmissionPolicy",
        True,
    ),
    (
        403,
        'pods "digits-1" is forbidden: maximum memory usage per Container is 8Gi, but limit '
        "is 16Gi",
        "Forbidden",
        True,
    ),
    (
        403,
        'pods is forbidden: User "system:serviceaccount:rekindle:rekindle-operator" cannot '
        'create resource "pods" in API group "" in the namespace "ml"',
        "OperatorForbidden",
        False,
    ),
    (
        403,
        'pods "digits-1" is forbidden: unable to create new content in namespace ml because '
        "it is being terminated",
        "NamespaceTerminating",
        False,
    ),
    (
        422,
        'Pod "digits-1" is invalid: spec.containers[1].name: Duplicate value: "cache"',
        "Invalid",
        True,
    ),
    (
        500,
        'Internal error occurred: failed calling webhook "mpod.kb.io": failed to call webhook: '
        "connection refused",
        "ServerError",
        False,
    ),
    (429, "the server has received too many requests", "ServerError", False),
    (0, "ClientConnectorError: Cannot connect to host", "ServerError", False),
]


@pytest.mark.parametrize(("status", "message", "reason", "permanent"), CASES)
def test_each_refusal_is_named_and_judged(
    status: int, message: str, reason: str, permanent: bool
) -> None:
    refused = refusals.read_refusal(status, message)
    assert (refused.reason, refused.permanent) == (reason, permanent)
    assert refused.message == message
