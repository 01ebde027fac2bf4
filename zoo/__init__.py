"""zoo: a JAX/Flax model zoo.

    import zoo
    zoo.list_models()                      # ['bert_base', ..., 'mlp', 'resnet50', 'seed_cnn', ...]
    model = zoo.create_model("seed_cnn")   # a flax.linen.Module
    variables = zoo.init_variables(model, jax.random.key(0))
    logits = model.apply(variables, images, train=False)

    model, variables = zoo.from_pretrained("path/to/hf-dir")   # BERT, GPT-2, ViT, ResNet by config.json
    zoo.save_pretrained(model, variables, "out-dir")           # a directory transformers loads
"""

import importlib

__version__ = "0.1.0"

# Imported on first use (PEP 562), so that `import zoo` (and so `zoo train`'s start, before it can
# catch Ctrl-C) does not import JAX and Flax: name -> module that defines it.
_LAZY = {
    "from_pretrained": "zoo.convert.auto", "save_pretrained": "zoo.convert.auto",
    **{name: "zoo.registry" for name in ("config_to_dict", "create_model", "example_input", "get_config",
                                         "get_spec", "init_variables", "list_models", "param_count",
                                         "random_input", "register_model")},
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:  # a subpackage not imported yet, as `import zoo; zoo.registry` found it before
        try:
            value = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "config_to_dict", "create_model", "example_input", "from_pretrained", "get_config", "get_spec", "init_variables",
    "list_models", "param_count", "random_input", "register_model", "save_pretrained", "__version__",
]
