"""What a teacher costs a distillation run: ``--teacher-mode online`` against ``fixed``.

``online`` runs the teacher on every augmented batch the student sees; ``fixed`` runs it once, on
each training face's centre crop and its mirror image, and caches the probabilities. Measured with
the code training uses (``edgefer.train.distill.Teacher``), round-robin, one repetition of each at
a time, so that a change in machine load hits every row alike:

* the student's SGD step (forward, backward, update) on a batch;
* the teacher's forward passes on that batch (``Teacher.probs``): what ``online`` adds to a step;
* the teacher on ``--faces`` raw faces (``Teacher.centre_probs``): what ``fixed`` costs, once,
  scaled to the training set's size.

Only the architectures matter here, so any checkpoints of the teacher's members will do.

    .venv/bin/python benchmarks/distill_cost.py --teacher runs/long/resnet18_48/last,runs/long/shufflenet_asp_sfp/last \
        --json docs/distill_cost.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from edgefer.bench.profiling import parse_pids, paused
from edgefer.data import FER2013_CLASSES
from edgefer.models import build
from edgefer.train.distill import Teacher

TRAINING_FACES = 28_709  # FER2013 Training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", required=True, help="CKPT[,CKPT...]: the teacher's members")
    parser.add_argument("--student", default="shufflenet_asp_sfp:96", help="NAME:PX")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--faces", type=int, default=1024, help="raw faces for the fixed teacher's one pass")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pause", default="", help="PIDs to pause while timing (training in the background)")
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    name, size = args.student.split(":")
    size = int(size)
    student = build(name, **({"wavelet": "haar"} if "sfp" in name else {})).train()
    optimizer = torch.optim.SGD(student.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    teacher = Teacher.load(args.teacher.split(","), FER2013_CLASSES)
    x01 = torch.rand(args.batch, 1, size, size)
    y = torch.randint(0, 7, (args.batch,))
    faces = np.random.default_rng(0).integers(0, 256, (args.faces, 48, 48), dtype=np.uint8)

    def student_step() -> None:
        loss = F.cross_entropy(student(x01.expand(-1, 3, -1, -1)), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    jobs = {
        "student step": student_step,
        "teacher on the batch (online)": lambda: teacher.probs(x01, 4.0),
        f"teacher on {args.faces} faces (fixed)": lambda: teacher.centre_probs(faces, 4.0),
    }
    times: dict[str, list[float]] = {k: [] for k in jobs}
    with paused(parse_pids(args.pause)):
        for job in jobs.values():  # warm-up
            job()
        for _ in range(args.repeat):
            for key, job in jobs.items():
                began = time.perf_counter()
                job()
                times[key].append(time.perf_counter() - began)
    median = {k: statistics.median(v) for k, v in times.items()}
    steps = -(-TRAINING_FACES // args.batch)
    step, online = median["student step"], median["teacher on the batch (online)"]
    fixed_once = median[f"teacher on {args.faces} faces (fixed)"] * TRAINING_FACES / args.faces
    summary = {
        "student_ms_per_step": 1000 * step,
        "teacher_ms_per_step_online": 1000 * online,
        "online_minutes_per_epoch": steps * (step + online) / 60,
        "fixed_minutes_per_epoch": steps * step / 60,
        "fixed_minutes_once": fixed_once / 60,
        "online_extra_per_epoch": online / step,
    }
    print(f"threads {args.threads}, batch {args.batch}, medians of {args.repeat}; teacher: {args.teacher}")
    for key, seconds in median.items():
        print(f"  {key:<36} {1000 * seconds:9.1f} ms")
    print(
        f"per epoch ({steps} steps): online {summary['online_minutes_per_epoch']:.1f} min "
        f"(+{100 * summary['online_extra_per_epoch']:.0f}%), fixed {summary['fixed_minutes_per_epoch']:.1f} min "
        f"after {summary['fixed_minutes_once']:.1f} min once"
    )
    if args.json:
        rows = {k: [round(1000 * t, 2) for t in v] for k, v in times.items()}
        meta = {
            "teacher": args.teacher.split(","),
            "student": args.student,
            "batch": args.batch,
            "threads": args.threads,
        }
        Path(args.json).write_text(json.dumps({**meta, "summary": summary, "ms": rows}, indent=1))


if __name__ == "__main__":
    main()
