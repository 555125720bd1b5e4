"""Settings shared by every test suite."""

from __future__ import annotations

import os

# TensorFlow: quiet logs, CPU only, deterministic ops where the trainer asks for them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
