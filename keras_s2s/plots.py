"""Figures of a run, written as PNG files with matplotlib.

Each function reads what a run wrote (or what a translator returned) and saves one figure;
none of them imports TensorFlow.
Figures are drawn on matplotlib's Agg canvas without pyplot: no display is needed and the
caller's pyplot backend and state are left alone.
"""

from __future__ import annotations

import csv
import functools
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from keras_s2s.constants import EOS_TOKEN
from keras_s2s.errors import KerasS2SError

if TYPE_CHECKING:
    from keras_s2s.runtime.translator import AttentionMap

# Fonts with Hangul (and mostly CJK) glyphs, tried after DejaVu Sans glyph by glyph; the first
# installed ones are used. With none installed, Hangul shows as boxes (no warning).
_CJK_FONTS = (
    "Noto Sans CJK KR", "Noto Sans KR", "Noto Serif CJK KR", "Source Han Sans KR", "NanumGothic",
    "NanumBarunGothic", "Malgun Gothic", "Apple SD Gothic Neo", "AppleGothic", "UnDotum", "Baekmuk Gulim",
    "Noto Sans CJK JP", "Noto Sans CJK SC", "WenQuanYi Zen Hei", "Droid Sans Fallback", "Arial Unicode MS",
)

_CURVES = (
    ("loss", "masked cross-entropy"),
    ("token_accuracy", "token accuracy (teacher-forced)"),
)


def plot_learning_curves(history_csv: str | Path, png_path: str | Path) -> Path:
    """Loss and token accuracy per epoch, training and validation, from a run's ``history.csv``
    (Keras' CSVLogger) -> ``png_path``: two panels, one per metric."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    history_csv, png_path = Path(history_csv), Path(png_path)
    with open(history_csv, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    needed = [name for metric, _ in _CURVES for name in (metric, f"val_{metric}")]
    if not rows or not set(needed) <= set(rows[0]):
        raise KerasS2SError(
            f"{history_csv}: expected a Keras CSVLogger history with columns {', '.join(needed)}; "
            f"got {len(rows)} rows with columns {', '.join(rows[0]) if rows else '(none)'}"
        )
    epochs = [int(row["epoch"]) + 1 for row in rows]
    figure = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(_CURVES))
    for axis, (metric, label) in zip(axes, _CURVES):
        axis.plot(epochs, [float(row[metric]) for row in rows], marker=".", label="training")
        axis.plot(epochs, [float(row[f"val_{metric}"]) for row in rows], marker=".", label="validation")
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_title(label)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(history_csv.resolve().parent.name)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png_path, dpi=100)
    return png_path


def plot_attention(attention_map: "AttentionMap", png_path: str | Path, *, title: str | None = None) -> Path:
    """A heatmap of ``Translator.attention_map`` -> ``png_path``: source tokens on the x axis,
    output tokens and the final ``</s>`` step on the y axis, one row per decoder step, with a
    colorbar of the weights (0 to the largest weight)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    png_path = Path(png_path)
    source, output = list(attention_map.source_tokens), [*attention_map.output_tokens, EOS_TOKEN]
    weights = attention_map.weights
    if weights.shape != (len(output), len(source)):
        raise ValueError(
            "Received an invalid value for argument `attention_map`, expected weights of shape "
            f"[{len(output)}, {len(source)}] (output tokens + </s>, source tokens), got {list(weights.shape)}."
        )
    family = ["DejaVu Sans", *_installed_cjk_fonts()]
    figure = Figure(figsize=(max(4.0, 1.5 + 0.45 * len(source)), max(3.0, 1.2 + 0.4 * len(output))), layout="constrained")
    FigureCanvasAgg(figure)
    axis = figure.subplots()
    image = axis.imshow(weights, cmap="viridis", vmin=0.0, aspect="auto", interpolation="nearest")
    axis.set_xticks(range(len(source)), source, rotation=90 if max(map(len, source), default=0) > 2 else 0, family=family)
    axis.set_yticks(range(len(output)), output, family=family)
    axis.set_xlabel("source")
    axis.set_ylabel("output")
    if title:
        axis.set_title(title, family=family)
    figure.colorbar(image, ax=axis, label="attention weight")
    png_path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # glyphs no installed font has: drawn as boxes, said nowhere
        warnings.filterwarnings("ignore", message="Glyph .* missing from font", category=UserWarning)
        figure.savefig(png_path, dpi=100)
    return png_path


@functools.cache
def _installed_cjk_fonts() -> tuple[str, ...]:
    from matplotlib import font_manager

    installed = {font.name for font in font_manager.fontManager.ttflist}
    return tuple(name for name in _CJK_FONTS if name in installed)
