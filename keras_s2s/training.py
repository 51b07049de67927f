"""Training: ``train_model`` (config -> finished run directory) and what ``model.fit`` needs
besides the masked loss and metric (keras_s2s.losses): optimizer, callbacks, throughput.

Steps of ``train_model``: check the data files -> build vocabularies from the training split
(tensorflow-text tokens) -> tf.data teacher-forcing batches -> encoder/decoder/trainer
(functional API) -> ``trainer.fit`` with best-checkpoint, early-stopping, CSV-history and
TensorBoard callbacks -> save the best model and plot the learning curves. Everything lands in
the run directory (see keras_s2s.run_dir). After every epoch the run is backed up, so a killed
run continues from its last completed epoch with ``resume=True`` (see keras_s2s.resume).
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Optional, TextIO

import keras
import tensorflow as tf

from keras_s2s import distribute, keras_saving_shim
from keras_s2s.averaging import EpochWeights, average_epoch_weights
from keras_s2s.config import ConfigError, JitCompile, Seq2SeqConfig
from keras_s2s.data import SideEncoding, count_dataset_tokens, teacher_forcing_dataset
from keras_s2s.datasets.resolve import dataset_files
from keras_s2s.errors import KerasS2SError
from keras_s2s.losses import MaskedSparseCrossEntropy, MaskedTokenAccuracy
from keras_s2s.models import build_seq2seq, float32_copy
from keras_s2s.plots import plot_learning_curves
from keras_s2s.resume import (
    Backup, EpochBackup, ResumeError, RunState, latest_backup, read_history, remove_backups, requested_files,
    roll_back_to, save_model_atomically,
)
from keras_s2s.run_dir import RunDir
from keras_s2s.tensorflow_setup import ONEDNN_BY_DEFAULT_CPU_FLAGS, onednn_by_default_flags
from keras_s2s.train_step import use_per_shape_train_function, use_uncompiled_test_function
from keras_s2s.vocab import Vocabulary


def train_model(
    config: Seq2SeqConfig,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    resume: bool = False,
    verbose: Optional[int] = None,
    log: Optional[TextIO] = None,
    strategy: str | tf.distribute.Strategy | None = None,
) -> dict:
    """Trains ``config`` into the run directory ``out_dir``; returns the training summary
    (also saved as ``training_summary.json``).

    ``overwrite``: replace ``out_dir`` if it is an earlier run (never another directory).
    ``resume``: continue the unfinished run in ``out_dir`` from its last completed epoch
    (see keras_s2s.resume); the config and data files must be those it started with. An empty
    or missing ``out_dir`` starts a new run, so one command serves the first start and every restart.
    ``verbose``: Keras' fit verbosity; default a progress bar on a terminal, else a line per epoch.
    ``log``: where progress lines go (default: the current sys.stdout).
    ``strategy``: a ``tf.distribute`` strategy, or its name in ``keras_s2s.distribute.STRATEGIES``
    (see keras_s2s.distribute): ``config.batch_size`` is the global batch; only the chief
    worker writes ``out_dir``.
    """
    log = log or sys.stdout
    keras_saving_shim.apply()  # the per-epoch checkpoint and backup saves: half their time is a cache miss
    strategy = distribute.resolve_strategy(strategy)
    if config.learning_rate_decay == "linear_budget" and distribute.is_multi_worker(strategy):
        raise ConfigError(
            "config field 'learning_rate_decay': 'linear_budget' follows this machine's clock, so the "
            "workers of a multi-worker run would train at different rates; use 'linear' (over epochs)"
        )
    if strategy is not None:
        print(f"[distribute] {distribute.describe(strategy, config.batch_size)}", file=log)
    with distribute.peer_failures_reported(strategy), \
            distribute.worker_run_dir(out_dir, strategy, resume=resume) as out_dir:
        return _train(config, out_dir, overwrite=overwrite, resume=resume, verbose=verbose, log=log, strategy=strategy)


def _train(
    config: Seq2SeqConfig,
    out_dir: Path,
    *,
    overwrite: bool,
    resume: bool,
    verbose: Optional[int],
    log: TextIO,
    strategy: Optional[tf.distribute.Strategy],
) -> dict:
    """``train_model`` in the run directory this worker writes."""
    started = time.perf_counter()
    run, state = _open_run_dir(out_dir, config, overwrite=overwrite, resume=resume)
    keras.utils.set_random_seed(config.seed)
    if state is None:
        state = _prepare_new_run(config, run, log)
    config = run.load_config()  # data file paths resolved by _prepare_new_run
    source_vocab, target_vocab = run.load_vocabularies()

    # Model: one encoder, one decoder, composed into the teacher-forcing trainer.
    jit_compile = resolve_jit_compile(config.jit_compile)
    if config.jit_compile == "auto":
        print(f"[train] jit_compile auto: {describe_auto_jit_compile()}", file=log)
    if jit_compile and not distribute.supports_jit_compile(strategy):
        jit_compile = False
        print("[distribute] jit_compile off: XLA cannot compile the collective ops of this strategy on CPU", file=log)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = build_seq2seq(config, len(source_vocab), len(target_vocab))
        compile_as_configured(model.trainer, config, jit_compile=jit_compile)
        model.trainer.optimizer.build(model.trainer.trainable_variables)  # so saved optimizer state can load
    print(f"[model] {_describe_model(config)}, {model.trainer.count_params():,} parameters", file=log)

    backup = latest_backup(run.backup_dir)
    if state.stage == "training":
        _fit(model.trainer, config, run, backup, source_vocab, target_vocab, verbose=verbose, log=log, strategy=strategy)
        state.stage = "fit_done"
        state.save(run.run_state)
        backup = latest_backup(run.backup_dir)
    else:
        print(f"[resume] {run.path}: training had ended; saving the final model", file=log)
    summary = _save_final_model(
        model.trainer, run, backup, started, log=log,
        validation_batches=lambda: _batches(config, config.validation_file, source_vocab, target_vocab, strategy),
    )
    state.stage = "finished"
    state.save(run.run_state)
    remove_backups(run.backup_dir)
    return summary


def _describe_model(config: Seq2SeqConfig) -> str:
    """"lstm x1, hidden 256", and the encoder's direction and the attention when they are on:
    "bidirectional lstm x1 (sum bridge), hidden 256, luong (general) attention"."""
    encoder = f"bidirectional {config.cell}" if config.bidirectional else config.cell
    bridge = f" ({config.bridge} bridge)" if config.bidirectional else ""
    text = f"{encoder} x{config.num_layers}{bridge}, hidden {config.hidden_size}"
    if config.attention == "luong":
        text += f", luong ({config.attention_score}) attention"
    elif config.attention != "none":
        text += f", {config.attention} attention"
    return text


def _open_run_dir(
    out_dir: str | Path, config: Seq2SeqConfig, *, overwrite: bool, resume: bool
) -> tuple[RunDir, Optional[RunState]]:
    """The run directory, and the state of the run to resume (None: a new run in an empty directory).

    An earlier run there is replaced only with ``overwrite``, continued only with ``resume``."""
    if overwrite and resume:
        raise KerasS2SError("--overwrite and --resume exclude each other: replace the run, or continue it")
    run = RunDir(out_dir)
    if run.path.exists() and any(run.path.iterdir()):
        if not run.config.is_file():
            raise KerasS2SError(
                f"output directory {run.path} is not empty and is not a keras-s2s run directory (no config.json); "
                "choose another --out"
            )
        if resume:
            state = RunState.load(run.run_state)
            if state.stage == "finished":
                raise ResumeError(
                    f"cannot resume {run.path}: its training has finished; pass --overwrite to train it again"
                )
            state.check_same_request(config, _data_files(config, run.load_config()), run.path)
            return run, state
        if not overwrite:
            raise KerasS2SError(
                f"output directory {run.path} is not empty; pass --resume to continue its training from the last "
                "completed epoch, --overwrite to replace it, or choose another --out"
            )
        shutil.rmtree(run.path)
    run.path.mkdir(parents=True, exist_ok=True)
    return run, None


def _prepare_new_run(requested: Seq2SeqConfig, run: RunDir, log: TextIO) -> RunState:
    """Checks the data, builds the vocabularies and writes config.json, the data report and
    the run state; returns the run state."""
    # 1. Data: built-in sets are written out; every file is checked line by line.
    files = dataset_files(requested, run.data_dir)
    config = requested.replace(
        train_file=str(files.train.resolve()),
        validation_file=str(files.validation.resolve()),
        test_file=str(files.test.resolve()) if files.test else None,
    )
    for split, report in files.reports.items():
        print(f"[data] {split}: {report.summary()}", file=log)
    run.write_json(run.data_report, {"reports": {k: r.to_dict() for k, r in files.reports.items()}, **files.notes})

    # 2. Vocabularies from the training split, tokenized by tensorflow-text.
    source_counts, target_counts = count_dataset_tokens(files.train, config.source_spec(), config.target_spec())
    source_vocab = Vocabulary.build(source_counts, min_frequency=config.min_frequency, max_size=config.max_vocab_size)
    target_vocab = Vocabulary.build(target_counts, min_frequency=config.min_frequency, max_size=config.max_vocab_size)
    source_vocab.save(run.source_vocab)
    target_vocab.save(run.target_vocab)
    config.to_json(run.config)
    print(f"[vocab] source {len(source_vocab)} tokens, target {len(target_vocab)} tokens", file=log)
    state = RunState.start(requested, _data_files(requested, config))
    state.save(run.run_state)
    return state


def _data_files(requested: Seq2SeqConfig, resolved: Seq2SeqConfig) -> dict[str, Path]:
    """Every data file a run reads: the files the config names, and the split files it trains on."""
    splits = {"train": resolved.train_file, "validation": resolved.validation_file, "test": resolved.test_file}
    return {**requested_files(requested), **{split: Path(path) for split, path in splits.items() if path}}


def _fit(
    trainer: keras.Model,
    config: Seq2SeqConfig,
    run: RunDir,
    backup: Optional[Backup],
    source_vocab: Vocabulary,
    target_vocab: Vocabulary,
    *,
    verbose: Optional[int],
    log: TextIO,
    strategy: Optional[tf.distribute.Strategy] = None,
) -> None:
    """``trainer.fit`` with teacher forcing, from the start or from ``backup``'s epoch."""
    roll_back_to(backup, checkpoint=run.checkpoint, history=run.history)
    if backup is not None:
        trainer.load_weights(backup.trainer_weights)
        print(f"[resume] {run.path}: continuing after epoch {backup.epochs_completed} of {config.epochs}", file=log)
        if backup.stop_training or backup.epochs_completed >= config.epochs:
            return

    train_batches = _batches(config, config.train_file, source_vocab, target_vocab, strategy, shuffle=True)
    validation_batches = _batches(config, config.validation_file, source_vocab, target_vocab, strategy)

    train_batches, steps_per_epoch = one_iterator_for_every_epoch(train_batches)

    max_seconds = config.max_train_minutes * 60 if config.max_train_minutes is not None else None
    throughput = ThroughputLogger(
        _train_target_tokens(run), max_seconds=max_seconds,
        stop_within_epoch=config.learning_rate_decay == "linear_budget", steps_per_epoch=steps_per_epoch,
    )
    run.checkpoint.parent.mkdir(parents=True, exist_ok=True)
    callbacks = [throughput, *training_callbacks(
        checkpoint_path=run.checkpoint,
        history_path=run.history,
        early_stopping_patience=config.early_stopping_patience,
        reduce_lr_patience=config.reduce_lr_patience,
        linear_decay=(config.learning_rate, config.epochs) if config.learning_rate_decay == "linear" else None,
        budget_decay=(
            (config.learning_rate, max_seconds, throughput.elapsed_seconds)
            if config.learning_rate_decay == "linear_budget" else None
        ),
        tensorboard_dir=run.tensorboard_dir,
        append_history=backup is not None,
    )]
    if distribute.is_multi_worker(strategy):
        callbacks.append(distribute.StopTogether(strategy))
    if config.average_last_epochs is not None:
        callbacks.append(EpochWeights(run.checkpoint.parent, keep=config.average_last_epochs))
    callbacks.append(EpochBackup(
        run.backup_dir, checkpoint_path=run.checkpoint, history_path=run.history,
        named_callbacks={type(callback).__name__: callback for callback in callbacks}, restore=backup,
    ))
    trainer.fit(
        train_batches, validation_data=validation_batches, epochs=config.epochs, callbacks=callbacks,
        steps_per_epoch=steps_per_epoch, initial_epoch=backup.epochs_completed if backup is not None else 0,
        shuffle=False,  # the tf.data pipeline shuffles (seeded, every epoch)
        verbose=verbose if verbose is not None else (1 if log.isatty() else 2),
    )


def one_iterator_for_every_epoch(batches: tf.data.Dataset) -> tuple[tf.data.Dataset, Optional[int]]:
    """``batches`` repeated, and its number of batches as the epoch's steps (``batches`` unchanged
    and None when that number is unknown).

    Given a finite dataset and no ``steps_per_epoch``, Keras' ``fit`` makes a new iterator every
    epoch, and deleting the last one blocked the main thread for ~30 s at the start of about
    half of the epochs on this project's 2-core VM (py-spy: the iterator's destructor waiting
    for a tf.data thread; an attention epoch trains in ~45 s). Over the repeated dataset one
    iterator serves every epoch: each pass reshuffles and flushes its length buckets as before,
    and an epoch is still exactly one pass."""
    count = int(batches.cardinality())
    if count <= 0:
        return batches, None
    return batches.repeat(), count


def _batches(
    config: Seq2SeqConfig,
    path: str,
    source_vocab: Vocabulary,
    target_vocab: Vocabulary,
    strategy: Optional[tf.distribute.Strategy],
    *,
    shuffle: bool = False,
) -> tf.data.Dataset:
    """tf.data teacher-forcing batches of the TSV ``path``: ((source_ids, decoder_input_ids),
    target_ids), length-bucketed; ``shuffle``: the training batches, reshuffled every epoch
    (seeded) and all full (``full_batches``)."""
    source = SideEncoding(config.source_spec(), source_vocab, config.max_source_length, reverse=config.reverse_source)
    target = SideEncoding(config.target_spec(), target_vocab, config.max_target_length)
    # training batches all full (XLA compiles one step per length bucket), evaluation's as they are
    shuffling = dict(shuffle_seed=config.seed, shuffle_buffer=config.shuffle_buffer, full_batches=True) if shuffle else {}
    batches = teacher_forcing_dataset(
        path, source, target, batch_size=config.batch_size, bucket_width=config.bucket_width,
        length_policy=config.length_policy, **shuffling,
    )
    return distribute.shard_by_data(batches) if strategy is not None else batches


def _train_target_tokens(run: RunDir) -> int:
    """Target tokens per training epoch (EOS included), from the run's data report."""
    return json.loads(run.data_report.read_text(encoding="utf-8"))["reports"]["train"]["target_tokens"]


def _save_final_model(
    trainer: keras.Model,
    run: RunDir,
    backup: Optional[Backup],
    started: float,
    *,
    log: TextIO,
    validation_batches: Callable[[], tf.data.Dataset],
) -> dict:
    """Keeps the best epoch's weights (or, with ``average_last_epochs``, the mean of the last
    epochs' weights, scored on ``validation_batches()``) as model.keras, plots the history,
    writes the summary."""
    history = read_history(run.history)
    config = run.load_config()
    if not run.checkpoint.is_file():
        raise KerasS2SError(
            f"training diverged: val_loss was not finite in any of {len(history)} epoch(s), "
            f"so no checkpoint was saved in {run.checkpoint.parent}; lower learning_rate "
            f"(now {config.learning_rate}) or set clipnorm"
        )
    average_last_epochs = config.average_last_epochs
    averaged: dict = {}
    if average_last_epochs is None:
        trainer.load_weights(run.checkpoint)
    else:
        epochs = list(range(max(len(history) - average_last_epochs, 0) + 1, len(history) + 1))
        average_epoch_weights(trainer, run.checkpoint.parent, epochs)
        scores = trainer.evaluate(validation_batches(), verbose=0, return_dict=True)
        averaged = {
            "averaged_epochs": epochs,
            "averaged_val_loss": float(scores["loss"]),
            "averaged_val_token_accuracy": float(scores["token_accuracy"]),
        }
        print(
            f"[final model] {_epochs_phrase(epochs)}: val_loss {averaged['averaged_val_loss']:.4f}, "
            f"val_token_accuracy {averaged['averaged_val_token_accuracy']:.4f}", file=log,
        )
    save_model_atomically(_float32_trainer(trainer, config), run.model)
    plot_learning_curves(run.history, run.learning_curves)
    val_losses = [row["val_loss"] if math.isfinite(row["val_loss"]) else math.inf for row in history]
    best_epoch = min(range(len(val_losses)), key=val_losses.__getitem__)
    epoch_seconds = [row["seconds"] for row in history]
    throughput_counters = backup.counters.get(ThroughputLogger.__name__, {}) if backup is not None else {}
    cut_epoch_fraction = throughput_counters.get("cut_epoch_fraction")
    # The first epoch includes tracing and XLA compilation, and an epoch the budget cut short is
    # not a whole one; the others show the steady state.
    whole = epoch_seconds[:-1] if cut_epoch_fraction is not None and len(epoch_seconds) > 1 else epoch_seconds
    steady = whole[1:] or whole
    target_tokens = _train_target_tokens(run)
    summary = {
        "parameters": trainer.count_params(),
        "epochs_run": len(history),
        "stopped_by_time_budget": bool(throughput_counters.get("stopped_by_budget", False)),
        # The share of its steps the last epoch ran: 1.0 unless the budget cut it (None: unknown).
        "last_epoch_fraction": 1.0 if cut_epoch_fraction is None else (
            cut_epoch_fraction if math.isfinite(cut_epoch_fraction) else None
        ),
        "best_epoch": best_epoch + 1,
        "best_val_loss": val_losses[best_epoch],
        "best_val_token_accuracy": history[best_epoch]["val_token_accuracy"],
        "train_target_tokens_per_epoch": target_tokens,
        "target_tokens_per_second": target_tokens / statistics.median(steady),
        **averaged,
        "epoch_seconds": epoch_seconds,
        "wall_seconds": time.perf_counter() - started,
    }
    run.write_json(run.training_summary, summary)
    print(
        f"[done] best epoch {summary['best_epoch']}/{summary['epochs_run']}: val_loss {summary['best_val_loss']:.4f}, "
        f"val_token_accuracy {summary['best_val_token_accuracy']:.4f}; "
        + (f"saved {_epochs_phrase(averaged['averaged_epochs'])}; " if averaged else "")
        + f"{summary['target_tokens_per_second']:,.0f} target tokens/s; {summary['wall_seconds']:.0f} s -> {run.path}",
        file=log,
    )
    return summary


def _epochs_phrase(epochs: list[int]) -> str:
    """How the log names the epochs behind the final model: "the average of epochs 8-9" or
    "epoch 9 alone"."""
    if len(epochs) == 1:
        return f"epoch {epochs[0]} alone"
    return f"the average of epochs {epochs[0]}-{epochs[-1]}"


def _float32_trainer(trainer: keras.Model, config: Seq2SeqConfig) -> keras.Model:
    """``trainer`` as the float32 model that is saved (itself when it is float32 already),
    compiled as in training so that the saved file is the same either way."""
    if config.dtype_policy == "float32":
        return trainer
    copy = float32_copy(trainer, config).trainer
    compile_as_configured(copy, config, jit_compile=config.jit_compile)
    return copy


def resolve_jit_compile(setting: JitCompile, cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """The config's ``jit_compile`` as Keras takes it: ``"auto"`` -> XLA unless TensorFlow turns
    its oneDNN kernels on by itself on this CPU, read from ``cpuinfo`` (see
    ``Seq2SeqConfig.jit_compile``)."""
    if setting == "auto":
        return not onednn_by_default_flags(cpuinfo)
    return bool(setting)


def describe_auto_jit_compile(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """What ``"auto"`` chooses on this CPU and why, for the training log."""
    flags = onednn_by_default_flags(cpuinfo)
    if flags is None:
        return f"XLA on ({cpuinfo} lists no CPU flags)"
    if flags:
        return f"XLA off (this CPU has {', '.join(flags)}, for which TensorFlow runs its oneDNN kernels)"
    return f"XLA on (this CPU has none of {', '.join(ONEDNN_BY_DEFAULT_CPU_FLAGS)})"


def compile_as_configured(trainer: keras.Model, config: Seq2SeqConfig, *, jit_compile: JitCompile) -> None:
    """``compile_trainer`` with the config's optimisation fields, as ``train_model`` compiles:
    the step traced per batch shape only for length-bucketed batches."""
    compile_trainer(
        trainer, learning_rate=config.learning_rate, clipnorm=config.clipnorm,
        label_smoothing=config.label_smoothing, weight_decay=config.weight_decay, jit_compile=jit_compile,
        per_shape_step=config.bucket_width > 0,
    )


def compile_trainer(
    trainer: keras.Model,
    *,
    learning_rate: float = 1e-3,
    clipnorm: Optional[float] = 1.0,
    label_smoothing: float = 0.0,
    weight_decay: float = 0.0,
    jit_compile: JitCompile = True,
    per_shape_step: bool = True,
) -> None:
    """Adam (AdamW when ``weight_decay`` > 0, biases not decayed) + masked (optionally
    label-smoothed) cross-entropy + masked token accuracy; ``jit_compile`` as in the config
    (``"auto"``: see ``resolve_jit_compile``), for the train step only: evaluation runs
    uncompiled (``keras_s2s.train_step.use_uncompiled_test_function``). With ``per_shape_step``, without XLA, outside a
    ``tf.distribute`` strategy and for a model with an LSTM or a Bahdanau decoder, ``fit`` runs
    the train step traced per batch shape (``keras_s2s.train_step.use_per_shape_train_function``);
    ``train_model`` turns it off for unbucketed batches (``bucket_width`` 0: each batch padded to
    its longest row, so batches come in many shapes and each new one would cost a trace)."""
    if weight_decay:
        optimizer = keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm)
        optimizer.exclude_from_weight_decay(var_names=["bias"])
    else:
        optimizer = keras.optimizers.Adam(learning_rate=learning_rate, clipnorm=clipnorm)
    trainer.compile(
        optimizer=optimizer,
        loss=MaskedSparseCrossEntropy(label_smoothing=label_smoothing),
        metrics=[MaskedTokenAccuracy()],
        jit_compile=resolve_jit_compile(jit_compile),
    )
    if per_shape_step:
        use_per_shape_train_function(trainer)
    use_uncompiled_test_function(trainer)


def training_callbacks(
    *,
    checkpoint_path: str | Path,
    history_path: str | Path,
    early_stopping_patience: Optional[int],
    reduce_lr_patience: Optional[int] = None,
    linear_decay: Optional[tuple[float, int]] = None,
    budget_decay: Optional[tuple[float, float, Callable[[], float]]] = None,
    tensorboard_dir: Optional[str | Path] = None,
    append_history: bool = False,
) -> list[keras.callbacks.Callback]:
    """Best checkpoint (weights, by val_loss), optional learning-rate halving on a val_loss
    plateau or linear decay (``linear_decay``: (learning rate, epochs); ``budget_decay``:
    (learning rate, budget seconds, the elapsed-seconds clock); see the config's
    ``learning_rate_decay``), CSV history, optional early stopping, and TensorBoard event files
    (per epoch) when ``tensorboard_dir`` is given. ``append_history``: add rows to an existing
    history file (a resumed run) instead of starting it anew."""
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.ModelCheckpoint(
            str(checkpoint_path), monitor="val_loss", save_best_only=True, save_weights_only=True
        ),
    ]
    # Learning-rate callbacks go before CSVLogger, so the history records each epoch's rate.
    if reduce_lr_patience is not None:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=reduce_lr_patience))
    if linear_decay is not None:
        callbacks.append(keras.callbacks.LearningRateScheduler(linear_learning_rate(*linear_decay)))
    if budget_decay is not None:
        callbacks.append(BudgetLinearDecay(*budget_decay))
    callbacks.append(keras.callbacks.CSVLogger(str(history_path), append=append_history))
    if early_stopping_patience is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=early_stopping_patience)
        )
    if tensorboard_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(tensorboard_dir)))
    return callbacks


BUDGET_DECAY_FLOOR = 0.01
"""``linear_budget`` never sets less than this fraction of the learning rate (an epoch that
starts with the budget spent, e.g. after a resume past it, still learns)."""


def budget_linear_learning_rate(learning_rate: float, budget_seconds: float, elapsed_seconds: Callable[[], float]):
    """() -> ``learning_rate * (T - t) / T``, T = ``budget_seconds`` and t =
    ``elapsed_seconds()`` now (a ThroughputLogger's; at least ``BUDGET_DECAY_FLOOR`` of the
    rate): the config's ``linear_budget`` decay."""

    def rate() -> float:
        return learning_rate * max((budget_seconds - elapsed_seconds()) / budget_seconds, BUDGET_DECAY_FLOOR)

    return rate


class BudgetLinearDecay(keras.callbacks.Callback):
    """The ``linear_budget`` decay, set before every training step, so the rate falls smoothly to
    ~0 at the end of the budget however long the epochs take (a rate set per epoch would leave
    the last epoch at up to 1/epochs of the peak). Each history row records the rate of its
    epoch's first step. Pair it with a ThroughputLogger that stops within the epoch."""

    def __init__(self, learning_rate: float, budget_seconds: float, elapsed_seconds: Callable[[], float]) -> None:
        super().__init__()
        self.rate = budget_linear_learning_rate(learning_rate, budget_seconds, elapsed_seconds)
        self._epoch_rate: Optional[float] = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_rate = None

    def on_train_batch_begin(self, batch, logs=None):
        rate = self.rate()
        self.model.optimizer.learning_rate = rate
        if self._epoch_rate is None:
            self._epoch_rate = rate

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self._epoch_rate is not None:
            logs["learning_rate"] = self._epoch_rate


def linear_learning_rate(learning_rate: float, epochs: int):
    """epoch (from 0) -> ``learning_rate * (epochs - epoch) / epochs`` (the last epoch trains at
    ``learning_rate / epochs``; epochs past ``epochs``, when a run is extended, at that rate too)."""

    def rate(epoch: int, _current_rate: Optional[float] = None) -> float:
        return learning_rate * max(epochs - epoch, 1) / epochs

    return rate


class ThroughputLogger(keras.callbacks.Callback):
    """Adds ``seconds`` and ``target_tokens_per_second`` (real tokens, PAD excluded) to each
    epoch's logs; put it before CSVLogger so the history file records them.

    With ``max_seconds`` it also keeps training within a wall-clock budget: it stops after
    an epoch when one more epoch as long as the last would end past the budget, or, with
    ``stop_within_epoch``, after the first step that ends past the budget (the epoch is then
    validated and ends the run; its ``target_tokens_per_second`` counts the share of the
    ``steps_per_epoch`` it ran, NaN when that is not given). The time spent,
    ``trained_seconds``, counts the epochs before a resume too (EpochBackup backs it up)."""

    def __init__(
        self,
        target_tokens_per_epoch: int,
        *,
        max_seconds: Optional[float] = None,
        stop_within_epoch: bool = False,
        steps_per_epoch: Optional[int] = None,
    ) -> None:
        super().__init__()
        self.target_tokens_per_epoch = target_tokens_per_epoch
        self.max_seconds = max_seconds
        self.stop_within_epoch = stop_within_epoch
        self.epoch_seconds: list[float] = []
        self.stopped_by_budget = False
        self.cut_epoch_fraction: Optional[float] = None  # set when the budget ended an epoch early
        self.trained_seconds = 0.0  # up to the last epoch end (a resume restores it)
        self._steps_per_epoch = steps_per_epoch

    def on_train_begin(self, logs=None):
        self._counted_until = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        self._steps = 0
        self._cut = False

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        if self.stop_within_epoch and self.max_seconds is not None and self.elapsed_seconds() >= self.max_seconds:
            self._cut = True
            self.stopped_by_budget = True
            self.model.stop_training = True

    def elapsed_seconds(self) -> float:
        """Wall-clock seconds of training so far, a resumed run's earlier epochs included."""
        return self.trained_seconds + time.perf_counter() - self._counted_until

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        seconds = now - self._start
        self.trained_seconds += now - self._counted_until
        self._counted_until = now
        self.epoch_seconds.append(seconds)
        share = 1.0
        if self._cut:
            share = self._steps / self._steps_per_epoch if self._steps_per_epoch else math.nan
            self.cut_epoch_fraction = share
        if logs is not None:
            logs["seconds"] = seconds
            logs["target_tokens_per_second"] = self.target_tokens_per_epoch * share / seconds
        if self.max_seconds is None:
            return
        if self.stop_within_epoch:
            # Validation can spend the budget's last seconds: no next epoch of one step.
            over = self.trained_seconds >= self.max_seconds
        else:
            over = self.trained_seconds + seconds > self.max_seconds
        if over:
            self.stopped_by_budget = True
            self.model.stop_training = True
