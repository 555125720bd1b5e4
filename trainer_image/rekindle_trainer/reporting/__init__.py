"""What the trainer tells the world while it runs: Prometheus metrics, progress, health.

No TensorFlow: the training floor tells one :class:`~.reporter.Reporter` what
happened, with plain numbers, and it feeds all three.
"""
