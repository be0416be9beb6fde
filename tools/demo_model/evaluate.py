#!/usr/bin/env python3
"""Measures the demo model's quality: generates images with vqd for the scenes training never
showed (scenes.held_out_scenes: 54 of the 540 (shape, colour, position, background, size)
combinations), every attribute named in the prompt, and scores each image by the transparent
image analysis of score.py (the colour of the largest non-background blob, the ideal shape mask
it overlaps best, its side for the size, its centre for the position). Pure Python besides vqd:
runs wherever the project builds.

    evaluate.py --vqd build/tools/vqd --model assets/demo-model --out DIR
                [--scenes 54] [--seeds 2] [--guidance G] [--train-seed 0]
                [--min-colour F] [--min-shape F] [--min-size F] [--min-position F]

The first `scenes` held-out scenes (in a fixed shuffled order), each with `seeds` seeds. Prints
each attribute's accuracy; writes DIR/cases.json, the images, and DIR/scores.json (every case:
wanted and found); exits 1 when an attribute's accuracy is below its minimum.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import scenes  # noqa: E402
import score  # noqa: E402


def cases_for(train_seed, count, seeds):
    """The first `count` held-out scenes in a shuffled order (so that a small run still mixes
    shapes, colours and positions), with the full caption template, each with `seeds` seeds."""
    held = scenes.held_out_scenes(train_seed)
    random.Random(train_seed + 100).shuffle(held)
    cases = []
    for key in held[:count]:
        scene = scenes.Scene(*key)
        for seed in range(seeds):
            cases.append({"file": f"case-{len(cases):03d}-0.png", "prompt": scene.caption(scenes.FULL_TEMPLATES[0]),
                          "seed": seed, **scene.as_dict()})
    return cases


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vqd", required=True, help="the vqd tool")
    parser.add_argument("--model", required=True, help="the demo model's directory")
    parser.add_argument("--out", required=True, help="folder for the images and scores")
    parser.add_argument("--scenes", type=int, default=54, help="how many of the held-out scenes")
    parser.add_argument("--seeds", type=int, default=2, help="images per prompt (seeds 0..K-1)")
    parser.add_argument("--guidance", type=float, help="default: the model's (vqd_model.json)")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--truncation", type=float, help="default: the model's")
    parser.add_argument("--prior-rule", choices=("none", "uniform", "purity"), default="none")
    parser.add_argument("--prior-weight", type=float, default=0.0)
    parser.add_argument("--train-seed", type=int, default=0, help="the seed the model was trained with (its split)")
    parser.add_argument("--min-colour", type=float, default=0.0)
    parser.add_argument("--min-shape", type=float, default=0.0)
    parser.add_argument("--min-size", type=float, default=0.0)
    parser.add_argument("--min-position", type=float, default=0.0)
    args = parser.parse_args()

    os.makedirs(args.out, exist_ok=True)
    cases = cases_for(args.train_seed, args.scenes, args.seeds)
    with open(os.path.join(args.out, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)
    start = time.time()
    for i, case in enumerate(cases):
        prefix = os.path.join(args.out, case["file"][:-len("-0.png")])
        command = [args.vqd, "generate", "--model", args.model, "--prompt", case["prompt"], "--seed", str(case["seed"]),
                   "--steps", str(args.steps), "--out", prefix]
        if args.guidance is not None:
            command += ["--guidance", str(args.guidance)]
        if args.truncation is not None:
            command += ["--truncation", str(args.truncation)]
        if args.prior_rule != "none":
            command += ["--prior-rule", args.prior_rule, "--prior-weight", str(args.prior_weight)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            print(f"evaluate: {' '.join(command)} failed ({result.returncode}):\n{result.stderr}", file=sys.stderr)
            return 2
    seconds = time.time() - start

    accuracy, rows = score.score(cases, args.out)
    print(f"demo model {args.model}: {len(cases)} images of {len(cases) // args.seeds} held-out scenes, "
          f"guidance {'the model default' if args.guidance is None else args.guidance}, {args.steps} steps, "
          f"generated in {seconds:.1f} s")
    for a in score.ATTRIBUTES:
        print(f"  {a:9s} {accuracy[a] * 100:5.1f}%")
    with open(os.path.join(args.out, "scores.json"), "w") as f:
        json.dump({"accuracy": accuracy, "guidance": args.guidance, "steps": args.steps, "cases": rows}, f, indent=1)
    return score.check_minimums(accuracy, {"colour": args.min_colour, "shape": args.min_shape,
                                           "size": args.min_size, "position": args.min_position})


if __name__ == "__main__":
    sys.exit(main())
