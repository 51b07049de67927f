"""keras_s2s.keras_saving_shim: Keras' weight saver computes each type's attribute skip-set
once instead of at every object it visits, and writes the same files."""

import h5py
import keras
import numpy as np
from keras.src.layers.layer import Layer
from keras.src.saving import saving_lib

from keras_s2s import keras_saving_shim

SKIPSET_TYPES = ("Layer", "Functional", "Metric", "Optimizer", "Loss", "Operation")


def keras_own_get_attr_skipset():
    function = saving_lib.get_attr_skipset
    return getattr(function, "__wrapped__", function)


def small_trainer() -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(10, 4)(inputs)
    x = keras.layers.LSTM(6, return_sequences=True)(x)
    model = keras.Model(inputs, keras.layers.Dense(10)(x))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.optimizer.build(model.trainable_variables)  # its state is saved too (nothing is trained: `make test-fast`)
    return model


def reference_layers_built_while_saving(model: keras.Model, path, monkeypatch) -> int:
    """How many ``Layer`` objects Keras constructs while saving ``model``'s weights (the
    reference objects of ``get_attr_skipset``; saving itself builds none)."""
    built = []
    original_init = Layer.__init__

    def counting_init(self, *args, **kwargs):
        built.append(type(self).__name__)
        original_init(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(Layer, "__init__", counting_init)
        model.save_weights(path)
    return len(built)


def h5_contents(path) -> dict:
    """Every dataset of an .h5 file by its path, and every attribute of every group."""
    contents = {}

    def visit(name, item):
        if isinstance(item, h5py.Dataset):
            contents[name] = np.asarray(item)
        contents[name + "@attrs"] = dict(item.attrs)

    with h5py.File(path, "r") as file:
        file.visititems(visit)
    return contents


def test_keras_still_misses_its_own_skipset_cache():
    """The upstream typo the shim works around (stored under "skipset", looked up under
    "skiplist"). When this fails, Keras is fixed: apply() then leaves it alone, and the shim
    and this file can go."""
    assert keras_saving_shim.keras_cache_misses()


def test_apply_caches_each_types_skipset_as_keras_computes_it():
    keras_saving_shim.apply()
    cached, original = saving_lib.get_attr_skipset, keras_own_get_attr_skipset()
    assert cached is not original
    for obj_type in SKIPSET_TYPES:
        assert cached(obj_type) == original(obj_type), obj_type
        assert cached(obj_type) is cached(obj_type), f"{obj_type}: computed again"
    assert keras_saving_shim.apply() and saving_lib.get_attr_skipset is cached, "apply() twice wraps once"


def test_saving_weights_builds_no_reference_objects_with_the_shim_and_some_without(tmp_path, monkeypatch):
    model = small_trainer()
    keras_saving_shim.apply()
    model.save_weights(tmp_path / "warm.weights.h5")  # the first save fills the cache
    assert reference_layers_built_while_saving(model, tmp_path / "shim.weights.h5", monkeypatch) == 0

    monkeypatch.setattr(saving_lib, "get_attr_skipset", keras_own_get_attr_skipset())
    assert reference_layers_built_while_saving(model, tmp_path / "keras.weights.h5", monkeypatch) >= 3, "one per layer"


def test_the_shim_writes_the_files_keras_writes_and_they_load_back(tmp_path, monkeypatch):
    model = small_trainer()
    keras_saving_shim.apply()
    model.save_weights(tmp_path / "shim.weights.h5")
    with monkeypatch.context() as patch:
        patch.setattr(saving_lib, "get_attr_skipset", keras_own_get_attr_skipset())
        model.save_weights(tmp_path / "keras.weights.h5")

    with_shim, without = h5_contents(tmp_path / "shim.weights.h5"), h5_contents(tmp_path / "keras.weights.h5")
    assert with_shim.keys() == without.keys()
    assert len([name for name in with_shim if not name.endswith("@attrs")]) >= 10, "weights and optimizer state"
    for name, value in with_shim.items():
        if name.endswith("@attrs"):
            assert value.keys() == without[name].keys(), name
        else:
            np.testing.assert_array_equal(value, without[name], err_msg=name)

    copy = small_trainer()
    copy.set_weights([np.zeros_like(w) for w in copy.get_weights()])
    copy.load_weights(tmp_path / "shim.weights.h5")
    for loaded, saved in zip(copy.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(loaded, saved)


def test_a_keras_whose_lookup_hits_is_left_alone(monkeypatch):
    from keras.src.backend.common import global_state

    monkeypatch.setattr(saving_lib, "get_attr_skipset", keras_own_get_attr_skipset())
    global_state.set_global_attribute("saving_attr_skiplist_Layer", {"stored"})  # as a fixed Keras finds it
    try:
        assert not keras_saving_shim.keras_cache_misses()
        assert keras_saving_shim.apply() is False
        assert saving_lib.get_attr_skipset is keras_own_get_attr_skipset()
    finally:
        global_state.set_global_attribute("saving_attr_skiplist_Layer", None)
