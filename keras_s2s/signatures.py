"""The names, dtypes and shapes of the encoder and decoder graphs (no TensorFlow needed).

One place defines them; the Keras models are built with these names, exports record them
in metadata.json, and every runtime validates its feeds against them.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from keras_s2s.runtime.interface import Carry, DecodingInterface, GraphSignature, TensorInfo

SOURCE_IDS = "source_ids"
TOKEN_IDS = "token_ids"
LOGITS = "logits"


def state_names(cell: Literal["lstm", "gru", "rnn"], num_layers: int) -> list[str]:
    """Context states, layer by layer: ``state_h_0, state_c_0, state_h_1, ...`` (c for LSTM only)."""
    kinds = ("h", "c") if cell == "lstm" else ("h",)
    return [f"state_{kind}_{layer}" for layer in range(num_layers) for kind in kinds]


def next_state_name(name: str) -> str:
    """The decoder output that carries state ``name`` to the next step."""
    return f"next_{name}"


class Signatures(NamedTuple):
    encoder: GraphSignature
    decoder: GraphSignature
    decoding: DecodingInterface


def signatures_for(config, source_vocab_size: int, target_vocab_size: int) -> Signatures:
    """The signatures of the models that ``config`` (a Seq2SeqConfig) builds."""
    return seq2seq_signatures(
        cell=config.cell,
        num_layers=config.num_layers,
        hidden_size=config.hidden_size,
        source_vocab_size=source_vocab_size,
        target_vocab_size=target_vocab_size,
    )


def seq2seq_signatures(
    *,
    cell: Literal["lstm", "gru", "rnn"],
    num_layers: int,
    hidden_size: int,
    source_vocab_size: int,
    target_vocab_size: int,
) -> Signatures:
    states = state_names(cell, num_layers)
    state_infos = [TensorInfo(n, "float32", (None, hidden_size)) for n in states]
    encoder = GraphSignature(
        "encoder",
        (TensorInfo(SOURCE_IDS, "int32", (None, None), (0, source_vocab_size)),),
        tuple(state_infos),
    )
    decoder = GraphSignature(
        "decoder",
        (TensorInfo(TOKEN_IDS, "int32", (None, None), (0, target_vocab_size)), *state_infos),
        (
            TensorInfo(LOGITS, "float32", (None, None, target_vocab_size)),
            *(TensorInfo(next_state_name(n), "float32", (None, hidden_size)) for n in states),
        ),
    )
    decoding = DecodingInterface(
        source_input=SOURCE_IDS,
        token_input=TOKEN_IDS,
        logits_output=LOGITS,
        carries=tuple(Carry(n, init_from=n, update_from=next_state_name(n)) for n in states),
    )
    return Signatures(encoder, decoder, decoding)
