"""One spelling per idea across every family's config, checked by one shared helper."""

import dataclasses

import pytest

import zoo
from zoo.cli import main
from zoo.layers.checks import check_common_fields, dropout_fields

# spellings that the shared vocabulary replaced (intermediate_size -> mlp_dim, hidden_dropout_rate -> dropout_rate...)
RETIRED = {"intermediate_size", "hidden", "hidden_dropout_rate", "embedding_dropout_rate", "residual_dropout_rate",
           "num_hidden_layers", "num_attention_heads", "hidden_dim", "width", "depth"}


@pytest.mark.parametrize("name", zoo.list_models())
def test_every_config_speaks_the_shared_vocabulary(name):
    fields = {f.name for f in dataclasses.fields(zoo.get_config(name))}
    assert not fields & RETIRED, f"{name} still spells {sorted(fields & RETIRED)}"


def test_which_families_have_which_fields():
    def fields(name):
        return {f.name for f in dataclasses.fields(zoo.get_config(name))}

    for name in ("bert_tiny", "gpt2_tiny", "vit_micro"):
        assert {"hidden_size", "num_layers", "num_heads", "mlp_dim", "dropout_rate",
                "attention_dropout_rate"} <= fields(name)
    assert {"hidden_sizes", "dropout_rate"} <= fields("mlp") and {"hidden_sizes", "dropout_rate"} <= fields("seed_lstm")
    assert {"mlp_dim", "dropout_rate"} <= fields("seed_cnn")
    assert dropout_fields(zoo.get_config("bert_tiny")) == ("dropout_rate", "attention_dropout_rate",
                                                           "classifier_dropout_rate")
    assert dropout_fields(zoo.get_config("resnet_tiny")) == ()


@pytest.mark.parametrize("name, overrides, message", [
    ("bert_tiny", {"dropout_rate": 1.0}, r"BertConfig.dropout_rate must be in \[0, 1\), got 1.0"),
    ("gpt2_tiny", {"attention_dropout_rate": -0.1}, r"GPT2Config.attention_dropout_rate must be in \[0, 1\)"),
    ("gpt2_tiny", {"mlp_dim": 0}, "GPT2Config.mlp_dim must be positive integer"),
    ("vit_micro", {"num_layers": 0}, "ViTConfig.num_layers must be positive integer"),
    ("bert_tiny", {"num_heads": 3}, r"BertConfig.hidden_size \(128\) must be divisible by num_heads \(3\)"),
    ("seed_cnn", {"mlp_dim": -1}, "SeedCNNConfig.mlp_dim must be positive integer"),
    ("seed_lstm", {"hidden_sizes": (8, 0)}, "SeedLSTMConfig.hidden_sizes must be positive integer"),
    ("mlp", {"dropout_rate": 2}, r"MLPConfig.dropout_rate must be in \[0, 1\)"),
])
def test_shared_checks_name_the_field(name, overrides, message):
    with pytest.raises(ValueError, match=message):
        zoo.get_config(name, **overrides)


def test_check_common_fields_skips_derived_sizes():
    check_common_fields(zoo.get_config("gpt2_tiny"))  # mlp_dim None: 4 * hidden_size
    assert zoo.get_config("gpt2_tiny").mlp_dim is None


def test_dropout_flag_is_a_clear_error_for_a_model_without_dropout(tmp_path, capsys):
    assert main(["train", "resnet_tiny", "--dropout", "0.2", "--steps", "1", "--workdir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "--dropout: resnet_tiny has no dropout (its config has no dropout_rate field)" in err
    assert "mlp" in err and not (tmp_path / "r").exists()
