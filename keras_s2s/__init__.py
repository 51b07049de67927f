"""keras-s2s: RNN sequence-to-sequence (encoder-decoder) models in Keras 3 on TensorFlow.

The public API is below. Importing ``keras_s2s`` does not import TensorFlow or Keras;
names that need them are loaded on first use, so the ONNX Runtime path works without TF.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    # configuration, text, vocabulary (no TensorFlow)
    "Seq2SeqConfig": "keras_s2s.config",
    "TextSpec": "keras_s2s.tokenization",
    "Vocabulary": "keras_s2s.vocab",
    "read_parallel_tsv": "keras_s2s.tsv",
    "stream_parallel_tsv": "keras_s2s.tsv",
    "TsvReport": "keras_s2s.tsv",
    "RunDir": "keras_s2s.run_dir",
    "plot_learning_curves": "keras_s2s.plots",
    "plot_attention": "keras_s2s.plots",
    "greedy_decode": "keras_s2s.decoding",
    "decode": "keras_s2s.decoding",
    "Greedy": "keras_s2s.decoding",
    "Beam": "keras_s2s.decoding",
    "Hypothesis": "keras_s2s.decoding",
    "Translation": "keras_s2s.runtime.translator",
    "AttentionMap": "keras_s2s.runtime.translator",
    "TranslatedInput": "keras_s2s.runtime.translator",
    "SourceInput": "keras_s2s.runtime.translator",
    "InputTruncatedWarning": "keras_s2s.runtime.translator",
    "edit_distance": "keras_s2s.metrics",
    "error_rates": "keras_s2s.metrics",
    "word_errors": "keras_s2s.metrics",
    "paired_comparison": "keras_s2s.metrics",
    "Translator": "keras_s2s.runtime",
    "load_translator": "keras_s2s.runtime",
    "resolve_runtime": "keras_s2s.runtime",
    "evaluate": "keras_s2s.evaluation",
    "compare_models": "keras_s2s.evaluation",
    # TensorFlow / Keras
    "tokenize": "keras_s2s.tf_tokenization",
    "SideEncoding": "keras_s2s.data",
    "teacher_forcing_dataset": "keras_s2s.data",
    "count_dataset_tokens": "keras_s2s.data",
    "build_encoder": "keras_s2s.models",
    "build_decoder": "keras_s2s.models",
    "build_trainer": "keras_s2s.models",
    "build_seq2seq": "keras_s2s.models",
    "HoistedLSTM": "keras_s2s.models",
    "signatures_from_models": "keras_s2s.signatures",
    "load_trained_model": "keras_s2s.run_dir",
    "train_model": "keras_s2s.training",
    "compile_trainer": "keras_s2s.training",
    "compile_as_configured": "keras_s2s.training",
    "resolve_jit_compile": "keras_s2s.training",
    "PerShapeTrainFunction": "keras_s2s.train_step",
    "training_callbacks": "keras_s2s.training",
    "ThroughputLogger": "keras_s2s.training",
    "EpochWeights": "keras_s2s.averaging",
    "average_epoch_weights": "keras_s2s.averaging",
    "MaskedSparseCrossEntropy": "keras_s2s.losses",
    "MaskedTokenAccuracy": "keras_s2s.losses",
    "export_run": "keras_s2s.export",
    "export_and_report": "keras_s2s.export",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'keras_s2s' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
