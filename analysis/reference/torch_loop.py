#!/usr/bin/env python3
"""Reference loop for `joulebench bench` on a torch backend: the same float MobileNetV2 in
Python PyTorch.

The network is built like joulebench's (src/backend/torch/mobilenet.rs): TensorFlow's graph
with batch norm folded into the convolutions, ReLU6, TF "SAME" padding, 1001 classes, and the
very weights `joulebench models convert` wrote (a .safetensors file), so both sides compute
the same thing. Load, warm up, sleep, then time N batches (copy input to the device, forward,
read the scores back, top-5) and print one JSON line, with the timed window on the
CLOCK_MONOTONIC clock so joulebench can cut its power samples to it.

A reference worth beating runs as fast as PyTorch can, so the forward pass has three modes:
eager (one kernel launch per operator from Python), graph (the forward pass captured once
into a CUDA graph after warm-up and replayed, the input copied into its static buffer), and
compile (`torch.compile(mode="reduce-overhead")`: Inductor's fused kernels, replayed as CUDA
graphs on a GPU). `--channels-last` stores activations NHWC, which cuDNN's fp16 kernels prefer.
Every mode still copies the input in and reads the scores back per classification.
"""

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file

# (expansion, output channels, repeats, first stride), MobileNetV2 1.0.
BLOCKS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def conv(x, w, b, stride, groups=1, relu6=True):
    if w.shape[-1] == 3:
        # TF SAME: stride 2 pads one extra row and column at the bottom and right.
        x = F.pad(x, (0, 1, 0, 1)) if stride == 2 else F.pad(x, (1, 1, 1, 1))
    x = F.conv2d(x, w, b, stride=stride, groups=groups)
    return x.clamp(0, 6) if relu6 else x


def forward(p, x):
    x = conv(x, p["stem.weight"], p["stem.bias"], 2)
    i, channels = 0, 32
    for t, c, n, s in BLOCKS:
        for r in range(n):
            stride = s if r == 0 else 1
            y = x
            if t != 1:
                y = conv(y, p[f"blocks.{i}.expand.weight"], p[f"blocks.{i}.expand.bias"], 1)
            y = conv(y, p[f"blocks.{i}.depthwise.weight"], p[f"blocks.{i}.depthwise.bias"], stride, groups=y.shape[1])
            y = conv(y, p[f"blocks.{i}.project.weight"], p[f"blocks.{i}.project.bias"], 1, relu6=False)
            x = x + y if stride == 1 and channels == c else y
            i, channels = i + 1, c
    x = conv(x, p["head.weight"], p["head.bias"], 1)
    x = x.mean(dim=(2, 3))
    return F.softmax(F.linear(x, p["classifier.weight"], p["classifier.bias"]).float(), dim=1)


def build_classifier(params, host, device, dtype, mode, channels_last):
    """The per-classification function of `mode`, and a note of what it runs."""
    memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def to_device():
        return host.to(device=device, dtype=dtype, non_blocking=True).contiguous(memory_format=memory_format)

    if mode == "eager":
        return lambda: forward(params, to_device()), "eager"
    if mode == "compile":
        # Compiled once per input shape at the first call (the warm-up); "reduce-overhead"
        # replays the compiled kernels as CUDA graphs on a GPU.
        compiled = torch.compile(lambda x: forward(params, x), mode="reduce-overhead" if device.type == "cuda" else "default")

        def run():
            out = compiled(to_device())
            # reduce-overhead's graphs reuse their output buffer: copy before the next call.
            return out.clone()

        return run, "torch.compile"
    if device.type != "cuda":
        raise SystemExit("--mode graph needs a CUDA device")
    static_in = to_device()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        # Capture needs the allocator and cuDNN's algorithm choice settled: three passes first.
        for _ in range(3):
            forward(params, static_in)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = forward(params, static_in)

    def replay():
        static_in.copy_(host.to(device=device, dtype=dtype, non_blocking=True))
        graph.replay()
        return static_out

    return replay, "CUDA graph"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", choices=["fp32", "fp16"], default="fp32")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=250)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--min-duration", type=float, default=0.0)
    ap.add_argument("--mode", choices=["eager", "graph", "compile"], default="eager")
    ap.add_argument("--channels-last", action="store_true")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = True
    device = torch.device(args.device)
    dtype = torch.float16 if args.precision == "fp16" else torch.float32
    params = {k: v.to(device=device, dtype=dtype) for k, v in load_file(args.weights).items()}
    img = Image.open(args.image).convert("RGB").resize((224, 224), Image.BILINEAR)
    host = torch.from_numpy((np.asarray(img, dtype=np.float32) - 127.5) / 127.5)
    host = host.permute(2, 0, 1).unsqueeze(0).repeat(args.batch, 1, 1, 1).contiguous()
    if device.type == "cuda":
        # Page-locked, as joulebench's host buffer: the copy in runs at full PCIe speed.
        host = host.pin_memory()

    with torch.no_grad():
        run, ran = build_classifier(params, host, device, dtype, args.mode, args.channels_last)

        def classify():
            scores = run()[0].float().cpu()  # reading back synchronises the device
            return torch.topk(scores, 5).indices

        for _ in range(max(args.warmup, 1 if args.mode == "eager" else 3)):
            classify()
        time.sleep(args.settle)
        latencies = []
        cpu_start = time.process_time()
        start = time.monotonic()
        while len(latencies) < args.runs or time.monotonic() - start < args.min_duration:
            t0 = time.monotonic()
            top = classify()
            latencies.append(time.monotonic() - t0)
        end = time.monotonic()
        cpu_seconds = time.process_time() - cpu_start
    print(
        json.dumps(
            {
                "engine": f"pytorch {torch.__version__} {ran}" + (" channels-last" if args.channels_last else ""),
                "fps": len(latencies) * args.batch / (end - start),
                "latency_ms_median": float(np.median(latencies) * 1e3),
                "cpu_ms_per_inference": cpu_seconds / (len(latencies) * args.batch) * 1e3,
                "top1": int(top[0]),
                "start_monotonic": start,
                "end_monotonic": end,
                "inferences": len(latencies) * args.batch,
            }
        )
    )


if __name__ == "__main__":
    main()
