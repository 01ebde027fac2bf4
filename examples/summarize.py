"""Summarization with T5: Python standard-library docstrings -> their one-line summary, against the lead baseline.

    python examples/summarize.py                              # t5_tiny from scratch on docstrings
    python examples/summarize.py --init path/to/hf-t5-dir     # start from a local Hugging Face T5 checkpoint
    zoo generate --workdir runs/example-summarize --input "def f(x): Return x squared. ..."

The data (``docstrings``, ``zoo.data.seq2seq``): for every public function of the standard
library's modules in ``DOCSTRING_MODULES``, the input is ``def NAME(SIGNATURE): `` and the
docstring's body (or, for a one-line docstring, the function's code), the target the
docstring's one-line summary (PEP 257).  The split is by module: no function of a held-out
module is seen in training.  Training is teacher-forced (``zoo.tasks.seq2seq``, task
``summarization``); every checkpoint is scored by greedy decoding of the held-out modules
(ROUGE-L F from rouge-score) and the best ROUGE-L checkpoint is kept.  The script then prints,
measured in this run on the same held-out functions, the ROUGE-L of the **lead baseline** (the
first sentence of the input, ``zoo.data.seq2seq.lead_sentence``) and of the model's greedy and
4-beam summaries, and a few held-out summaries.  With ``--init`` the model is the checkpoint's
(``zoo.from_pretrained``; ``--input-length`` / ``--target-length`` still apply) and so is the
tokenizer, when the directory has a ``tokenizer.json``; Adam, cosine decay, warm-up.
"""

import argparse
import os

from zoo.data import load_dataset
from zoo.data.seq2seq import docstring_pairs, lead_sentence
from zoo.tasks import text_metrics
from zoo.train import OptimizerConfig, TrainConfig, train_and_evaluate
from zoo.train.generate import best_step, decode_split, pretrained_start
from zoo.train.loop import load_run


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="t5_tiny")
    parser.add_argument("--init", default=None, help="a local Hugging Face T5 checkpoint directory to start from")
    parser.add_argument("--input-length", type=int, default=64, help="source tokens (longer inputs are cut)")
    parser.add_argument("--target-length", type=int, default=48, help="summary tokens, EOS included")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--dropout", type=float, default=0.1, help="dropout rate of the model")
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=6, help="held-out summaries to print")
    parser.add_argument("--workdir", default=os.path.join("runs", "example-summarize"))
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()

    data, overrides, initial = "docstrings", {}, None
    if args.init:
        overrides, initial, tokenizer = pretrained_start(args.init, "summarization")
        if tokenizer:
            data += f":tokenizer={tokenizer}"
    overrides.update(task="summarization", input_shape=(args.input_length,), target_length=args.target_length,
                     dropout_rate=args.dropout)
    config = TrainConfig(model=args.model, model_overrides=overrides, data=data, steps=args.steps,
                         batch_size=args.batch_size, checkpoint_every=args.checkpoint_every, seed=args.seed,
                         optimizer=OptimizerConfig(learning_rate=args.lr, schedule="cosine", warmup_steps=100))
    result = train_and_evaluate(config, workdir=args.workdir, progress=not args.no_progress, initial_params=initial)
    print(f"{args.model} on {data}: {result['steps']} steps of batch {args.batch_size}, "
          f"{result['params']:,} parameters, final test loss {result['test_loss']:.4f}")

    best = best_step(result, "rouge_l")
    model, state, _ = load_run(args.workdir, best)
    print(f"the best held-out ROUGE-L checkpoint: step {best}")
    dataset = load_dataset(data, model.config)
    refs, sources = list(dataset.text.test_targets), list(dataset.text.test_sources)
    lead = text_metrics([lead_sentence(s) for s in sources], refs)
    modules = docstring_pairs()[2]
    print(f"held-out: {len(refs)} functions of {len(modules)} modules never seen in training "
          f"({', '.join(modules[:4])}, ...); lead baseline ROUGE-L {lead['rouge_l']:.2f}")
    outputs = {}
    for beams in (1, 4):
        ids = decode_split(model, state.params, dataset.test, num_beams=beams)
        outputs[beams] = [dataset.text.decode(row) for row in ids]
        m = text_metrics(outputs[beams], refs)
        print(f"{args.model} {'greedy' if beams == 1 else '4 beams'}: ROUGE-L {m['rouge_l']:.2f} "
              f"({m['rouge_l'] - lead['rouge_l']:+.2f} over the lead baseline), BLEU {m['bleu']:.2f}")
    print("held-out summaries (function | greedy output | reference):")
    step = max(1, len(refs) // max(args.show, 1))
    for i in range(0, len(refs), step)[:args.show]:
        print(f"  {sources[i].split(':')[0][4:60]} | {outputs[1][i]} | {refs[i]}")


if __name__ == "__main__":
    main()
