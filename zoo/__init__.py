"""zoo: a JAX/Flax model zoo.

    import zoo
    zoo.list_models()                      # ['bert_base', ..., 'mlp', 'resnet50', 'seed_cnn', ...]
    model = zoo.create_model("seed_cnn")   # a flax.linen.Module
    variables = zoo.init_variables(model, jax.random.key(0))
    logits = model.apply(variables, images, train=False)

    model, variables = zoo.from_pretrained("path/to/hf-dir")   # BERT, GPT-2, ViT, ResNet by config.json
    zoo.save_pretrained(model, variables, "out-dir")           # a directory transformers loads
"""

from zoo.convert.auto import from_pretrained, save_pretrained
from zoo.registry import (config_to_dict, create_model, example_input, get_config, get_spec, init_variables,
                          list_models, param_count, random_input, register_model)

__version__ = "0.1.0"

__all__ = [
    "config_to_dict", "create_model", "example_input", "from_pretrained", "get_config", "get_spec", "init_variables",
    "list_models", "param_count", "random_input", "register_model", "save_pretrained", "__version__",
]
