"""Speech synthesis from scratch on FSDD: a label-to-mel model plus Griffin-Lim writes WAVs of spoken digits.

    python examples/keyword_spotting.py                 # first: the classifier that judges the voices
    python examples/text_to_speech.py                   # train tts_fsdd, write 100 WAVs, score them
    python examples/text_to_speech.py --kws-workdir runs/example-kws/standard --out runs/example-tts/wavs

tts_fsdd (zoo.models.tts) maps (digit word, voice) to 101 log-mel frames (1 s at 8 kHz, trained
on FSDD's onset-aligned training recordings with L1 + L2); zoo.data.audio.mel_to_wave inverts
them with Griffin-Lim (librosa).  100 utterances: each digit 10 times, the voices in turn
(6 speakers) and a new Griffin-Lim phase seed each time.  The zoo's own keyword-spotting
classifier (kws_cnn) then says which digit it hears; the figure is the fraction it gets right.
Listen to the WAVs in --out.  FSDD: CC BY-SA 4.0, see docs/speech.md.
"""

import argparse
import os

import jax.numpy as jnp
import numpy as np

from zoo.data import audio
from zoo.train import OptimizerConfig, TrainConfig, train_and_evaluate
from zoo.train.loop import load_run


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--utterances", type=int, default=100)
    parser.add_argument("--griffin-lim-iters", type=int, default=64)
    parser.add_argument("--workdir", default="runs/example-tts")
    parser.add_argument("--kws-workdir", default="runs/example-kws/standard",
                        help="a kws_cnn run (examples/keyword_spotting.py) that recognises the synthesized digits")
    parser.add_argument("--out", default=None, help="where the WAVs go (default WORKDIR/wavs)")
    args = parser.parse_args()
    if not os.path.isdir(os.path.join(args.kws_workdir, "checkpoints")):
        parser.error(f"no keyword-spotting run in {args.kws_workdir}; run examples/keyword_spotting.py first or "
                     "pass --kws-workdir")
    run_dir = os.path.join(args.workdir, "model")
    config = TrainConfig(model="tts_fsdd", data="fsdd", steps=args.steps, batch_size=args.batch_size,
                         checkpoint_every=args.steps,
                         optimizer=OptimizerConfig(learning_rate=args.lr, schedule="cosine", warmup_steps=50))
    result = train_and_evaluate(config, run_dir, progress=False)
    tts, state, _ = load_run(run_dir)
    voices = sorted(set(audio.load_recordings().speakers.tolist()))
    k = np.arange(args.utterances)
    digits, voice, seeds = k % 10, (k // 10) % len(voices), k // 10
    frames = np.asarray(tts.apply({"params": state.params}, jnp.asarray(np.stack([digits, 10 + voice], 1),
                                                                        jnp.int32)))
    out = args.out or os.path.join(args.workdir, "wavs")
    os.makedirs(out, exist_ok=True)
    import soundfile

    waves = []
    for i in k:
        wave = audio.mel_to_wave(frames[i], n_iter=args.griffin_lim_iters, seed=int(seeds[i]))
        soundfile.write(os.path.join(out, f"{audio.DIGIT_WORDS[digits[i]]}_{voices[voice[i]]}_{i}.wav"), wave,
                        audio.SAMPLE_RATE)
        waves.append(wave)
    kws, kws_state, _ = load_run(args.kws_workdir)
    logits = kws.apply({"params": kws_state.params}, jnp.asarray(audio.clips(waves, kws.config.input_shape[0])),
                       train=False)
    heard = np.argmax(np.asarray(logits), -1)
    accuracy = float(np.mean(heard == digits))
    print(f"tts_fsdd, {result['steps']} steps (test L1 {result['test_l1']:.4f} of [0, 1] mel units): "
          f"{args.utterances} synthesized utterances in {out}")
    print(f"  kws_cnn recognises {accuracy:.2%} of them as the intended digit")
    for d in range(10):
        wrong = heard[digits == d] != d
        if wrong.any():
            print(f"    {audio.DIGIT_WORDS[d]}: heard as {[audio.DIGIT_WORDS[h] for h in heard[digits == d][wrong]]}")


if __name__ == "__main__":
    main()
