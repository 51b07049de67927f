"""Seq2SeqConfig: every hyperparameter of a run, validated, with a JSON round trip.

A run directory's ``config.json`` holds exactly this object, so a model can be rebuilt
from it alone. Validation happens on construction; messages name the field, what was
expected and what arrived.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal, Optional

from keras_s2s.errors import ConfigError
from keras_s2s.tokenization import TextSpec

Cell = Literal["lstm", "gru", "rnn"]
Bridge = Literal["dense", "sum"]
EncoderMerge = Literal["concat", "sum"]
Attention = Literal["none", "bahdanau", "luong"]
AttentionScore = Literal["general", "dot"]
Tokenizer = Literal["char", "word"]
Normalization = Literal["none", "NFC", "NFD", "NFKC", "NFKD"]
Dataset = Literal["tsv", "cmudict", "toy"]
LengthPolicy = Literal["filter", "truncate"]
LearningRateDecay = Literal["none", "linear", "linear_budget"]
DtypePolicy = Literal["float32", "mixed_bfloat16"]
JitCompile = Literal[True, False, "auto"]


@dataclasses.dataclass(frozen=True)
class Seq2SeqConfig:
    """Hyperparameters of one training run (data, text processing, model, optimisation)."""

    # --- data -------------------------------------------------------------------
    dataset: Dataset = "tsv"
    """``tsv``: the files below; ``cmudict``: built-in CMUdict G2P; ``toy``: built-in toy set."""
    train_file: Optional[str] = None
    validation_file: Optional[str] = None
    """If unset for ``tsv``, ``validation_percent`` of the training sources are held out by hash."""
    test_file: Optional[str] = None
    validation_percent: int = 5
    """``tsv`` without a validation file: the share of training sources held out. ``cmudict``: the
    hash buckets just below the fixed test split (95-99) that form validation; the rest train."""
    skip_malformed: bool = False
    """False: a malformed TSV line is an error. True: it is skipped and counted in the report."""
    strip_stress: bool = False
    """``cmudict`` only: drop the 0/1/2 stress digits from vowels (AH0 -> AH)."""

    # --- text -------------------------------------------------------------------
    source_tokenizer: Tokenizer = "char"
    target_tokenizer: Tokenizer = "word"
    source_lowercase: bool = False
    """Unicode case folding (NFKC_Casefold, as tf_text.case_fold_utf8)."""
    target_lowercase: bool = False
    normalization: Normalization = "NFKC"
    max_source_length: int = 50
    """In tokens, without SOS/EOS."""
    max_target_length: int = 50
    length_policy: LengthPolicy = "filter"
    """``filter`` drops (and counts) longer pairs; ``truncate`` cuts them to the maximum."""
    reverse_source: bool = False
    """Feed the source tokens in reverse order (Sutskever et al. 2014): the first source
    tokens are then read last, right before the decoder emits the first target tokens."""
    min_frequency: int = 1
    max_vocab_size: Optional[int] = None
    """Including the 4 reserved tokens; the most frequent tokens are kept."""

    # --- model ------------------------------------------------------------------
    cell: Cell = "lstm"
    num_layers: int = 1
    embedding_size: int = 64
    hidden_size: int = 256
    dropout: float = 0.0
    bidirectional: bool = False
    """Encoder layers read the source both ways; each layer's forward and backward final
    states are bridged into one ``[B, hidden_size]`` decoder initial state."""
    bridge: Bridge = "dense"
    """Bidirectional only. ``dense``: concat(forward, backward) -> Dense(hidden_size) (tanh
    for hidden states, linear for LSTM cell states); ``sum``: forward + backward, no weights."""
    encoder_merge: EncoderMerge = "concat"
    """Bidirectional only: how a layer's forward and backward output sequences combine into what
    the next layer (and attention, as the memory) reads. ``concat``: [B, S, 2 x hidden_size];
    ``sum``: [B, S, hidden_size], so every layer above the first and the attention cost less."""
    attention: Attention = "none"
    """``none``: the 2014 fixed context. ``bahdanau``: additive attention inside the decoder
    recurrence (the context feeds the cell input). ``luong``: multiplicative attention over
    the decoder RNN's outputs, before the output layer (no input feeding)."""
    attention_score: AttentionScore = "general"
    """Luong only: ``general`` (h W m) or ``dot`` (h . m; needs memory width == hidden_size,
    so not with a bidirectional encoder)."""

    # --- training ---------------------------------------------------------------
    batch_size: int = 64
    epochs: int = 10
    learning_rate: float = 1e-3
    clipnorm: Optional[float] = 1.0
    label_smoothing: float = 0.0
    """Training loss only: the target distribution puts ``1 - label_smoothing`` on the reference
    token and spreads the rest evenly over the vocabulary (Szegedy et al. 2016)."""
    weight_decay: float = 0.0
    """Decoupled weight decay (AdamW, Loshchilov & Hutter 2019): after each Adam step every
    kernel and embedding shrinks by ``learning_rate * weight_decay`` of itself (so it follows the
    learning-rate schedule); biases are not decayed. 0: plain Adam."""
    early_stopping_patience: Optional[int] = 3
    reduce_lr_patience: Optional[int] = None
    """Halve the learning rate when val_loss has not improved for this many epochs (None: never)."""
    learning_rate_decay: LearningRateDecay = "none"
    """``linear``: the learning rate falls linearly over ``epochs``, epoch e (from 0) training at
    ``learning_rate * (epochs - e) / epochs``, so a fixed budget of epochs ends at a small step
    size (budgeted training, Li et al. 2020). ``linear_budget``: the same fall over the wall-clock
    budget ``max_train_minutes`` instead of over epochs: every training step taken when t of the
    budget's T seconds are spent runs at ``learning_rate * (T - t) / T``, and training stops at
    the first step that ends past T, in the middle of an epoch if need be (that epoch is then
    validated and counts as the last), so a run uses its whole budget however long its epochs
    take and ends at a step size near 0 (``epochs`` stays an upper bound). ``none``: constant
    (unless ``reduce_lr_patience``)."""
    average_last_epochs: Optional[int] = None
    """The final model averages the weights of the last this many epochs (checkpoint averaging,
    as in OpenNMT's ``average_checkpoints``) instead of taking the epoch with the best val_loss;
    1 keeps the last epoch (what a schedule that decays to zero wants when val_loss is a poor
    judge of its late epochs). The run keeps those epochs' weights in ``checkpoints/``.
    None: best epoch."""
    max_train_minutes: Optional[float] = None
    """Wall-clock budget: training stops after the epoch whose successor would end past it, or,
    with ``learning_rate_decay: linear_budget``, at the first step that ends past it (the final
    model is chosen as always); a resumed run counts the time of the epochs it backed up. None: only ``epochs`` and early stopping."""
    bucket_width: int = 4
    """Length-bucketed batching: batches are padded to a multiple of this (a bucket with under
    ``keras_s2s.data.SPARSE_BUCKET_FRACTION`` of the pairs joins the next longer one); 0 pads
    to the batch max."""
    shuffle_buffer: int = 20_000
    jit_compile: JitCompile = True
    """XLA for the train step. ``"auto"``: off on CPUs for which TensorFlow turns its oneDNN
    kernels on by itself (AVX-512 VNNI/BF16, AVX-VNNI or AMX:
    ``tensorflow_setup.ONEDNN_BY_DEFAULT_CPU_FLAGS``), on elsewhere (AVX2-only CPUs, or where
    /proc/cpuinfo cannot be read). Where measured, the attention configs' steady epochs ran
    1.2-1.4x faster under XLA on an AVX2-only AMD EPYC, and no faster on an AMX Intel Xeon,
    whose bfloat16 matmuls pay only without XLA (benchmarks/RESULTS.md). Without XLA, ``fit``
    traces its step per batch shape (``keras_s2s.PerShapeTrainFunction``)."""
    dtype_policy: DtypePolicy = "float32"
    """Training only, Keras' dtype policy: ``mixed_bfloat16`` computes layers in bfloat16 with
    float32 weights and float32 logits (and loss). It can pay only on CPUs whose oneDNN matmuls
    run bfloat16 on AMX tiles (Intel Sapphire Rapids and later) and without ``jit_compile``; where
    measured, the best config's step on a fixed batch was 1.22-1.35x faster, its real epochs ~1.06x
    (with the same accuracy in a 60-minute run), and with XLA it was no faster (benchmarks/RESULTS.md). The saved ``model.keras`` and every
    export are float32, so inference is the same as for a float32-trained model."""
    seed: int = 0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            _check_type(field.name, getattr(self, field.name), _resolved_types()[field.name])
        for name, (low, high) in _RANGES.items():
            value = getattr(self, name)
            if value is None:
                continue
            # isinstance first: math.isnan(int) overflows for ints beyond float range (10**400)
            if (isinstance(value, float) and math.isnan(value)) or (low is not None and value < low) or (
                high is not None and value > high
            ):
                raise ConfigError(
                    f"config field '{name}': expected a value in {_describe_range(low, high)}, "
                    f"got {value!r}"
                )
        if self.dataset == "tsv" and not self.train_file:
            raise ConfigError(
                "config field 'train_file': required when dataset is 'tsv' "
                "(a source<TAB>target file), got None"
            )
        if self.attention == "luong" and self.attention_score == "dot" and self.bidirectional \
                and self.encoder_merge == "concat":
            raise ConfigError(
                "config field 'attention_score': 'dot' needs the encoder memory to be as wide as the "
                f"decoder state, but a bidirectional encoder's memory is 2 x hidden_size = {2 * self.hidden_size}; "
                "use 'general' (a learned projection), encoder_merge 'sum', or set 'bidirectional' to false"
            )
        if self.learning_rate_decay != "none" and self.reduce_lr_patience is not None:
            raise ConfigError(
                f"config field 'learning_rate_decay': {self.learning_rate_decay!r} sets the learning rate of "
                f"every epoch, so it cannot be combined with reduce_lr_patience ({self.reduce_lr_patience}); "
                "set one of them (reduce_lr_patience: null or learning_rate_decay: \"none\")"
            )
        if self.learning_rate_decay == "linear_budget" and self.max_train_minutes is None:
            raise ConfigError(
                "config field 'max_train_minutes': learning_rate_decay 'linear_budget' decays over the "
                "wall-clock budget, so it needs one (minutes of training), got None"
            )
        if self.max_vocab_size is not None and self.max_vocab_size < 5:
            raise ConfigError(
                "config field 'max_vocab_size': expected None or an integer >= 5 "
                f"(4 reserved tokens + at least one real token), got {self.max_vocab_size}"
            )

    # --- derived ----------------------------------------------------------------
    def source_spec(self) -> TextSpec:
        return TextSpec(self.source_tokenizer, self.normalization, self.source_lowercase)

    def target_spec(self) -> TextSpec:
        return TextSpec(self.target_tokenizer, self.normalization, self.target_lowercase)

    @property
    def max_decode_length(self) -> int:
        """Greedy decoding stops after this many steps (the longest target + EOS)."""
        return self.max_target_length + 1

    # --- serialisation ----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, origin: str = "config") -> "Seq2SeqConfig":
        if not isinstance(values, dict):
            raise ConfigError(f"{origin}: expected a JSON object of config fields, got {type(values).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        for key in values:
            if key not in known:
                hint = difflib.get_close_matches(key, sorted(known), n=1)
                suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
                raise ConfigError(f"{origin}: unknown config field '{key}'{suggestion}")
        try:
            return cls(**values)
        except ConfigError as err:
            raise ConfigError(f"{origin}: {err}") from None

    @classmethod
    def from_json(cls, path: str | Path) -> "Seq2SeqConfig":
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except UnicodeDecodeError as err:
            raise ConfigError(f"{path}: not UTF-8 ({err.reason} at byte {err.start})") from None
        except IsADirectoryError:
            raise ConfigError(f"config path is a directory, not a JSON file: {path}") from None
        try:
            values = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path}:{err.lineno}: invalid JSON: {err.msg}") from None
        except (ValueError, RecursionError) as err:  # an integer of over 4300 digits; arrays nested too deep
            raise ConfigError(f"{path}: unreadable JSON: {err}") from None
        return cls.from_dict(values, origin=str(path))

    def replace(self, **changes: Any) -> "Seq2SeqConfig":
        """A copy with some fields changed (validated like the original)."""
        return dataclasses.replace(self, **changes)


_RANGES: dict[str, tuple[Optional[float], Optional[float]]] = {
    "validation_percent": (1, 50),
    "max_source_length": (1, None),
    "max_target_length": (1, None),
    "min_frequency": (1, None),
    "num_layers": (1, None),
    "embedding_size": (1, None),
    "hidden_size": (1, None),
    "dropout": (0.0, 0.95),
    "batch_size": (1, None),
    "epochs": (1, None),
    "learning_rate": (1e-12, 10.0),
    "clipnorm": (1e-12, None),
    "label_smoothing": (0.0, 0.5),
    "weight_decay": (0.0, 1.0),
    "early_stopping_patience": (1, None),
    "max_train_minutes": (0.01, None),
    "average_last_epochs": (1, None),
    "reduce_lr_patience": (1, None),
    "bucket_width": (0, None),
    "shuffle_buffer": (1, None),
}


def _describe_range(low: Optional[float], high: Optional[float]) -> str:
    if high is None:
        return f"[{low}, inf)"
    return f"[{low}, {high}]"


@functools.cache
def _resolved_types() -> dict[str, Any]:
    return typing.get_type_hints(Seq2SeqConfig)


def _check_type(name: str, value: Any, annotation: Any) -> None:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return
        (annotation,) = [a for a in options if a is not type(None)]
        origin = typing.get_origin(annotation)
    if origin is Literal:
        allowed = typing.get_args(annotation)
        # by type too: 1 == True, so `1 in (True, False)` holds
        if not any(value == a and type(value) is type(a) for a in allowed):
            choices = ", ".join(repr(a) for a in allowed)
            raise ConfigError(f"config field '{name}': expected one of {choices}, got {value!r}")
        return
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
    }[annotation]
    if not ok:
        raise ConfigError(
            f"config field '{name}': expected {annotation.__name__}, "
            f"got {type(value).__name__} {value!r}"
        )
