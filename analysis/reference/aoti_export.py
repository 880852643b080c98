#!/usr/bin/env python3
"""Exports the float MobileNetV2 as an AOTInductor package for joulebench's torch backend.

The torch backend runs compiled kernels (`aoti` in the rig) by loading such a package from C++
with libtorch's AOTIModelPackageLoader; compiling needs Python (torch.export and Inductor), so
the backend calls this script once per machine, device, precision, batch and layout and caches
the package outside the clone.

The network is torch_loop.py's (the reference loop's, itself built like
src/backend/torch/mobilenet.rs), with the very weights `joulebench models convert` wrote. The
weights are buffers of an `nn.Module`, not constants captured by a closure: torch.export then
lifts them into the package's constants table as it expects. The package takes the NCHW input
in the backend's precision (channels-last strides with --channels-last) and returns float32
probabilities, as the eager network does.

Prints one JSON line: the package path, its size, the compile time, torch's version and the
device's name.
"""

import argparse
import json
import os
import time

import torch
from safetensors.torch import load_file

import torch_loop


class MobileNetV2(torch.nn.Module):
    """torch_loop.forward over weights held as buffers, in the file's order."""

    def __init__(self, params):
        super().__init__()
        self.names = list(params)
        for i, name in enumerate(self.names):
            self.register_buffer(f"w{i}", params[name])

    def forward(self, x):
        return torch_loop.forward({n: getattr(self, f"w{i}") for i, n in enumerate(self.names)}, x)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--out", required=True, help="the .pt2 file to write")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", choices=["fp32", "fp16"], default="fp32")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads the kernels run on")
    args = ap.parse_args()

    # Inductor writes the thread count into the CPU kernels it generates (their OpenMP
    # regions), so the package is compiled for the backend's own count.
    torch.set_num_threads(args.threads)

    device = torch.device(args.device)
    dtype = torch.float16 if args.precision == "fp16" else torch.float32
    params = {k: v.to(device=device, dtype=dtype) for k, v in load_file(args.weights).items()}
    model = MobileNetV2(params).eval()
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    example = torch.zeros(args.batch, 3, 224, 224, device=device, dtype=dtype).contiguous(memory_format=memory_format)
    start = time.monotonic()
    if device.type == "cpu":
        # Weights as constants: Inductor then packs them for oneDNN's convolutions once, at
        # compile time (measured on a 2-core EPYC, batch 1, 1 thread: 18.9 ms a pass against
        # 26.1 unfrozen and 34.8 eager).
        torch._inductor.config.freezing = True
    with torch.no_grad():
        program = torch.export.export(model, (example,))
        # Written beside the target and renamed into place: a reader never sees half a package.
        partial = f"{args.out}.{os.getpid()}.partial.pt2"
        torch._inductor.aoti_compile_and_package(program, package_path=partial)
    os.replace(partial, args.out)
    print(
        json.dumps(
            {
                "package": args.out,
                "bytes": os.path.getsize(args.out),
                "compile_s": time.monotonic() - start,
                "torch": torch.__version__,
                "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            }
        )
    )


if __name__ == "__main__":
    main()
