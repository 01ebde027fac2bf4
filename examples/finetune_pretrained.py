"""Fine-tune a Hugging Face image classifier (ResNet or ViT) from a local directory on the bundled digits.

    python examples/finetune_pretrained.py --hf-dir path/to/microsoft-resnet-50 --image-size 64 --steps 200
    python examples/finetune_pretrained.py --hf-dir path/to/google-vit-base-patch16-224 --freeze-backbone

The directory is what ``save_pretrained`` (transformers' or ``zoo.save_pretrained``) writes (``config.json`` + ``model.safetensors``;
zoo never downloads: fetch one elsewhere with ``huggingface-cli download microsoft/resnet-50
--local-dir DIR``).  The script

1. imports the checkpoint into a zoo model (every tensor mapped, BatchNorm statistics included),
2. replaces its classifier head with a fresh 10-way head, keeping the backbone
   (``zoo.models.replace_head``),
3. serves the digits as RGB images at the model's resolution, normalised with the
   ImageNet statistics the checkpoint was trained with, and
4. fine-tunes with AdamW (or, ``--freeze-backbone``, trains only the head: a linear probe),
   then reports the test accuracy.
"""

import argparse
import json
import os

import jax
import numpy as np
import optax
from tqdm import tqdm

from zoo.data import BatchSchedule, load_digits_arrays, to_layout
from zoo.data.images import IMAGENET_MEAN, IMAGENET_STD, make_batch_transform, normalize, parse_augment
import zoo
from zoo.convert import hf as hf_io
from zoo.models import replace_head
from zoo.train import Checkpointer, evaluate, eval_step, make_schedule, OptimizerConfig, train_step
from zoo.train.steps import with_batch_transform
from zoo.tasks import task_for
from zoo.train.state import TrainState


def load_classifier(path, image_size):
    """``(model, variables)`` of the checkpoint in ``path``, dispatching on its ``model_type``."""
    model_type = hf_io.read_config(path).get("model_type")
    if model_type == "resnet":
        size = image_size or 224
        return zoo.from_pretrained(path, input_shape=(size, size, 3))
    if model_type == "vit":
        model, variables = zoo.from_pretrained(path)
        if image_size and image_size != model.config.input_shape[0]:
            raise SystemExit(f"a ViT's position embeddings fix its image size: {model.config.input_shape[0]}, "
                             f"not --image-size {image_size}")
        return model, variables
    raise SystemExit(f"{path}: model_type {model_type!r} is not supported here (resnet or vit)")


def digits_as_rgb(images, size):
    """Digits ``[N, 8, 8]`` -> ``[N, size, size, 3]`` ImageNet-normalised RGB (bilinear upsampling)."""
    x = to_layout(images, "image", (28, 28, 1))
    x = jax.image.resize(x, (x.shape[0], size, size, 1), "bilinear")
    return np.asarray(normalize(np.repeat(np.asarray(x), 3, axis=-1), IMAGENET_MEAN, IMAGENET_STD))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hf-dir", required=True, help="local Hugging Face checkpoint directory")
    parser.add_argument("--image-size", type=int, default=None,
                        help="ResNet input resolution (default 224; smaller is faster); a ViT keeps its own")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3, help="peak AdamW learning rate (warmup + cosine)")
    parser.add_argument("--freeze-backbone", action="store_true", help="train only the new head")
    parser.add_argument("--augment", default="crop:2", help="on-device augmentation (zoo.data.images)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default="runs/example-finetune")
    args = parser.parse_args()

    model, variables = load_classifier(args.hf_dir, args.image_size)
    print(f"loaded {type(model).__name__} with {model.config.num_classes} classes from {args.hf_dir}")
    model, variables = replace_head(model, variables, 10, jax.random.key(args.seed))

    size = model.config.input_shape[0]
    x_train, y_train, x_test, y_test = load_digits_arrays()
    x_train, x_test = digits_as_rgb(x_train, size), digits_as_rgb(x_test, size)

    lr = make_schedule(OptimizerConfig(learning_rate=args.lr, schedule="cosine", warmup_steps=args.steps // 10),
                       args.steps)
    tx = optax.adamw(lr, weight_decay=1e-4)
    if args.freeze_backbone:
        labels = {name: ("head" if name == "head" else "frozen") for name in variables["params"]}
        tx = optax.multi_transform({"head": tx, "frozen": optax.set_to_zero()}, labels)
    params = variables["params"]
    state = TrainState(step=np.zeros((), np.int32), params=params, opt_state=tx.init(params),
                       model_state={k: v for k, v in variables.items() if k != "params"},
                       rng=jax.random.key_data(jax.random.key(args.seed)), apply_fn=model.apply, tx=tx,
                       task=task_for(model))
    transform = make_batch_transform(parse_augment(args.augment), 10)
    step_fn = jax.jit(with_batch_transform(train_step, transform) if transform else train_step)
    eval_fn = jax.jit(eval_step)

    before = evaluate(eval_fn, state, {"inputs": x_test, "label": y_test}, 64)
    schedule = BatchSchedule(len(x_train), args.batch_size, args.seed)
    for step in (bar := tqdm(range(args.steps), desc="fine-tune")):
        idx = schedule.indices(step)
        state, metrics = step_fn(state, {"inputs": x_train[idx], "label": y_train[idx]})
        if step % 10 == 0:
            bar.set_postfix(loss=f"{float(metrics['loss']):.4f}")
    after = evaluate(eval_fn, state, {"inputs": x_test, "label": y_test}, 64)
    print(f"test accuracy {after['accuracy']:.4f} (new head before fine-tuning: {before['accuracy']:.4f})")

    with Checkpointer(os.path.join(args.workdir, "checkpoints"), best_metric=None, async_save=False) as ckpt:
        ckpt.save(args.steps, state.checkpoint_items(), {"hf_dir": os.path.abspath(args.hf_dir), "test": after})
    print(json.dumps({"test_accuracy": after["accuracy"], "before": before["accuracy"], "steps": args.steps}))


if __name__ == "__main__":
    main()
