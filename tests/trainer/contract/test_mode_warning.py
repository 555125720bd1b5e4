"""``mode: max`` on a loss-like monitor: allowed (Keras takes the mode as given), but warned of."""

from __future__ import annotations

import pytest

from rekindle_trainer.contract.training_config import EarlyStopping, EarlyStoppingMode, mode_warning

MAX, MIN, AUTO = EarlyStoppingMode.MAX, EarlyStoppingMode.MIN, EarlyStoppingMode.AUTO


@pytest.mark.parametrize(
    ("config", "warned"),
    [
        (EarlyStopping(monitor="val_loss", mode=MAX), True),
        (EarlyStopping(monitor="loss", mode=MAX), True),
        (EarlyStopping(monitor="val_digits_loss", mode=MAX), True),
        (EarlyStopping(monitor="val_loss", mode=MIN), False),
        (EarlyStopping(monitor="val_loss", mode=AUTO), False),
        (EarlyStopping(monitor="val_accuracy", mode=MAX), False),
        (EarlyStopping(monitor="val_lossy_metric", mode=MAX), False),
        # Off, the rule decides nothing; restoring the best weights alone, it still does.
        (EarlyStopping(monitor="val_loss", mode=MAX, enabled=False), False),
        (
            EarlyStopping(monitor="val_loss", mode=MAX, enabled=False, restore_best_weights=True),
            True,
        ),
    ],
)
def test_max_on_a_loss_is_warned_of(config: EarlyStopping, warned: bool) -> None:
    warning = mode_warning(config)
    assert (warning is not None) is warned
    if warning is not None:
        assert warning.startswith(f"earlyStopping.mode is max, but {config.monitor!r} is a loss")
        assert "set mode to min" in warning
