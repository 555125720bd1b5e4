"""The TensorFlow floor: the Keras callback, saves, the training loop, data, strategy, session.

Everything that imports TensorFlow or Keras lives here (and in ``examples``);
it uses ``checkpoint``, ``reporting`` and ``core`` below it.
"""
