"""ONNX Runtime backend: imports only numpy and onnxruntime (runs where TensorFlow does not)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional

import numpy as np
import onnxruntime as ort


def session_options(threads: Optional[int] = None) -> ort.SessionOptions:
    """Options for small sequential graphs: no busy-waiting threads between the many tiny runs
    of a decoding loop (spinning costs CPU and, on 2 cores, time)."""
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


class OnnxBackend:
    def __init__(
        self,
        encoder_path: str | Path,
        decoder_path: str | Path,
        *,
        greedy_path: Optional[str | Path] = None,
        threads: Optional[int] = None,
    ) -> None:
        options = session_options(threads)
        self._encoder = ort.InferenceSession(str(encoder_path), options, providers=["CPUExecutionProvider"])
        self._decoder = ort.InferenceSession(str(decoder_path), options, providers=["CPUExecutionProvider"])
        self._greedy = (
            ort.InferenceSession(str(greedy_path), options, providers=["CPUExecutionProvider"]) if greedy_path else None
        )

    @staticmethod
    def _run(session: ort.InferenceSession, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        # tf2onnx sorts outputs by name: always look them up by name, never by position.
        names = [output.name for output in session.get_outputs()]
        return dict(zip(names, session.run(names, dict(feeds))))

    def run_encoder(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._run(self._encoder, feeds)

    def run_decoder(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._run(self._decoder, feeds)

    def run_greedy(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._run(self._greedy, feeds)
