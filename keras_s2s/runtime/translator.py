"""Translator: text in, text out, over any backend that can run the two graphs.

A backend is anything with ``run_encoder(feeds) -> outputs`` and ``run_decoder(feeds) ->
outputs`` (dicts of numpy arrays keyed by tensor name). Keras, SavedModel and ONNX Runtime
backends differ only there; tokenization (plain Python, identical to the tf-text training
pipeline), feed validation and greedy decoding are shared. No TensorFlow import here.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Protocol, Sequence

import numpy as np

from keras_s2s.constants import EOS_ID, PAD_ID, SOS_ID
from keras_s2s.decoding import greedy_decode
from keras_s2s.runtime.interface import DecodingInterface, GraphSignature
from keras_s2s.tokenization import TextSpec
from keras_s2s.vocab import Vocabulary


class Backend(Protocol):
    def run_encoder(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def run_decoder(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...


@dataclasses.dataclass(frozen=True)
class TextCodec:
    """One side's text spec and vocabulary, and whether its ids are fed reversed."""

    spec: TextSpec
    vocab: Vocabulary
    reverse: bool = False

    def to_ids(self, token_lists: Sequence[Sequence[str]]) -> np.ndarray:
        """Token lists -> [batch, longest] int32, right-padded with PAD (reversed first if set)."""
        longest = max(len(tokens) for tokens in token_lists)
        ids = np.full((len(token_lists), longest), PAD_ID, dtype=np.int32)
        for row, tokens in enumerate(token_lists):
            ids[row, : len(tokens)] = self.vocab.encode(tokens[::-1] if self.reverse else tokens)
        return ids


class Translator:
    """Greedy translation with feed validation against the graphs' signatures."""

    def __init__(
        self,
        backend: Backend,
        *,
        encoder_signature: GraphSignature,
        decoder_signature: GraphSignature,
        decoding: DecodingInterface,
        source: TextCodec,
        target: TextCodec,
        max_decode_length: int,
    ) -> None:
        self.backend = backend
        self.encoder_signature = encoder_signature
        self.decoder_signature = decoder_signature
        self.decoding = decoding
        self.source = source
        self.target = target
        self.max_decode_length = max_decode_length

    # --- the two callables of keras_s2s.decoding ----------------------------------------
    def encode(self, source_ids: np.ndarray) -> dict[str, np.ndarray]:
        """source_ids [B, S] int32 -> decoder state (dict of the carried inputs)."""
        feeds = {self.decoding.source_input: source_ids}
        self.encoder_signature.check_feeds(feeds)
        return self.decoding.initial_state(self.backend.run_encoder(feeds))

    def step(self, token_ids: np.ndarray, state: Mapping[str, np.ndarray]) -> tuple[np.ndarray, dict]:
        """token_ids [B, T] int32 + state -> (logits [B, T, V] float32, next state)."""
        feeds = {self.decoding.token_input: token_ids, **state}
        self.decoder_signature.check_feeds(feeds)
        outputs = self.backend.run_decoder(feeds)
        return outputs[self.decoding.logits_output], self.decoding.next_state(state, outputs)

    # --- text -------------------------------------------------------------------------
    def translate(self, texts: Sequence[str], *, batch_size: int = 64) -> list[str]:
        """One output string per input string (an input with no tokens gives "")."""
        token_lists = [self.source.spec.tokenize(text) for text in texts]
        return [self.target.spec.detokenize(t) for t in self.translate_tokens(token_lists, batch_size=batch_size)]

    def translate_tokens(self, token_lists: Sequence[Sequence[str]], *, batch_size: int = 64) -> list[list[str]]:
        """Source token lists -> predicted target token lists (without SOS/EOS)."""
        results: list[list[str]] = [[] for _ in token_lists]
        # Sorting by length keeps padding (and wasted steps) low inside each batch.
        order = sorted((i for i, t in enumerate(token_lists) if t), key=lambda i: len(token_lists[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            source_ids = self.source.to_ids([token_lists[i] for i in rows])
            decoded = greedy_decode(self.encode, self.step, source_ids, max_length=self.max_decode_length)
            for row, ids in zip(rows, decoded):
                results[row] = self.target.vocab.decode(ids)
        return results

    def teacher_forced_accuracy(
        self, pairs: Sequence[tuple[Sequence[str], Sequence[str]]], *, batch_size: int = 32
    ) -> float:
        """Next-token accuracy on (source tokens, target tokens) pairs with the true history,
        over every target token and EOS (what ``token_accuracy`` measures during training)."""
        correct = total = 0
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start : start + batch_size]
            source_ids = self.source.to_ids([s for s, _ in chunk])
            target_ids = self.target.to_ids([t for _, t in chunk])
            decoder_input = np.concatenate([np.full((len(chunk), 1), SOS_ID, np.int32), target_ids], axis=1)
            expected = np.concatenate([target_ids, np.full((len(chunk), 1), PAD_ID, np.int32)], axis=1)
            lengths = np.array([len(t) for _, t in chunk])
            expected[np.arange(len(chunk)), lengths] = EOS_ID
            logits, _ = self.step(decoder_input, self.encode(source_ids))
            mask = expected != PAD_ID
            correct += int(((np.argmax(logits, axis=-1) == expected) & mask).sum())
            total += int(mask.sum())
        return correct / max(total, 1)
