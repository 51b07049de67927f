"""TF Serving warmup requests for the translate model (``assets.extra/tf_serving_warmup_requests``).

TF Serving replays the ``PredictionLog`` records of this TFRecord file when it loads a
version, before the version takes traffic, so the first client request does not pay for
graph initialization. The texts are made of the model's own most frequent source tokens.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from keras_s2s.constants import RESERVED_TOKENS, SPACE_TOKEN
from keras_s2s.serving_client import grpc_predict_request
from keras_s2s.tokenization import TextSpec
from keras_s2s.vocab import Vocabulary

WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
WARMUP_BATCH_SIZES = (1, 8)


def warmup_texts(source_vocab: Vocabulary, spec: TextSpec, count: int) -> list[str]:
    """``count`` inputs of the model's most frequent source tokens (vocabulary order after
    the reserved ones), each a few tokens long."""
    tokens = list(source_vocab.tokens[len(RESERVED_TOKENS):]) or ["a"]
    texts = []
    for index in range(count):
        chosen = [tokens[(index + k) % len(tokens)] for k in range(4)]
        text = " ".join(chosen) if spec.level == "word" else "".join(chosen).replace(SPACE_TOKEN, " ")
        texts.append(text.strip() or tokens[0])
    return texts


def write_warmup_requests(savedmodel_dir: Path, model_name: str, source_vocab: Vocabulary, spec: TextSpec) -> Path:
    """Writes one PredictRequest per batch size of WARMUP_BATCH_SIZES into the SavedModel's
    ``assets.extra``; returns the file's path."""
    from tensorflow_serving.apis import prediction_log_pb2

    path = Path(savedmodel_dir) / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for batch_size in WARMUP_BATCH_SIZES:
            request = grpc_predict_request(warmup_texts(source_vocab, spec, batch_size), model_name)
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path
