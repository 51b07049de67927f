"""Translators over Keras (run directory), SavedModel and ONNX Runtime (export directory).

``resolve_runtime`` is the one place that decides which runtime serves a path;
``load_translator`` loads it. Importing this package does not import TensorFlow; each
backend imports what it needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from keras_s2s.runtime.translator import Translator

Runtime = Literal["keras", "savedmodel", "onnx"]

_EXPORT_PARTS = ("assets", "onnx", "encoder", "decoder")


def resolve_runtime(path: str | Path, runtime: Runtime | None = None) -> Runtime:
    """The runtime for ``path``: ``keras`` for a training run directory, ``runtime`` (default
    ``onnx``) for an export directory. Raises KerasS2SError when ``path`` is neither, or when
    ``runtime`` cannot run it. Reads only file names: imports no TensorFlow."""
    from keras_s2s.errors import KerasS2SError
    from keras_s2s.run_dir import RunDir

    path = Path(path)
    if RunDir.is_run_dir(path):
        if runtime not in (None, "keras"):
            raise KerasS2SError(
                f"{path} is a training run directory: it runs with --runtime keras; "
                f"export it first (keras-s2s export {path}) to use --runtime {runtime}"
            )
        return "keras"
    if any((path / part).exists() for part in _EXPORT_PARTS):
        if runtime == "keras":
            raise KerasS2SError(
                f"{path} is an export directory: it runs with --runtime onnx or savedmodel; "
                "--runtime keras needs a training run directory (config.json + model.keras)"
            )
        return runtime or "onnx"
    raise KerasS2SError(
        f"{path} is neither a training run directory (config.json + model.keras) "
        "nor an export directory (assets/metadata.json)"
    )


def load_translator(path: str | Path, runtime: Runtime | None = None, *, compiled: bool = True) -> Translator:
    """A translator for a training run directory (``keras``) or an export directory
    (``onnx``, the default, or ``savedmodel``); see ``resolve_runtime``. ``compiled``
    (SavedModel): greedy and beam decoding use the XLA-compiled signatures of the greedy and
    beam graphs; False: their ``serving_default`` (what TF Serving runs by default)."""
    resolved = resolve_runtime(path, runtime)
    if resolved == "keras":
        from keras_s2s.runtime.keras_backend import load_keras_translator

        return load_keras_translator(path)
    from keras_s2s.runtime.exported import load_exported_translator

    return load_exported_translator(path, resolved, compiled=compiled)


__all__ = ["Runtime", "Translator", "load_translator", "resolve_runtime"]
