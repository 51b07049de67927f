"""Interleaved timing of translation paths: words/s per round, medians (min–max), a markdown table.

A path is a callable ``translate(words, *, batch_size) -> outputs``. Every path runs once per round
at each batch size (interleaved, so a slow phase of the VM hits every path), after a warm-up of
one word per source length and one batch of 64 (tracing, session start, one XLA compilation
per shape), outside the timing.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Callable, Sequence

Translate = Callable[..., list]  # translate(words, *, batch_size) -> outputs
BATCH_SIZES = (1, 64)


def time_paths(
    paths: dict[str, Translate], words: list[str], rounds: int, reference: Sequence
) -> tuple[dict[tuple[str, int], list[float]], dict[tuple[str, int], bool]]:
    """-> (words/s per (path, batch size) per round, whether every round's outputs equal ``reference``)."""
    for translate in paths.values():
        translate(list({len(word): word for word in words}.values()), batch_size=1)
        translate(words[:64], batch_size=64)
    rates: dict[tuple[str, int], list[float]] = {}
    same: dict[tuple[str, int], bool] = {}
    for round_index in range(rounds):
        for name, translate in paths.items():
            for batch_size in BATCH_SIZES:
                start = time.perf_counter()
                outputs = translate(words, batch_size=batch_size)
                rate = len(words) / (time.perf_counter() - start)
                rates.setdefault((name, batch_size), []).append(rate)
                same[name, batch_size] = same.get((name, batch_size), True) and outputs == reference
                print(f"  round {round_index + 1}: {name} batch {batch_size}: {rate:,.0f} words/s", file=sys.stderr)
    return rates, same


def print_table(rates: dict[tuple[str, int], list[float]], same: dict[tuple[str, int], bool], reference_name: str) -> None:
    print(f"| path | batch | words/s, median (min–max) | same output as {reference_name} |")
    print("|---|---:|---:|---|")
    for (name, batch_size), values in rates.items():
        spread = f" ({min(values):,.0f}–{max(values):,.0f})" if len(values) > 1 else ""
        print(f"| {name} | {batch_size} | {statistics.median(values):,.0f}{spread} | {'yes' if same[name, batch_size] else 'NO'} |")


def print_ratio(rates: dict[tuple[str, int], list[float]], faster: str, slower: str, batch_size: int) -> None:
    """The median ratio of two paths at one batch size, and the per-round ratios."""
    top, bottom = rates[faster, batch_size], rates[slower, batch_size]
    print(f"\n{faster} vs {slower} at batch {batch_size}: {statistics.median(top) / statistics.median(bottom):.2f}× "
          f"(per round: {', '.join(f'{a / b:.2f}×' for a, b in zip(top, bottom))})")
