"""The export signatures and decoding interface, read off the built Keras models.

``keras_s2s.models`` is the one source of truth for tensor names, dtypes and shapes: this
module only describes what those models take and return, so a new input (say, a source
mask) needs one change, in models.py. The description is stored in ``metadata.json``
and every runtime validates its feeds against it and threads state by it.
"""

from __future__ import annotations

from typing import NamedTuple

from keras_s2s.constants import LOGITS, SOURCE_IDS, TOKEN_IDS
from keras_s2s.runtime.interface import Carry, DecodingInterface, GraphSignature, TensorInfo


class Signatures(NamedTuple):
    encoder: GraphSignature
    decoder: GraphSignature
    decoding: DecodingInterface


def signatures_from_models(encoder, decoder) -> Signatures:
    """Signatures of a Keras ``encoder`` and ``decoder`` built by ``keras_s2s.models``.

    Token-id inputs get the valid id range ``[0, vocabulary size)`` of the embedding that
    reads them; the decoding interface is ``decoding_interface(encoder, decoder)``.
    """
    encoder_signature = _describe(encoder, {SOURCE_IDS: encoder.get_layer("embedding").input_dim})
    decoder_signature = _describe(decoder, {TOKEN_IDS: decoder.get_layer("embedding").input_dim})
    return Signatures(encoder_signature, decoder_signature, decoding_interface(encoder, decoder))


def decoding_interface(encoder, decoder) -> DecodingInterface:
    """How decoding threads ``decoder``'s inputs: every input except the token ids is a carry,
    initialised from the ``encoder`` output of the same name, and updated after each step from
    the decoder output ``next_<name>`` when there is one (otherwise it is constant, e.g. the
    memory). Also for the decoding loops' pair (``models.step_encoder``, ``single_step_decoder``)."""
    from keras_s2s.models import next_state_name

    carries = []
    for name in decoder.input:
        if name == TOKEN_IDS:
            continue
        if name not in encoder.output:
            raise ValueError(f"decoder input '{name}' has no encoder output of the same name to start from")
        update = next_state_name(name)
        carries.append(Carry(name, init_from=name, update_from=update if update in decoder.output else None))
    return DecodingInterface(
        source_input=SOURCE_IDS, token_input=TOKEN_IDS, logits_output=LOGITS, carries=tuple(carries)
    )


def _describe(model, id_ranges: dict[str, int]) -> GraphSignature:
    def info(name: str, tensor) -> TensorInfo:
        id_range = (0, id_ranges[name]) if name in id_ranges else None
        return TensorInfo(name, str(tensor.dtype), tuple(tensor.shape), id_range)

    return GraphSignature(
        model.name,
        tuple(info(name, t) for name, t in model.input.items()),
        tuple(info(name, t) for name, t in model.output.items()),
    )
