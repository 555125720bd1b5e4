"""The operator's pure floor: the resource's types, the decision engine and its words.

What lives here: the typed spec and status of a TrainingJob with the CRD's
defaults and bounds, the causes, reasons and conditions, what an attempt is
observed to be doing, and :func:`engine.decide`. Nothing here does I/O or
reads the clock; it imports only the standard library, YAML and the trainer's
contract, so that every decision can be tested by table and shared by both
bodies (``cluster`` and ``local``).
"""
