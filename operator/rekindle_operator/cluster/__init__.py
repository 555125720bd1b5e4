"""The operator's cluster body: kopf registration, reconcile, the API client, metrics.

``rekindle operator`` runs :data:`registration.registry` with kopf. The
handlers only read the cluster, ask :func:`~rekindle_operator.core.engine.decide`
and carry its answer out; everything they build comes from ``resources``.
Independent of ``local``: neither imports the other.
"""
