"""A shim that makes Keras 3's weight saving use the cache it already has.

Keras' saver walks the model's attributes (``keras.src.saving.saving_lib._walk_saveable``)
and, for every layer, metric, optimizer and loss it visits, asks
``saving_lib.get_attr_skipset(obj_type)`` which attributes to skip. That function builds a
reference object of the type (a ``Layer``; a ``Metric`` and a ``CompileMetrics``; an
``Optimizer``...) and takes its ``dir()``: ~1.7 ms a call. It stores the result in Keras'
global state under ``saving_attr_skipset_<type>`` but looks it up under
``saving_attr_skiplist_<type>`` (Keras 3.15.1), so the lookup never hits and every visit pays
again. Saving the toy trainer's weights took ~90 ms, half of it in that function; a training
run saves twice per epoch (the best checkpoint and the resume backup), and every ``.keras``
save and load walks the same way.

``apply()`` wraps the function in a per-type cache, which is what Keras' own lookup means to
do: the skip-set of a type depends only on the type. It applies only where the lookup misses
(checked, not assumed from the version), so a Keras with the typo fixed is left alone; and
the saved files are unchanged (tests/test_keras_saving_shim.py).
"""

from __future__ import annotations

import functools

_APPLIED = "_keras_s2s_cached_skipsets"


def keras_cache_misses() -> bool:
    """True when Keras' ``get_attr_skipset`` cannot find the skip-set it stored (the typo)."""
    from keras.src.backend.common import global_state
    from keras.src.saving import saving_lib

    saving_lib.get_attr_skipset("Layer")
    return global_state.get_global_attribute("saving_attr_skiplist_Layer") is None


def apply() -> bool:
    """Caches ``saving_lib.get_attr_skipset`` per object type when Keras' own cache misses;
    idempotent. Returns whether the shim is in place."""
    from keras.src.saving import saving_lib

    if getattr(saving_lib.get_attr_skipset, _APPLIED, False):
        return True
    if not keras_cache_misses():
        return False
    cached = functools.cache(saving_lib.get_attr_skipset)
    setattr(cached, _APPLIED, True)
    saving_lib.get_attr_skipset = cached
    return True
