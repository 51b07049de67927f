"""Reading and checking parallel TSV files (``source<TAB>target[<TAB>ignored...]``) in Python.

This is the file's gatekeeper: it names the file, line and field of every problem before
any TensorFlow work starts, and counts what the tf.data pipeline will drop. The in-graph
pipeline (``keras_s2s.data``) applies the same rules, so both agree on what is kept.
Files are read line by line (``stream_parallel_tsv``), so a file of any length is checked in
the memory of one line; ``read_parallel_tsv`` collects the same pairs into a list.

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
from typing import Any, Iterable, Iterator, Literal, Optional, TextIO

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
    path: str | Path, source_spec: TextSpec, target_spec: TextSpec, **options: Any
) -> tuple[list[Pair], TsvReport]:
    """Checks every line of ``path``; returns the kept pairs (a list: for callers that need
    them all at once) and a report. Keyword options and errors: those of ``stream_parallel_tsv``.
    """
    pairs, report = stream_parallel_tsv(path, source_spec, target_spec, **options)
    return list(pairs), report


def stream_parallel_tsv(
    path: str | Path,
    source_spec: TextSpec,
    target_spec: TextSpec,
    *,
    max_source_length: Optional[int] = None,
    max_target_length: Optional[int] = None,
    length_policy: Literal["filter", "truncate"] = "filter",
    skip_malformed: bool = False,
) -> tuple[Iterator[Pair], TsvReport]:
    """The kept pairs of ``path`` in file order, read line by line, and the report that
    counts every line as the iterator reaches it (complete once the iterator is exhausted).

    Only the current line is held in memory. Errors are raised while iterating: DataError
    when the file is missing, and naming the file and line of the first malformed line
    unless ``skip_malformed`` is set.
    """
    path = Path(path)
    report = TsvReport(path=str(path))
    options = _LineOptions(max_source_length, max_target_length, length_policy, skip_malformed)
    return _kept_pairs(path, source_spec, target_spec, options, report), report


def check_parallel_tsv(path: str | Path, source_spec: TextSpec, target_spec: TextSpec, **options: Any) -> TsvReport:
    """The report of ``stream_parallel_tsv`` (same keyword options and errors), keeping no pair."""
    pairs, report = stream_parallel_tsv(path, source_spec, target_spec, **options)
    for _ in pairs:
        pass
    return report


@dataclasses.dataclass(frozen=True)
class _LineOptions:
    max_source_length: Optional[int]
    max_target_length: Optional[int]
    length_policy: Literal["filter", "truncate"]
    skip_malformed: bool


def _kept_pairs(
    path: Path, source_spec: TextSpec, target_spec: TextSpec, options: _LineOptions, report: TsvReport
) -> Iterator[Pair]:
    for number, line in enumerate(_binary_lines(path), start=1):
        report.lines += 1
        parsed = _parse_line(line, source_spec, target_spec)
        if parsed is None:
            report.blank += 1
        elif isinstance(parsed, str):
            _count_malformed(f"{path}:{number}: {parsed}", options.skip_malformed, report)
        else:
            source, target, source_tokens, target_tokens = parsed
            kept = _length_policy(source_tokens, target_tokens, options, report)
            if kept is not None:
                report.kept += 1
                report.target_tokens += len(kept[1]) + 1
                yield Pair(number, source, target, *kept)


def _count_malformed(message: str, skip_malformed: bool, report: TsvReport) -> None:
    if not skip_malformed:
        raise DataError(message + " (set skip_malformed to skip and count such lines)")
    report.malformed += 1
    if len(report.malformed_examples) < _MAX_EXAMPLES:
        report.malformed_examples.append(message)


def _length_policy(
    source_tokens: list[str], target_tokens: list[str], options: _LineOptions, report: TsvReport
) -> Optional[tuple[tuple[str, ...], tuple[str, ...]]]:
    """The tokens as kept (cut under ``truncate``), or None when ``filter`` drops them."""
    max_source, max_target = options.max_source_length, options.max_target_length
    too_long = (max_source is not None and len(source_tokens) > max_source) or (
        max_target is not None and len(target_tokens) > max_target
    )
    if too_long:
        if options.length_policy == "filter":
            report.too_long += 1
            return None
        report.truncated += 1
        source_tokens, target_tokens = source_tokens[:max_source], target_tokens[:max_target]
    return tuple(source_tokens), tuple(target_tokens)


def _binary_lines(path: Path) -> Iterator[bytes]:
    """The lines of ``path`` without their ``\\n``, read through a buffer (one line in memory).

    Binary mode splits on ``\\n`` only, as the rules say; a final ``\\n`` ends the last line
    rather than starting an empty one.
    """
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise DataError(f"data file not found: {path}") from None
    except IsADirectoryError:
        raise DataError(f"data file is a directory: {path}") from None
    with handle:
        for line in handle:
            yield line[:-1] if line.endswith(b"\n") else line


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


def write_tsv(path: str | Path, rows: Iterable[tuple[str, str]]) -> None:
    """Writes ``source<TAB>target`` lines (fields must hold no tab or newline)."""
    with open_tsv_for_writing(path) as handle:
        for source, target in rows:
            handle.write(tsv_line(source, target))


def open_tsv_for_writing(path: str | Path) -> TextIO:
    """A UTF-8 text file for ``tsv_line``s, ``\\n`` line endings on every platform."""
    return open(path, "w", encoding="utf-8", newline="\n")


def tsv_line(source: str, target: str) -> str:
    """One ``source<TAB>target`` line, newline included (fields must hold no tab or newline)."""
    return f"{source}\t{target}\n"
