"""De-identification: train a BERT PII tagger on Faker sentences, score it against regular expressions and
Presidio on held-out sentences (templates and locales never seen in training), and de-identify a few sentences.

    python examples/deidentify.py                      # the defaults: ~20 min on a shared 2-core CPU
    python examples/deidentify.py --no-presidio --steps 300

Trains ``bert_pii`` (2 layers, 128 wide, 13 BIO tags) on ``--data pii:train=N,test=M``
(``zoo.data.pii``), then prints entity-level precision, recall and F1 (seqeval) of the
tagger, the regular-expression peer and Presidio's analyzer (``pip install 'zoo[pii-peers]'``;
reported as unavailable when it is not installed), all on the same held-out sentences.
The same run de-identifies files with ``zoo deidentify --workdir WORKDIR input.txt``.
"""

import argparse
import time

from zoo.data import pii
from zoo.techniques.deidentify import PiiTagger, compare_on_pii, format_scores
from zoo.train import OptimizerConfig, TrainConfig, train_and_evaluate

SAMPLES = (
    "Hi, I'm Jane Doe, born 14/02/1987; reach me at jane.doe@mailbox.org or +44 7700 900123.",
    "Ship the parcel to 221B Baker Street, London NW1 6XE, passport number K12345678.",
    "The meeting moved to room 12 at 3 pm; nothing personal here.",
)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--train", type=int, default=6000, help="training sentences")
    parser.add_argument("--test", type=int, default=500, help="held-out sentences")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default="runs/deidentify")
    parser.add_argument("--no-presidio", action="store_true", help="skip the Presidio peer")
    args = parser.parse_args()
    start = time.time()
    data = f"pii:train={args.train},test={args.test}"
    config = TrainConfig(model="bert_pii", data=data, steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                         checkpoint_every=args.steps, log_every=50,
                         optimizer=OptimizerConfig(learning_rate=args.lr, schedule="cosine",
                                                   warmup_steps=max(1, args.steps // 20)))
    summary = train_and_evaluate(config, args.workdir, progress=True)
    print(f"trained bert_pii {summary['steps']} steps on {data}: held-out tag accuracy "
          f"{summary['test_accuracy']:.4f} ({time.time() - start:.0f} s)")
    tagger = PiiTagger.from_run(args.workdir)
    _, test = pii.pii_corpus(args.train, args.test, args.seed)
    report = compare_on_pii(tagger, test, presidio=not args.no_presidio)
    print(f"\nentity-level scores on {len(test)} held-out sentences (templates and locales unseen in training):")
    print(format_scores(report))
    print("\nwhich novelty hurts: F1 on 200 sentences of one unseen factor at a time")
    for label, templates, locales in (("training templates, held-out locales", pii.TRAIN_TEMPLATES, pii.TEST_LOCALES),
                                      ("held-out templates, training locales", pii.TEST_TEMPLATES, pii.TRAIN_LOCALES)):
        mixed = pii.generate_sentences("test", 200, args.seed + 1, templates=templates, locales=locales)
        scores = compare_on_pii(tagger, mixed, presidio=False)
        print(f"  {label}: tagger {scores['tagger']['f1']:.3f}, regex {scores['regex']['f1']:.3f}")
    print("\nde-identified:")
    for text in SAMPLES + tuple(s.text for s in test[:3]):
        print(f"  {text}\n  -> {tagger.deidentify(text)}")
    print(f"\ntotal {time.time() - start:.0f} s; de-identify files with: zoo deidentify --workdir {args.workdir} "
          "input.txt")


if __name__ == "__main__":
    main()
