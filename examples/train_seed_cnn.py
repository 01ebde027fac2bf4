"""Train the seed document's Keras CNN with zoo's library API, as in your own JAX project.

    python examples/train_seed_cnn.py --steps 600 --workdir runs/example-cnn

Shows the pieces a user composes: the registry model, the digits data shaped
for it, an optax optimizer, a jitted train step, and an orbax checkpoint of
the result (see zoo.train.train_and_evaluate for the full loop with resume).
"""

import argparse
import os

import jax
import numpy as np
from tqdm import tqdm

import zoo
from zoo.data import BatchSchedule, load_dataset, train_batch
from zoo.train import Checkpointer, OptimizerConfig, create_train_state, evaluate, eval_step, make_optimizer, train_step


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=600, help="optimizer steps")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (the seed compiles with adam)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default="runs/example-seed-cnn", help="where the final checkpoint goes")
    args = parser.parse_args()

    model = zoo.create_model("seed_cnn")  # a flax.linen.Module, 225,034 parameters
    data = load_dataset("digits", model.config)  # [N, 28, 28, 1] images
    schedule = BatchSchedule(data.num_train, args.batch_size, args.seed)
    tx = make_optimizer(OptimizerConfig(name="adam", learning_rate=args.lr), args.steps)
    state = create_train_state(model, tx, seed=args.seed)
    step_fn, eval_fn = jax.jit(train_step), jax.jit(eval_step)

    for step in (bar := tqdm(range(args.steps), desc="seed_cnn")):
        state, metrics = step_fn(state, train_batch(data, schedule, step, augment="shift:2"))
        if step % 20 == 0:
            bar.set_postfix(loss=f"{float(metrics['loss']):.4f}")

    test = evaluate(eval_fn, state, data.test, batch_size=256)
    print(f"test accuracy {test['accuracy']:.4f}  test loss {test['loss']:.4f}")
    probs = jax.nn.softmax(model.apply({"params": state.params}, data.test["inputs"][:5], train=False))
    print("first test digits:", data.test["label"][:5].tolist(), "predicted:", np.argmax(probs, -1).tolist())

    with Checkpointer(os.path.join(args.workdir, "checkpoints"), best_metric=None, async_save=False) as ckpt:
        ckpt.save(args.steps, state.checkpoint_items(), {"model": "seed_cnn", "test": test})
    print(f"checkpoint: {os.path.abspath(args.workdir)}/checkpoints/{args.steps}")


if __name__ == "__main__":
    main()
