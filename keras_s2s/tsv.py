"""Reading and checking parallel TSV files (``source<TAB>target[<TAB>ignored...]``) in Python.

This is the file's gatekeeper: it names the file, line and field of every problem before
any TensorFlow work starts, and counts what the tf.data pipeline will drop. The in-graph
pipeline (``keras_s2s.data``) applies the same rules, so both agree on what is kept.

Rules, per line (split on ``\\n``; a trailing ``\\r`` and a UTF-8 byte-order mark are removed):
- blank lines (only ASCII whitespace) are skipped and counted as ``blank``;
- a line must be valid UTF-8, hold a tab, and have a non-empty source (column 1) and
  target (column 2) after stripping ASCII whitespace and tokenizing; columns 3+ are ignored;
- otherwise the line is malformed: an error (default) or, with ``skip_malformed``, skipped
  and counted;
- pairs longer than the maximum lengths (in tokens) are dropped and counted (policy
  ``filter``) or cut to the maximum and counted (policy ``truncate``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal, Optional

from keras_s2s.errors import DataError
from keras_s2s.tokenization import TextSpec

ASCII_WHITESPACE = " \t\n\r\f\v"
_BOM = b"\xef\xbb\xbf"
_MAX_EXAMPLES = 10


@dataclasses.dataclass(frozen=True)
class Pair:
    """One well-formed line: 1-based line number, raw fields, and their tokens."""

    line: int
    source: str
    target: str
    source_tokens: tuple[str, ...]
    target_tokens: tuple[str, ...]


@dataclasses.dataclass
class TsvReport:
    """What happened to every line of one file."""

    path: str
    lines: int = 0
    blank: int = 0
    malformed: int = 0
    too_long: int = 0
    truncated: int = 0
    kept: int = 0
    target_tokens: int = 0
    """Target tokens of the kept pairs, each pair's EOS included (what training predicts)."""
    malformed_examples: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        parts = [f"{self.kept} pairs kept of {self.lines} lines"]
        for name in ("blank", "malformed", "too_long", "truncated"):
            count = getattr(self, name)
            if count:
                parts.append(f"{count} {name.replace('_', '-')}")
        return f"{self.path}: " + ", ".join(parts)


def read_parallel_tsv(
    path: str | Path,
    source_spec: TextSpec,
    target_spec: TextSpec,
    *,
    max_source_length: Optional[int] = None,
    max_target_length: Optional[int] = None,
    length_policy: Literal["filter", "truncate"] = "filter",
    skip_malformed: bool = False,
) -> tuple[list[Pair], TsvReport]:
    """Checks every line of ``path``; returns the kept pairs and a report.

    Raises DataError naming the file and line for the first malformed line, unless
    ``skip_malformed`` is set.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"data file not found: {path}") from None
    except IsADirectoryError:
        raise DataError(f"data file is a directory: {path}") from None
    report = TsvReport(path=str(path))
    pairs: list[Pair] = []
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the last line
    for number, line in enumerate(lines, start=1):
        report.lines += 1
        parsed = _parse_line(line, source_spec, target_spec)
        if parsed is None:
            report.blank += 1
            continue
        if isinstance(parsed, str):
            message = f"{path}:{number}: {parsed}"
            if not skip_malformed:
                raise DataError(message + " (set skip_malformed to skip and count such lines)")
            report.malformed += 1
            if len(report.malformed_examples) < _MAX_EXAMPLES:
                report.malformed_examples.append(message)
            continue
        source, target, source_tokens, target_tokens = parsed
        too_long = (max_source_length is not None and len(source_tokens) > max_source_length) or (
            max_target_length is not None and len(target_tokens) > max_target_length
        )
        if too_long:
            if length_policy == "filter":
                report.too_long += 1
                continue
            report.truncated += 1
            source_tokens = source_tokens[:max_source_length]
            target_tokens = target_tokens[:max_target_length]
        pairs.append(Pair(number, source, target, tuple(source_tokens), tuple(target_tokens)))
        report.target_tokens += len(target_tokens) + 1
    report.kept = len(pairs)
    return pairs, report


def _parse_line(line: bytes, source_spec: TextSpec, target_spec: TextSpec):
    """None for a blank line, an error message (str) for a malformed one, else the fields."""
    if line.endswith(b"\r"):
        line = line[:-1]
    if line.startswith(_BOM):
        line = line[len(_BOM):]
    if not line.strip(ASCII_WHITESPACE.encode()):
        return None
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as err:
        return f"invalid UTF-8 at byte {err.start} of the line ({err.reason})"
    if "\t" not in text:
        return "no tab: expected 'source<TAB>target'"
    fields = text.split("\t")
    source = fields[0].strip(ASCII_WHITESPACE)
    target = fields[1].strip(ASCII_WHITESPACE)
    if not source:
        return "empty source field (column 1)"
    if not target:
        return "empty target field (column 2)"
    source_tokens = source_spec.tokenize(source)
    if not source_tokens:
        return f"source field (column 1) {source!r} has no tokens after normalization"
    target_tokens = target_spec.tokenize(target)
    if not target_tokens:
        return f"target field (column 2) {target!r} has no tokens after normalization"
    return source, target, source_tokens, target_tokens


def write_tsv(path: str | Path, rows: list[tuple[str, str]]) -> None:
    """Writes ``source<TAB>target`` lines (fields must hold no tab or newline)."""
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for source, target in rows:
            handle.write(f"{source}\t{target}\n")
