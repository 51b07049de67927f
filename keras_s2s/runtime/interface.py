"""Plain descriptions of the exported graphs' inputs and outputs, and of how decoding
threads state through them. Stored in ``metadata.json``; read by every runtime, so that new
inputs (attention memory, a source mask) or new state shapes need no new runtime code.

- ``TensorInfo``: name, dtype, shape (None = dynamic), and for id inputs the valid range.
- ``GraphSignature``: a graph's inputs and outputs; ``check_feeds`` validates numpy feeds.
- ``DecodingInterface``: which encoder input takes the source ids, which decoder input
  takes the previous token and which output holds the logits; every other decoder input is
  a ``Carry``: set from an encoder output before the first step and, if ``update_from`` is
  set, replaced by that decoder output after each step (``None`` = constant, e.g. memory).
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Optional, Sequence

import numpy as np

from keras_s2s.errors import InputError


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str
    shape: tuple[Optional[int], ...]
    id_range: Optional[tuple[int, int]] = None
    """For token-id inputs: valid ids are ``low <= id < high`` (the vocabulary size)."""

    def to_dict(self) -> dict:
        out = {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}
        if self.id_range is not None:
            out["id_range"] = list(self.id_range)
        return out

    @classmethod
    def from_dict(cls, values: Mapping) -> "TensorInfo":
        id_range = values.get("id_range")
        return cls(values["name"], values["dtype"], tuple(values["shape"]), tuple(id_range) if id_range else None)


@dataclasses.dataclass(frozen=True)
class GraphSignature:
    name: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]

    def to_dict(self) -> dict:
        return {"inputs": [t.to_dict() for t in self.inputs], "outputs": [t.to_dict() for t in self.outputs]}

    @classmethod
    def from_dict(cls, name: str, values: Mapping) -> "GraphSignature":
        return cls(
            name,
            tuple(TensorInfo.from_dict(t) for t in values["inputs"]),
            tuple(TensorInfo.from_dict(t) for t in values["outputs"]),
        )

    def input(self, name: str) -> TensorInfo:
        for info in self.inputs:
            if info.name == name:
                return info
        raise KeyError(f"{self.name} has no input '{name}' (inputs: {[t.name for t in self.inputs]})")

    def check_feeds(self, feeds: Mapping[str, np.ndarray]) -> None:
        """Raises InputError naming the tensor when a feed has a wrong name, dtype, rank or value."""
        expected = {t.name for t in self.inputs}
        missing = sorted(expected - set(feeds))
        unknown = sorted(set(feeds) - expected)
        if missing or unknown:
            raise InputError(
                f"{self.name}: expected inputs {sorted(expected)}; missing {missing}, unexpected {unknown}"
            )
        batch = None
        for info in self.inputs:
            value = feeds[info.name]
            where = f"{self.name} input '{info.name}'"
            if not isinstance(value, np.ndarray):
                raise InputError(f"{where}: expected a numpy array, got {type(value).__name__}")
            if value.dtype != np.dtype(info.dtype):
                raise InputError(f"{where}: expected dtype {info.dtype}, got {value.dtype}")
            if value.ndim != len(info.shape):
                raise InputError(
                    f"{where}: expected rank {len(info.shape)} (shape {_shape_text(info.shape)}), "
                    f"got shape {list(value.shape)}"
                )
            for axis, (want, got) in enumerate(zip(info.shape, value.shape)):
                if want is not None and want != got:
                    raise InputError(
                        f"{where}: expected size {want} on axis {axis} (shape {_shape_text(info.shape)}), "
                        f"got shape {list(value.shape)}"
                    )
            if value.ndim == 0:  # a scalar setting (the beam graph's width), not a batch
                continue
            if 0 in value.shape:
                raise InputError(f"{where}: empty tensor (shape {list(value.shape)}); send at least one row and one step")
            if batch is None:
                batch = value.shape[0]
            elif value.shape[0] != batch:
                raise InputError(f"{where}: batch size {value.shape[0]} differs from the other inputs' {batch}")
            if info.id_range is not None:
                low, high = info.id_range
                if value.min() < low or value.max() >= high:  # two reductions: this runs per request
                    bad = (value < low) | (value >= high)
                    position = tuple(int(i) for i in np.argwhere(bad)[0])
                    raise InputError(
                        f"{where}: ids must be in [{low}, {high}) (the vocabulary size is {high}), "
                        f"got {int(value[position])} at position {list(position)}"
                    )


def _shape_text(shape: Sequence[Optional[int]]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


@dataclasses.dataclass(frozen=True)
class Carry:
    input: str
    init_from: str
    update_from: Optional[str]


@dataclasses.dataclass(frozen=True)
class DecodingInterface:
    source_input: str
    token_input: str
    logits_output: str
    carries: tuple[Carry, ...]

    def initial_state(self, encoder_outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {c.input: encoder_outputs[c.init_from] for c in self.carries}

    def next_state(self, state: Mapping[str, np.ndarray], decoder_outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {c.input: state[c.input] if c.update_from is None else decoder_outputs[c.update_from] for c in self.carries}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping) -> "DecodingInterface":
        carries = tuple(Carry(**c) for c in values["carries"])
        return cls(values["source_input"], values["token_input"], values["logits_output"], carries)
