"""PyTorch reference of keras-s2s' G2P models, for benchmarks only (run in the peer venv).

    benchmarks/.peer-venv/bin/python benchmarks/peers/torch_seq2seq.py train  --data DIR --pairs 40000 --epochs 3 [--config C]
    benchmarks/.peer-venv/bin/python benchmarks/peers/torch_seq2seq.py decode --weights W.npz --words WORDS.json --batch 1

The model of a keras-s2s config (``--config``, default: the run's config.json; 1-layer LSTM):
Embedding -> LSTM encoder (bidirectional when the config says so: its forward and backward
final states bridged by ``sum`` or ``dense`` = concat -> Linear, tanh for h), the final (h, c)
the initial state of an Embedding -> LSTM decoder, optional Luong ``general`` attention over the
decoder outputs (keys = h W_a, padding at -1e9, tanh(W_c [context; h])), Linear to the target
vocabulary; dropout where keras-s2s puts it (after the embeddings, before the output layer);
sources reversed, PAD=0, SOS=2, EOS=3. Training: teacher forcing, masked cross-entropy with the
config's label smoothing, Adam with its learning rate and clipnorm, its batch size, batches
bucketed by length (the config's ``bucket_width``, as ours) and packed sequences for the
encoder (oneDNN LSTM).
Decoding: greedy, with weights copied from the trained Keras model (Keras' LSTM gate order
i, f, c, o equals PyTorch's i, f, g, o), so the outputs can be compared with ours. Prints one
JSON line with the measurements.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

PAD, UNK, SOS, EOS = 0, 1, 2, 3
MODEL_FIELDS = ("embedding_size", "hidden_size", "bidirectional", "bridge", "attention", "attention_score", "dropout")


class Seq2Seq(nn.Module):
    def __init__(self, source_vocab: int, target_vocab: int, *, embedding_size: int = 64, hidden_size: int = 256,
                 bidirectional: bool = False, bridge: str = "dense", attention: str = "none",
                 attention_score: str = "general", dropout: float = 0.0) -> None:
        super().__init__()
        if attention not in ("none", "luong") or (attention == "luong" and attention_score != "general"):
            raise SystemExit(f"the PyTorch peer implements no attention and Luong 'general' only, not {attention!r}")
        hidden, memory = hidden_size, hidden_size * (2 if bidirectional else 1)
        self.bidirectional, self.bridge_kind, self.attention = bidirectional, bridge, attention
        self.source_embedding = nn.Embedding(source_vocab, embedding_size)
        self.encoder = nn.LSTM(embedding_size, hidden, batch_first=True, bidirectional=bidirectional)
        if bidirectional and bridge == "dense":
            self.bridge_h, self.bridge_c = nn.Linear(2 * hidden, hidden), nn.Linear(2 * hidden, hidden)
        self.target_embedding = nn.Embedding(target_vocab, embedding_size)
        self.decoder = nn.LSTM(embedding_size, hidden, batch_first=True)
        if attention == "luong":
            self.query_projection = nn.Linear(hidden, memory, bias=False)
            self.combine = nn.Linear(memory + hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.logits = nn.Linear(hidden, target_vocab)

    def encode(self, source_ids: torch.Tensor, lengths: torch.Tensor):
        """-> ((h, c) [1, B, H] each, memory [B, S, M] zero on padding, source_mask [B, S])."""
        packed = nn.utils.rnn.pack_padded_sequence(
            self.dropout(self.source_embedding(source_ids)), lengths, batch_first=True, enforce_sorted=False
        )
        outputs, (h, c) = self.encoder(packed)
        if self.bidirectional:  # [2, B, H]: forward, backward
            if self.bridge_kind == "sum":
                h, c = (h[0] + h[1])[None], (c[0] + c[1])[None]
            else:
                h = torch.tanh(self.bridge_h(torch.cat([h[0], h[1]], -1)))[None]
                c = self.bridge_c(torch.cat([c[0], c[1]], -1))[None]
        if self.attention == "none":
            return (h, c), None, None
        memory, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True, total_length=source_ids.shape[1])
        return (h, c), memory, source_ids != PAD

    def decode_steps(self, decoder_input_ids, state, memory, source_mask):
        """-> (logits [B, T, V], state)."""
        outputs, state = self.decoder(self.dropout(self.target_embedding(decoder_input_ids)), state)
        if self.attention == "luong":
            scores = self.query_projection(outputs) @ memory.transpose(1, 2)  # [B, T, S]
            scores = scores + (~source_mask)[:, None, :] * -1e9
            context = torch.softmax(scores, -1) @ memory
            outputs = torch.tanh(self.combine(torch.cat([context, outputs], -1)))
        return self.logits(self.dropout(outputs)), state

    def forward(self, source_ids, lengths, decoder_input_ids):
        state, memory, source_mask = self.encode(source_ids, lengths)
        return self.decode_steps(decoder_input_ids, state, memory, source_mask)[0]

    def load_keras_weights(self, weights: dict) -> None:
        def tensor(name: str, transpose: bool = False) -> torch.Tensor:
            value = weights[name]
            return torch.from_numpy(value.T.copy() if transpose else value.copy())

        def lstm(module: nn.LSTM, prefix: str, suffix: str = "") -> None:
            getattr(module, f"weight_ih_l0{suffix}").data = tensor(f"{prefix}/kernel", True)
            getattr(module, f"weight_hh_l0{suffix}").data = tensor(f"{prefix}/recurrent_kernel", True)
            getattr(module, f"bias_ih_l0{suffix}").data = tensor(f"{prefix}/bias")
            getattr(module, f"bias_hh_l0{suffix}").data.zero_()

        def linear(module: nn.Linear, prefix: str) -> None:
            module.weight.data = tensor(f"{prefix}/kernel", True)
            if module.bias is not None:
                module.bias.data = tensor(f"{prefix}/bias")

        self.source_embedding.weight.data = tensor("encoder/embedding")
        self.target_embedding.weight.data = tensor("decoder/embedding")
        lstm(self.encoder, "encoder/lstm")
        if self.bidirectional:
            lstm(self.encoder, "encoder/lstm_backward", "_reverse")
            if self.bridge_kind == "dense":
                linear(self.bridge_h, "encoder/bridge_h")
                linear(self.bridge_c, "encoder/bridge_c")
        lstm(self.decoder, "decoder/lstm")
        if self.attention == "luong":
            linear(self.query_projection, "decoder/query_projection")
            linear(self.combine, "decoder/combine")
        linear(self.logits, "decoder/logits")


def model_fields(config: dict) -> dict:
    """The Seq2Seq keyword arguments of a keras-s2s config (a dict read from its JSON)."""
    if config.get("num_layers", 1) != 1 or config.get("cell", "lstm") != "lstm":
        raise SystemExit("the PyTorch peer implements 1-layer LSTM models only")
    return {name: config[name] for name in MODEL_FIELDS if name in config}


@torch.no_grad()
def greedy(model: Seq2Seq, source_ids: torch.Tensor, lengths: torch.Tensor, max_length: int) -> list[list[int]]:
    state, memory, source_mask = model.encode(source_ids, lengths)
    tokens = torch.full((len(source_ids), 1), SOS, dtype=torch.long)
    done = torch.zeros(len(source_ids), dtype=torch.bool)
    steps = []
    for _ in range(max_length):
        logits, state = model.decode_steps(tokens, state, memory, source_mask)
        tokens = logits[:, -1].argmax(-1, keepdim=True)
        steps.append(tokens[:, 0])
        done |= tokens[:, 0] == EOS
        if bool(done.all()):
            break
    ids = torch.stack(steps, 1).tolist()
    return [row[: row.index(EOS)] if EOS in row else row for row in ids]


def read_vocab(path: Path) -> dict[str, int]:
    return {token: index for index, token in enumerate(path.read_text(encoding="utf-8").splitlines())}


def train(args) -> dict:
    source_vocab, target_vocab = read_vocab(args.data / "source_vocab.txt"), read_vocab(args.data / "target_vocab.txt")
    pairs = []
    for line in (args.data / "data" / "train.tsv").read_text(encoding="utf-8").splitlines()[: args.pairs]:
        word, phones = line.split("\t")
        source = [source_vocab.get(c, UNK) for c in word.lower()][::-1]
        target = [target_vocab.get(p, UNK) for p in phones.split()]
        pairs.append((source, target))
    target_tokens = sum(len(t) + 1 for _, t in pairs)
    random.seed(0)
    torch.manual_seed(0)
    config = json.loads((args.config or args.data / "config.json").read_text(encoding="utf-8"))
    model = Seq2Seq(len(source_vocab), len(target_vocab), **model_fields(config))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.get("learning_rate", 2e-3))
    loss_fn = nn.CrossEntropyLoss(ignore_index=PAD, label_smoothing=config.get("label_smoothing", 0.0))
    batch_size, clipnorm = config.get("batch_size", 128), config.get("clipnorm", 1.0)
    width = config.get("bucket_width", 4)  # 0: no buckets, each batch padded to its longest pair

    def batches():
        buckets: dict[int, list] = {}
        order = list(range(len(pairs)))
        random.shuffle(order)
        for index in order:
            source, target = pairs[index]
            key = -(-max(len(source), len(target) + 1) // width) if width else 0
            buckets.setdefault(key, []).append(pairs[index])
            if len(buckets[key]) == batch_size:
                yield buckets.pop(key)
        yield from (bucket for bucket in buckets.values() if bucket)

    def tensors(batch):
        longest = max(max(len(s), len(t) + 1) for s, t in batch)
        padded = -(-longest // width) * width if width else longest
        source = torch.zeros(len(batch), padded, dtype=torch.long)
        decoder_input = torch.zeros(len(batch), padded, dtype=torch.long)
        target = torch.zeros(len(batch), padded, dtype=torch.long)
        for row, (s, t) in enumerate(batch):
            source[row, : len(s)] = torch.tensor(s)
            decoder_input[row, : len(t) + 1] = torch.tensor([SOS] + t)
            target[row, : len(t) + 1] = torch.tensor(t + [EOS])
        return source, torch.tensor([len(s) for s, _ in batch]), decoder_input, target

    epoch_seconds, epoch_cpu_seconds = [], []
    for _ in range(args.epochs):
        start, cpu_start = time.perf_counter(), time.process_time()
        for batch in batches():
            source, lengths, decoder_input, target = tensors(batch)
            logits = model(source, lengths, decoder_input)
            loss = loss_fn(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            if clipnorm:
                nn.utils.clip_grad_norm_(model.parameters(), clipnorm)
            optimizer.step()
        epoch_seconds.append(time.perf_counter() - start)
        epoch_cpu_seconds.append(time.process_time() - cpu_start)
    steady_epochs = slice(1, None) if len(epoch_seconds) > 1 else slice(None)
    steady = statistics.median(epoch_seconds[steady_epochs])
    busy_cores = sum(epoch_cpu_seconds[steady_epochs]) / sum(epoch_seconds[steady_epochs])
    return {"epoch_seconds": epoch_seconds, "target_tokens": target_tokens, "tokens_per_second": target_tokens / steady,
            "busy_cores": busy_cores, "final_loss": float(loss)}


def decode(args) -> dict:
    weights = dict(np.load(args.weights))
    words = json.loads(args.words.read_text(encoding="utf-8"))
    source_vocab = {t: i for i, t in enumerate(json.loads(str(weights["source_vocab"])))}
    model = Seq2Seq(int(weights["source_vocab_size"]), int(weights["target_vocab_size"]),
                    **model_fields(json.loads(str(weights["config"]))))
    model.load_keras_weights(weights)
    model.eval()
    rows = [[source_vocab.get(c, UNK) for c in word.lower()][::-1] for word in words]

    def run(batch_rows):
        lengths = torch.tensor([len(r) for r in batch_rows])
        source = torch.zeros(len(batch_rows), int(lengths.max()), dtype=torch.long)
        for i, r in enumerate(batch_rows):
            source[i, : len(r)] = torch.tensor(r)
        return greedy(model, source, lengths, int(weights["max_decode_length"]))

    run(rows[:8])
    start = time.perf_counter()
    outputs = []
    for begin in range(0, len(rows), args.batch):
        outputs.extend(run(rows[begin : begin + args.batch]))
    seconds = time.perf_counter() - start
    return {"words_per_second": len(rows) / seconds, "outputs": outputs}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["train", "decode"])
    parser.add_argument("--data", type=Path, help="a keras-s2s run directory (data/train.tsv, vocabularies)")
    parser.add_argument("--config", type=Path, help="a keras-s2s config JSON (default: the run's config.json)")
    parser.add_argument("--pairs", type=int, default=40_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--words", type=Path)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(json.dumps(train(args) if args.mode == "train" else decode(args)))


if __name__ == "__main__":
    main()
