"""``rekindle run``: a TrainingJob on this machine, with the operator's decision engine.

Modules, one job each: :mod:`.faults` (``--inject`` specs and when they fire),
:mod:`.progress` (the trainer's progress events as lines and bars),
:mod:`.console` (terminal or plain output), :mod:`.attempt` (one trainer
process and its contract environment), :mod:`.supervise` (watching a running
attempt), :mod:`.workdir` (status and checkpoints on disk), :mod:`.summary`
(the closing summary), :mod:`.runner` (the engine's decisions carried out),
:mod:`.launch` (from arguments to a runner) and :mod:`.run_command` (the
``rekindle run`` subcommand). Imports ``resources`` and ``core``; independent
of ``cluster``: no kopf, no API client.
"""
