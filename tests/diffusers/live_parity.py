#!/usr/bin/env python3
"""Randomized end-to-end parity with diffusers itself: random models written by `vqd make-model`
(tiny and small presets, each in the safetensors, .bin, fp16-variant and empty-prompt-null
layouts) are loaded by diffusers' VQDiffusionPipeline and by `vqd generate`; each random case
(prompt, seed, steps 1..100, guidance 0..10 including exactly 1, truncation (0, 1], 1..4 images;
on the small preset, 1..30 steps, 1..2 images and strides of 10 or 33, to keep a run short) must
give identical token grids after every step and images within 1e-4 (float32, CPU).

A fifth of the cases sample with a time stride (the official strided sampler, which diffusers
lacks): their reference is diffusers' own pipeline loop and scheduler, visiting the official
timesteps and stepping each with the posterior at t - (S - 1) (strided_reference below; the same
loop at stride 1 must reproduce the pipeline's own call, which checks the reference itself).

    live_parity.py VQD WORK_DIR [CASES]

A mismatch prints the case, the first step whose grids differ and how many tokens differ there.
VQD_REFERENCE_SEED replays a run; VQD_REFERENCE_SCALE multiplies the number of cases.
"""
import os
import random
import sys

from reference_env import Timer, load_file, make_layouts, np, run, run_seed, scaled, torch, versions

from diffusers import VQDiffusionPipeline

WORDS = ["teddy", "bear", "playing", "in", "the", "pool", "a", "red", "car", "parked", "by", "sea", "bowl", "of",
         "fruit", "on", "wooden", "table", "photo", "painting", "city", "night", "café", "naïve", "東京", "🐻",
         "mountain", "lake", "under", "blue", "sky", "with", "two", "cats", "!", ",", "it's", "HDR", "4k"]
IMAGE_ATOL = 1e-4


def random_case(rng, models):
    preset, layout = rng.choice(models)
    stride = rng.choice([2, 3, 4, 5, 10, 33]) if rng.random() < 0.2 else 1
    guidance = rng.choice([1.0, 0.0, round(rng.uniform(0, 1), 3), round(rng.uniform(1, 10), 3), 5.0])
    truncation = rng.choice([1.0, round(rng.uniform(0.01, 1.0), 3), 0.86])
    words = rng.randint(0, 12)
    # The small preset costs ~20 times the tiny one per step: its cases stay shorter so that a
    # run takes a couple of minutes on 2 cores; the tiny ones cover the whole ranges.
    small = preset == "small"
    return {"preset": preset, "layout": layout, "prompt": " ".join(rng.choice(WORDS) for _ in range(words)),
            "seed": rng.randrange(1 << 32), "steps": rng.randint(1, 30 if small else 100), "guidance": guidance,
            "truncation": truncation, "n": rng.randint(1, 2 if small else 4),
            "time_stride": rng.choice([10, 33]) if small and stride > 1 else stride}


def strided_plan(num_train_timesteps, stride):
    """The official sample_fast's visits: (t, the timestep whose posterior samples the next state)."""
    skip = stride - 1
    plan = [(t, t - skip if t > skip else t) for t in range(num_train_timesteps - 1, -1, -stride)]
    return plan + [(0, 0)] if plan[-1][0] != 0 else plan


def strided_reference(pipe, case):
    """diffusers' VQDiffusionPipeline.__call__ loop, step for step, over the strided plan."""
    generator = torch.Generator("cpu").manual_seed(case["seed"])
    guided = case["guidance"] > 1.0
    with torch.no_grad():
        embeds = pipe._encode_prompt(case["prompt"], case["n"], guided)
        mask_class = pipe.transformer.num_vector_embeds - 1
        sample = torch.full((case["n"], pipe.transformer.num_latent_pixels), mask_class)
        grids = []
        for t, posterior_t in strided_plan(pipe.scheduler.config.num_train_timesteps, case["time_stride"]):
            model_input = torch.cat([sample] * 2) if guided else sample
            out = pipe.transformer(model_input, encoder_hidden_states=embeds, timestep=torch.tensor(t)).sample
            if guided:
                uncond, text = out.chunk(2)
                out = uncond + case["guidance"] * (text - uncond)
                out -= torch.logsumexp(out, dim=1, keepdim=True)
            out = pipe.truncate(out, case["truncation"]).clamp(-70)
            sample = pipe.scheduler.step(out, timestep=torch.tensor(posterior_t), sample=sample,
                                         generator=generator).prev_sample
            grids.append(sample.clone())
        shape = (case["n"], pipe.transformer.height, pipe.transformer.width, pipe.vqvae.config.vq_embed_dim)
        embeddings = pipe.vqvae.quantize.get_codebook_entry(sample, shape=shape)
        image = (pipe.vqvae.decode(embeddings, force_not_quantize=True).sample / 2 + 0.5).clamp(0, 1)
    return torch.stack(grids), image.permute(0, 2, 3, 1).numpy().astype(np.float32)


def reference(pipe, case):
    """diffusers' grids after every step and its float images, exactly as a user calls it."""
    if case.get("time_stride", 1) > 1:
        return strided_reference(pipe, case)
    grids = []
    generator = torch.Generator("cpu").manual_seed(case["seed"])
    with torch.no_grad():
        out = pipe(case["prompt"], num_inference_steps=case["steps"], guidance_scale=case["guidance"],
                   truncation_rate=case["truncation"], num_images_per_prompt=case["n"], generator=generator,
                   output_type="np", callback=lambda i, t, sample: grids.append(sample.clone()), callback_steps=1)
    return torch.stack(grids), np.asarray(out.images, dtype=np.float32)


def ours(vqd, model_dir, flags, case, trace):
    steps = ["--time-stride", str(case["time_stride"])] if case.get("time_stride", 1) > 1 else ["--steps", str(case["steps"])]
    run([vqd, "generate", "--model", model_dir, "--prompt", case["prompt"], "--seed", str(case["seed"]),
         *steps, "--guidance", repr(case["guidance"]), "--truncation",
         repr(case["truncation"]), "--num-images", str(case["n"]), "--out", trace[:-12], "--save-trace", trace,
         "--quiet", *flags])
    got = load_file(trace)
    return got["grids"], got["images"].numpy()


def compare(index, case, ref, got):
    (ref_grids, ref_images), (grids, images) = ref, got
    if tuple(grids.shape) != tuple(ref_grids.shape):
        return f"grid shape {tuple(grids.shape)}, diffusers {tuple(ref_grids.shape)}"
    for step in range(ref_grids.shape[0]):
        differ = int((grids[step] != ref_grids[step]).sum())
        if differ:
            return f"step {step}: {differ} tokens differ"
    if images.shape != ref_images.shape:
        return f"image shape {images.shape}, diffusers {ref_images.shape}"
    diff = float(np.abs(images - ref_images).max())
    if not diff <= IMAGE_ATOL:
        return f"images differ by {diff:.3g} > {IMAGE_ATOL}"
    return None


def main():
    vqd, work = sys.argv[1], sys.argv[2]
    count = scaled(int(sys.argv[3]) if len(sys.argv) > 3 else 50)
    print(versions())
    seed = run_seed()
    rng = random.Random(seed)
    timer = Timer()
    layouts = {}
    for preset in ("tiny", "small"):
        for layout, spec in make_layouts(vqd, preset, rng.randrange(1 << 31), os.path.join(work, "models")).items():
            layouts[(preset, layout)] = spec
    print(f"{len(layouts)} model directories written ({timer})")
    # The tiny preset is several times cheaper per step; most cases run on it.
    models = [k for k in layouts if k[0] == "tiny"] * 3 + [k for k in layouts if k[0] == "small"]
    pipes = {}
    failures = []
    # The strided reference at stride 1 must be the pipeline itself (the reference checks itself).
    model_dir, _, kwargs = layouts[("tiny", "safetensors")]
    pipes[model_dir] = VQDiffusionPipeline.from_pretrained(model_dir, **kwargs)
    own = {"prompt": "a red car", "seed": 7, "guidance": 5.0, "truncation": 0.86, "n": 2, "time_stride": 1,
           "steps": pipes[model_dir].scheduler.config.num_train_timesteps}
    problem = compare(-1, own, reference(pipes[model_dir], own), strided_reference(pipes[model_dir], own))
    if problem:
        print(f"FAILED: the strided reference at stride 1 differs from diffusers' pipeline: {problem}")
        return 1
    print("strided reference at stride 1 == diffusers' pipeline call")
    for index in range(count):
        case = random_case(rng, models)
        model_dir, flags, kwargs = layouts[(case["preset"], case["layout"])]
        if model_dir not in pipes:
            pipes[model_dir] = VQDiffusionPipeline.from_pretrained(model_dir, **kwargs)
        ref = reference(pipes[model_dir], case)
        got = ours(vqd, model_dir, flags, case, os.path.join(work, f"case{index}.safetensors"))
        problem = compare(index, case, ref, got)
        status = "ok" if problem is None else f"MISMATCH: {problem}"
        print(f"case {index}: {case} -> {status}", flush=True)
        if problem:
            failures.append((index, case, problem))
    print(f"{count - len(failures)}/{count} cases identical to diffusers in {timer}")
    if failures:
        for index, case, problem in failures:
            print(f"FAILED case {index}: {case}: {problem}")
        print(f"replay with VQD_REFERENCE_SEED={seed}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
