"""Why the API server refused to create an object, read from its answer.

Pure: the HTTP status, the ``reason`` and ``message`` of the ``Status`` the
API server answered with are passed in; the result says what the refusal is
(a word for the ``CreateRefused`` condition) and whether any retry can help.
The engine (:func:`rekindle_operator.core.engine.decide_create_refused`)
decides what follows.

A refusal is *permanent* when the pod itself is what is refused: Pod Security
admission, an admission webhook or policy that denies it, a LimitRange, an
invalid object. It is *for now* when the namespace is out of quota, the
operator lacks a permission an administrator can grant, the namespace is
going away, or the API server (or a webhook it calls) is failing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from rekindle_operator.core.observation import CreateRefused


@dataclass(frozen=True)
class _Rule:
    """Answers whose message holds ``words`` (and whose status is in ``statuses``, if given)."""

    reason: str
    permanent: bool
    words: str = ""
    statuses: frozenset[int] = frozenset()

    def matches(self, status: int, message: str) -> bool:
        return (not self.statuses or status in self.statuses) and self.words in message


#: The first rule that matches names the refusal; the order is the order of trust.
RULES: Final = (
    _Rule("ExceededQuota", permanent=False, words="exceeded quota"),
    _Rule("PodSecurity", permanent=True, words="violates PodSecurity"),
    _Rule("AdmissionWebhook", permanent=True, words="denied the request"),
    _Rule("AdmissionPolicy", permanent=True, words="denied request"),
    _Rule("NamespaceTerminating", permanent=False, words="because it is being terminated"),
    _Rule("OperatorForbidden", permanent=False, words="cannot create resource"),
    _Rule("Forbidden", permanent=True, statuses=frozenset({403})),
    _Rule("Invalid", permanent=True, statuses=frozenset({400, 422})),
)


def read_refusal(status: int, message: str) -> CreateRefused:
    """What an API server's refusal of a create says.

    Args:
        status: the HTTP status (0 when no answer came).
        message: the ``message`` of its ``Status`` answer (or the text it sent).
    """
    for rule in RULES:
        if rule.matches(status, message):
            return CreateRefused(reason=rule.reason, message=message, permanent=rule.permanent)
    # Throttled, a server or webhook error, no answer: the API server may answer otherwise soon.
    return CreateRefused(reason="ServerError", message=message, permanent=False)
