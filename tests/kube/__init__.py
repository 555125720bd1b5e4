"""A Kubernetes API emulation and a process kubelet for running the real operator in tests.

``emulator`` serves the API (kmock's emulator, extended where a real cluster
behaves differently), ``kubelet`` runs pods as local processes, ``cluster``
hosts both on a background thread, and ``fixtures`` is the pytest plugin that
other suites load (``pytest_plugins = ["tests.kube.fixtures"]``).
"""
