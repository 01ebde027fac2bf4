"""Fine-tune BERT for sentiment classification with zoo's training loop.

    python examples/finetune_bert.py                         # bert_nano from scratch on the shipped set
    python examples/finetune_bert.py --model bert_tiny --steps 300
    python examples/finetune_bert.py --pretrained DIR        # a local Hugging Face BERT checkpoint + its tokenizer
    python examples/finetune_bert.py --data sst2             # online: Hugging Face datasets (needs the network)

Offline it trains on the 318 sentences shipped in zoo/data/text (256 train, 62
held out), tokenised with a WordPiece vocabulary built from the training
sentences, and prints the held-out accuracy (chance is 0.5).  With
``--pretrained DIR`` the encoder starts from that checkpoint (a new
classification head is initialised) and the sentences are tokenised with the
tokenizer saved in DIR.  Checkpoints and exact resume come from
``zoo.train.train_and_evaluate``: rerunning with the same --workdir continues.
"""

import argparse
import dataclasses

import jax
import numpy as np

from zoo.data import load_dataset
from zoo.train import OptimizerConfig, TrainConfig, load_run, train_and_evaluate


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="bert_nano", help="a registered BERT (bert_nano, bert_tiny, ...)")
    parser.add_argument("--pretrained", default=None, help="local Hugging Face BERT directory to fine-tune")
    parser.add_argument("--data", default="sentiment", help="sentiment (offline), imdb or sst2 (online)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3, help="peak AdamW learning rate (use ~3e-5 when --pretrained)")
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default="runs/finetune-bert")
    args = parser.parse_args()

    model_name, overrides, initial_params, data = args.model, {}, None, args.data
    if args.pretrained:
        import zoo

        model, variables = zoo.from_pretrained(args.pretrained, task="classification", num_classes=2,
                                               new_head=True, seed=args.seed, input_shape=(64,))
        model_name, initial_params = "bert_base", variables["params"]
        overrides = {f.name: getattr(model.config, f.name) for f in dataclasses.fields(model.config)}
        if data == "sentiment":
            data = f"sentiment:{args.pretrained}"  # tokenised with the checkpoint's own tokenizer
    optimizer = OptimizerConfig(name="adamw", learning_rate=args.lr, weight_decay=0.01, schedule="cosine",
                                warmup_steps=max(1, args.steps // 10))
    config = TrainConfig(model=model_name, model_overrides=overrides, data=data, steps=args.steps,
                         batch_size=args.batch_size, seed=args.seed, optimizer=optimizer,
                         checkpoint_every=args.checkpoint_every, log_every=10)
    summary = train_and_evaluate(config, args.workdir, initial_params=initial_params)
    print(f"{model_name} on {data}: {summary['steps']} steps, train loss {summary['train_loss']:.4f}, "
          f"held-out accuracy {summary['test_accuracy']:.4f} (chance 0.5)")

    model, state, _ = load_run(args.workdir)
    dataset = load_dataset(data, model.config)
    logits = jax.jit(lambda p, x: model.apply({"params": p}, x))(state.params, dataset.test["inputs"][:6])
    from zoo.data.text import load_sentiment_texts
    if data.startswith("sentiment"):
        texts = load_sentiment_texts()[2][:6]
        for text, label, probs in zip(texts, dataset.test["label"][:6], jax.nn.softmax(logits)):
            print(f"  {'pos' if label else 'neg'} -> P(pos)={float(probs[1]):.2f}  {text}")
    print(f"checkpoints: {summary['checkpoint_dir']}")
    return np.asarray(summary["test_accuracy"])


if __name__ == "__main__":
    main()
