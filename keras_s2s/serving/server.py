"""The ``keras-s2s serve`` HTTP server: TF Serving's REST API for the translate model, on
aiohttp (one asyncio event loop) and ONNX Runtime (no TensorFlow).

    GET  /v1/models/NAME[/versions/V]            model status
    GET  /v1/models/NAME[/versions/V]/metadata   the translate signature
    POST /v1/models/NAME[/versions/V]:predict    {"instances": [...]} or {"inputs": {"text": [...]}}
    GET  /healthz                                {"status": "ok", ...}

Errors answer ``{"error": message}``: 400 bad request (malformed JSON, wrong field, a
non-string or over-length text, an empty list), 404 unknown model, version or path, 405 wrong
method, 413 body over ``max_body_bytes``, 503 overloaded, 500 a bug. Over-length texts are
refused (TF Serving's translate model truncates them and reports ``truncated``): a 400 naming
the instance, its token count and the model's ``max_source_length``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import signal
import sys
from pathlib import Path
from typing import Any, Callable, Optional

from aiohttp import web

from keras_s2s.constants import (
    FINISHED, LOG_PROB, OUTPUT_LENGTHS, OUTPUT_TEXT, SCORE, SOURCE_LENGTHS, TRUNCATED, UNKNOWN_TOKENS,
)
from keras_s2s.decoding import Beam, Greedy
from keras_s2s.errors import KerasS2SError
from keras_s2s.serving.batcher import DynamicBatcher
from keras_s2s.serving.protocol import (
    RequestError, metadata_body, model_status_body, parse_predict_body, predictions_body,
)

_PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?(?:(?P<metadata>/metadata)|:(?P<verb>predict))?$")


@dataclasses.dataclass(frozen=True)
class ServeOptions:
    workers: int = 1
    """ONNX Runtime translators (each its own sessions), each running one batch at a time."""
    max_batch_size: int = 64
    max_wait_ms: float = 2.0
    max_body_bytes: int = 1 << 20
    max_queued: int = 4096


class TranslateModel:
    """The export's translate model served by ``workers`` Translators (ONNX Runtime)."""

    def __init__(self, export_dir: str | Path, workers: int) -> None:
        from keras_s2s.runtime import load_translator
        from keras_s2s.runtime.artifact import ExportLayout

        metadata = ExportLayout(export_dir).read_metadata()
        if "translate" not in metadata:
            raise KerasS2SError(f"{export_dir} has no translate model (exported before it existed); re-export the run")
        beam = metadata["translate"].get("beam")
        # The export's own decoding: a beam translate model answers the K best per input ([B, K] outputs).
        self.strategy = Greedy() if beam is None else Beam(**beam)
        self.name = metadata["translate"]["serving_model_name"]
        self.version = int(metadata["version"])
        self.signature = {key: metadata["translate"][key] for key in ("inputs", "outputs")}
        self.translators = [load_translator(export_dir, "onnx") for _ in range(workers)]
        self.max_source_length = self.translators[0].max_source_length

    def read(self, texts: list[str]) -> list:
        """Texts -> what the model reads of each (``SourceInput``); raises RequestError(400) for a
        text with more tokens than ``max_source_length``."""
        translator = self.translators[0]
        sources = [translator.read_source(translator.source.spec.tokenize(text)) for text in texts]
        for index, source in enumerate(sources):
            if source.truncated:
                raise RequestError(
                    400, f"instance {index} has {source.length} source tokens, more than the model's maximum of "
                         f"{self.max_source_length} (max_source_length); shorten it or split it"
                )
        return sources

    def translate(self, translator, sources: list) -> list[dict[str, Any]]:
        """One batch of ``SourceInput`` -> the translate model's outputs per source: what
        ``Translator.translate_inputs`` gives with the export's strategy (greedy: the greedy ONNX
        graph), plus ``finished``. With beam search the hypothesis outputs are lists, best first."""
        rows = [i for i, source in enumerate(sources) if source.tokens]
        ids = translator.source.to_ids([sources[i].tokens for i in rows]) if rows else None
        decoded = dict(zip(rows, translator.decode_ids(ids, self.strategy))) if rows else {}
        nbest = 1 if isinstance(self.strategy, Greedy) else self.strategy.nbest
        outputs = []
        for i, source in enumerate(sources):
            hypotheses = [_hypothesis_outputs(translator, h) for h in decoded.get(i, [])]
            hypotheses += [_EMPTY_HYPOTHESIS] * (nbest - len(hypotheses))  # an input without tokens: "" with score 0
            per_input = {name: [h[name] for h in hypotheses] for name in _EMPTY_HYPOTHESIS}
            if isinstance(self.strategy, Greedy):
                per_input = {name: values[0] for name, values in per_input.items()}
            outputs.append({
                **per_input,
                SOURCE_LENGTHS: source.length,
                TRUNCATED: source.truncated,
                UNKNOWN_TOKENS: len(source.unknown_tokens),
            })
        return outputs


_EMPTY_HYPOTHESIS = {FINISHED: True, LOG_PROB: 0.0, OUTPUT_LENGTHS: 0, OUTPUT_TEXT: "", SCORE: 0.0}


def _hypothesis_outputs(translator, hypothesis) -> dict[str, Any]:
    tokens = translator.target.vocab.decode(hypothesis.ids)
    return {
        FINISHED: hypothesis.finished,
        LOG_PROB: _float32(hypothesis.log_prob),
        OUTPUT_LENGTHS: len(tokens),
        OUTPUT_TEXT: translator.target.spec.detokenize(tokens),
        SCORE: _float32(hypothesis.score),  # greedy: the log-probability; beam: length-penalized
    }


def _float32(value: float) -> float:
    """The shortest decimal of a float32 (as TF Serving prints it), not the float64 expansion."""
    import numpy as np

    return float(str(np.float32(value)))


def make_app(model: TranslateModel, options: ServeOptions) -> web.Application:
    batcher = DynamicBatcher(
        model.translate, model.translators, max_batch_size=options.max_batch_size,
        max_wait=options.max_wait_ms / 1000, max_queued=options.max_queued,
    )

    async def healthz(request: web.Request) -> web.Response:
        mean = batcher.instances / batcher.batches if batcher.batches else 0.0
        return web.json_response({
            "status": "ok", "model": model.name, "version": str(model.version), "workers": len(model.translators),
            "batches": batcher.batches, "instances": batcher.instances, "mean_batch_size": round(mean, 2),
        })

    async def v1(request: web.Request) -> web.Response:
        match = _PATH.match(request.path)
        if match is None:
            raise RequestError(404, f"Malformed request: {request.method} {request.path}")
        name, version, verb = match["name"], match["version"], match["verb"]
        wanted = "POST" if verb else "GET"
        if request.method != wanted:
            raise RequestError(405, f"{request.method} {request.path}: use {wanted}")
        if name != model.name:
            raise RequestError(404, f"Servable not found for request: Latest({name}) (this server serves {model.name})")
        if version is not None and int(version) != model.version:
            raise RequestError(404, f"Servable not found for request: Specific({name}, {version}) "
                                    f"(this server serves version {model.version})")
        if match["metadata"]:
            return web.json_response(metadata_body(model.name, model.version, model.signature))
        if not verb:
            return web.json_response(model_status_body(model.version))
        parsed = parse_predict_body(await request.read())
        outputs = await batcher.submit(model.read(parsed.texts))
        return _json(predictions_body(outputs, parsed.columns))

    async def start(app: web.Application) -> None:
        batcher.start()

    async def stop(app: web.Application) -> None:
        await batcher.stop()

    app = web.Application(client_max_size=options.max_body_bytes, middlewares=[_errors_as_json(options.max_body_bytes)])
    app.router.add_get("/healthz", healthz)
    app.router.add_route("*", "/v1/{tail:.*}", v1)
    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return app


def _json(body: dict, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda value: json.dumps(value, ensure_ascii=False))


def _errors_as_json(max_body_bytes: int) -> Callable:
    """Every error as TF Serving answers it: ``{"error": message}`` with the status."""

    @web.middleware
    async def middleware(request: web.Request, handler: Callable) -> web.StreamResponse:
        try:
            return await handler(request)
        except RequestError as err:
            return _json({"error": err.message}, err.status)
        except web.HTTPRequestEntityTooLarge:
            return _json({"error": f"the request body is larger than the limit of {max_body_bytes} bytes "
                                   "(--max-body-bytes); send fewer texts per request"}, 413)
        except web.HTTPException as err:
            if err.status < 400:
                raise
            return _json({"error": f"{err.reason}: {request.method} {request.path}"}, err.status)
        except Exception as err:  # noqa: BLE001  a bug: answer 500, log it, keep serving
            print(f"keras-s2s serve: internal error on {request.method} {request.path}: {type(err).__name__}: {err}",
                  file=sys.stderr)
            return _json({"error": f"internal error: {type(err).__name__}: {err}"}, 500)

    return middleware


def serve(export_dir: str | Path, host: str, port: int, options: ServeOptions,
          on_ready: Optional[Callable[[str], None]] = None) -> None:
    """Loads the model, serves until SIGINT or SIGTERM, then finishes cleanly."""
    model = TranslateModel(export_dir, options.workers)
    asyncio.run(_run(model, host, port, options, on_ready or (lambda url: None)))


async def _run(model: TranslateModel, host: str, port: int, options: ServeOptions, on_ready: Callable) -> None:
    runner = web.AppRunner(make_app(model, options), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopped.set)
        bound_host, bound_port = runner.addresses[0][:2]
        on_ready(f"http://{bound_host}:{bound_port}/v1/models/{model.name}")
        await stopped.wait()
    finally:
        await runner.cleanup()
