#!/usr/bin/env python3
"""Reference loop for `joulebench bench`: the 2019 method on Google's LiteRT Python runtime.

Load the model and its input, 1 warm-up inference, sleep, then time N inferences (copy every
input, invoke, and for a classifier, one output, read it and take the top-5) and print one JSON
line. `joulebench bench` hands over the rig's own prepared input (`--input-bytes`: every input
of the model in its order, the image or seeded synthetic data), so both sides compute on the
same bytes whatever the model; without it, the one image input is encoded here the way the
rig encodes it (bilinear resize, pixels normalised to [-1, 1], then quantized with the model's
own scale and zero point).
"""

import argparse
import json
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from PIL import Image


def encode(image_path, detail, mean=127.5, std=127.5):
    _, height, width, _ = detail["shape"]
    img = Image.open(image_path).convert("RGB").resize((width, height), Image.BILINEAR)
    real = (np.asarray(img, dtype=np.float32) - mean) / std
    dtype = detail["dtype"]
    if dtype == np.float32:
        return real[np.newaxis]
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    q = np.clip(np.round(real / scale + zero_point), info.min, info.max)
    return q.astype(dtype)[np.newaxis]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--input-bytes", help="every input's bytes, in the model's input order")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=250)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--min-duration", type=float, default=0.0)
    args = ap.parse_args()

    interpreter = Interpreter(model_path=args.model, num_threads=args.threads)
    interpreter.allocate_tensors()
    inputs = interpreter.get_input_details()
    outputs = interpreter.get_output_details()
    if args.input_bytes:
        data = open(args.input_bytes, "rb").read()
        xs, at = [], 0
        for detail in inputs:
            n = int(np.prod(detail["shape"])) * np.dtype(detail["dtype"]).itemsize
            xs.append(np.frombuffer(data[at : at + n], dtype=detail["dtype"]).reshape(detail["shape"]))
            at += n
        if at != len(data):
            raise SystemExit(f"--input-bytes holds {len(data)} bytes, the inputs take {at}")
    else:
        xs = [encode(args.image, inputs[0])]
    # As the rig: a classifier's scores are read and ranked, any other model's outputs stay in
    # the interpreter (nothing to rank).
    image = len(inputs) == 1 and len(inputs[0]["shape"]) == 4 and inputs[0]["shape"][3] == 3
    scored = outputs[0] if image and len(outputs) == 1 and len(outputs[0]["shape"]) <= 2 else None

    def classify():
        for detail, x in zip(inputs, xs):
            interpreter.set_tensor(detail["index"], x)
        interpreter.invoke()
        if scored is None:
            return [-1]
        scores = interpreter.get_tensor(scored["index"])[0]
        return np.argsort(scores)[-5:][::-1]

    for _ in range(args.warmup):
        classify()
    time.sleep(args.settle)
    latencies = []
    cpu_start = time.process_time()
    # CLOCK_MONOTONIC, the clock the rig's run clock reads: joulebench places this window
    # among its sensor readings.
    start = time.monotonic()
    while len(latencies) < args.runs or time.monotonic() - start < args.min_duration:
        t0 = time.monotonic()
        top = classify()
        latencies.append(time.monotonic() - t0)
    end = time.monotonic()
    elapsed = end - start
    cpu_seconds = time.process_time() - cpu_start
    print(
        json.dumps(
            {
                "engine": "ai-edge-litert",
                "fps": len(latencies) / elapsed,
                "cpu_ms_per_inference": cpu_seconds / len(latencies) * 1e3,
                "latency_ms_median": float(np.median(latencies) * 1e3),
                "top1": int(top[0]),
                "threads": args.threads,
                "start_monotonic": start,
                "end_monotonic": end,
                "inferences": len(latencies),
            }
        )
    )


if __name__ == "__main__":
    main()
