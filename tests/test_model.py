"""training.model: exactly the notebook's regularized CNN."""
import pytest


def test_architecture_matches_the_notebook():
    from keras import layers

    from training.model import build_model, logit_model

    model = build_model(200)
    kinds = [type(layer) for layer in model.layers]
    assert kinds == [layers.InputLayer, layers.Conv1D, layers.MaxPooling1D, layers.Dropout, layers.Flatten,
                     layers.Dense, layers.Dropout, layers.Dense, layers.Activation]
    conv = model.get_layer("conv")
    assert (conv.filters, conv.kernel_size, conv.padding, conv.activation.__name__) == (24, (19,), "same", "relu")
    assert model.get_layer("pool").pool_size == (25,)
    assert model.get_layer("conv_dropout").rate == pytest.approx(0.2)
    assert model.get_layer("dense").units == 64 and model.get_layer("dense").activation.__name__ == "relu"
    assert model.get_layer("dense_dropout").rate == pytest.approx(0.5)
    assert model.get_layer("logit").units == 1 and model.get_layer("logit").activation.__name__ == "linear"
    assert model.get_layer("prob").activation.__name__ == "sigmoid"
    assert model.count_params() == 14_265
    assert model.input_shape == (None, 200, 4) and model.output_shape == (None, 1)
    assert logit_model(model).output_shape == (None, 1)


def test_sequence_length_comes_from_the_data():
    from training.model import build_model

    assert build_model(100).input_shape == (None, 100, 4)
    assert build_model(100).count_params() == 1848 + (100 // 25) * 24 * 64 + 64 + 65
