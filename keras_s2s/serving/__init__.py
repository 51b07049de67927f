"""``keras-s2s serve``: TF Serving's REST API for an export's translate model, on ONNX Runtime
(no TensorFlow). ``protocol`` parses requests and shapes answers as TF Serving does;
``batcher`` groups concurrent instances into batches; ``server`` is the aiohttp app."""
