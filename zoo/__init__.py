"""zoo: a JAX/Flax model zoo.

    import zoo
    zoo.list_models()                      # ['mlp', 'seed_cnn', 'seed_lstm']
    model = zoo.create_model("seed_cnn")   # a flax.linen.Module
    variables = zoo.init_variables(model, jax.random.key(0))
    logits = model.apply(variables, images, train=False)
"""

from zoo.registry import (config_to_dict, create_model, example_input, get_config, get_spec, init_variables,
                          list_models, param_count, random_input, register_model)

__version__ = "0.1.0"

__all__ = [
    "config_to_dict", "create_model", "example_input", "get_config", "get_spec", "init_variables",
    "list_models", "param_count", "random_input", "register_model", "__version__",
]
