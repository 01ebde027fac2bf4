"""Speech to text from scratch on real recordings: a small Whisper-style model transcribes FSDD's spoken words.

    python examples/speech_to_text.py                          # standard split (index 0-4 = test)
    python examples/speech_to_text.py --held-out jackson       # + train on 5 speakers, test on the sixth
    zoo transcribe --workdir runs/example-stt/standard recording.wav     # prints e.g. "seven"

whisper_fsdd (``zoo.models.whisper.FSDD_OVERRIDES`` on whisper_micro: conv + transformer encoder over 8 kHz
log-mels, causal decoder
with cross-attention) is trained with teacher forcing on the words as characters ("seven" ->
s e v e n EOS), then transcribes greedily; the word error rate counts every decoded word
that is not the spoken one.  Adam 1e-3, cosine, 100 warm-up steps, batch 64.  FSDD: CC BY-SA 4.0, see
docs/speech.md.
"""

import argparse
import os

import numpy as np

from zoo.data import audio, load_dataset
from zoo.models.whisper import FSDD_OVERRIDES, greedy_decode
from zoo.tasks import word_error_rate
from zoo.train import OptimizerConfig, TrainConfig, train_and_evaluate
from zoo.train.loop import load_run


def train_and_score(data: str, args, workdir: str) -> tuple[float, dict]:
    config = TrainConfig(model="whisper_micro", model_overrides=FSDD_OVERRIDES, data=data, steps=args.steps, batch_size=args.batch_size,
                         checkpoint_every=args.steps, seed=args.seed,
                         optimizer=OptimizerConfig(learning_rate=args.lr, schedule="cosine", warmup_steps=100))
    result = train_and_evaluate(config, workdir, progress=False)
    model, state, _ = load_run(workdir)
    test = load_dataset(data, model.config).test
    ids = np.concatenate([np.asarray(greedy_decode(model, {"params": state.params}, test["inputs"][i:i + 256],
                                                   max_length=model.config.target_length))
                          for i in range(0, len(test["inputs"]), 256)])
    hyps = [audio.decode_text(row[1:]) for row in ids]
    refs = [audio.decode_text(np.where(row < 0, 0, row)) for row in test["labels"]]
    return word_error_rate(refs, hyps), result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--held-out", default=None, help="a speaker name, or 'all'")
    parser.add_argument("--workdir", default="runs/example-stt")
    args = parser.parse_args()
    wer, result = train_and_score("fsdd", args, os.path.join(args.workdir, "standard"))
    print(f"whisper_fsdd, {result['steps']} steps of batch {args.batch_size}: standard split (300 recordings) "
          f"WER {wer:.4f}")
    if args.held_out:
        speakers = (sorted(set(audio.load_recordings().speakers.tolist())) if args.held_out == "all"
                    else [args.held_out])
        for speaker in speakers:
            wer, _ = train_and_score(f"fsdd:speaker={speaker}", args, os.path.join(args.workdir, f"speaker-{speaker}"))
            print(f"  held-out speaker {speaker:<9} (500 recordings) WER {wer:.4f}")


if __name__ == "__main__":
    main()
