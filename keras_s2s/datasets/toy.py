"""A tiny English -> Korean set (34 pairs: short sentences and single words).

It exists to prove the wiring: a small model must learn it by heart (``I go home`` ->
``나는 집에 간다``), so train, validation and test are the same file.
"""

from __future__ import annotations

from pathlib import Path

TOY_TSV = Path(__file__).with_name("toy.tsv")


def toy_pairs() -> list[tuple[str, str]]:
    lines = TOY_TSV.read_text(encoding="utf-8").splitlines()
    return [tuple(line.split("\t")[:2]) for line in lines if line]
