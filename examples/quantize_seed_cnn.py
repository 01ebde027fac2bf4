"""Int8 post-training quantization of the seed CNN, and int8 inference / QAT through qwix.

    python examples/quantize_seed_cnn.py --steps 300 --workdir runs/example-quantize

Trains the seed CNN (or reuses the run in --workdir), then prints the size of the
float32 and int8 weights and the test accuracy of: the float model, per-channel
int8 weights, qwix int8 weights and activations, and qwix int8 after a short
quantization-aware fine-tuning.
"""

import argparse

from zoo.techniques import quantize_run
from zoo.train import OptimizerConfig, TrainConfig, train_and_evaluate


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--qat-steps", type=int, default=50)
    parser.add_argument("--workdir", default="runs/example-quantize")
    args = parser.parse_args()
    train_and_evaluate(TrainConfig(model="seed_cnn", steps=args.steps, batch_size=64, checkpoint_every=args.steps,
                                   optimizer=OptimizerConfig(learning_rate=2e-3)), args.workdir, progress=False)
    r = quantize_run(args.workdir, qat_steps=args.qat_steps)
    print(f"weights: {r['float32_bytes']:,} bytes float32 -> {r['int8_bytes']:,} bytes int8 "
          f"({r['size_ratio']:.3f}x); largest rounding error {r['max_weight_error_in_steps']:.3f} steps")
    print(f"test accuracy  float32                        {r['accuracy_float']:.4f}")
    print(f"               int8 weights (per channel)     {r['accuracy_int8_weights']:.4f}")
    layers = ", ".join(r["qwix_int8_layers"])
    print(f"               qwix int8 weights+activations  {r['accuracy_qwix_int8']:.4f}  ({layers})")
    if args.qat_steps:
        print(f"               qwix int8 after {args.qat_steps} QAT steps    {r['accuracy_qat_int8']:.4f}")


if __name__ == "__main__":
    main()
