"""Deterministic train/validation/test assignment by a hash of a key (a word, a source)."""

from __future__ import annotations

import hashlib
from typing import Literal

Split = Literal["train", "validation", "test"]


def hash_bucket(key: str, buckets: int = 100) -> int:
    """sha1(key) mod ``buckets``: stable across runs, machines and Python versions."""
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest(), 16) % buckets


def split_of(key: str, *, validation_percent: int = 5, test_percent: int = 5) -> Split:
    """``train`` below 100 - validation - test, then ``validation``, then ``test``."""
    bucket = hash_bucket(key)
    if bucket < 100 - validation_percent - test_percent:
        return "train"
    if bucket < 100 - test_percent:
        return "validation"
    return "test"
