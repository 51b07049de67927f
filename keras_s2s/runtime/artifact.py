"""The export directory layout, its metadata and checksums (plain Python: no TensorFlow).

    exported/NAME/
      encoder/N/            SavedModel, signature serving_default (TF Serving version layout)
      decoder/N/            SavedModel, signature serving_default
      greedy/N/, beam/N/    SavedModels: greedy decoding and beam search in one call each
                            (serving_default, and XLA-compiled: greedy_xla, beam_xla)
      translate/N/          SavedModel: strings in, strings out
      onnx/encoder.onnx     tf2onnx, dynamic batch/time axes
      onnx/decoder.onnx, onnx/greedy.onnx
      assets/source_vocab.txt, target_vocab.txt, config.json
      assets/metadata.json  graphs' tensors, decoding interface, special ids, text specs,
                            library versions, sha256 of every file of this export, and
                            ``metadata_sha256``: the sha256 of the metadata itself
      models.config         TF Serving model config serving every SavedModel

``read_metadata`` refuses a metadata file that is not valid JSON, not this format, not
the structure the runtimes read (every field they use, with its type and the tensor names
the decoding interface refers to), or not the content its ``metadata_sha256`` was
computed from, with an ExportError naming the file and the problem.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import typing
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable

import numpy as np

from keras_s2s.errors import ExportError
from keras_s2s.tokenization import TextSpec

FORMAT = "keras-s2s-export"
FORMAT_VERSION = 1
METADATA_CHECKSUM = "metadata_sha256"


class ExportLayout:
    """Paths inside one export directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.assets = self.path / "assets"
        self.metadata = self.assets / "metadata.json"
        self.source_vocab = self.assets / "source_vocab.txt"
        self.target_vocab = self.assets / "target_vocab.txt"
        self.config = self.assets / "config.json"
        self.onnx_dir = self.path / "onnx"
        self.models_config = self.path / "models.config"

    def savedmodel_dir(self, graph: str, version: int) -> Path:
        return self.path / graph / str(version)

    def onnx_file(self, graph: str) -> Path:
        return self.onnx_dir / f"{graph}.onnx"

    def versions(self, graph: str = "encoder") -> list[int]:
        """Numeric version directories present for ``graph``, ascending."""
        directory = self.path / graph
        if not directory.is_dir():
            return []
        return sorted(int(p.name) for p in directory.iterdir() if p.is_dir() and p.name.isdigit())

    def write_metadata(self, metadata: dict) -> None:
        """Writes ``metadata`` with its ``metadata_sha256`` to ``assets/metadata.json``."""
        signed = {**metadata, METADATA_CHECKSUM: metadata_sha256(metadata)}
        self.metadata.write_text(json.dumps(signed, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    def read_metadata(self) -> dict:
        """The checked content of ``assets/metadata.json``; raises ExportError naming the problem."""
        if not self.metadata.is_file():
            raise ExportError(
                f"{self.path} is not a complete export: {self.metadata} is missing "
                "(an interrupted export leaves no metadata; run keras-s2s export again)"
            )
        try:
            metadata = json.loads(self.metadata.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ExportError(f"{self.metadata}: corrupted metadata, not valid JSON ({err}); re-export the model") from None
        if not isinstance(metadata, dict):
            raise ExportError(
                f"{self.metadata}: corrupted metadata: expected a JSON object, got {_json_type(metadata)}; "
                "re-export the model"
            )
        if metadata.get("format") != FORMAT or metadata.get("format_version") != FORMAT_VERSION:
            raise ExportError(
                f"{self.metadata}: not a {FORMAT} v{FORMAT_VERSION} metadata file "
                f"(format={metadata.get('format')!r}, format_version={metadata.get('format_version')!r})"
            )
        try:
            _check(metadata, _METADATA, "")
            _check_references(metadata)
        except _Invalid as err:
            raise ExportError(f"{self.metadata}: invalid metadata: {err}; re-export the model") from None
        if METADATA_CHECKSUM not in metadata:
            raise ExportError(
                f"{self.metadata}: no '{METADATA_CHECKSUM}' (written by an older keras-s2s, or edited); "
                "re-export the model"
            )
        content = {k: v for k, v in metadata.items() if k != METADATA_CHECKSUM}
        if metadata[METADATA_CHECKSUM] != metadata_sha256(content):
            raise ExportError(
                f"{self.metadata}: metadata checksum mismatch: the file changed or is corrupted since export "
                f"(its content does not match '{METADATA_CHECKSUM}'); re-export the model"
            )
        return metadata

    def relative(self, path: Path) -> str:
        return path.relative_to(self.path).as_posix()

    def files_under(self, *roots: Path) -> list[Path]:
        files: list[Path] = []
        for root in roots:
            files.extend([root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()))
        return files

    def verify(self, metadata: dict, roots: Iterable[Path]) -> None:
        """Checks that every file under ``roots`` that metadata lists is present and unchanged,
        and that every listed file under ``roots`` exists. Raises ExportError naming the file."""
        expected: dict[str, str] = metadata["files"]
        roots = list(roots)
        prefixes = [self.relative(root) for root in roots]
        for relative, digest in expected.items():
            if not any(_is_under(relative, p) for p in prefixes):
                continue
            path = self.path / relative
            if not path.is_file():
                raise ExportError(f"export file missing: {path} (listed in {self.metadata})")
            if sha256_of(path) != digest:
                raise ExportError(
                    f"checksum mismatch for {path}: the file changed or is corrupted since export "
                    f"(sha256 in {self.metadata.name} is {digest[:12]}...); re-export the model"
                )


def sha256_of(path: Path) -> str:
    """Hex sha256 of the file at ``path``, read in blocks."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def metadata_sha256(metadata: dict) -> str:
    """Hex sha256 of ``metadata`` (without its own checksum) as canonical JSON: sorted keys,
    no spaces, so the digest does not depend on indentation or key order."""
    content = {k: v for k, v in metadata.items() if k != METADATA_CHECKSUM}
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _is_under(relative: str, prefix: str) -> bool:
    return relative == prefix or relative.startswith(prefix + "/")


# --- the structure the runtimes read ---------------------------------------------------------
class _Invalid(ValueError):
    """One structural problem of the metadata, worded for the user."""


@dataclasses.dataclass(frozen=True)
class _Kind:
    """A JSON value accepted by ``accepts``; ``description`` completes "must be ..."."""

    description: str
    accepts: Callable[[Any], bool]


@dataclasses.dataclass(frozen=True)
class _Object:
    """A JSON object with these fields (a name ending in "?" is optional); with ``closed``,
    other keys are an error (the runtime builds a class from the object's keys)."""

    fields: dict
    closed: bool = True


@dataclasses.dataclass(frozen=True)
class _MapOf:
    keys: _Kind
    values: Any


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_inner_path(value: Any) -> bool:
    if not isinstance(value, str) or not value or "\\" in value:
        return False
    path = PurePosixPath(value)
    return not path.is_absolute() and ".." not in path.parts and path.as_posix() == value


def _is_dtype(value: Any) -> bool:
    if value == "string":  # TensorFlow's string tensors (the translate graph); numpy has no such dtype
        return True
    try:
        return isinstance(value, str) and np.dtype(value).name == value
    except TypeError:
        return False


def _one_of(choices: tuple) -> _Kind:
    return _Kind("one of " + ", ".join(repr(c) for c in choices), lambda v: isinstance(v, (str, bool)) and v in choices)


_NAME = _Kind("a non-empty string", lambda v: isinstance(v, str) and v != "")
_BOOL = _Kind("true or false", lambda v: isinstance(v, bool))
_POSITIVE_INT = _Kind("a positive integer", lambda v: _is_int(v) and v >= 1)
_PATH = _Kind("a relative path inside the export (forward slashes, no '..')", _is_inner_path)
_SHA256 = _Kind("a sha256 hex digest (64 lowercase hex digits)", lambda v: isinstance(v, str) and re.fullmatch("[0-9a-f]{64}", v) is not None)
_DTYPE = _Kind("a numpy dtype name such as 'int32' or 'float32', or 'string'", _is_dtype)
_SHAPE = _Kind("a list of sizes (integers >= 0, or null for a dynamic axis)",
               lambda v: isinstance(v, list) and all(d is None or (_is_int(d) and d >= 0) for d in v))
_ID_RANGE = _Kind("a [low, high] pair of integers with low < high",
                  lambda v: isinstance(v, list) and len(v) == 2 and all(map(_is_int, v)) and v[0] < v[1])
_OPTIONAL_NAME = _Kind("a non-empty string or null", lambda v: v is None or _NAME.accepts(v))

_TENSOR = _Object({"name": _NAME, "dtype": _DTYPE, "shape": _SHAPE, "id_range?": _ID_RANGE})
ONNX_RECURRENCES = ("fused", "loop")
"""How an ONNX encoder runs its recurrence: fused LSTM ops fed ``sequence_lens``, or a ``Loop``."""
_GRAPH = _Object({
    "savedmodel": _PATH, "onnx": _PATH, "signature_name": _NAME, "serving_model_name?": _NAME,
    "onnx_recurrence?": _one_of(ONNX_RECURRENCES), "inputs": [_TENSOR], "outputs": [_TENSOR],
    "compiled_signature_name?": _NAME,  # greedy, exports since 2026-12-05: its XLA-compiled signature
})
_SAVEDMODEL_GRAPH = _Object({  # a graph exported as a SavedModel only (beam), with an XLA-compiled signature
    "savedmodel": _PATH, "signature_name": _NAME, "compiled_signature_name": _NAME, "serving_model_name": _NAME,
    "inputs": [_TENSOR], "outputs": [_TENSOR],
})
TRANSLATE_STRATEGIES = ("greedy", "beam")
_TRANSLATE = _Object({  # a SavedModel only: its tensorflow-text ops have no ONNX counterpart
    "savedmodel": _PATH, "signature_name": _NAME, "serving_model_name": _NAME,
    "strategy": _one_of(TRANSLATE_STRATEGIES), "inputs": [_TENSOR], "outputs": [_TENSOR],
    "beam?": _Object({
        "width": _POSITIVE_INT, "nbest": _POSITIVE_INT,
        "length_penalty": _Kind("a number >= 0", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0),
    }),
})
_TEXT_SPEC = _Object({  # TextSpec's fields: Literal choices, and the bool ``lowercase``
    name: _BOOL if hint is bool else _one_of(typing.get_args(hint))
    for name, hint in typing.get_type_hints(TextSpec).items()
})
_METADATA = _Object({
    "version": _POSITIVE_INT,
    "graphs": _Object({"encoder": _GRAPH, "decoder": _GRAPH, "greedy?": _GRAPH}),  # greedy: since 2026-11-22
    "translate?": _TRANSLATE,  # since 2026-11-22 (second session)
    "beam?": _SAVEDMODEL_GRAPH,  # since 2026-12-05
    "decoding": _Object({
        "source_input": _NAME, "token_input": _NAME, "logits_output": _NAME,
        "carries": [_Object({"input": _NAME, "init_from": _NAME, "update_from": _OPTIONAL_NAME})],
    }),
    "vocabularies": _Object({"source": _PATH, "target": _PATH}),
    "text": _Object({"source": _TEXT_SPEC, "target": _TEXT_SPEC}),
    "reverse_source": _BOOL,
    "max_decode_length": _POSITIVE_INT,
    "files": _MapOf(_PATH, _SHA256),
}, closed=False)


def _check(value: Any, schema: Any, where: str) -> None:
    """Raises _Invalid naming the first field of ``value`` (at path ``where``) that does not fit."""
    shown = f"'{where}'" if where else "the metadata"
    if isinstance(schema, _Kind):
        if not schema.accepts(value):
            raise _Invalid(f"{shown} must be {schema.description}, got {_json_type(value)} {_preview(value)}")
    elif isinstance(schema, list):
        if not isinstance(value, list):
            raise _Invalid(f"{shown} must be a list, got {_json_type(value)} {_preview(value)}")
        for index, item in enumerate(value):
            _check(item, schema[0], f"{where}[{index}]")
    else:
        if not isinstance(value, dict):
            raise _Invalid(f"{shown} must be an object, got {_json_type(value)} {_preview(value)}")
        if isinstance(schema, _MapOf):
            for key, item in value.items():
                if not schema.keys.accepts(key):
                    raise _Invalid(f"key {key!r} of {shown} must be {schema.keys.description}")
                _check(item, schema.values, f"{where}.{key}")
            return
        names = {name.rstrip("?"): name.endswith("?") for name in schema.fields}
        for (key, optional), field in zip(names.items(), schema.fields.values()):
            inner = f"{where}.{key}" if where else key
            if key in value:
                _check(value[key], field, inner)
            elif not optional:
                raise _Invalid(f"missing key '{inner}'")
        unknown = sorted(set(value) - set(names))
        if schema.closed and unknown:
            raise _Invalid(f"unknown keys {unknown} in {shown} (expected {sorted(names)})")


def _check_references(metadata: dict) -> None:
    """The decoding interface names real tensors, the graphs' tensors are exactly what the
    runtimes feed, the graph paths are this version's, and every file a runtime reads is
    listed in ``files`` (so that ``verify`` checks it)."""
    graphs, decoding, version = metadata["graphs"], metadata["decoding"], metadata["version"]
    names = {(g, side): [t["name"] for t in graphs[g][side]] for g in ("encoder", "decoder") for side in ("inputs", "outputs")}
    references = [
        ("decoding.source_input", decoding["source_input"], "encoder", "inputs"),
        ("decoding.token_input", decoding["token_input"], "decoder", "inputs"),
        ("decoding.logits_output", decoding["logits_output"], "decoder", "outputs"),
    ]
    for index, carry in enumerate(decoding["carries"]):
        references.append((f"decoding.carries[{index}].input", carry["input"], "decoder", "inputs"))
        references.append((f"decoding.carries[{index}].init_from", carry["init_from"], "encoder", "outputs"))
        if carry["update_from"] is not None:
            references.append((f"decoding.carries[{index}].update_from", carry["update_from"], "decoder", "outputs"))
    for where, name, graph, side in references:
        if name not in names[graph, side]:
            raise _Invalid(f"'{where}' is {name!r}, which is not one of the {graph} {side} {names[graph, side]}")
    fed = {
        "encoder": [decoding["source_input"]],
        "decoder": [decoding["token_input"], *(c["input"] for c in decoding["carries"])],
    }
    if "greedy" in graphs:
        fed["greedy"] = [decoding["source_input"]]
        names["greedy", "inputs"] = [t["name"] for t in graphs["greedy"]["inputs"]]
    for graph, feeds in fed.items():
        if sorted(feeds) != sorted(names[graph, "inputs"]):
            raise _Invalid(
                f"the {graph} inputs {names[graph, 'inputs']} are not the ones decoding feeds {feeds} "
                "(decoding.source_input / token_input and the carries' inputs)"
            )
    for graph in graphs:
        if graphs[graph]["savedmodel"] != f"{graph}/{version}":
            raise _Invalid(f"'graphs.{graph}.savedmodel' is {graphs[graph]['savedmodel']!r} but 'version' is {version}")
    read = {f"graphs.{g}.{kind}": graphs[g][kind] for g in graphs for kind in ("savedmodel", "onnx")}
    for graph in ("beam", "translate"):  # SavedModel-only graphs
        if graph in metadata:
            if metadata[graph]["savedmodel"] != f"{graph}/{version}":
                raise _Invalid(f"'{graph}.savedmodel' is {metadata[graph]['savedmodel']!r} but 'version' is {version}")
            read[f"{graph}.savedmodel"] = metadata[graph]["savedmodel"]
    if "beam" in metadata:
        beam_inputs = sorted(t["name"] for t in metadata["beam"]["inputs"])
        if decoding["source_input"] not in beam_inputs:
            raise _Invalid(f"the beam inputs {beam_inputs} do not include decoding.source_input {decoding['source_input']!r}")
    read.update({f"vocabularies.{side}": path for side, path in metadata["vocabularies"].items()})
    for where, path in read.items():
        if not any(_is_under(listed, path) for listed in metadata["files"]):
            raise _Invalid(f"'{where}' ({path}) has no file listed in 'files', so its checksum cannot be verified")


def _json_type(value: Any) -> str:
    kinds = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def _preview(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."
