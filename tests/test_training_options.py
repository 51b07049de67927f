"""Training options that change when model.fit stops, how fast it learns or which weights it
keeps: the wall-clock budget (max_train_minutes), learning-rate halving on a val_loss plateau
(reduce_lr_patience), linear learning-rate decay over the epochs or over the time budget
(learning_rate_decay) and checkpoint averaging (average_last_epochs)."""

import csv
import json
import types

import keras
import numpy as np
import pytest

from conftest import TOY_CONFIG
from keras_s2s.averaging import EpochWeights, average_epoch_weights, epoch_weights_path, saved_epochs
from keras_s2s.config import ConfigError, Seq2SeqConfig
from keras_s2s.errors import KerasS2SError
from keras_s2s.training import (
    BUDGET_DECAY_FLOOR, BudgetLinearDecay, ThroughputLogger, budget_linear_learning_rate, train_model,
)

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


def test_budget_decay_is_the_share_of_the_time_left():
    clock = iter([0.0, 30.0, 90.0, 118.0, 150.0])
    rate = budget_linear_learning_rate(2e-3, 120.0, lambda: next(clock))
    assert [rate() for _ in range(5)] == pytest.approx([2e-3, 1.5e-3, 5e-4, 2e-3 * 2 / 120, 2e-3 * BUDGET_DECAY_FLOOR])


def test_budget_decay_sets_the_rate_before_every_step_and_the_history_gets_the_epochs_first():
    elapsed = [0.0]
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="mse")
    decay = BudgetLinearDecay(2e-3, 100.0, lambda: elapsed[0])
    decay.set_model(model)
    decay.on_epoch_begin(0)
    rates = []
    for step, seconds in enumerate([0.0, 25.0, 50.0, 99.0]):
        elapsed[0] = seconds
        decay.on_train_batch_begin(step)
        rates.append(float(model.optimizer.learning_rate))
    logs = {}
    decay.on_epoch_end(0, logs)
    assert rates == pytest.approx([2e-3, 1.5e-3, 1e-3, 2e-5])
    assert logs["learning_rate"] == pytest.approx(2e-3)


@pytest.fixture
def fake_clock(monkeypatch):
    """The training module's perf_counter, set by hand: [seconds]."""
    from keras_s2s import training

    now = [0.0]
    monkeypatch.setattr(training, "time", types.SimpleNamespace(perf_counter=lambda: now[0]))
    return now


def run_epoch(logger: ThroughputLogger, clock: list[float], epoch: int, step_seconds: list[float]) -> dict:
    """Feeds ``logger`` one epoch of steps of ``step_seconds`` on ``clock`` (stopping where it
    stops training); returns the epoch's logs."""
    logger.on_epoch_begin(epoch)
    for step, seconds in enumerate(step_seconds):
        clock[0] += seconds
        logger.on_train_batch_end(step)
        if logger.model.stop_training:
            break
    logs: dict = {}
    logger.on_epoch_end(epoch, logs)
    return logs


def budget_logger(fake_clock, **options) -> ThroughputLogger:
    logger = ThroughputLogger(1000, max_seconds=100.0, steps_per_epoch=4, **options)
    logger.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    logger.model.stop_training = False
    logger.on_train_begin()
    return logger


def test_a_budget_that_stops_within_the_epoch_ends_training_at_the_first_step_past_it(fake_clock):
    logger = budget_logger(fake_clock, stop_within_epoch=True)
    first = run_epoch(logger, fake_clock, 0, [10.0] * 4)  # 40 s: a whole epoch, and 60 s left
    assert not logger.model.stop_training and first["target_tokens_per_second"] == pytest.approx(1000 / 40)

    second = run_epoch(logger, fake_clock, 1, [20.0] * 4)  # the third step ends at 100 s
    assert logger.model.stop_training and logger.stopped_by_budget
    assert logger.cut_epoch_fraction == pytest.approx(0.75)
    assert second["target_tokens_per_second"] == pytest.approx(1000 * 0.75 / 60)  # tokens of the steps it ran


def test_a_budget_without_stopping_within_the_epoch_stops_before_an_epoch_that_would_not_fit(fake_clock):
    logger = budget_logger(fake_clock)
    run_epoch(logger, fake_clock, 0, [10.0] * 4)
    assert not logger.model.stop_training  # 40 + 40 <= 100
    run_epoch(logger, fake_clock, 1, [10.0] * 4)
    assert logger.model.stop_training and logger.cut_epoch_fraction is None  # 80 + 40 > 100: whole epochs only


def test_validation_that_spends_the_budget_ends_training_at_the_epoch_end(fake_clock):
    logger = budget_logger(fake_clock, stop_within_epoch=True)
    logger.on_epoch_begin(0)
    for step in range(3):
        fake_clock[0] += 30.0
        logger.on_train_batch_end(step)
    fake_clock[0] += 15.0  # validation: 105 s
    logger.on_epoch_end(0, {})
    assert logger.model.stop_training and logger.cut_epoch_fraction is None


def test_the_time_spent_counts_the_epochs_before_a_resume():
    logger = ThroughputLogger(100)
    logger.on_train_begin()
    logger.trained_seconds = 250.0  # what EpochBackup restores after on_train_begin
    logger.on_epoch_begin(0)
    assert 250.0 <= logger.elapsed_seconds() < 260.0


def test_budget_decay_falls_with_the_wall_clock_and_training_ends_inside_the_budget(tmp_path):
    budget_seconds = 20.0  # the first epoch traces and compiles: 3.5 s, up to 6.5 s on a stalling VM
    config = toy_config(epochs=400, learning_rate=1e-3, learning_rate_decay="linear_budget",
                        max_train_minutes=budget_seconds / 60, early_stopping_patience=None)
    summary = train_model(config, tmp_path / "run", verbose=0)
    with open(tmp_path / "run" / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    rates, seconds = [float(row["learning_rate"]) for row in rows], [float(row["seconds"]) for row in rows]
    assert summary["stopped_by_time_budget"] is True and len(rows) >= 2
    # The rate is set at each step from the clock, which starts before the first epoch: the first
    # epoch's rate (that of its first step) is the peak less at most that epoch's share of the budget.
    assert 1e-3 * (1 - seconds[0] / budget_seconds) <= rates[0] <= 1e-3
    # Falling (flat only at the floor of the budget's last 1%, where short toy epochs can start).
    assert all(later < earlier or later == pytest.approx(1e-3 * BUDGET_DECAY_FLOOR) for earlier, later in zip(rates, rates[1:]))
    # Epoch e starts after at least the epochs before it: its rate is at most the time left's share.
    for epoch, rate in enumerate(rates):
        assert rate <= 1e-3 * (1 - sum(seconds[:epoch]) / budget_seconds) + 1e-9
    assert rates[-1] < 1e-3 * 0.5
    # The budget ends at a step, so the last epoch may be cut short; the summary says how much of it ran.
    assert summary["last_epoch_fraction"] is None or 0 < summary["last_epoch_fraction"] <= 1


def test_a_multi_worker_run_refuses_the_budget_decay_before_it_touches_the_run_directory(tmp_path, monkeypatch):
    from keras_s2s import distribute

    # Each worker's clock would set its own rate; the two-process setup itself is tested in test_distribute.py.
    monkeypatch.setattr(distribute, "is_multi_worker", lambda strategy: True)
    config = toy_config(learning_rate_decay="linear_budget", max_train_minutes=1)
    with pytest.raises(ConfigError, match="'learning_rate_decay': 'linear_budget' .* multi-worker .* use 'linear'"):
        train_model(config, tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()


def saved_weights(path) -> list[np.ndarray]:
    with np.load(path) as saved:
        return [saved[f"arr_{index}"] for index in range(len(saved.files))]


def test_checkpoint_averaging_saves_the_mean_of_the_last_epochs_weights_as_the_final_model(tmp_path):
    config = toy_config(epochs=4, average_last_epochs=3, early_stopping_patience=None)
    summary = train_model(config, tmp_path / "run", verbose=0)

    checkpoints = tmp_path / "run" / "checkpoints"
    assert saved_epochs(checkpoints) == [2, 3, 4]  # epoch 1's file was dropped after epoch 4
    per_epoch = [saved_weights(epoch_weights_path(checkpoints, epoch)) for epoch in (2, 3, 4)]
    final = keras.models.load_model(tmp_path / "run" / "model.keras", compile=False).get_weights()
    for index, weight in enumerate(final):
        np.testing.assert_allclose(weight, np.mean([epoch[index] for epoch in per_epoch], axis=0), rtol=1e-6, atol=1e-7)
    assert not np.allclose(final[0], per_epoch[-1][0])  # not simply the last epoch
    assert summary["averaged_epochs"] == [2, 3, 4]
    assert np.isfinite(summary["averaged_val_loss"]) and 0 <= summary["averaged_val_token_accuracy"] <= 1
    saved = json.loads((tmp_path / "run" / "training_summary.json").read_text())
    assert saved["averaged_val_loss"] == summary["averaged_val_loss"]


def test_checkpoint_averaging_over_more_epochs_than_ran_averages_every_epoch(tmp_path):
    summary = train_model(toy_config(epochs=2, average_last_epochs=5), tmp_path / "run", verbose=0)
    assert summary["averaged_epochs"] == [1, 2]


def test_without_checkpoint_averaging_the_final_model_is_the_best_epoch_and_no_epoch_files_are_kept(tmp_path):
    summary = train_model(toy_config(epochs=2), tmp_path / "run", verbose=0)
    assert "averaged_epochs" not in summary
    assert saved_epochs(tmp_path / "run" / "checkpoints") == []


def test_averaging_the_last_one_epoch_keeps_the_last_epochs_weights_not_the_best_val_loss_epoch(tmp_path):
    summary = train_model(
        toy_config(epochs=3, average_last_epochs=1, early_stopping_patience=None), tmp_path / "run", verbose=0
    )
    checkpoints = tmp_path / "run" / "checkpoints"
    assert saved_epochs(checkpoints) == [3]
    final = keras.models.load_model(tmp_path / "run" / "model.keras", compile=False).get_weights()
    for weight, last in zip(final, saved_weights(epoch_weights_path(checkpoints, 3))):
        np.testing.assert_array_equal(weight, last)
    assert summary["averaged_epochs"] == [3]


def test_averaging_needs_at_least_one_epoch():
    with pytest.raises(ConfigError, match="average_last_epochs"):
        toy_config(average_last_epochs=0)


def test_a_missing_or_foreign_epoch_file_is_named_in_the_error(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(KerasS2SError, match="epoch 7 are missing.*epoch-0007.npz"):
        average_epoch_weights(model, tmp_path, [7])
    np.savez(epoch_weights_path(tmp_path, 1), np.zeros((4, 2)), np.zeros(2))
    with pytest.raises(KerasS2SError, match="epoch-0001.npz holds 2 arrays that do not match"):
        average_epoch_weights(model, tmp_path, [1])


def test_epoch_weights_keep_the_last_epochs_and_a_resumed_epoch_drops_the_files_after_it(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    keeper = EpochWeights(tmp_path, keep=3)
    keeper.set_model(model)
    for epoch in range(5):  # Keras counts epochs from 0; the files from 1
        keeper.on_epoch_end(epoch)
    assert saved_epochs(tmp_path) == [3, 4, 5]
    keeper.on_epoch_end(2)  # a run resumed after epoch 2 trains epoch 3 again: 4 and 5 are stale
    assert saved_epochs(tmp_path) == [3]
    keeper.on_epoch_end(3)
    assert saved_epochs(tmp_path) == [3, 4]


def test_a_mixed_bfloat16_run_saves_the_float32_model_of_its_best_epoch(tmp_path):
    # Export and the Keras runtime read model.keras alone: all-float32 layers with the trained
    # weights make them compute as for a float32-trained model (their parity is tested there).
    from keras_s2s.models import build_seq2seq
    from keras_s2s.run_dir import RunDir

    config = toy_config(
        epochs=2, dtype_policy="mixed_bfloat16", jit_compile=False, bidirectional=True, bridge="sum", attention="luong",
    )
    train_model(config, tmp_path / "run", verbose=0)

    run = RunDir(tmp_path / "run")
    saved = keras.models.load_model(run.model, compile=False)
    inner = [layer for model in (saved, saved.get_layer("encoder"), saved.get_layer("decoder")) for layer in model.layers]
    assert {layer.dtype_policy.name for layer in inner} == {"float32"}
    source_vocab, target_vocab = run.load_vocabularies()
    best = build_seq2seq(config, len(source_vocab), len(target_vocab)).trainer  # as trained
    best.load_weights(run.checkpoint)
    for ours, trained in zip(saved.get_weights(), best.get_weights()):
        np.testing.assert_array_equal(ours, trained)
