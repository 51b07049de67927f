"""Scripts over the library (train, export, the demo): thin, readable, meant to be copied and edited.

They import only ``keras_s2s`` (never each other or ``keras_s2s.cli``), so a copy runs from any
directory: ``python my_train.py --config ... --out ...``.
"""
