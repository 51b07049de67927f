"""Training options that change when model.fit stops or how fast it learns: the wall-clock
budget (max_train_minutes), learning-rate halving on a val_loss plateau (reduce_lr_patience)
and linear learning-rate decay over the epochs (learning_rate_decay)."""

import csv
import json

import pytest

from conftest import TOY_CONFIG
from keras_s2s.config import Seq2SeqConfig
from keras_s2s.training import train_model

pytestmark = pytest.mark.slow


def toy_config(**fields) -> Seq2SeqConfig:
    return Seq2SeqConfig.from_json(TOY_CONFIG).replace(embedding_size=8, hidden_size=16, **fields)


def test_a_time_budget_stops_training_after_the_epoch_that_would_overrun_it(tmp_path):
    summary = train_model(toy_config(epochs=50, max_train_minutes=0.01), tmp_path / "run", verbose=0)
    assert summary["epochs_run"] == 1 and summary["stopped_by_time_budget"] is True
    assert (tmp_path / "run" / "model.keras").is_file()  # a budget stop still saves the best epoch
    saved = json.loads((tmp_path / "run" / "training_summary.json").read_text())
    assert saved["stopped_by_time_budget"] is True


def test_without_a_budget_every_epoch_runs(tmp_path):
    summary = train_model(toy_config(epochs=3), tmp_path / "run", verbose=0)
    assert summary["epochs_run"] == 3 and summary["stopped_by_time_budget"] is False


def test_the_learning_rate_halves_after_a_val_loss_plateau_and_the_history_records_it(tmp_path):
    # A tiny learning rate moves val_loss by less than ReduceLROnPlateau's min_delta (1e-4): a plateau.
    config = toy_config(epochs=4, learning_rate=1e-7, reduce_lr_patience=1, early_stopping_patience=None)
    train_model(config, tmp_path / "run", verbose=0)
    with open(tmp_path / "run" / "history.csv", newline="") as handle:
        rates = [float(row["learning_rate"]) for row in csv.DictReader(handle)]
    # Each row records the rate its epoch ran with; the halving applies from the next epoch on.
    assert rates == pytest.approx([1e-7, 1e-7, 5e-8, 2.5e-8])


def test_linear_decay_lowers_the_learning_rate_every_epoch_to_a_small_last_step(tmp_path):
    config = toy_config(epochs=4, learning_rate=1e-3, learning_rate_decay="linear", early_stopping_patience=None)
    train_model(config, tmp_path / "run", verbose=0)
    with open(tmp_path / "run" / "history.csv", newline="") as handle:
        rates = [float(row["learning_rate"]) for row in csv.DictReader(handle)]
    assert rates == pytest.approx([1e-3, 7.5e-4, 5e-4, 2.5e-4])
