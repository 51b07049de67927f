"""Importing TensorFlow and Keras: a quiet import for the CLI (with oneDNN on), and the backend check."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Optional

from keras_s2s.errors import KerasS2SError


def require_tensorflow_backend() -> None:
    """keras_s2s needs Keras on the TensorFlow backend (tf-text ops, SavedModel, TF Serving)."""
    import keras

    if keras.backend.backend() != "tensorflow":
        raise KerasS2SError(
            f"keras_s2s needs the TensorFlow backend of Keras, but Keras runs on "
            f"'{keras.backend.backend()}' (KERAS_BACKEND={os.environ.get('KERAS_BACKEND')!r}); "
            "unset KERAS_BACKEND or set it to 'tensorflow'"
        )


ONEDNN_SWITCH = "TF_ENABLE_ONEDNN_OPTS"
"""TensorFlow's switch for its oneDNN kernels, read once when TensorFlow loads. TensorFlow turns
them on by itself only on CPUs with AVX-512 VNNI/BF16 or AMX; elsewhere (AVX2-only CPUs, e.g.
2-core AMD EPYC cloud VMs) its matmuls run on its own kernels (its pip build: AVX without FMA),
and XLA's CPU compiler skips its oneDNN rewrite of dots. On such a VM, with oneDNN on, the plain
G2P config's ``model.fit`` (XLA) ran 1.44x faster (1.00x PyTorch instead of 0.68x); the
attention config without XLA ran the same (benchmarks/RESULTS.md, 2026-12-06, noon)."""


ONEDNN_BY_DEFAULT_CPU_FLAGS = ("avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")
"""The /proc/cpuinfo flags for which TensorFlow's Linux build turns its oneDNN kernels on by
itself (any one of them; ``DefaultOneDnnPolicy`` in tensorflow/core/util/util.cc)."""


def onednn_by_default_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> Optional[tuple[str, ...]]:
    """Which of ``ONEDNN_BY_DEFAULT_CPU_FLAGS`` this CPU has (empty: none, e.g. an AVX2-only
    CPU); None when ``cpuinfo`` cannot be read or has no ``flags`` line (not Linux x86)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "flags":
            flags = set(value.split())
            return tuple(flag for flag in ONEDNN_BY_DEFAULT_CPU_FLAGS if flag in flags)
    return None


def import_tensorflow_quietly() -> None:
    """Imports tensorflow, tensorflow_text and keras with their C++ start-up logs hidden, and
    with TensorFlow's oneDNN kernels on (``ONEDNN_SWITCH``) unless the environment says otherwise.

    TensorFlow writes oneDNN/CUDA notices straight to file descriptor 2 while it loads,
    ignoring TF_CPP_MIN_LOG_LEVEL; they are captured and shown only if the import fails.
    The oneDNN switch takes effect only if TensorFlow is not loaded yet.
    """
    if "keras" in sys.modules and "tensorflow" in sys.modules:
        require_tensorflow_backend()
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault(ONEDNN_SWITCH, "1")
    sys.stderr.flush()
    saved_stderr = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf
            import tensorflow_text  # noqa: F401
            import keras  # noqa: F401

            tf.config.list_physical_devices()  # device discovery logs its CUDA notice now
            tf.get_logger().setLevel("ERROR")  # e.g. SavedModel's "probably safe to ignore" notes
        except BaseException:
            os.dup2(saved_stderr, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved_stderr, 2)
            os.close(saved_stderr)
    require_tensorflow_backend()
