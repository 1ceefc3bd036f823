"""Training throughput with the real input pipeline against the bare model step.

The pipeline (index the pre-resized uint8 tensor, random crop + flip per image, normalise) must keep
training at >= 90% of the throughput of model steps on a batch that is already prepared.

    .venv/bin/python benchmarks/input_pipeline.py --data ../shared/data/fer2013/fer2013.csv.gz
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from edgefer.data import Preprocess, augment, load_fer2013, resize_once
from edgefer.models import build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", default="shufflenet_asp_sfp")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    began = time.perf_counter()
    train = load_fer2013(args.data, splits=["Training"])["Training"]
    loaded = time.perf_counter()
    pre = Preprocess.fit(train.images, args.size)
    images = resize_once(train.images, pre.resize)
    labels = torch.from_numpy(train.labels)
    prepared = time.perf_counter()
    print(f"decode {loaded - began:.1f} s, resize once to {pre.resize} px {prepared - loaded:.1f} s (not per epoch)")

    model = build(args.model, wavelet="haar").train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    generator = torch.Generator().manual_seed(0)
    fixed_x = augment(images[: args.batch], pre, generator)
    fixed_y = labels[: args.batch]

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def bare() -> None:
        step(fixed_x, fixed_y)

    def pipeline() -> None:
        index = torch.randint(0, len(images), (args.batch,), generator=generator)
        step(augment(images[index], pre, generator), labels[index])

    bare()  # warm-up
    pipeline()
    samples: dict[str, list[float]] = {"bare model step": [], "with input pipeline": []}
    for _ in range(args.rounds):  # alternate, so machine noise lands on both
        for name, fn in (("bare model step", bare), ("with input pipeline", pipeline)):
            start = time.perf_counter()
            for _ in range(args.steps):
                fn()
            samples[name].append(args.steps * args.batch / (time.perf_counter() - start))
    rates = {name: statistics.median(values) for name, values in samples.items()}
    for name, rate in rates.items():
        print(f"{name:<22} {rate:7.1f} images/s")
    ratio = rates["with input pipeline"] / rates["bare model step"]
    print(f"pipeline / bare = {ratio:.3f} (goal >= 0.90)")


if __name__ == "__main__":
    main()
