"""Explanations of any registry model's predictions: saliency, integrated gradients, Grad-CAM.

All are pure functions of ``(model, variables, x)`` through the uniform
``model.apply(variables, x, train=False)``; no model code changes:

* :func:`saliency`: ``∂ logit_t / ∂ x`` (Simonyan et al. 2014).
* :func:`integrated_gradients`: ``(x - x') · ∫₀¹ ∂ logit_t(x' + a (x - x')) / ∂ x da``
  (Sundararajan et al. 2017), trapezoid rule; the attributions sum to
  ``logit_t(x) - logit_t(x')`` (completeness) up to the quadrature error.
* :func:`grad_cam`: Selvaraju et al. 2017 on the last submodule whose output is
  a ``[B, H, W, C]`` feature map (found with ``capture_intermediates``); the
  gradient with respect to that activation comes from a flax method
  interceptor that adds a zero perturbation to its output.
* :func:`explain_run` / :func:`plot_explanations`: PNG figures for ``zoo explain``.
"""

from __future__ import annotations

import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

METHODS = ("saliency", "integrated_gradients", "grad_cam")


def _target_logit(model, variables, target):
    def f(x):  # [B, ...] -> [B]: each example's target logit
        logits = model.apply(variables, x, train=False).astype(jnp.float32)
        return jnp.take_along_axis(logits, target[:, None], axis=1)[:, 0]
    return f


def predicted_class(model, variables, x) -> jax.Array:
    """``[B]`` argmax classes of ``x``."""
    return jnp.argmax(model.apply(variables, x, train=False), -1)


def saliency(model, variables, x, target=None) -> jax.Array:
    """Gradient of the target logit with respect to the input.

    Args:
      model / variables: a registry model and its variables.
      x: ``[B, ...]`` float inputs; target: ``[B]`` classes (default: the predicted ones).

    Returns:
      ``[B, ...]`` gradients, shaped like ``x``.
    """
    target = predicted_class(model, variables, x) if target is None else jnp.asarray(target)
    f = _target_logit(model, variables, target)
    return jax.grad(lambda z: f(z).sum())(x)  # examples are independent at inference, so the sum separates


def integrated_gradients(model, variables, x, target=None, *, baseline=None, steps: int = 128) -> jax.Array:
    """Integrated-gradient attributions ``[B, ...]`` of the target logit (baseline: zeros)."""
    target = predicted_class(model, variables, x) if target is None else jnp.asarray(target)
    baseline = jnp.zeros_like(x) if baseline is None else jnp.broadcast_to(baseline, x.shape)
    f = _target_logit(model, variables, target)
    grad = jax.grad(lambda z: f(z).sum())
    alphas = jnp.linspace(0.0, 1.0, steps + 1)
    weights = jnp.full((steps + 1,), 1.0 / steps).at[0].mul(0.5).at[-1].mul(0.5)  # trapezoid
    total = jax.lax.fori_loop(
        0, steps + 1, lambda i, acc: acc + weights[i] * grad(baseline + alphas[i] * (x - baseline)),
        jnp.zeros_like(x))
    return (x - baseline) * total


def feature_map_layers(model, variables, x) -> list[tuple[str, ...]]:
    """Paths of submodules whose output is a ``[B, H, W, C]`` map, in call order."""
    _, state = model.apply(variables, x, train=False, capture_intermediates=True, mutable=["intermediates"])
    paths = []
    for path, value in jax.tree_util.tree_flatten_with_path(state["intermediates"])[0]:
        keys = tuple(str(getattr(k, "key", k)) for k in path)
        if "__call__" in keys and value.ndim == 4 and keys[:-2] and keys[:-2] not in paths:
            paths.append(keys[:keys.index("__call__")])
    return paths


def grad_cam(model, variables, x, target=None, *, layer: tuple[str, ...] | None = None) -> jax.Array:
    """Grad-CAM heat maps ``[B, H, W]`` in [0, 1], resized to the input's ``H, W``.

    Args:
      layer: path of the submodule to explain (default: the last one with a 4-D output).

    Raises:
      ValueError: if the model has no ``[B, H, W, C]`` feature map (e.g. an MLP or LSTM).
    """
    if x.ndim != 4:
        raise ValueError(f"grad_cam needs image inputs [B, H, W, C], got shape {x.shape}")
    layers = feature_map_layers(model, variables, x)
    if layer is None:
        if not layers:
            raise ValueError(f"grad_cam: model {type(model).__name__} has no submodule with a [B, H, W, C] output")
        layer = layers[-1]
    elif tuple(layer) not in layers:
        raise ValueError(f"grad_cam: layer {layer!r} has no [B, H, W, C] output; layers that do: {layers}")
    layer = tuple(layer)
    target = predicted_class(model, variables, x) if target is None else jnp.asarray(target)
    _, state = model.apply(variables, x, train=False, capture_intermediates=True, mutable=["intermediates"])
    node = state["intermediates"]
    for name in layer:
        node = node[name]
    activation = node["__call__"][0]  # [B, h, w, C]

    def logits_with(delta):
        def add_delta(next_fun, args, kwargs, context):
            out = next_fun(*args, **kwargs)
            if context.method_name == "__call__" and tuple(context.module.scope.path) == layer:
                out = out + delta
            return out

        with nn.intercept_methods(add_delta):
            logits = model.apply(variables, x, train=False).astype(jnp.float32)
        return jnp.take_along_axis(logits, target[:, None], axis=1).sum()

    grads = jax.grad(logits_with)(jnp.zeros_like(activation))  # [B, h, w, C]
    alpha = grads.mean(axis=(1, 2))  # [B, C]
    cam = jax.nn.relu(jnp.einsum("bhwc,bc->bhw", activation.astype(jnp.float32), alpha))
    cam = jax.image.resize(cam, (x.shape[0], x.shape[1], x.shape[2]), "linear")
    return cam / jnp.maximum(cam.max(axis=(1, 2), keepdims=True), 1e-12)


def attention_maps(model, variables, x, **model_kwargs) -> dict:
    """Attention weights ``softmax(Q Kᵀ / √H + mask)`` of every ``MultiHeadAttention`` in a model.

    The query and key projections and the mask each attention layer receives are
    recorded with a flax method interceptor during one forward pass (no model changes),
    and the weights recomputed from them with the layer's own causal and padding masks.

    Args:
      model / variables: a registry model (e.g. ``bert_nano``, ``gpt2_tiny``) and its variables.
      x: its input (``[B, T]`` token ids); model_kwargs: e.g. ``attention_mask=[B, T]``.

    Returns:
      ``{"encoder/layer_0/attention": [B, N, T, S], ...}`` in call order.
    """
    from zoo.layers.attention import MultiHeadAttention, causal_mask, combine_masks

    calls: dict[tuple, dict] = {}

    def record(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        module = context.module
        if context.method_name != "__call__":
            return out
        path = tuple(module.scope.path)
        if isinstance(module, MultiHeadAttention):
            mask = args[1] if len(args) > 1 else kwargs.get("mask")
            calls.setdefault(path, {}).update(mask=mask, causal=module.causal)
        elif path and path[-1] in ("query", "key") and isinstance(module.parent, MultiHeadAttention):
            calls.setdefault(path[:-1], {})[path[-1]] = out  # [B, L, N, H]
        return out

    with nn.intercept_methods(record):
        model.apply(variables, x, train=False, **model_kwargs)
    if not calls:
        raise ValueError(f"{type(model).__name__} has no MultiHeadAttention layer")
    maps = {}
    for path, c in calls.items():
        q, k = c["query"].astype(jnp.float32), c["key"].astype(jnp.float32)
        logits = jnp.einsum("btnh,bsnh->bnts", q / np.sqrt(q.shape[-1]), k)  # [B, N, T, S]
        mask = c["mask"]
        if c["causal"]:
            mask = combine_masks(mask, causal_mask(q.shape[1], k.shape[1], offset=k.shape[1] - q.shape[1]))
        if mask is not None:
            logits = jnp.where(mask, logits, jnp.finfo(jnp.float32).min)
        maps["/".join(path)] = jax.nn.softmax(logits, axis=-1)
    return maps


def plot_attention(maps: dict, path: str, *, example: int = 0, length: int | None = None, labels=None) -> str:
    """A PNG grid of attention maps: one row per layer, one column per head, for one example."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(maps)
    heads = max(m.shape[1] for m in maps.values())
    fig, axes = plt.subplots(len(names), heads, figsize=(2.6 * heads, 2.6 * len(names)), squeeze=False)
    for i, name in enumerate(names):
        for h in range(heads):
            ax = axes[i, h]
            if h < maps[name].shape[1]:
                w = np.asarray(maps[name][example, h])
                if length:
                    w = w[:length, :length]
                ax.imshow(w, cmap="viridis", vmin=0.0)
                ax.set_title(f"{name}\nhead {h}", fontsize=7)
                if labels is not None and len(labels) <= 24:
                    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=6)
                    ax.set_yticks(range(len(labels)), labels, fontsize=6)
                else:
                    ax.set_axis_off()
            else:
                ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _as_image(a: np.ndarray) -> np.ndarray:
    """One example's map as 2-D: images drop channels, sequences stay ``[T, D]``, square vectors fold."""
    a = np.asarray(a, np.float32)
    if a.ndim == 3:
        return a.mean(-1) if a.shape[-1] > 1 else a[..., 0]
    if a.ndim == 1:
        side = int(round(np.sqrt(a.size)))
        return a.reshape(side, side) if side * side == a.size else a[None]
    return a


def plot_explanations(x, maps: dict, path: str, *, titles=None) -> str:
    """A PNG with one row per example: the input, then each map in ``maps`` (name -> ``[B, ...]``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n, cols = x.shape[0], 1 + len(maps)
    fig, axes = plt.subplots(n, cols, figsize=(2.4 * cols, 2.4 * n), squeeze=False)
    for i in range(n):
        axes[i, 0].imshow(_as_image(x[i]), cmap="gray")
        axes[i, 0].set_title(titles[i] if titles else "input", fontsize=8)
        for j, (name, m) in enumerate(maps.items(), start=1):
            img = _as_image(np.abs(m[i]) if name != "grad_cam" else m[i])
            axes[i, j].imshow(_as_image(x[i]), cmap="gray")
            axes[i, j].imshow(img, cmap="jet" if name == "grad_cam" else "hot", alpha=0.55 if name == "grad_cam"
                              else 0.85)
            axes[i, j].set_title(name.replace("_", " "), fontsize=8)
    for ax in axes.ravel():
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def parse_input(spec: str, dataset) -> tuple[np.ndarray, np.ndarray | None]:
    """``"test:0,5,7"`` (test-set indices, labels known) or ``"PATH.npy"`` (``[B, ...]`` inputs).

    The dataset must be a classification one (``inputs`` and ``label`` entries).
    """
    inputs, labels = _labelled_test(dataset)
    if spec.startswith("test:"):
        try:
            idx = [int(i) for i in spec[5:].split(",") if i]
        except ValueError:
            raise ValueError(f"--input test:I,J,... needs integer indices, got {spec!r}") from None
        bad = [i for i in idx if not 0 <= i < len(labels)]
        if not idx or bad:
            raise ValueError(f"--input {spec!r}: indices must be in [0, {len(labels)}), got {bad or 'none'}")
        return inputs[idx], labels[idx]
    if spec.endswith(".npy"):
        if not os.path.isfile(spec):
            raise ValueError(f"--input {spec}: no such file")
        x = np.load(spec, allow_pickle=False).astype(np.float32)
        if x.shape[1:] != inputs.shape[1:]:
            raise ValueError(f"--input {spec}: expected arrays [B, {', '.join(map(str, inputs.shape[1:]))}]"
                             f", got shape {x.shape}")
        return x, None
    raise ValueError(f"--input must be 'test:I,J,...' or a .npy file, got {spec!r}")


def _labelled_test(dataset) -> tuple[np.ndarray, np.ndarray]:
    if "inputs" not in dataset.test or "label" not in dataset.test:
        raise ValueError(f"explanations attribute a predicted class to the inputs; dataset {dataset.name!r} has "
                         f"entries {sorted(dataset.test)}, not a classification set's 'inputs' and 'label'")
    return dataset.test["inputs"], dataset.test["label"]


def explain_run(workdir: str, inputs: str = "test:0,1,2,3", *, out_dir: str | None = None, methods=METHODS,
                steps: int = 128, model: str | None = None, key_file: str | None = None) -> dict:
    """Explains a trained run's predictions on ``inputs`` and writes ``OUT_DIR/explanations.png``.

    Args:
      workdir: a run written by ``zoo train``; inputs: see :func:`parse_input`;
      out_dir: default ``WORKDIR/explain``; methods: a subset of ``METHODS``;
      steps: integrated-gradient quadrature steps; model: if given, must be the run's model;
      key_file: the key file of an encrypted run.

    Returns:
      ``{"model", "png", "methods", "predicted", "labels", "ig_completeness_error"}``: the
      methods drawn (Grad-CAM only for models with a feature map) and IG's largest relative gap
      ``|Σ attributions - (f(x) - f(0))| / |f(x) - f(0)|``.
    """
    from zoo.techniques.common import load_trained

    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown explanation method(s) {unknown}; available: {list(METHODS)}")
    run = load_trained(workdir, key_file=key_file)
    if model is not None and model != run.meta["model"]:
        raise ValueError(f"{workdir} holds a {run.meta['model']!r} run, not {model!r}")
    out_dir = out_dir or os.path.join(workdir, "explain")
    if run.model.config.layout == "tokens":  # gradients of token ids are meaningless: attention maps instead
        return _explain_attention(run, inputs, out_dir)
    x, labels = parse_input(inputs, run.dataset)
    variables = {"params": run.state.params, **run.state.model_state}
    x = jnp.asarray(x)
    pred = predicted_class(run.model, variables, x)
    maps, drawn = {}, []
    if "saliency" in methods:
        maps["saliency"] = np.asarray(saliency(run.model, variables, x, pred))
    gap = None
    if "integrated_gradients" in methods:
        ig = integrated_gradients(run.model, variables, x, pred, steps=steps)
        f = _target_logit(run.model, variables, pred)
        delta = f(x) - f(jnp.zeros_like(x))
        gap = float(jnp.max(jnp.abs(ig.reshape(len(x), -1).sum(1) - delta) / jnp.maximum(jnp.abs(delta), 1e-6)))
        maps["integrated_gradients"] = np.asarray(ig)
    if "grad_cam" in methods and x.ndim == 4 and feature_map_layers(run.model, variables, x):
        maps["grad_cam"] = np.asarray(grad_cam(run.model, variables, x, pred))
    drawn = list(maps)
    titles = [f"pred {int(p)}" + (f" / label {int(y)}" if labels is not None else "")
              for p, y in zip(pred, labels if labels is not None else pred)]
    os.makedirs(out_dir, exist_ok=True)  # only now: a refused input leaves no empty directory
    png = plot_explanations(np.asarray(x), maps, os.path.join(out_dir, "explanations.png"), titles=titles)
    return {"model": run.meta["model"], "png": png, "methods": drawn, "predicted": np.asarray(pred).tolist(),
            "labels": None if labels is None else np.asarray(labels).tolist(), "ig_completeness_error": gap}


def _explain_attention(run, inputs: str, out_dir: str) -> dict:
    if not inputs.startswith("test:") or "," in inputs:
        raise ValueError(f"attention maps of a token model take one test example, --input test:I; got {inputs!r}")
    index = int(inputs[5:])
    test_inputs, _ = _labelled_test(run.dataset)
    if not 0 <= index < len(test_inputs):
        raise ValueError(f"--input {inputs!r}: index must be in [0, {len(test_inputs)})")
    x = jnp.asarray(test_inputs[index:index + 1])  # [1, T]
    pad = getattr(run.model.config, "pad_token_id", None)  # the model masks padding itself
    length = int((x != pad).sum()) if pad is not None else x.shape[1]
    maps = attention_maps(run.model, {"params": run.state.params, **run.state.model_state}, x)
    os.makedirs(out_dir, exist_ok=True)
    png = plot_attention(maps, os.path.join(out_dir, "attention.png"), length=length)
    return {"model": run.meta["model"], "png": png, "methods": ["attention"], "layers": list(maps),
            "tokens": length}


__all__ = ["METHODS", "attention_maps", "explain_run", "plot_attention", "feature_map_layers", "grad_cam",
           "integrated_gradients", "parse_input",
           "plot_explanations", "predicted_class", "saliency"]
