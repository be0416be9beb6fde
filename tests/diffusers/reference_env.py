"""What the live-reference tests share: the import guard (exit 77 when the environment has no
diffusers), the run's seed (printed, so a failure replays with VQD_REFERENCE_SEED), the number of
cases (VQD_REFERENCE_SCALE multiplies it for nightly-sized runs), and the model layouts both
diffusers and vqd load: the safetensors directory `vqd make-model` writes, the same weights as
PyTorch .bin files, as fp16-variant files, and with the empty prompt as the null embedding.
"""
import json
import os
import random
import shutil
import subprocess
import sys
import time

SKIPPED = 77

try:
    import numpy as np
    import torch
    from safetensors.torch import load_file, save_file
    import diffusers  # noqa: F401
    import transformers  # noqa: F401
    from diffusers.pipelines.deprecated.vq_diffusion import pipeline_vq_diffusion
except ImportError as e:  # the environment, not the code under test
    print(f"\n*** diffusers/transformers/torch NOT AVAILABLE ({e}); scripts/install-torch.sh "
          "scripts/python/requirements-diffusers.txt installs them. This test is SKIPPED, not passed. ***\n")
    sys.exit(SKIPPED)

# Their progress bars and load notices would drown the cases' lines.
diffusers.utils.logging.set_verbosity_error()
diffusers.utils.logging.disable_progress_bar()
transformers.logging.set_verbosity_error()

# model_index.json names the null embedding's library "vq_diffusion" as the hub's ITHQ does; diffusers
# resolves such a name only from modules the caller imported.
sys.modules.setdefault("vq_diffusion", pipeline_vq_diffusion)


def run_seed():
    """The seed every random choice of this run derives from: VQD_REFERENCE_SEED, or a fresh one."""
    seed = int(os.environ.get("VQD_REFERENCE_SEED", random.SystemRandom().randrange(1 << 31)))
    print(f"seed {seed} (replay: VQD_REFERENCE_SEED={seed})", flush=True)
    return seed


def scaled(count):
    """`count` cases, times VQD_REFERENCE_SCALE (nightly-sized runs set it to 10 or more)."""
    return max(1, int(round(count * float(os.environ.get("VQD_REFERENCE_SCALE", "1")))))


def versions():
    return f"torch {torch.__version__}, diffusers {diffusers.__version__}, transformers {transformers.__version__}"


def run(cmd, **kwargs):
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {result.returncode}:\n{result.stderr}")
    return result.stdout


def _weights_files(component_dir):
    return sorted(f for f in os.listdir(component_dir) if f.endswith(".safetensors"))


def _bin_name(safetensors_name):
    # model.safetensors (transformers) -> pytorch_model.bin; diffusion_pytorch_model.safetensors -> .bin
    return "pytorch_model.bin" if safetensors_name == "model.safetensors" else safetensors_name[:-12] + ".bin"


def make_layouts(vqd, preset, seed, root):
    """Writes one random model of `preset` in every layout; returns {layout: (dir, vqd flags, diffusers kwargs)}."""
    base = os.path.join(root, f"{preset}-safetensors")
    run([vqd, "make-model", "--preset", preset, "--seed", str(seed), "--out", base])
    layouts = {"safetensors": (base, [], {})}

    def copy(name):
        out = os.path.join(root, f"{preset}-{name}")
        shutil.copytree(base, out)
        return out

    components = [c for c in sorted(os.listdir(base)) if os.path.isdir(os.path.join(base, c))]
    # PyTorch .bin weights, as the hub's fp32 ITHQ files are.
    out = copy("bin")
    for c in components:
        for f in _weights_files(os.path.join(out, c)):
            path = os.path.join(out, c, f)
            torch.save(load_file(path), os.path.join(out, c, _bin_name(f)))
            os.remove(path)
    layouts["bin"] = (out, [], {"use_safetensors": False})
    # Only fp16-variant files; both sides upcast them to float32 and compute in float32.
    out = copy("fp16")
    for c in components:
        for f in _weights_files(os.path.join(out, c)):
            path = os.path.join(out, c, f)
            half = {k: v.half() if v.is_floating_point() else v for k, v in load_file(path).items()}
            save_file(half, path[:-12] + ".fp16.safetensors")
            os.remove(path)
    layouts["fp16"] = (out, ["--variant", "fp16"], {"variant": "fp16", "torch_dtype": torch.float32})
    # No learned null embedding: guidance encodes the empty prompt (diffusers' learnable=False).
    out = copy("empty-null")
    null_dir = os.path.join(out, "learned_classifier_free_sampling_embeddings")
    for f in os.listdir(null_dir):
        os.remove(os.path.join(null_dir, f))
    with open(os.path.join(null_dir, "config.json"), "w") as fh:
        json.dump({"_class_name": "LearnedClassifierFreeSamplingEmbeddings", "learnable": False,
                   "hidden_size": None, "length": None}, fh)
    save_file({}, os.path.join(null_dir, "diffusion_pytorch_model.safetensors"))
    layouts["empty-null"] = (out, [], {})
    return layouts


class Timer:
    def __init__(self):
        self.start = time.monotonic()

    def __str__(self):
        return f"{time.monotonic() - self.start:.1f} s"
