"""The trainer's pure floor: its configuration and the rules it follows, no TensorFlow.

The configuration read from the contract's environment (:mod:`.config`), and
the decisions a training run makes at each step and epoch end: where it stands
(:mod:`.position`), early stopping (:mod:`.early_stopping`) and when to save
(:mod:`.save_policy`). Tested by table.
"""
