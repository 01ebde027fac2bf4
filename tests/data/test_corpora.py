"""Real-corpus loaders on tiny fixtures written in the published formats (HF Parquet / Arrow, SQuAD JSON)."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import zoo
from zoo.data import load_dataset
from zoo.tasks import get_task

T5 = zoo.get_config("t5_tiny")
T5_SUM = zoo.get_config("t5_tiny", task="summarization", target_length=12)

EN = ["the house is red", "the cat sleeps", "a green tree", "we eat bread", "the sun shines", "I read a book"]
DE = ["das Haus ist rot", "die Katze schläft", "ein grüner Baum", "wir essen Brot", "die Sonne scheint",
      "ich lese ein Buch"]


def _translations(en, de):
    return pa.table({"translation": [{"de": d, "en": e} for d, e in zip(de, en)]})


def _write_arrow_stream(table, path):  # what datasets' save_to_disk and its cache write
    path.parent.mkdir(parents=True, exist_ok=True)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)


@pytest.fixture(scope="module")
def wmt_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("wmt")
    parquet = root / "wmt14" / "de-en"  # the Hub's Parquet files of config de-en
    parquet.mkdir(parents=True)
    train_en, train_de = EN * 5, DE * 5
    # the test split: two new sentences and one that also occurs in training (left out)
    test_en, test_de = ["the dog barks", "a small house", EN[0]], ["der Hund bellt", "ein kleines Haus", DE[0]]
    pq.write_table(_translations(train_en[:20], train_de[:20]), parquet / "train-00000-of-00002.parquet")
    pq.write_table(_translations(train_en[20:], train_de[20:]), parquet / "train-00001-of-00002.parquet")
    pq.write_table(_translations(test_en, test_de), parquet / "test-00000-of-00001.parquet")
    pq.write_table(_translations(EN[:2], DE[:2]), parquet / "validation-00000-of-00001.parquet")
    arrow = root / "saved"  # datasets.DatasetDict.save_to_disk
    _write_arrow_stream(_translations(train_en, train_de), arrow / "train" / "data-00000-of-00001.arrow")
    _write_arrow_stream(_translations(test_en, test_de), arrow / "test" / "data-00000-of-00001.arrow")
    (arrow / "train" / "state.json").write_text("{}")
    return root / "wmt14", arrow


def test_wmt_parquet_and_arrow_load_the_same_pairs(wmt_dirs):
    parquet, arrow = wmt_dirs
    ds = load_dataset(f"wmt:{parquet},pair=en-de", T5)
    assert ds.num_train == 30 and ds.num_test == 2  # the test sentence seen in training is left out
    assert ds.text.test_sources == ("the dog barks", "a small house")
    assert ds.text.test_targets == ("der Hund bellt", "ein kleines Haus")
    labels = np.where(ds.test["labels"] < 0, 0, ds.test["labels"])
    assert [ds.text.decode(row) for row in labels] == list(ds.text.test_targets)
    same = load_dataset(f"wmt:{arrow},pair=en-de", T5)
    for split in ("train", "test"):
        for key in ds.train:
            np.testing.assert_array_equal(getattr(same, split)[key], getattr(ds, split)[key])
    # the config directory's name gives the direction when pair is left out; limit reads the first rows
    de_en = load_dataset(f"wmt:{parquet},limit=7", T5)
    assert de_en.num_train == 7 and de_en.text.train_sources[:2] == tuple(DE[:2])


def test_wmt_errors_name_what_was_expected(wmt_dirs, tmp_path):
    parquet, arrow = wmt_dirs
    with pytest.raises(ValueError, match=r"translations between \['de', 'en'\]; say which way with pair=SRC-TGT"):
        load_dataset(f"wmt:{arrow}", T5)
    with pytest.raises(ValueError, match=r"hold languages \['de', 'en'\], not 'fr'"):
        load_dataset(f"wmt:{parquet},pair=en-fr", T5)
    with pytest.raises(ValueError, match="wmt reads local files: pass the directory as wmt:DIR"):
        load_dataset("wmt", T5)
    with pytest.raises(ValueError, match="is not a directory"):
        load_dataset(f"wmt:{tmp_path / 'nowhere'}", T5)
    with pytest.raises(ValueError, match=r"needs train and test \(or validation\) files .* found none"):
        load_dataset(f"wmt:{tmp_path}", T5)
    pq.write_table(pa.table({"de": DE, "en": EN}), tmp_path / "train.parquet")
    pq.write_table(pa.table({"de": DE, "en": EN}), tmp_path / "test.parquet")
    with pytest.raises(ValueError, match=r"no column 'translation' \(expected \['translation'\], found \['de', 'en'\]"):
        load_dataset(f"wmt:{tmp_path},pair=en-de", T5)
    (tmp_path / "train.parquet").write_bytes(b"not parquet")
    with pytest.raises(ValueError, match=r"train.parquet is not a readable parquet file"):
        load_dataset(f"wmt:{tmp_path},pair=en-de", T5)
    with pytest.raises(ValueError, match="wmt takes the options .*limit=N.*got \\['beam'\\]"):
        load_dataset(f"wmt:{parquet},beam=4", T5)
    with pytest.raises(ValueError, match="wmt serves task 'translation'"):
        load_dataset(f"wmt:{parquet}", T5_SUM)


ARTICLES = ["Rain fell on the city today. Streets were flooded and schools closed early.",
            "The team won the final match. Fans celebrated in the main square until late.",
            "A new library opened downtown. It holds ten thousand books and a cafe.",
            "Prices of bread rose again. Bakers blame the cost of flour and energy."]
HIGHLIGHTS = ["Rain floods the city .\nSchools close early .", "Team wins the final .\nFans celebrate .",
              "New library opens .", "Bread prices rise ."]


@pytest.fixture(scope="module")
def summary_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("summaries")
    cnn = root / "cnn_dailymail" / "3.0.0"  # abisee/cnn_dailymail
    cnn.mkdir(parents=True)
    ids = [f"{i:040x}" for i in range(4)]
    pq.write_table(pa.table({"article": ARTICLES[:3] * 3, "highlights": HIGHLIGHTS[:3] * 3, "id": ids[:3] * 3}),
                   cnn / "train-00000-of-00001.parquet")
    pq.write_table(pa.table({"article": ARTICLES[3:], "highlights": HIGHLIGHTS[3:], "id": ids[3:]}),
                   cnn / "test-00000-of-00001.parquet")
    xsum = root / "xsum" / "default"  # the Hub's Parquet layout CONFIG/SPLIT/0000.parquet
    for split, rows in (("train", slice(0, 3)), ("validation", slice(3, 4))):
        (xsum / split).mkdir(parents=True)
        pq.write_table(pa.table({"document": ARTICLES[rows], "summary": [h.split("\n")[0] for h in HIGHLIGHTS[rows]],
                                 "id": ids[rows]}), xsum / split / "0000.parquet")
    return root / "cnn_dailymail", root / "xsum"


def test_cnn_dailymail_and_xsum_parquet(summary_dirs):
    cnn, xsum = summary_dirs
    ds = load_dataset(f"cnn_dailymail:{cnn}", T5_SUM)
    assert ds.num_train == 9 and ds.num_test == 1 and ds.text.test_sources == (ARTICLES[3],)
    assert ds.text.train_targets[0] == "Rain floods the city . Schools close early ."  # highlights, one line
    get_task("summarization").check_batch({k: v[:2] for k, v in ds.train.items()}, T5_SUM)
    # long=truncate (the default) cuts targets longer than target_length (12) keeping </s>; refuse names them
    assert (ds.train["labels"] >= 0).sum(1).max() == 12 and ds.train["labels"][0, 11] == 1
    with pytest.raises(ValueError, match="example 0's source has .* tokens, more than the model's 8"):
        load_dataset(f"cnn_dailymail:{cnn},long=refuse", zoo.get_config("t5_tiny", task="summarization",
                                                                         input_shape=(8,)))
    xs = load_dataset(f"xsum:{xsum}", T5_SUM)  # no test split: validation is held out
    assert xs.num_train == 3 and xs.text.test_targets == ("Bread prices rise .",)
    with pytest.raises(ValueError, match=r"has no column 'document' \(expected \['document', 'summary'\]"):
        load_dataset(f"xsum:{cnn}", T5_SUM)
    with pytest.raises(ValueError, match="cnn_dailymail serves task 'summarization'.*--set task=summarization"):
        load_dataset(f"cnn_dailymail:{cnn}", T5)


def test_empty_examples_are_refused_or_skipped(tmp_path):
    pq.write_table(pa.table({"document": ARTICLES, "summary": ["One .", "", "Three .", "Four ."]}),
                   tmp_path / "train.parquet")
    pq.write_table(pa.table({"document": [ARTICLES[0] + " More."], "summary": ["Rain ."]}), tmp_path / "test.parquet")
    with pytest.raises(ValueError, match=r"row 1 of .*train.parquet has an empty summary; pass empty=skip"):
        load_dataset(f"xsum:{tmp_path}", T5_SUM)
    assert load_dataset(f"xsum:{tmp_path},empty=skip", T5_SUM).num_train == 3
    with pytest.raises(ValueError, match="empty must be refuse or skip"):
        load_dataset(f"xsum:{tmp_path},empty=maybe", T5_SUM)


BERT_QA = zoo.get_config("bert_nano", task="question_answering", num_classes=2)
CONTEXT = "The Eiffel Tower is in Paris. It was finished in 1889 and is 330 metres tall."


def _squad(version, questions):
    qas = []
    for i, (question, answer) in enumerate(questions):
        qa = {"id": f"q{i}", "question": question,
              "answers": [] if answer is None else [{"text": answer, "answer_start": CONTEXT.index(answer)}]}
        if version == "v2.0":
            qa["is_impossible"] = answer is None
        qas.append(qa)
    return {"version": version, "data": [{"title": "Eiffel", "paragraphs": [{"context": CONTEXT, "qas": qas}]}]}


def test_squad_json_v1_and_v2(tmp_path):
    train_q = [("Where is the Eiffel Tower?", "Paris"), ("When was it finished?", "1889"),
               ("How tall is it?", "330 metres")]
    for version, extra in (("v1.1", []), ("v2.0", [("Who painted it?", None)])):
        (tmp_path / version).mkdir()
        (tmp_path / version / f"train-{version}.json").write_text(json.dumps(_squad(version, train_q + extra)))
        (tmp_path / version / f"dev-{version}.json").write_text(json.dumps(_squad(version, train_q[:1] + extra)))
    v1 = load_dataset(f"squad:{tmp_path / 'v1.1'}", BERT_QA)
    get_task("question_answering").check_batch({k: v[:2] for k, v in v1.train.items()}, BERT_QA)
    from zoo.data.text import build_wordpiece_tokenizer
    texts = [CONTEXT] + [q for q, _ in train_q]
    tok = build_wordpiece_tokenizer(texts, BERT_QA.vocab_size)
    for row, (_, answer) in zip(range(3), train_q):
        start, end = v1.train["label"][row]
        assert tok.decode(v1.train["inputs"][row, start:end + 1]) == answer.lower()
    assert v1.train["token_type_ids"][0].max() == 1 and v1.num_test == 1
    v2 = load_dataset(f"squad:{tmp_path / 'v2.0'}", BERT_QA)
    assert v2.num_train == 4 and tuple(v2.train["label"][3]) == (0, 0)  # unanswerable: [CLS]
    with pytest.raises(ValueError, match=r"holds SQuAD 1.1 and 2.0; choose one with version=1.1 or version=2.0"):
        load_dataset(f"squad:{tmp_path}", BERT_QA)
    assert load_dataset(f"squad:{tmp_path},version=2.0", BERT_QA).num_train == 4
    # an answer past the model's length is left out of training
    short = load_dataset(f"squad:{tmp_path / 'v1.1'}", zoo.get_config("bert_nano", task="question_answering",
                                                                       input_shape=(16,)))
    assert short.num_train == 1
    bad = _squad("v1.1", train_q)
    bad["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = 3
    (tmp_path / "v1.1" / "train-v1.1.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=r"question 'q0': answer 'Paris' is not the context at answer_start=3"):
        load_dataset(f"squad:{tmp_path / 'v1.1'}", BERT_QA)
    (tmp_path / "v1.1" / "train-v1.1.json").write_text(json.dumps({"version": "v1.1"}))
    with pytest.raises(ValueError, match="is not SQuAD JSON"):
        load_dataset(f"squad:{tmp_path / 'v1.1'}", BERT_QA)
    with pytest.raises(ValueError, match="serves token ids for task 'question_answering'"):
        load_dataset(f"squad:{tmp_path / 'v2.0'}", zoo.get_config("bert_nano"))

