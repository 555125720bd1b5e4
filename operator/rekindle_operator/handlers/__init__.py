"""The work behind the kopf decorators in :mod:`rekindle_operator.main`.

``main`` only registers and delegates; each ``handle_*`` module does one kind
of work, and :mod:`.reconcile` is the one place where a job's state is
compared with the cluster and acted on (level-triggered).
"""
