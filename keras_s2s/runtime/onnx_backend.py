"""ONNX Runtime backend: imports only numpy and onnxruntime (runs where TensorFlow does not)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional

import numpy as np
import onnxruntime as ort


def session_options(threads: Optional[int] = None, *, spinning: bool = False) -> ort.SessionOptions:
    """Session options; ``spinning`` lets the intra-op threads busy-wait between ops.

    The graphs run step by step (encoder, decoder step) must not spin: Python works between
    their many small runs (the beam's bookkeeping), and spinning threads take its core
    (beam 5 at batch 64: 26% slower). The whole-decode graph (greedy) runs once per batch
    and is a long chain of small ops, where a sleeping thread pool pays a wake-up at each
    one: spinning made it 17-25% faster at batches 64 and 256 (benchmarks/RESULTS.md, "late"),
    and with it two threads beat one at every batch size (RESULTS.md, "small batches")."""
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


SMALL_BATCH = 8
"""Batches up to this size run the step-by-step graphs (encoder, decoder step) on
single-threaded sessions (when no thread count is given): a batch-1 step is a handful of tiny
ops, where a second, sleeping thread only adds wake-ups (measured: 1.3x faster on one thread;
at batch 256 two threads are 1.5x faster). The greedy graph's spinning session serves every
batch size: at batch 1 its two threads were 7% (plain) and 30% (attention) faster than one,
at batch 8 51-60% (RESULTS.md, "small batches")."""


class OnnxBackend:
    def __init__(
        self,
        encoder_path: str | Path,
        decoder_path: str | Path,
        *,
        greedy_path: Optional[str | Path] = None,
        threads: Optional[int] = None,
    ) -> None:
        self._paths = {"encoder": encoder_path, "decoder": decoder_path, "greedy": greedy_path}
        self._threads = threads
        # Loaded now (a broken file fails at load time); the single-threaded ones on first use.
        self._sessions = {(graph, False): self._load(graph, threads) for graph, path in self._paths.items() if path}

    def _load(self, graph: str, threads: Optional[int]) -> tuple[ort.InferenceSession, list[str]]:
        """The session and its output names (tf2onnx sorts outputs by name: they are always
        looked up by name, never by position)."""
        options = session_options(threads, spinning=graph == "greedy")
        session = ort.InferenceSession(str(self._paths[graph]), options, providers=["CPUExecutionProvider"])
        return session, [output.name for output in session.get_outputs()]

    def _run(self, graph: str, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        small = graph != "greedy" and self._threads is None and len(next(iter(feeds.values()))) <= SMALL_BATCH
        if (graph, small) not in self._sessions:
            self._sessions[graph, small] = self._load(graph, 1)
        session, names = self._sessions[graph, small]
        return dict(zip(names, session.run(names, dict(feeds))))

    def run_encoder(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._run("encoder", feeds)

    def run_decoder(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._run("decoder", feeds)

    def run_greedy(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._run("greedy", feeds)
