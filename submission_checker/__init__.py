"""Submission checker: validates a folder of results against JSON schemas, the benchmark definitions' rules and
provenance, and scores it. Reads definitions and schemas as data; never imports torch or workload code.

    python -m submission_checker <folder> [--smoke] [--mlcommons] [--out DIR]     (see README.md)
"""
