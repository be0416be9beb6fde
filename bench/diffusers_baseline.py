#!/usr/bin/env python3
"""diffusers' VQDiffusionPipeline on the same model directory and GPU as vqd-bench, for the side
by side table of bench/RESULTS.md. Needs torch (CUDA), transformers and diffusers' source on
PYTHONPATH; run by bench/run_gpu_bench.sh.

Prints one markdown table: images per call, seconds, images/s and peak GPU memory, for plain
fp16 and for the transformer under torch.compile (the strongest set-up of ../shared/gpu/README.md).
"""
import argparse
import time

import torch
from diffusers import VQDiffusionPipeline


def run(pipe, images, steps, guidance):
    generator = torch.Generator("cuda").manual_seed(0)
    pipe("a photo of a red car parked by the sea", num_images_per_prompt=images, num_inference_steps=steps,
         guidance_scale=guidance, generator=generator, output_type="np")
    torch.cuda.synchronize()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--images", default="1,8,32")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--guidance", type=float, default=5.0)
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()
    counts = [int(x) for x in args.images.split(",")]

    pipe = VQDiffusionPipeline.from_pretrained(args.model, torch_dtype=torch.float16, variant="fp16").to("cuda")
    pipe.set_progress_bar_config(disable=True)
    print(f"### diffusers VQDiffusionPipeline ({torch.cuda.get_device_name(0)}, torch {torch.__version__}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n")
    print(f"{args.steps} steps, guidance {args.guidance}, fp16\n")
    print("| set-up | images per call | seconds | images/s | peak GiB |")
    print("|---|---|---|---|---|")
    setups = [("plain fp16", False)] + ([] if args.no_compile else [("torch.compile transformer", True)])
    for label, compiled in setups:
        if compiled:
            pipe.transformer = torch.compile(pipe.transformer)
        for n in counts:
            run(pipe, n, 2, args.guidance)  # warm-up (and compilation)
            torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            run(pipe, n, args.steps, args.guidance)
            seconds = time.perf_counter() - start
            peak = torch.cuda.max_memory_allocated() / 2**30
            print(f"| {label} | {n} | {seconds:.2f} | {n / seconds:.3f} | {peak:.1f} |", flush=True)
    print()


if __name__ == "__main__":
    main()
