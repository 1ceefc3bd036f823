"""Is model B better than model A beyond noise? An exact McNemar test on the faces where they disagree.

Both models score the same faces (FER2013 PublicTest, ``shared/data/wild``'s real photos through the photo
pipeline, CK+'s posed photos zero-shot, and PublicTest and CK+ again through the photo pipeline, as
``cross_dataset.py`` does; a photo without a face counts as wrong for both). Only the faces one model gets right
and the other wrong carry information (:func:`edgefer.bench.significance.mcnemar`). Used to decide whether a new
model replaces a shipped one (docs/RESULTS.md, "The distilled student", "Seed 2 judged").
Probabilities come from ``cross_dataset.py``'s cache when it has them.

    .venv/bin/python benchmarks/paired_test.py default runs/student_la25 --json docs/student_vs_v2.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from cross_dataset import add_data_options, ensemble_probs, pipeline_crops, wild_faces

from edgefer.bench.significance import mcnemar
from edgefer.data import FER2013_CLASSES, load_ckplus_as_fer2013, load_test_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", help="the reference model, CKPT[+CKPT...] (e.g. default)")
    parser.add_argument("b", help="the challenger, CKPT[+CKPT...]")
    add_data_options(parser)
    parser.add_argument("--tta", default="flip", choices=["none", "flip", "tencrop"])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    cache = Path(args.probs_cache) if args.probs_cache else None
    test = load_test_split(args.data, FER2013_CLASSES)
    crops, labels, found = wild_faces(args.wild, args.cache, args.threads)
    ck = load_ckplus_as_fer2013(args.ckplus)
    pipe_crops, pipe_found, ck_crops, ck_found = pipeline_crops(args, test.images, ck.images)
    sets = {
        "fer2013": (test.images, np.asarray(test.labels), None),
        "wild": (crops, labels, found),
        "ckplus": (ck.images, np.asarray(ck.labels), None),
        "pipeline": (pipe_crops, np.asarray(test.labels), pipe_found),
        "ckplus_pipeline": (ck_crops, np.asarray(ck.labels), ck_found),
    }
    results = {}
    for name, (faces, truth, seen) in sets.items():
        right = []
        for spec in (args.a, args.b):
            ok = ensemble_probs(spec, faces, args.tta, cache).argmax(1) == truth
            right.append(ok if seen is None else ok & seen)
        results[name] = mcnemar(*right)
        r = results[name]
        print(f"{name}: {args.a} {r['accuracy_a']:.2%}, {args.b} {r['accuracy_b']:.2%} on {r['n']}; "
              f"only {args.a} right {r['only_a_right']}, only {args.b} right {r['only_b_right']}, "
              f"exact McNemar p = {r['p_value']:.3f}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"a": args.a, "b": args.b, "tta": args.tta, "results": results}, indent=2))


if __name__ == "__main__":
    main()
