"""Audio: the JAX log-mel front end against librosa, and the keyword-spotting train step against PyTorch.

    python benchmarks/audio.py [--batch 64] [--steps 5] [--repeats 3] [--write BENCHMARKS.md]

Front end: log-mel dB (256-point STFT every 80 samples, 40 Slaney mels, 8 kHz) of ``--batch``
one-second clips: zoo's jitted ``zoo.layers.audio.log_mel_spectrogram`` on the whole batch vs
``librosa.power_to_db(librosa.feature.melspectrogram(...))`` clip by clip (librosa has no batch
axis); seconds of audio per second of compute.  Train step: ``kws_cnn`` (front end inside the
jitted step; augmentation off so both sides do the same work) vs the same network in PyTorch
(``torch.stft`` + the same mel matrix + the same conv stack, eager), Adam, batches of
``--batch``; examples per second.  Rounds alternate between the two after a warm-up; medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from bench_common import command, header, write_section

SR, N_FFT, HOP, MELS = 8000, 256, 80, 40


def clips(batch: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(SR) / SR
    return (0.3 * np.sin(2 * np.pi * 220 * t)[None] + 0.05 * rng.standard_normal((batch, SR))).astype(np.float32)


def front_end_runners(x):
    import librosa

    from zoo.layers import audio

    fn = jax.jit(lambda w: audio.log_mel_spectrogram(w, sample_rate=SR, n_fft=N_FFT, hop_length=HOP, n_mels=MELS))
    xj = jnp.asarray(x)

    def zoo_run():
        fn(xj).block_until_ready()

    def librosa_run():
        for clip in x:
            librosa.power_to_db(librosa.feature.melspectrogram(y=clip, sr=SR, n_fft=N_FFT, hop_length=HOP,
                                                               n_mels=MELS))

    return zoo_run, librosa_run


def zoo_step_runner(x, y, steps):
    import zoo
    from zoo.train import create_train_state, train_step
    import optax

    model = zoo.create_model("kws_cnn", max_shift=0, time_masks=0, freq_masks=0)
    state = create_train_state(model, optax.adam(1e-3), seed=0)
    step = jax.jit(train_step)
    batch = {"inputs": jnp.asarray(x), "label": jnp.asarray(y)}
    holder = {"state": state}

    def run():
        s = holder["state"]
        for _ in range(steps):
            s, metrics = step(s, batch)
        jax.block_until_ready(metrics)
        holder["state"] = s

    return run, zoo.param_count("kws_cnn")


def torch_step_runner(x, y, steps):
    import torch
    from torch import nn

    from zoo.layers import audio

    torch.set_num_threads(2)
    mel = torch.tensor(audio.mel_filterbank(SR, N_FFT, MELS))
    window = torch.tensor(audio.hann_window(N_FFT, N_FFT))

    class KWS(nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = nn.ModuleList([nn.Conv2d(1, 16, 3, padding=1), nn.Conv2d(16, 32, 3, padding=1),
                                        nn.Conv2d(32, 64, 3, padding=1)])
            self.dense, self.drop, self.head = nn.Linear(12 * 5 * 64, 64), nn.Dropout(0.1), nn.Linear(64, 10)

        def forward(self, wave):
            spec = torch.stft(wave, N_FFT, HOP, window=window, center=True, pad_mode="constant",
                              return_complex=True).abs() ** 2  # [B, F, T]
            db = 10 * torch.log10(torch.clamp(spec.transpose(1, 2) @ mel, min=1e-10))  # [B, T, M]
            db = torch.maximum(db, db.amax((1, 2), keepdim=True) - 80)
            h = ((db - db.mean((1, 2), keepdim=True)) / (db.std((1, 2), keepdim=True, unbiased=False) + 1e-5))
            h = h[:, None]
            for conv in self.convs:
                h = torch.relu(nn.functional.max_pool2d(conv(h), 2))
            h = h.permute(0, 2, 3, 1).flatten(1)
            return self.head(self.drop(torch.relu(self.dense(h))))

    model = KWS().train()
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    xt, yt = torch.tensor(x), torch.tensor(y, dtype=torch.long)

    def run():
        for _ in range(steps):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(xt), yt)
            loss.backward()
            opt.step()

    return run, params


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5, help="train steps per timed round")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--note", default="", help="a sentence added to the block (e.g. what else ran)")
    parser.add_argument("--write", metavar="FILE")
    args = parser.parse_args(argv)
    head = header(("librosa", "torch"))
    print(head)
    x = clips(args.batch)
    y = np.arange(args.batch, dtype=np.int32) % 10
    seconds = args.batch * 1.0  # one second per clip

    zoo_fe, librosa_fe = front_end_runners(x)
    zoo_fe(), librosa_fe()  # compile / warm up
    fe = [(timed(zoo_fe), timed(librosa_fe)) for _ in range(args.repeats)]
    zoo_step, zoo_params = zoo_step_runner(x, y, args.steps)
    torch_step, torch_params = torch_step_runner(x, y, args.steps)
    if zoo_params != torch_params:
        raise SystemExit(f"the PyTorch peer has {torch_params:,} parameters, kws_cnn {zoo_params:,}")
    zoo_step(), torch_step()
    st = [(timed(zoo_step), timed(torch_step)) for _ in range(args.repeats)]

    fe_zoo = statistics.median(seconds / a for a, _ in fe)
    fe_lib = statistics.median(seconds / b for _, b in fe)
    fe_ratio = statistics.median(b / a for a, b in fe)
    n = args.batch * args.steps
    st_zoo = statistics.median(n / a for a, _ in st)
    st_torch = statistics.median(n / b for _, b in st)
    st_ratio = statistics.median(b / a for a, b in st)
    tables = ("| measurement | zoo | peer | zoo / peer |\n|---|---:|---:|---:|\n"
              f"| log-mel front end, {args.batch} x 1 s at 8 kHz (audio s / s) | {fe_zoo:,.0f} | librosa "
              f"{fe_lib:,.0f} | {fe_ratio:.2f}x |\n"
              f"| `kws_cnn` train step ({zoo_params:,} params), batch {args.batch} (examples / s) | {st_zoo:,.0f} | "
              f"PyTorch eager {st_torch:,.0f} | {st_ratio:.2f}x |\n")
    print(tables)
    print(f"load at the end: {__import__('os').getloadavg()[0]:.2f}")
    if args.write:
        method = (f"Reproduce: `{command('audio.py', sys.argv[1:] if argv is None else argv)}`. {args.repeats} "
                  f"alternating rounds after a warm-up; medians; above 1: zoo is faster. " + __doc__.split("\n\n")[2]
                  .replace("\n", " "))
        write_section(args.write, "audio.py", title="Audio: front end and keyword-spotting train step, CPU",
                      measured_on=head, method=method, tables=tables, note=args.note)


if __name__ == "__main__":
    main()
