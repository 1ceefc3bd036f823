"""Post-hoc logit adjustment (Menon et al. 2021) of a trained model, swept over its strength tau.

A model trained on FER2013 learns its class prior (disgust is 1.5% of Training, happy 25%). Dividing
its probabilities by the prior to the power tau, ``p_c / prior_c ** tau`` renormalised (the same as
subtracting ``tau * log prior_c`` from the logits, i.e. from the last layer's bias), trades the
common classes' recall for the rare ones'. The ``strong`` recipe measured the training-time version
(tau 1 in the loss) and left it out; this measures the after-training dial on the four test sets of
``cross_dataset.py`` (flip TTA), for every tau at once: the model runs once per set.

    .venv/bin/python benchmarks/logit_adjust.py --model default --taus 0,0.25,0.5,0.75,1 --json docs/logit_adjust.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from edgefer.data import FER2013_CLASSES

sys.path.insert(0, str(Path(__file__).parent))
from cross_dataset import add_data_options, ensemble_probs, load_sets, report

RARE = ("angry", "disgust", "fear")


def adjusted(probs: np.ndarray, prior: np.ndarray, tau: float) -> np.ndarray:
    """``probs / prior ** tau``, each row renormalised."""
    p = probs / prior**tau
    return p / p.sum(1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="CKPT[+CKPT...], as cross_dataset.py")
    parser.add_argument("--taus", default="0,0.25,0.5,0.75,1")
    add_data_options(parser)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    train, test, plus_labels, plus_kept, ck, wild_crops, wild_labels, wild_found = load_sets(args)
    prior = np.bincount(train.labels, minlength=len(FER2013_CLASSES)) / len(train.labels)
    cache = Path(args.probs_cache) if args.probs_cache else None
    fer = ensemble_probs(args.model, test.images, "flip", cache)
    sets = {  # name -> (labels, probabilities, found)
        "fer2013": (test.labels, fer, None),
        "ferplus": (plus_labels[plus_kept], fer[plus_kept], None),
        "ckplus": (ck.labels, ensemble_probs(args.model, ck.images, "flip", cache), None),
        "wild": (wild_labels, ensemble_probs(args.model, wild_crops, "flip", cache), wild_found),
    }
    rows = []
    for tau in map(float, args.taus.split(",")):
        for name, (labels, probs, found) in sets.items():
            r = report(labels, adjusted(probs, prior, tau), found)
            recall = {c: r["per_class"][c]["accuracy"] for c in RARE if r["per_class"][c]["n"]}
            rows.append({"tau": tau, "data": name, "accuracy": r["accuracy"], "macro_f1": r["macro_f1"], **recall})
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.float_format", "{:.3f}".format):
        print(f"prior (FER2013 Training): {dict(zip(FER2013_CLASSES, prior.round(3), strict=True))}")
        print(table.to_string(index=False))
    if args.json:
        meta = {"model": args.model, "prior": dict(zip(FER2013_CLASSES, prior.tolist(), strict=True)), "tta": "flip"}
        args.json.write_text(json.dumps({**meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
