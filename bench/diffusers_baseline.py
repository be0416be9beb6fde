#!/usr/bin/env python3
"""diffusers' VQDiffusionPipeline on the same model directory and GPU as vqd-bench, for the side by
side rows of bench/RESULTS.md. Needs torch, transformers and diffusers; run by bench/gpu_check.sh.

Plain fp16 (float32 on the CPU) at each of --images per call, then the transformer under
torch.compile at each of --compile-images (the strongest set-up of ../shared/gpu/README.md), then,
with --sequential N, N one-image calls one after another (what N clients get from a service that
does not batch; bench/cpu_vs_diffusers.sh). Each row: one untimed warm-up call of 2 steps
(compilation included), then the timed call(s). Prints a markdown table and, with
--json, writes the rows as they are measured (partial results survive a timeout).
"""
import argparse
import json
import time

import torch
from transformers import CLIPTextModel, CLIPTokenizer
from diffusers import Transformer2DModel, VQDiffusionPipeline, VQDiffusionScheduler, VQModel
from diffusers.pipelines.deprecated.vq_diffusion.pipeline_vq_diffusion import LearnedClassifierFreeSamplingEmbeddings


def run(pipe, images, steps, guidance, device):
    generator = torch.Generator(device).manual_seed(0)
    pipe("a photo of a red car parked by the sea", num_images_per_prompt=images, num_inference_steps=steps,
         guidance_scale=guidance, generator=generator, output_type="np")
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def counts(text):
    return [int(x) for x in text.split(",") if x]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--images", default="1,32")
    parser.add_argument("--compile-images", default="32", help="images per call with torch.compile; empty: none")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--guidance", type=float, default=5.0)
    parser.add_argument("--sequential", type=int, default=0, help="also time this many 1-image calls in a row")
    parser.add_argument("--variant", default=None, help="weights files to load (default: fp16 on CUDA, the full ones on the CPU)")
    parser.add_argument("--json")
    args = parser.parse_args()

    cuda = args.device.startswith("cuda")
    dtype = torch.float16 if cuda else torch.float32
    # Component by component: recent diffusers no longer resolve the deprecated
    # LearnedClassifierFreeSamplingEmbeddings named in model_index.json.
    variant = args.variant if args.variant is not None else ("fp16" if cuda else "")
    weights = dict(torch_dtype=dtype, variant=variant or None)
    pipe = VQDiffusionPipeline(
        vqvae=VQModel.from_pretrained(args.model, subfolder="vqvae", **weights),
        text_encoder=CLIPTextModel.from_pretrained(args.model, subfolder="text_encoder", **weights),
        tokenizer=CLIPTokenizer.from_pretrained(args.model, subfolder="tokenizer"),
        transformer=Transformer2DModel.from_pretrained(args.model, subfolder="transformer", **weights),
        scheduler=VQDiffusionScheduler.from_pretrained(args.model, subfolder="scheduler"),
        learned_classifier_free_sampling_embeddings=LearnedClassifierFreeSamplingEmbeddings.from_pretrained(
            args.model, subfolder="learned_classifier_free_sampling_embeddings", **weights),
    ).to(args.device)
    pipe.set_progress_bar_config(disable=True)
    name = torch.cuda.get_device_name(0) if cuda else "cpu"
    report = {"gpu": name, "torch": torch.__version__, "dtype": str(dtype).replace("torch.", ""),
              "steps": args.steps, "guidance": args.guidance, "runs": []}
    print(f"### diffusers VQDiffusionPipeline ({name}, torch {torch.__version__}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n")
    print(f"{args.steps} steps, guidance {args.guidance}, {report['dtype']}\n")
    print("| set-up | images per call | seconds | images/s | peak GiB |")
    print("|---|---|---|---|---|")
    setups = [("plain", counts(args.images)), ("torch.compile transformer", counts(args.compile_images))]
    if args.sequential:
        run(pipe, 1, 2, args.guidance, args.device)  # warm-up
        start = time.perf_counter()
        for _ in range(args.sequential):
            run(pipe, 1, args.steps, args.guidance, args.device)
        seconds = time.perf_counter() - start
        report["runs"].append({"setup": "sequential", "images": args.sequential, "seconds": seconds,
                               "images_per_s": args.sequential / seconds, "peak_gib": None})
        print(f"| {args.sequential} one-image calls in a row | 1 | {seconds:.2f} | {args.sequential / seconds:.3f} | n/a |",
              flush=True)
    for label, image_counts in setups:
        if not image_counts:
            continue
        if label != "plain":
            pipe.transformer = torch.compile(pipe.transformer)
        for n in image_counts:
            run(pipe, n, 2, args.guidance, args.device)  # warm-up (and compilation)
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            run(pipe, n, args.steps, args.guidance, args.device)
            seconds = time.perf_counter() - start
            peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
            report["runs"].append({"setup": label, "images": n, "seconds": seconds, "images_per_s": n / seconds,
                                   "peak_gib": peak})
            print(f"| {label} | {n} | {seconds:.2f} | {n / seconds:.3f} | "
                  f"{'n/a' if peak is None else f'{peak:.1f}'} |", flush=True)
            if args.json:
                with open(args.json, "w") as f:
                    json.dump(report, f, indent=2)
    print()


if __name__ == "__main__":
    main()
