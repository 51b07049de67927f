"""Translators over Keras (run directory), SavedModel and ONNX Runtime (export directory).

Importing this package does not import TensorFlow; each backend imports what it needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from keras_s2s.runtime.translator import Translator

Runtime = Literal["keras", "savedmodel", "onnx"]


def load_translator(path: str | Path, runtime: Runtime | None = None) -> Translator:
    """A translator for a training run directory (``keras``) or an export directory."""
    from keras_s2s.errors import KerasS2SError
    from keras_s2s.run import RunDir

    path = Path(path)
    if RunDir.is_run_dir(path):
        if runtime not in (None, "keras"):
            raise KerasS2SError(
                f"{path} is a training run directory: it runs with --runtime keras; "
                f"export it first (keras-s2s export {path}) to use --runtime {runtime}"
            )
        from keras_s2s.runtime.keras_backend import load_keras_translator

        return load_keras_translator(path)
    if any((path / part).exists() for part in ("assets", "onnx", "encoder", "decoder")):
        from keras_s2s.runtime.exported import load_exported_translator

        return load_exported_translator(path, runtime or "onnx")
    raise KerasS2SError(
        f"{path} is neither a training run directory (config.json + model.keras) "
        "nor an export directory (assets/metadata.json)"
    )


__all__ = ["Runtime", "Translator", "load_translator"]
