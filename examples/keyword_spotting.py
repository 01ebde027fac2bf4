"""Spoken-digit recognition on real recordings (FSDD) with the keyword-spotting CNN.

    python examples/keyword_spotting.py                       # standard split (index 0-4 = test)
    python examples/keyword_spotting.py --held-out all        # + one run per held-out speaker
    python examples/keyword_spotting.py --fsdd DIR            # another copy of the recordings

The model takes the raw 8 kHz waveform; its log-mel front end (zoo.layers.audio) and its
augmentation (time shift, SpecAugment, keyed by seed and step) run inside the jitted train
step.  Same as ``zoo train kws_cnn --data fsdd --steps 1500 --batch-size 64 --lr 2e-3
--schedule cosine --warmup-steps 50``.  The Free Spoken Digit Dataset is CC BY-SA 4.0
(Jakobovski et al.); see docs/speech.md.
"""

import argparse
import os

from zoo.data.audio import load_recordings
from zoo.train import OptimizerConfig, TrainConfig, train_and_evaluate


def run(data: str, args, workdir: str) -> dict:
    config = TrainConfig(model="kws_cnn", data=data, steps=args.steps, batch_size=args.batch_size,
                         checkpoint_every=args.steps, seed=args.seed,
                         optimizer=OptimizerConfig(learning_rate=args.lr, schedule="cosine", warmup_steps=50))
    return train_and_evaluate(config, workdir, progress=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fsdd", default=None, help="directory of FSDD's WAV files (default ../shared/data/fsdd/"
                                                     "recordings next to the repository)")
    parser.add_argument("--held-out", default=None, help="'all' or a speaker name: also train on the other "
                                                         "speakers and test on this one")
    parser.add_argument("--workdir", default="runs/example-kws")
    args = parser.parse_args()
    base = "fsdd" if args.fsdd is None else f"fsdd:{args.fsdd}"
    result = run(base, args, os.path.join(args.workdir, "standard"))
    print(f"kws_cnn, {result['steps']} steps of batch {args.batch_size}: standard split (300 test recordings) "
          f"accuracy {result['test_accuracy']:.4f}")
    if args.held_out:
        speakers = (sorted(set(load_recordings(args.fsdd).speakers.tolist())) if args.held_out == "all"
                    else [args.held_out])
        sep = "," if args.fsdd else ":"
        for speaker in speakers:
            held = run(f"{base}{sep}speaker={speaker}", args, os.path.join(args.workdir, f"speaker-{speaker}"))
            print(f"  held-out speaker {speaker:<9} (500 recordings) accuracy {held['test_accuracy']:.4f}")


if __name__ == "__main__":
    main()
