"""Bytes on the wire per request, and PublicTest accuracy, for every way a face or its features travel.

Feature maps (the paper's split after Stage2) as FP32, FP16 or INT8, each raw, gzip or zstd; the
face itself (the "cloud" strategy) as raw pixels, PNG or JPEG. Sizes are whole v2 request bodies
as `encode_message` builds them (JSON header + binary tensor data), without HTTP headers. Accuracy
runs the split in-process exactly as over the wire: encode up, decode, attention, encode down in the
same codec, decode, tail.

    .venv/bin/python benchmarks/wire_bytes.py --checkpoint default --data ../shared/data/fer2013/fer2013.csv.gz
"""

from __future__ import annotations

import argparse
import json
import statistics

import numpy as np
import torch
from tqdm import tqdm

from edgefer.data import center, load_fer2013, resize_once
from edgefer.loading import load_model
from edgefer.wire.codec import decode_feature, encode_feature
from edgefer.wire.images import decode_image, encode_image
from edgefer.wire.protocol import Message, TensorData, compress, encode_message


def body_size(tensor: TensorData, encoding: str | None) -> int:
    body, _ = encode_message(Message([tensor], parameters={"binary_data_output": True}), kind="inputs")
    return len(compress(body, encoding) if encoding else body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="PublicTest")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size-sample", type=int, default=300, help="faces whose request sizes are measured")
    parser.add_argument("--limit", type=int, help="only the first N faces (a smoke test)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    model = load_model(args.checkpoint, "torch")
    net, pre = model.net, model.preprocess
    test = load_fer2013(args.data, splits=[args.split])[args.split]
    if args.limit:
        test = test.subset(slice(0, args.limit))
    head, cloud, tail = net.split(after="stage2")
    images = resize_once(test.images, pre.resize)

    codecs = ("fp32", "fp16", "int8")
    correct = {c: 0 for c in (*codecs, "jpeg")}
    sizes: dict[str, list[int]] = {}
    with torch.inference_mode():
        for start in tqdm(range(0, len(test), 64), desc="PublicTest", unit="batch"):
            x = center(images[start : start + 64], pre)
            labels = torch.from_numpy(test.labels[start : start + 64])
            feature = head(x)
            for codec in codecs:
                up = torch.from_numpy(decode_feature(encode_feature("f", feature.numpy(), codec)))
                down = torch.from_numpy(decode_feature(encode_feature("f", cloud(up).numpy(), codec)))
                correct[codec] += int((tail(down).argmax(1) == labels).sum())
            jpeg = np.stack([decode_image(encode_image(face, "jpeg")) for face in test.images[start : start + 64]])
            logits = net(center(resize_once(jpeg, pre.resize), pre))
            correct["jpeg"] += int((logits.argmax(1) == labels).sum())
            if start < args.size_sample:
                for i in range(min(64, args.size_sample - start)):
                    f = feature[i : i + 1].numpy()
                    for codec in codecs:
                        tensor = encode_feature("feature", f, codec)
                        for encoding in (None, "gzip", "zstd"):
                            sizes.setdefault(f"feature {codec} {encoding or 'raw'}", []).append(
                                body_size(tensor, encoding)
                            )
                    face = test.images[start + i]
                    sizes.setdefault("image raw pixels", []).append(body_size(TensorData("image", face[None]), None))
                    for fmt in ("png", "jpeg"):
                        blob = np.empty(1, dtype=object)
                        blob[0] = encode_image(face, fmt)
                        sizes.setdefault(f"image {fmt}", []).append(body_size(TensorData("image", blob), None))

    n = len(test)
    accuracy = {k: v / n for k, v in correct.items()}
    rows = []
    for name, values in sizes.items():
        codec = name.split()[1]
        acc = accuracy.get(codec, accuracy["fp32"]) if name.startswith("feature") else None
        if name == "image jpeg":
            acc = accuracy["jpeg"]
        elif name.startswith("image"):
            acc = accuracy["fp32"]  # lossless: the same pixels reach the model
        rows.append({"payload": name, "median_bytes": statistics.median(values), "accuracy": acc})
    print(f"{args.split}: n={n}, checkpoint {args.checkpoint} ({model.meta.name}, {pre.size} px)")
    print(f"{'payload':<24} {'median bytes':>12} {'accuracy':>9} {'vs fp32':>8}")
    for row in rows:
        delta = (row["accuracy"] - accuracy["fp32"]) * 100
        print(f"{row['payload']:<24} {row['median_bytes']:>12.0f} {row['accuracy']:>9.4f} {delta:>+7.2f}pt")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"n": n, "accuracy": accuracy, "rows": rows, "checkpoint": args.checkpoint}, f, indent=2)


if __name__ == "__main__":
    main()
