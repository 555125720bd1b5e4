"""The operator's builders and readers of Kubernetes objects: pure, no API client.

Pods, claims, events and owner references are built here as plain dicts;
pods and processes are read here into the core's observations
(:mod:`.classify`); manifests are validated against the CRD here. Imports
``core`` and the trainer's contract, never kopf, kubernetes or aiohttp.
"""
