"""Hugging Face checkpoint directory I/O: formats, clear errors, key checks."""

import json

import numpy as np
import pytest
import torch

from zoo.convert import hf as hf_io
from zoo.convert.hf import CheckpointFormatError, KeyMap


def test_hub_name_is_a_clear_no_network_error():
    with pytest.raises(CheckpointFormatError, match=r"'bert-base-uncased' is not a local directory.*no network.*"
                                                    r"download it elsewhere.*pass the local directory"):
        hf_io.read_config("bert-base-uncased")
    with pytest.raises(CheckpointFormatError, match="does not exist"):
        hf_io.read_config("/nonexistent/dir")


def test_config_errors_name_the_problem(tmp_path):
    with pytest.raises(CheckpointFormatError, match="has no config.json"):
        hf_io.read_config(tmp_path)
    (tmp_path / "config.json").write_text("{\"hidden_size\": 12,")
    with pytest.raises(CheckpointFormatError, match="config.json is not valid JSON"):
        hf_io.read_config(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 12}))
    with pytest.raises(CheckpointFormatError, match=r"lacks the required field\(s\) \['num_attention_heads', "
                                                    r"'vocab_size'\]"):
        hf_io.read_config(tmp_path, required=["hidden_size", "num_attention_heads", "vocab_size"])
    assert hf_io.read_config(tmp_path, required=["hidden_size"]) == {"hidden_size": 12}


def test_write_read_round_trip_and_bfloat16(tmp_path):
    tensors = {"a.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([1, 2], np.int64)}
    hf_io.write_checkpoint(tmp_path, {"model_type": "x"}, tensors)
    back = hf_io.read_weights(tmp_path)
    assert set(back) == set(tensors)
    for k in tensors:
        np.testing.assert_array_equal(back[k], tensors[k])
    assert hf_io.read_config(tmp_path) == {"model_type": "x"}
    # bfloat16 (numpy has no such dtype; read through ml_dtypes)
    from safetensors.torch import save_file
    save_file({"w": torch.tensor([[1.5, -2.0]], dtype=torch.bfloat16)}, str(tmp_path / "model.safetensors"))
    w = hf_io.read_weights(tmp_path)["w"]
    np.testing.assert_array_equal(w.astype(np.float32), [[1.5, -2.0]])


def test_pickle_only_checkpoint_needs_opt_in_and_loads_weights_only(tmp_path):
    torch.save({"w": torch.ones(2, 2)}, tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointFormatError, match="only pytorch_model.bin, a pickle-based format.*allow_pickle"):
        hf_io.read_weights(tmp_path)
    np.testing.assert_array_equal(hf_io.read_weights(tmp_path, allow_pickle=True)["w"], np.ones((2, 2)))

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"w": Evil()}, tmp_path / "pytorch_model.bin")
    with pytest.raises(Exception, match="Weights only load failed"):
        hf_io.read_weights(tmp_path, allow_pickle=True)
    (tmp_path / "pytorch_model.bin").unlink()
    with pytest.raises(CheckpointFormatError, match="holds no weights"):
        hf_io.read_weights(tmp_path)


def test_import_and_export_through_key_maps():
    maps = hf_io.linear_maps("attn.q", ("attention", "query"), out_shape=(2, 3)) + [KeyMap("ln.weight", ("ln", "scale"))]
    shapes = {"attention": {"query": {"kernel": np.zeros((4, 2, 3)), "bias": np.zeros((2, 3))}},
              "ln": {"scale": np.zeros(4)}}
    rng = np.random.default_rng(0)
    tensors = {"attn.q.weight": rng.standard_normal((6, 4)), "attn.q.bias": rng.standard_normal(6),
               "ln.weight": rng.standard_normal(4)}
    params = hf_io.import_params(maps, tensors, shapes)
    x = rng.standard_normal(4)
    # zoo kernel [D, N, H] computes the same as torch's Linear weight [N*H, D]
    np.testing.assert_allclose(np.einsum("d,dnh->nh", x, params["attention"]["query"]["kernel"]).reshape(-1)
                               + params["attention"]["query"]["bias"].reshape(-1),
                               tensors["attn.q.weight"] @ x + tensors["attn.q.bias"], rtol=1e-5)
    back = hf_io.export_tensors(maps, params)
    for k in tensors:
        np.testing.assert_allclose(back[k], tensors[k], rtol=1e-6)

    bad = {**tensors, "attn.q.weight": np.zeros((5, 4)), "surprise": np.zeros(1)}
    del bad["ln.weight"]
    with pytest.raises(CheckpointFormatError, match=r"missing keys \['ln.weight'\]; unexpected keys \['surprise'\]; "
                                                    r"shape mismatches \[attn.q.weight \(5, 4\) does not fit"):
        hf_io.import_params(maps, bad, shapes)
    with pytest.raises(CheckpointFormatError, match="converter does not cover the model"):
        hf_io.import_params(maps[:1], tensors, shapes)


def test_importing_the_models_imports_no_converter_torch_or_transformers():
    import subprocess
    import sys

    code = ("import sys, zoo; zoo.list_models(); from zoo.models.bert import Bert, BertConfig; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers') "
            "or (m.startswith('zoo.models.') and m.endswith('.hf'))); print(bad); assert not bad")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
