"""Checkpoints on the volume: atomic, checksummed folders and the state inside them.

The store publishes each checkpoint by one rename and reads back only what
verifies; the saver writes in the background; host buffers hold the copy a
save takes. Imports no TensorFlow or Keras: only NumPy, the contract and
``core``.
"""
