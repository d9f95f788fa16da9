"""Code shared by two or more workloads: logging, dataset fetch, provenance, runtime, the timed-run harness.

The repository is used from a checkout, as MLCommons reference repositories are: run scripts and tasks.py put
the repository root on PYTHONPATH, so `common` is never installed into site-packages where it could collide
with another distribution's top-level `common` package.
"""
