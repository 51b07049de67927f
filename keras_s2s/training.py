"""Training: ``train_model`` (config -> finished run directory) and what ``model.fit`` needs
besides the masked loss and metric (keras_s2s.losses): optimizer, callbacks, throughput.

Steps of ``train_model``: check the data files -> build vocabularies from the training split
(tensorflow-text tokens) -> tf.data teacher-forcing batches -> encoder/decoder/trainer
(functional API) -> ``trainer.fit`` with best-checkpoint, early-stopping, CSV-history and
TensorBoard callbacks -> save the best model and plot the learning curves. Everything lands in
the run directory (see keras_s2s.run_dir).
"""

from __future__ import annotations

import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Optional, TextIO

import keras

from keras_s2s.config import Seq2SeqConfig
from keras_s2s.data import SideEncoding, count_dataset_tokens, teacher_forcing_dataset
from keras_s2s.datasets.resolve import dataset_files
from keras_s2s.errors import KerasS2SError
from keras_s2s.losses import MaskedSparseCrossEntropy, MaskedTokenAccuracy
from keras_s2s.models import build_seq2seq
from keras_s2s.plots import plot_learning_curves
from keras_s2s.run_dir import RunDir
from keras_s2s.vocab import Vocabulary


def train_model(
    config: Seq2SeqConfig,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    verbose: Optional[int] = None,
    log: Optional[TextIO] = None,
) -> dict:
    """Trains ``config`` into the run directory ``out_dir``; returns the training summary
    (also saved as ``training_summary.json``).

    ``overwrite``: replace ``out_dir`` if it is an earlier run (never another directory).
    ``verbose``: Keras' fit verbosity; default a progress bar on a terminal, else a line per epoch.
    ``log``: where progress lines go (default: the current sys.stdout).
    """
    log = log or sys.stdout
    started = time.perf_counter()
    run = _new_run_dir(out_dir, overwrite)
    keras.utils.set_random_seed(config.seed)

    # 1. Data: built-in sets are written out; every file is checked line by line.
    files = dataset_files(config, run.data_dir)
    config = config.replace(
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

    # 3. tf.data: ((source_ids, decoder_input_ids), target_ids), length-bucketed batches.
    source = SideEncoding(config.source_spec(), source_vocab, config.max_source_length, reverse=config.reverse_source)
    target = SideEncoding(config.target_spec(), target_vocab, config.max_target_length)
    batching = dict(batch_size=config.batch_size, bucket_width=config.bucket_width, length_policy=config.length_policy)
    train_batches = teacher_forcing_dataset(
        files.train, source, target, shuffle_seed=config.seed, shuffle_buffer=config.shuffle_buffer, **batching
    )
    validation_batches = teacher_forcing_dataset(files.validation, source, target, **batching)

    # 4. Model: one encoder, one decoder, composed into the teacher-forcing trainer.
    model = build_seq2seq(config, len(source_vocab), len(target_vocab))
    compile_trainer(model.trainer, learning_rate=config.learning_rate, clipnorm=config.clipnorm, jit_compile=config.jit_compile)
    print(f"[model] {config.cell} x{config.num_layers}, hidden {config.hidden_size}, "
          f"{model.trainer.count_params():,} parameters", file=log)

    # 5. model.fit with teacher forcing.
    throughput = ThroughputLogger(files.reports["train"].target_tokens, max_seconds=(
        config.max_train_minutes * 60 if config.max_train_minutes is not None else None
    ))
    run.checkpoint.parent.mkdir(parents=True, exist_ok=True)
    callbacks = [throughput, *training_callbacks(
        checkpoint_path=run.checkpoint,
        history_path=run.history,
        early_stopping_patience=config.early_stopping_patience,
        reduce_lr_patience=config.reduce_lr_patience,
        tensorboard_dir=run.tensorboard_dir,
    )]
    history = model.trainer.fit(
        train_batches, validation_data=validation_batches, epochs=config.epochs, callbacks=callbacks,
        shuffle=False,  # the tf.data pipeline shuffles (seeded, every epoch)
        verbose=verbose if verbose is not None else (1 if log.isatty() else 2),
    )

    # 6. Keep the best epoch's weights as the final model; plot the history.
    if not run.checkpoint.is_file():
        raise KerasS2SError(
            f"training diverged: val_loss was not finite in any of {len(history.history['val_loss'])} epoch(s), "
            f"so no checkpoint was saved in {run.checkpoint.parent}; lower learning_rate (now {config.learning_rate}) "
            "or set clipnorm"
        )
    model.trainer.load_weights(run.checkpoint)
    model.trainer.save(run.model)
    plot_learning_curves(run.history, run.learning_curves)
    val_losses = history.history["val_loss"]
    best_epoch = min(range(len(val_losses)), key=val_losses.__getitem__)
    # The first epoch includes tracing and XLA compilation; later ones show the steady state.
    steady = throughput.epoch_seconds[1:] or throughput.epoch_seconds
    summary = {
        "parameters": model.trainer.count_params(),
        "epochs_run": len(val_losses),
        "stopped_by_time_budget": throughput.stopped_by_budget,
        "best_epoch": best_epoch + 1,
        "best_val_loss": val_losses[best_epoch],
        "best_val_token_accuracy": history.history["val_token_accuracy"][best_epoch],
        "train_target_tokens_per_epoch": throughput.target_tokens_per_epoch,
        "target_tokens_per_second": throughput.target_tokens_per_epoch / statistics.median(steady),
        "epoch_seconds": throughput.epoch_seconds,
        "wall_seconds": time.perf_counter() - started,
    }
    run.write_json(run.training_summary, summary)
    print(
        f"[done] best epoch {summary['best_epoch']}/{summary['epochs_run']}: val_loss {summary['best_val_loss']:.4f}, "
        f"val_token_accuracy {summary['best_val_token_accuracy']:.4f}; "
        f"{summary['target_tokens_per_second']:,.0f} target tokens/s; {summary['wall_seconds']:.0f} s -> {run.path}",
        file=log,
    )
    return summary


def _new_run_dir(out_dir: str | Path, overwrite: bool) -> RunDir:
    """An empty run directory at ``out_dir``; an earlier run there is replaced only with ``overwrite``."""
    run = RunDir(out_dir)
    if run.path.exists() and any(run.path.iterdir()):
        if not overwrite:
            raise KerasS2SError(f"output directory {run.path} is not empty; choose another --out or pass --overwrite")
        if not run.config.is_file():
            raise KerasS2SError(f"refusing to overwrite {run.path}: it is not a keras-s2s run directory (no config.json)")
        shutil.rmtree(run.path)
    run.path.mkdir(parents=True, exist_ok=True)
    return run


def compile_trainer(
    trainer: keras.Model,
    *,
    learning_rate: float = 1e-3,
    clipnorm: Optional[float] = 1.0,
    jit_compile: bool = True,
) -> None:
    """Adam + masked cross-entropy + masked token accuracy."""
    trainer.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate, clipnorm=clipnorm),
        loss=MaskedSparseCrossEntropy(),
        metrics=[MaskedTokenAccuracy()],
        jit_compile=jit_compile,
    )


def training_callbacks(
    *,
    checkpoint_path: str | Path,
    history_path: str | Path,
    early_stopping_patience: Optional[int],
    reduce_lr_patience: Optional[int] = None,
    tensorboard_dir: Optional[str | Path] = None,
) -> list[keras.callbacks.Callback]:
    """Best checkpoint (weights, by val_loss), optional learning-rate halving on a val_loss
    plateau, CSV history, optional early stopping, and TensorBoard event files (per epoch)
    when ``tensorboard_dir`` is given."""
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.ModelCheckpoint(
            str(checkpoint_path), monitor="val_loss", save_best_only=True, save_weights_only=True
        ),
    ]
    if reduce_lr_patience is not None:
        # Before CSVLogger, so the history records each epoch's learning_rate.
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=reduce_lr_patience))
    callbacks.append(keras.callbacks.CSVLogger(str(history_path)))
    if early_stopping_patience is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=early_stopping_patience)
        )
    if tensorboard_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(tensorboard_dir)))
    return callbacks


class ThroughputLogger(keras.callbacks.Callback):
    """Adds ``seconds`` and ``target_tokens_per_second`` (real tokens, PAD excluded) to each
    epoch's logs; put it before CSVLogger so the history file records them.

    With ``max_seconds`` it also keeps training within a wall-clock budget: it stops after
    an epoch when one more epoch as long as the last would end past the budget."""

    def __init__(self, target_tokens_per_epoch: int, *, max_seconds: Optional[float] = None) -> None:
        super().__init__()
        self.target_tokens_per_epoch = target_tokens_per_epoch
        self.max_seconds = max_seconds
        self.epoch_seconds: list[float] = []
        self.stopped_by_budget = False

    def on_train_begin(self, logs=None):
        self._train_start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        seconds = now - self._start
        self.epoch_seconds.append(seconds)
        if logs is not None:
            logs["seconds"] = seconds
            logs["target_tokens_per_second"] = self.target_tokens_per_epoch / seconds
        if self.max_seconds is not None and now - self._train_start + seconds > self.max_seconds:
            self.stopped_by_budget = True
            self.model.stop_training = True
