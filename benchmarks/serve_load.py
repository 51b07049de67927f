"""Load test of ``keras-s2s serve`` on loopback: requests/s, words/s, latency, errors.

    .venv/bin/python benchmarks/serve_load.py EXPORT_DIR [--clients 8] [--seconds 10]
        [--workers 1] [--max-batch-size 64] [--max-wait-ms 2] [--words-per-request 1]

Starts the server (``python -m keras_s2s.cli serve EXPORT_DIR --port 0``) on 127.0.0.1,
then runs two phases of ``--seconds`` each: one client sending one request at a time
(sequential batch 1), and ``--clients`` concurrent clients (each sends its next request when
the previous one is answered). Words are the export's test split (``assets/config.json``
``test_file``, first column) or ``--words FILE``. Also times the local runtime at batch 256
(``Translator.translate_inputs``, no HTTP) for comparison. Prints a markdown table; stops the
server and exits by itself (every phase is bounded in time; the whole run by a hard deadline).
An answer that is not a 200 with one prediction per word counts as an error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("export_dir", type=Path)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--max-wait-ms", type=float, default=2.0)
    parser.add_argument("--words-per-request", type=int, default=1)
    parser.add_argument("--words", type=Path, help="one word per line (first TSV column); default: the export's test split")
    args = parser.parse_args()
    if not (1 <= args.clients <= 1024 and 0 < args.seconds <= 120):
        parser.error("--clients must be in 1..1024 and --seconds in (0, 120]")
    words = _words(args)
    server = subprocess.Popen(
        [sys.executable, "-m", "keras_s2s.cli", "serve", str(args.export_dir), "--port", "0",
         "--workers", str(args.workers), "--max-batch-size", str(args.max_batch_size),
         "--max-wait-ms", str(args.max_wait_ms)],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    try:
        url = _ready_url(server) + ":predict"
        phases = [("sequential, batch 1", 1, 1), (f"{args.clients} concurrent clients", args.clients, args.words_per_request)]
        results = [asyncio.run(_phase(url, words, clients, per_request, args.seconds)) for _, clients, per_request in phases]
    finally:
        server.terminate()
        server.wait(timeout=30)
    local = _local_batch_256(args.export_dir, words)

    print(f"\n{len(words)} distinct test words, loopback, {args.seconds:g} s per phase; server: --workers {args.workers} "
          f"--max-batch-size {args.max_batch_size} --max-wait-ms {args.max_wait_ms:g}\n")
    print("| phase | requests | requests/s | words/s | p50 ms | p99 ms | errors | mean batch |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for (name, _, _), r in zip(phases, results):
        print(f"| {name} | {r['requests']:,} | {r['requests_per_s']:,.0f} | {r['words_per_s']:,.0f} | "
              f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']} | {r['mean_batch']:.1f} |")
    print(f"| local runtime, batch 256 (no HTTP) | | | {local:,.0f} | | | | 256 |")
    sequential, batched = results
    print(f"\nbatched / sequential batch-1 throughput: {batched['words_per_s'] / sequential['words_per_s']:.2f}x; "
          f"batched / local batch 256: {batched['words_per_s'] / local:.2f}x")
    if any(r["errors"] for r in results):
        sys.exit(1)


def _words(args: argparse.Namespace) -> list[str]:
    source = args.words
    if source is None:
        config = json.loads((args.export_dir / "assets" / "config.json").read_text(encoding="utf-8"))
        source = Path(config["test_file"])
    lines = source.read_text(encoding="utf-8").splitlines()
    return list(dict.fromkeys(line.split("\t")[0] for line in lines if line.strip()))


def _ready_url(server: subprocess.Popen) -> str:
    line = server.stdout.readline()  # the server prints its URL once it listens
    if "ready" not in line:
        raise SystemExit(f"the server did not start (exit code {server.poll()}): {line!r}")
    return line.split()[2]


async def _phase(url: str, words: list[str], clients: int, per_request: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def client(number: int, session: aiohttp.ClientSession) -> None:
        nonlocal errors
        position = number * 997
        while time.perf_counter() < deadline:
            batch = [words[(position + i) % len(words)] for i in range(per_request)]
            position += per_request
            start = time.perf_counter()
            try:
                async with session.post(url, json={"instances": batch}) as reply:
                    body = await reply.json()
                ok = reply.status == 200 and len(body.get("predictions", ())) == len(batch)
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
                ok = False
            latencies.append(time.perf_counter() - start)
            errors += not ok

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients), timeout=timeout) as session:
        before = await _health(session, url)
        started = time.perf_counter()
        async with asyncio.timeout(seconds + 60):  # hard bound even if the server hangs
            await asyncio.gather(*(client(n, session) for n in range(clients)))
        elapsed = time.perf_counter() - started
        after = await _health(session, url)
    latencies.sort()
    batches = after["batches"] - before["batches"]
    return {
        "requests": len(latencies),
        "requests_per_s": len(latencies) / elapsed,
        "words_per_s": len(latencies) * per_request / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "errors": errors,
        "mean_batch": (after["instances"] - before["instances"]) / max(batches, 1),
    }


async def _health(session: aiohttp.ClientSession, predict_url: str) -> dict:
    async with session.get(predict_url.split("/v1/")[0] + "/healthz") as reply:
        return await reply.json()


def _local_batch_256(export_dir: Path, words: list[str]) -> float:
    from keras_s2s.runtime import load_translator

    translator = load_translator(export_dir, "onnx")
    sample = (words * (1 + 2048 // len(words)))[:2048]
    translator.translate_inputs(sample[:256], batch_size=256)  # warm-up
    start = time.perf_counter()
    translator.translate_inputs(sample, batch_size=256)
    return len(sample) / (time.perf_counter() - start)


if __name__ == "__main__":
    main()
