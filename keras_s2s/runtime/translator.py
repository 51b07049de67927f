"""Translator: text in, text out, over any backend that can run the two graphs.

A backend is anything with ``run_encoder(feeds) -> outputs`` and ``run_decoder(feeds) ->
outputs`` (dicts of numpy arrays keyed by tensor name). Keras, SavedModel and ONNX Runtime
backends differ only there; tokenization (plain Python, identical to the tf-text training
pipeline), feed validation and decoding (``keras_s2s.decoding``: greedy or beam search) are
shared. No TensorFlow import here.

Nothing about an input is silent: ``translate_inputs`` returns, per input, the source tokens
the vocabulary maps to UNK and whether the input was longer than the model's maximum source
length (then truncated to it, as ``length_policy: "truncate"`` does at training).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Mapping, NamedTuple, Optional, Protocol, Sequence

import numpy as np

from keras_s2s.constants import ATTENTION_WEIGHTS, BEAM_WIDTH, EOS_ID, LENGTH_PENALTY, NBEST, PAD_ID, SOS_ID, UNK_ID
from keras_s2s.errors import KerasS2SError
from keras_s2s.decoding import Beam, Greedy, Hypothesis, Strategy, beam_hypotheses, decode, greedy_hypotheses, log_softmax
from keras_s2s.runtime.interface import DecodingInterface, GraphSignature
from keras_s2s.tokenization import TextSpec
from keras_s2s.vocab import Vocabulary


class Backend(Protocol):
    """Runs the graphs by name. A backend of an export with a greedy graph also has
    ``run_greedy(feeds)`` (keras_s2s.export.greedy), used when the translator gets a
    ``greedy_signature``; one with a beam graph (SavedModel) ``run_beam(feeds)``
    (keras_s2s.export.beam), used when it gets a ``beam_signature``."""

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

    def unknown_tokens(self, tokens: Sequence[str]) -> list[str]:
        """The tokens the vocabulary maps to UNK, in order, repeats included."""
        return [token for token in tokens if self.vocab.token_id(token) == UNK_ID]


class Translation(NamedTuple):
    """One hypothesis as text: ``tokens`` detokenized into ``text``, with its scores
    (``score`` ranks hypotheses: the log-probability, length-penalized for beam search)."""

    text: str
    tokens: list[str]
    score: float
    log_prob: float


@dataclasses.dataclass(frozen=True)
class SourceInput:
    """One source as the model reads it: ``tokens`` (the first ``max_source_length`` of the
    input's ``length`` tokens), and ``unknown_tokens``, those of ``tokens`` the source vocabulary
    maps to UNK (``<unk>``), in order, repeats included."""

    tokens: list[str]
    unknown_tokens: list[str]
    length: int

    @property
    def truncated(self) -> bool:
        """True when the input had more tokens than the model reads (``length > len(tokens)``)."""
        return self.length > len(self.tokens)


@dataclasses.dataclass(frozen=True)
class TranslatedInput:
    """One input string, what the model read of it (``source``) and its hypotheses, best first."""

    text: str
    source: SourceInput
    hypotheses: list[Translation]


class InputTruncatedWarning(UserWarning):
    """Inputs longer than the model's maximum source length were truncated to it."""


@dataclasses.dataclass(frozen=True)
class AttentionMap:
    """Where the decoder looked: ``weights[i, j]`` is the weight of source token j (in reading
    order, even for a model fed reversed sources) when output token i was produced; the last
    row is the step that produced EOS. Rows sum to 1."""

    source_tokens: list[str]
    output_tokens: list[str]
    weights: np.ndarray
    """[len(output_tokens) + 1, len(source_tokens)] float32"""


class Translator:
    """Text in, text out: tokenization, feed validation against the graphs' signatures, and
    decoding with any strategy of ``keras_s2s.decoding`` (default: greedy).

    Over-length inputs: the text and token methods (``translate*``, ``attention_map``,
    ``teacher_forced_accuracy``) read only the first ``max_source_length`` tokens of a longer
    input (the config's ``max_source_length``, recorded in the run's config and the export's
    metadata; None: no limit), as ``length_policy: "truncate"`` does at training.
    ``translate_inputs`` reports it per input (``source.truncated``, ``source.length``);
    ``translate``, ``translate_nbest``, ``translate_tokens`` and ``translate_tokens_nbest``
    warn with an ``InputTruncatedWarning``. The id-level methods (``encode``, ``decode_ids``,
    ``step``) take ids as given, like the exported graphs.

    Unknown tokens: source tokens the vocabulary does not hold are read as UNK, as in
    training; ``translate_inputs`` lists them per input (``source.unknown_tokens``).
    """

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
        max_source_length: Optional[int] = None,
        greedy_signature: Optional[GraphSignature] = None,
        beam_signature: Optional[GraphSignature] = None,
    ) -> None:
        if max_source_length is not None and (
            not isinstance(max_source_length, int) or isinstance(max_source_length, bool) or max_source_length < 1
        ):
            raise ValueError(
                "Received an invalid value for argument `max_source_length`, expected None or a positive "
                f"integer, got {max_source_length!r}."
            )
        self.backend = backend
        self.encoder_signature = encoder_signature
        self.decoder_signature = decoder_signature
        self.decoding = decoding
        self.source = source
        self.target = target
        self.max_decode_length = max_decode_length
        self.max_source_length = max_source_length
        self.greedy_signature = greedy_signature
        self.use_greedy_graph = greedy_signature is not None
        """Greedy decoding runs the exported greedy graph (one call per batch; same hypotheses
        as the step loop, tested). Set False to step the decoder graph instead (benchmarks)."""
        self.beam_signature = beam_signature
        self.use_beam_graph = beam_signature is not None
        """Beam search runs the exported beam graph (SavedModel: one call per batch, the same
        n-best as the step loop up to float32 near-ties, tested). False: step the decoder graph."""
        # Carries that never change (attention memory, source mask) are not reordered by beams.
        self.constant_state = tuple(c.input for c in decoding.carries if c.update_from is None)

    # --- the graphs -------------------------------------------------------------------
    def encode(self, source_ids: np.ndarray) -> dict[str, np.ndarray]:
        """source_ids [B, S] int32 -> decoder state (dict of the carried inputs)."""
        feeds = {self.decoding.source_input: source_ids}
        self.encoder_signature.check_feeds(feeds)
        return self.decoding.initial_state(self.backend.run_encoder(feeds))

    def run_decoder(self, token_ids: np.ndarray, state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """token_ids [B, T] int32 + state -> every decoder output, by name."""
        feeds = {self.decoding.token_input: token_ids, **state}
        self.decoder_signature.check_feeds(feeds)
        return self.backend.run_decoder(feeds)

    def step(self, token_ids: np.ndarray, state: Mapping[str, np.ndarray]) -> tuple[np.ndarray, dict]:
        """token_ids [B, T] int32 + state -> (logits [B, T, V] float32, next state)."""
        outputs = self.run_decoder(token_ids, state)
        return outputs[self.decoding.logits_output], self.decoding.next_state(state, outputs)

    def step_log_probs(self, token_ids: np.ndarray, state: Mapping[str, np.ndarray]) -> tuple[np.ndarray, dict]:
        """The ``step`` of ``keras_s2s.decoding``: token_ids [B, 1] -> (log_probs [B, V], next state)."""
        logits, state = self.step(token_ids, state)
        return log_softmax(logits[:, -1, :]), state

    def decode_ids(self, source_ids: np.ndarray, strategy: Strategy = Greedy()) -> list[list[Hypothesis]]:
        """source_ids [B, S] int32 -> per row, the strategy's hypotheses (best first)."""
        if isinstance(strategy, Greedy) and self.use_greedy_graph and np.ndim(source_ids) == 2 and len(source_ids):
            feeds = {self.decoding.source_input: source_ids}
            self.greedy_signature.check_feeds(feeds)
            return greedy_hypotheses(self.backend.run_greedy(feeds))
        if isinstance(strategy, Beam) and self.use_beam_graph and np.ndim(source_ids) == 2 and len(source_ids):
            feeds = {
                self.decoding.source_input: source_ids,
                BEAM_WIDTH: np.array(strategy.width, np.int32),
                NBEST: np.array(strategy.nbest, np.int32),
                LENGTH_PENALTY: np.array(strategy.length_penalty, np.float32),
            }
            self.beam_signature.check_feeds(feeds)
            return beam_hypotheses(self.backend.run_beam(feeds))
        return decode(
            self.encode, self.step_log_probs, source_ids, strategy,
            max_length=self.max_decode_length, constant_state=self.constant_state,
        )

    # --- text -------------------------------------------------------------------------
    def translate(self, texts: Sequence[str], *, batch_size: int = 64, strategy: Strategy = Greedy()) -> list[str]:
        """One output string per input string, the best hypothesis (an input with no tokens gives "")."""
        return [hypotheses[0].text for hypotheses in self.translate_nbest(texts, batch_size=batch_size, strategy=strategy)]

    def translate_nbest(
        self, texts: Sequence[str], *, batch_size: int = 64, strategy: Strategy = Greedy()
    ) -> list[list[Translation]]:
        """Per input string, the strategy's hypotheses as text, best first (an input with no
        tokens gives one empty translation with score 0)."""
        token_lists = [self.source.spec.tokenize(text) for text in texts]
        return self.translate_tokens_nbest(token_lists, batch_size=batch_size, strategy=strategy)

    def translate_inputs(
        self, texts: Sequence[str], *, batch_size: int = 64, strategy: Strategy = Greedy()
    ) -> list[TranslatedInput]:
        """Per input string, what the model read of it (its unknown tokens, whether it was
        truncated) and the ``translate_nbest`` hypotheses. Reports instead of warning."""
        sources = [self.read_source(self.source.spec.tokenize(text)) for text in texts]
        hypotheses = self._translate_sources(sources, batch_size=batch_size, strategy=strategy)
        return [TranslatedInput(text, source, h) for text, source, h in zip(texts, sources, hypotheses)]

    def read_source(self, tokens: Sequence[str]) -> SourceInput:
        """Source tokens -> what the model reads of them: at most ``max_source_length`` tokens,
        and which of those are unknown to the vocabulary."""
        kept = list(tokens)[: self.max_source_length]  # [:None] keeps all
        return SourceInput(kept, self.source.unknown_tokens(kept), len(tokens))

    def translate_tokens(
        self, token_lists: Sequence[Sequence[str]], *, batch_size: int = 64, strategy: Strategy = Greedy()
    ) -> list[list[str]]:
        """Source token lists -> the best predicted target token lists (without SOS/EOS)."""
        nbest = self.translate_tokens_nbest(token_lists, batch_size=batch_size, strategy=strategy)
        return [hypotheses[0].tokens for hypotheses in nbest]

    def translate_tokens_nbest(
        self, token_lists: Sequence[Sequence[str]], *, batch_size: int = 64, strategy: Strategy = Greedy()
    ) -> list[list[Translation]]:
        """Source token lists -> per list, the strategy's hypotheses, best first."""
        sources = [self.read_source(tokens) for tokens in token_lists]
        truncated = [(number, s.length) for number, s in enumerate(sources, start=1) if s.truncated]
        if truncated:
            shown = ", ".join(f"input {number} ({length} tokens)" for number, length in truncated[:5])
            warnings.warn(
                f"{len(truncated)} of {len(sources)} inputs are longer than the model's maximum source length "
                f"of {self.max_source_length} tokens and were truncated to it: {shown}"
                + (", ..." if len(truncated) > 5 else ""),
                InputTruncatedWarning,
                stacklevel=2,
            )
        return self._translate_sources(sources, batch_size=batch_size, strategy=strategy)

    def _translate_sources(
        self, sources: Sequence[SourceInput], *, batch_size: int, strategy: Strategy
    ) -> list[list[Translation]]:
        token_lists = [source.tokens for source in sources]
        if batch_size < 1:
            raise ValueError(f"Received an invalid value for argument `batch_size`, expected a positive integer, got {batch_size}.")
        results: list[list[Translation]] = [[Translation("", [], 0.0, 0.0)] for _ in token_lists]
        # Sorting by length keeps padding (and wasted steps) low inside each batch.
        order = sorted((i for i, t in enumerate(token_lists) if t), key=lambda i: len(token_lists[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            decoded = self.decode_ids(self.source.to_ids([token_lists[i] for i in rows]), strategy)
            for row, hypotheses in zip(rows, decoded):
                results[row] = [self._as_translation(h) for h in hypotheses]
        return results

    def _as_translation(self, hypothesis: Hypothesis) -> Translation:
        tokens = self.target.vocab.decode(hypothesis.ids)
        return Translation(self.target.spec.detokenize(tokens), tokens, hypothesis.score, hypothesis.log_prob)

    # --- attention --------------------------------------------------------------------
    @property
    def has_attention(self) -> bool:
        return any(t.name == ATTENTION_WEIGHTS for t in self.decoder_signature.outputs)

    def attention_map(self, text: str, *, strategy: Strategy = Greedy()) -> AttentionMap:
        """Translates ``text`` and returns the attention weights of its best hypothesis."""
        if not self.has_attention:
            raise KerasS2SError(
                "this model has no attention (config attention: none), so there are no attention weights to show"
            )
        source_tokens = self.read_source(self.source.spec.tokenize(text)).tokens
        if not source_tokens:
            raise KerasS2SError(f"input {text!r} has no tokens after normalization")
        source_ids = self.source.to_ids([source_tokens])
        best = self.decode_ids(source_ids, strategy)[0][0]
        # Teacher-force the chosen output to read every step's weights in one decoder call.
        token_ids = np.array([[SOS_ID, *best.ids]], dtype=np.int32)
        weights = self.run_decoder(token_ids, self.encode(source_ids))[ATTENTION_WEIGHTS][0]
        if self.source.reverse:
            weights = weights[:, ::-1]
        output_tokens = [self.target.vocab.tokens[i] for i in best.ids]
        return AttentionMap(list(source_tokens), output_tokens, np.ascontiguousarray(weights))

    def teacher_forced_accuracy(
        self, pairs: Sequence[tuple[Sequence[str], Sequence[str]]], *, batch_size: int = 32
    ) -> float:
        """Next-token accuracy on (source tokens, target tokens) pairs with the true history,
        over every target token and EOS (what ``token_accuracy`` measures during training)."""
        correct = total = 0
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start : start + batch_size]
            source_ids = self.source.to_ids([self.read_source(s).tokens for s, _ in chunk])
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
