"""Machine translation with T5: train on locale-rendered phrases, score held-out values by decoding.

    python examples/translate.py                              # t5_tiny, English -> German
    python examples/translate.py --pair de-fr                 # German -> French
    python examples/translate.py --init path/to/hf-t5-dir     # start from a local Hugging Face T5 checkpoint
    zoo generate --workdir runs/example-translate/en-de --input "Friday, March 5, 2021"

The data (``translate:SRC-TGT``, ``zoo.data.seq2seq``) renders numbers, ordinals, dates, times
and amounts of money in both languages with num2words and Babel; the test values are never
seen in training.  Training is teacher-forced (``zoo.tasks.seq2seq``); every checkpoint is
scored by greedy decoding of the test split (BLEU and chrF from sacrebleu, exact match), and
the best BLEU checkpoint is kept.  The script then prints BLEU, chrF and exact match of greedy
and 4-beam decoding and a few held-out translations.  With ``--init`` the model is the
checkpoint's (``zoo.from_pretrained``) and so is the tokenizer, when the directory has a
``tokenizer.json``; Adam, cosine decay, warm-up.
"""

import argparse
import os

from zoo.data import load_dataset
from zoo.tasks import text_metrics
from zoo.train import OptimizerConfig, TrainConfig, train_and_evaluate
from zoo.train.generate import decode_split, pretrained_start
from zoo.train.loop import load_run


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pair", default="en-de", help="SRC-TGT among en, de, fr, es, it")
    parser.add_argument("--model", default="t5_tiny")
    parser.add_argument("--init", default=None, help="a local Hugging Face T5 checkpoint directory to start from")
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--checkpoint-every", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=6, help="held-out translations to print")
    parser.add_argument("--workdir", default=None, help="default runs/example-translate/PAIR")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    workdir = args.workdir or os.path.join("runs", "example-translate", args.pair)

    data, overrides, initial = f"translate:{args.pair}", {}, None
    if args.init:
        overrides, initial, tokenizer = pretrained_start(args.init, "translation")
        if tokenizer:
            data += f",tokenizer={tokenizer}"
    config = TrainConfig(model=args.model, model_overrides=overrides, data=data, steps=args.steps,
                         batch_size=args.batch_size, checkpoint_every=args.checkpoint_every, seed=args.seed,
                         optimizer=OptimizerConfig(learning_rate=args.lr, schedule="cosine", warmup_steps=100))
    result = train_and_evaluate(config, workdir, progress=not args.no_progress, initial_params=initial)
    print(f"{args.model} on {data}: {result['steps']} steps of batch {args.batch_size}, "
          f"{result['params']:,} parameters, final test loss {result['test_loss']:.4f}")

    model, state, _ = load_run(workdir)
    dataset = load_dataset(data, model.config)
    refs = list(dataset.text.test_targets)
    outputs = {}
    for beams in (1, 4):
        ids = decode_split(model, state.params, dataset.test, num_beams=beams)
        outputs[beams] = [dataset.text.decode(row) for row in ids]
        m = text_metrics(outputs[beams], refs)
        print(f"held-out ({len(refs)} values never seen in training), {'greedy' if beams == 1 else '4 beams'}: "
              f"BLEU {m['bleu']:.2f}, chrF {m['chrf']:.2f}, exact match {100 * m['exact_match']:.1f}%")
    print("held-out translations (source | 4-beam output | reference):")
    step = max(1, len(refs) // max(args.show, 1))
    for i in range(0, len(refs), step)[:args.show]:
        print(f"  {dataset.text.test_sources[i]} | {outputs[4][i]} | {refs[i]}")


if __name__ == "__main__":
    main()
