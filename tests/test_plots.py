"""plot_learning_curves draws a run's history.csv into a PNG, plot_attention a translator's
attention map (no TensorFlow, no display)."""

import warnings

import numpy as np
import pytest

from keras_s2s.errors import KerasS2SError
from keras_s2s.plots import plot_attention, plot_learning_curves
from keras_s2s.runtime.translator import AttentionMap

HISTORY = """epoch,loss,seconds,token_accuracy,val_loss,val_token_accuracy
0,3.5,1.0,0.25,3.25,0.5
1,2.5,1.0,0.5,2.75,0.625
2,1.5,1.0,0.75,2.5,0.75
"""


def test_writes_a_png_from_a_keras_history(write_text, tmp_path):
    history = write_text(HISTORY, name="history.csv")
    png = plot_learning_curves(history, tmp_path / "plots" / "learning_curves.png")
    assert png == tmp_path / "plots" / "learning_curves.png"
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert png.stat().st_size > 10_000


@pytest.mark.parametrize("content", ["", "epoch,loss,val_loss\n0,1.0,1.0\n"], ids=["empty", "no-accuracy"])
def test_a_history_without_the_curves_names_file_and_columns(write_text, tmp_path, content):
    history = write_text(content, name="history.csv")
    with pytest.raises(KerasS2SError, match=r"history\.csv: expected a Keras CSVLogger history with columns "
                                            r"loss, val_loss, token_accuracy, val_token_accuracy"):
        plot_learning_curves(history, tmp_path / "out.png")
    assert not (tmp_path / "out.png").exists()


# --- attention heatmap ---------------------------------------------------------------------------
def hangul_attention_map() -> AttentionMap:
    weights = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.2, 0.6, 0.2], [0.3, 0.3, 0.4]], np.float32)
    return AttentionMap(["i", "go", "home"], ["나는", "집에", "간다"], weights)


def test_plot_attention_writes_a_png_without_warnings_even_for_hangul(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing Hangul font falls back silently
        png = plot_attention(hangul_attention_map(), tmp_path / "plots" / "attention.png", title="I go home")
    assert png == tmp_path / "plots" / "attention.png"
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert png.stat().st_size > 5_000


def test_plot_attention_rejects_weights_that_do_not_match_the_tokens(tmp_path):
    attention = hangul_attention_map()
    attention = AttentionMap(attention.source_tokens, attention.output_tokens, attention.weights[:3])  # no </s> row
    with pytest.raises(ValueError, match=r"expected weights of shape \[4, 3\] .* got \[3, 3\]"):
        plot_attention(attention, tmp_path / "attention.png")
    assert not (tmp_path / "attention.png").exists()
