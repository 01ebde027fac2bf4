"""Hugging Face checkpoint directories: read and write ``config.json`` + weights, check key maps.

Everything here works on *local directories* (zoo never downloads).  Weights are
read from ``model.safetensors`` (or a sharded ``model.safetensors.index.json``);
``pytorch_model.bin`` is a pickle-based format, read only when the caller opts
in (``allow_pickle=True``) and then only through ``torch.load(weights_only=True)``,
which refuses arbitrary Python objects.  Writing produces ``model.safetensors``
and ``config.json``, which ``transformers``' ``from_pretrained`` reads.

The family converters (``zoo.models.<family>.hf``) describe their mapping as a
list of :class:`KeyMap` entries and call :func:`import_params` /
:func:`export_tensors`, which check that every checkpoint tensor is used exactly
once with the right shape.  Users call :func:`zoo.from_pretrained` /
:func:`zoo.save_pretrained` (``zoo.convert.auto``), which pick the family.
"""

from __future__ import annotations

import dataclasses
import json
import os
import struct
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

CONFIG_FILE = "config.json"
SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX_FILE = "model.safetensors.index.json"
PYTORCH_FILE = "pytorch_model.bin"

_ST_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
              "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}


class CheckpointFormatError(ValueError):
    """A checkpoint directory, config or weight file that cannot be used as asked."""


def resolve_dir(path: str | os.PathLike) -> str:
    """``path`` as an absolute directory; a clear error for hub names and missing paths.

    Raises:
      CheckpointFormatError: ``path`` is not an existing directory.  A name
        such as ``"bert-base-uncased"`` is a Hugging Face Hub id: zoo has no
        network access, so the message says to download it elsewhere.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        return os.path.abspath(path)
    if os.path.exists(path):
        raise CheckpointFormatError(f"{path!r} is a file; pass the checkpoint directory that holds {CONFIG_FILE} "
                                    f"and {SAFETENSORS_FILE}")
    looks_like_hub_id = not os.path.isabs(path) and path.count("/") <= 1 and not path.startswith(".")
    if looks_like_hub_id:
        raise CheckpointFormatError(
            f"{path!r} is not a local directory. It looks like a Hugging Face Hub model id, but zoo reads only "
            "local checkpoints (no network): download it elsewhere, e.g. `huggingface-cli download "
            f"{path} --local-dir DIR` or `transformers.AutoModel.from_pretrained({path!r}).save_pretrained(DIR)`, "
            "and pass the local directory DIR"
        )
    raise CheckpointFormatError(f"checkpoint directory {path!r} does not exist")


def check_architecture(path, hf_config: dict, architectures: Sequence[str], family: str, note: str = "") -> str:
    """The checkpoint's architecture (``architectures[0]`` of config.json; default the first of ``architectures``).

    Raises:
      CheckpointFormatError: it is not one of ``architectures`` (``family`` and ``note`` complete the message).
    """
    arch = (hf_config.get("architectures") or [architectures[0]])[0]
    if arch not in architectures:
        raise CheckpointFormatError(f"{path} holds a {arch}; zoo's {family} reads {', '.join(architectures)}"
                                    + (f" {note}" if note else ""))
    return arch


def read_config(path: str | os.PathLike, required: Sequence[str] = ()) -> dict:
    """The ``config.json`` of checkpoint directory ``path`` as a dict.

    Args:
      path: a local checkpoint directory.
      required: keys that must be present.

    Raises:
      CheckpointFormatError: no config.json, malformed JSON, not an object, or a
        required key missing (all missing keys are named).
    """
    path = resolve_dir(path)
    file = os.path.join(path, CONFIG_FILE)
    if not os.path.isfile(file):
        raise CheckpointFormatError(f"{path} has no {CONFIG_FILE}; a Hugging Face checkpoint directory needs one")
    try:
        with open(file, encoding="utf-8") as f:
            config = json.load(f)
    except json.JSONDecodeError as e:
        raise CheckpointFormatError(f"{file} is not valid JSON: {e}") from None
    if not isinstance(config, dict):
        raise CheckpointFormatError(f"{file} must hold a JSON object, got {type(config).__name__}")
    missing = [k for k in required if k not in config]
    if missing:
        raise CheckpointFormatError(f"{file} lacks the required field(s) {missing}")
    return config


def _read_safetensors(file: str) -> dict[str, np.ndarray]:
    """Reads a safetensors file into numpy (memory-mapped; bfloat16 via ml_dtypes)."""
    import ml_dtypes  # noqa: F401  (registers bfloat16 with numpy)

    with open(file, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise CheckpointFormatError(f"{file} is not a safetensors file (too short)")
        (header_len,) = struct.unpack("<Q", raw)
        try:
            header = json.loads(f.read(header_len))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CheckpointFormatError(f"{file} has a malformed safetensors header: {e}") from None
    data = np.memmap(file, dtype=np.uint8, mode="r", offset=8 + header_len)
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info.get("dtype") not in _ST_DTYPES:
            raise CheckpointFormatError(f"{file}: tensor {name!r} has unsupported dtype {info.get('dtype')!r}")
        dtype = np.dtype(_ST_DTYPES[info["dtype"]])
        start, end = info["data_offsets"]
        shape = tuple(info["shape"])
        if (end - start) != int(np.prod(shape)) * dtype.itemsize:
            raise CheckpointFormatError(f"{file}: tensor {name!r} size does not match its shape {shape}")
        out[name] = np.frombuffer(data[start:end], dtype=dtype).reshape(shape)
    return out


def read_weights(path: str | os.PathLike, *, allow_pickle: bool = False) -> dict[str, np.ndarray]:
    """All tensors of a checkpoint directory as numpy arrays, by Hugging Face key.

    Args:
      path: a local checkpoint directory holding ``model.safetensors`` (or a
        sharded ``model.safetensors.index.json``), or ``pytorch_model.bin``.
      allow_pickle: read ``pytorch_model.bin`` (with ``torch.load(weights_only=True)``)
        when there is no safetensors file.

    Raises:
      CheckpointFormatError: no weight file, or only a pickle-based one without opt-in.
    """
    path = resolve_dir(path)
    single, index = os.path.join(path, SAFETENSORS_FILE), os.path.join(path, SAFETENSORS_INDEX_FILE)
    if os.path.isfile(single):
        return _read_safetensors(single)
    if os.path.isfile(index):
        try:
            with open(index, encoding="utf-8") as f:
                weight_map = json.load(f)["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise CheckpointFormatError(f"{index} is malformed (expected a 'weight_map' object): {e}") from None
        out = {}
        for shard in sorted(set(weight_map.values())):
            out.update(_read_safetensors(os.path.join(path, shard)))
        return out
    pt = os.path.join(path, PYTORCH_FILE)
    if os.path.isfile(pt):
        if not allow_pickle:
            raise CheckpointFormatError(
                f"{path} holds only {PYTORCH_FILE}, a pickle-based format. Convert it to safetensors, or pass "
                "allow_pickle=True to read it with torch.load(weights_only=True) (which refuses arbitrary objects)"
            )
        import torch

        state = torch.load(pt, map_location="cpu", weights_only=True)
        return {k: (v.float() if v.dtype == torch.bfloat16 else v).numpy() for k, v in state.items()}
    raise CheckpointFormatError(f"{path} holds no weights: expected {SAFETENSORS_FILE}, {SAFETENSORS_INDEX_FILE} "
                                f"or {PYTORCH_FILE}")


def write_checkpoint(path: str | os.PathLike, config: Mapping[str, Any], tensors: Mapping[str, np.ndarray]) -> str:
    """Writes ``config.json`` and ``model.safetensors`` into directory ``path`` (created if needed).

    Returns:
      the absolute directory path.
    """
    from safetensors.numpy import save_file

    path = os.path.abspath(os.fspath(path))
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, CONFIG_FILE), "w", encoding="utf-8") as f:
        json.dump(dict(config), f, indent=2, sort_keys=True)
    save_file({k: np.ascontiguousarray(np.asarray(v)) for k, v in tensors.items()},
              os.path.join(path, SAFETENSORS_FILE), metadata={"format": "pt"})
    return path


def _raise_on_mismatch(source: str, missing, unexpected, mismatched) -> None:
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"missing keys {missing}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected}")
        if mismatched:
            parts.append(f"shape mismatches [{'; '.join(mismatched)}]")
        raise CheckpointFormatError(f"{source} does not match the model: " + "; ".join(parts))


# --- key maps ---------------------------------------------------------------------------------------------

def _identity(x):
    return x


@dataclasses.dataclass(frozen=True)
class KeyMap:
    """One checkpoint tensor <-> one zoo parameter.

    Attributes:
      hf_key: the Hugging Face key (``"encoder.layer.0.attention.self.query.weight"``).
      zoo_path: path into the zoo params tree (``("encoder", "layer_0", "attention", "query", "kernel")``).
      to_zoo: numpy transform of the HF tensor into the zoo layout.
      to_hf: its inverse.
    """

    hf_key: str
    zoo_path: tuple[str, ...]
    to_zoo: Callable[[np.ndarray], np.ndarray] = _identity
    to_hf: Callable[[np.ndarray], np.ndarray] = _identity


def linear_maps(hf_prefix: str, zoo_path: tuple[str, ...], *, out_shape: tuple | None = None,
                in_shape: tuple | None = None, transposed: bool = True, bias: bool = True) -> list[KeyMap]:
    """KeyMaps of a PyTorch ``nn.Linear`` (``weight [out, in]``) to a zoo kernel ``[*in_shape, *out_shape]``.

    Args:
      hf_prefix: e.g. ``"encoder.layer.0.attention.self.query"``.
      zoo_path: the zoo module path holding ``kernel`` / ``bias``.
      out_shape: zoo shape of the output features (e.g. ``(N, H)``); default flat.
      in_shape: zoo shape of the input features (e.g. ``(N, H)`` for an attention output); default flat.
      transposed: True for ``nn.Linear`` (``[out, in]``); False for GPT-2's ``Conv1D`` (``[in, out]``).
      bias: whether there is a bias.
    """
    def to_zoo(w):
        w = w.T if transposed else w
        shape = (*(in_shape or (w.shape[0],)), *(out_shape or (w.shape[1],)))
        return w.reshape(shape)

    def to_hf(k):
        n_in = int(np.prod(in_shape)) if in_shape else k.shape[0]
        w = k.reshape(n_in, -1)
        return w.T if transposed else w

    maps = [KeyMap(f"{hf_prefix}.weight", (*zoo_path, "kernel"), to_zoo, to_hf)]
    if bias:
        maps.append(KeyMap(f"{hf_prefix}.bias", (*zoo_path, "bias"),
                           lambda b: b.reshape(out_shape or b.shape), lambda b: b.reshape(-1)))
    return maps


def layer_norm_maps(hf_prefix: str, zoo_path: tuple[str, ...]) -> list[KeyMap]:
    """KeyMaps of a PyTorch ``nn.LayerNorm`` (``weight``, ``bias``) to a zoo LayerNorm (``scale``, ``bias``)."""
    return [KeyMap(f"{hf_prefix}.weight", (*zoo_path, "scale")), KeyMap(f"{hf_prefix}.bias", (*zoo_path, "bias"))]


def _get_path(tree, path):
    for p in path:
        tree = tree[p]
    return tree


def _flatten_paths(tree, prefix=()):
    if isinstance(tree, Mapping):
        for k, v in tree.items():
            yield from _flatten_paths(v, (*prefix, k))
    else:
        yield prefix, tree


def import_params(maps: Sequence[KeyMap], tensors: Mapping[str, np.ndarray], zoo_shapes, *,
                  source: str = "checkpoint", ignore: Iterable[str] = (), dtype=np.float32) -> dict:
    """Builds the zoo params tree from checkpoint ``tensors`` through ``maps``, checking everything.

    Args:
      maps: one KeyMap per zoo parameter.
      tensors: the checkpoint's tensors by HF key (see :func:`read_weights`).
      zoo_shapes: the zoo params tree of shapes / ShapeDtypeStructs (``jax.eval_shape`` of init).
      source: named in errors.
      ignore: checkpoint keys allowed to go unused (buffers, tied copies).
      dtype: dtype of the returned arrays.

    Returns:
      a nested dict of numpy arrays with exactly the structure of ``zoo_shapes``.

    Raises:
      CheckpointFormatError: every missing / unexpected checkpoint key and every
        shape mismatch (after the layout transform) by HF key; also a map that
        does not cover every zoo parameter (a converter bug).
    """
    zoo_paths = {p: tuple(np.shape(v)) for p, v in _flatten_paths(zoo_shapes)}
    zoo_dtypes = {p: np.dtype(getattr(v, "dtype", dtype)) for p, v in _flatten_paths(zoo_shapes)}
    mapped = {m.zoo_path for m in maps}
    if mapped != set(zoo_paths):
        raise CheckpointFormatError(
            f"converter does not cover the model: unmapped zoo params {sorted(set(zoo_paths) - mapped)}, "
            f"mapped params the model lacks {sorted(mapped - set(zoo_paths))}")
    missing = sorted(m.hf_key for m in maps if m.hf_key not in tensors)
    unexpected = sorted(set(tensors) - {m.hf_key for m in maps} - set(ignore))
    mismatched, not_float, params = [], [], {}
    for m in maps:
        if m.hf_key not in tensors:
            continue
        got = np.dtype(tensors[m.hf_key].dtype)
        # bool / int / complex values for a float parameter: a wrong file, not weights to cast silently
        if _is_float(zoo_dtypes[m.zoo_path]) and got.kind in "biuc":
            not_float.append(f"{m.hf_key} has dtype {got}, zoo {'/'.join(m.zoo_path)} is "
                             f"{zoo_dtypes[m.zoo_path]}")
            continue
        want = zoo_paths[m.zoo_path]
        try:
            value = m.to_zoo(np.asarray(tensors[m.hf_key]))
        except ValueError:
            value = None
        if value is None or tuple(value.shape) != want:
            mismatched.append(f"{m.hf_key} {tuple(np.shape(tensors[m.hf_key]))} does not fit zoo "
                              f"{'/'.join(m.zoo_path)} {want}")
            continue
        node = params
        for p in m.zoo_path[:-1]:
            node = node.setdefault(p, {})
        node[m.zoo_path[-1]] = np.asarray(value, dtype)
    _raise_on_mismatch(source, missing, unexpected, mismatched)
    if not_float:
        raise CheckpointFormatError(f"{source} does not match the model: non-float tensors for float parameters "
                                    f"[{'; '.join(not_float)}]")
    return params


def _is_float(dtype: np.dtype) -> bool:
    return dtype.kind == "f" or "float" in dtype.name  # "float" in the name: ml_dtypes' bfloat16 (kind "V")


def export_tensors(maps: Sequence[KeyMap], params, dtype=np.float32) -> dict[str, np.ndarray]:
    """The inverse of :func:`import_params`: HF key -> numpy tensor for every map."""
    out = {}
    for m in maps:
        out[m.hf_key] = np.ascontiguousarray(np.asarray(m.to_hf(np.asarray(_get_path(params, m.zoo_path))), dtype))
    return out


__all__ = ["CheckpointFormatError", "KeyMap", "check_architecture", "export_tensors", "import_params", "layer_norm_maps", "linear_maps",
           "read_config", "read_weights", "resolve_dir", "write_checkpoint", "CONFIG_FILE", "SAFETENSORS_FILE",
           "PYTORCH_FILE"]
