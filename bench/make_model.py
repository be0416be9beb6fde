#!/usr/bin/env python3
"""Writes a diffusers-layout VQ-Diffusion model with random weights, with diffusers' own classes and
save_pretrained, so that bench/gpu_check.sh has the model before (and while) the project builds:
the same directory serves diffusers' VQDiffusionPipeline and vqd. Presets as `vqd make-model`:
"tiny" (CPU smoke runs) and "ithq" (the real ITHQ shapes: 36 x 1408 transformer, 4096 codes on
32x32, CLIP ViT-B/32-sized text tower). Weights are initialised by PyTorch's defaults on the chosen
device, then saved in float16 as the hub's *.fp16.safetensors variant files.

    python3 bench/make_model.py --preset ithq --out /tmp/vqd-ithq [--device cuda]

The tokenizer is CLIP's byte-level BPE with the 512 byte symbols and no merges (CLIPTokenizer and
vqd's tokenizer read it alike); ids fit CLIP's 49408-row table, as in `vqd make-model`.
"""
import argparse
import json
import os


def bytes_to_unicode():
    """CLIP's byte -> printable character table (openai/CLIP simple_tokenizer)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def write_tokenizer(folder):
    os.makedirs(folder, exist_ok=True)
    symbols = list(bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({token: i for i, token in enumerate(vocab)}, f, ensure_ascii=False)
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
    return os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt")


PRESETS = {
    "tiny": dict(
        transformer=dict(num_attention_heads=2, attention_head_dim=16, num_layers=2, num_vector_embeds=17,
                         sample_size=8, cross_attention_dim=32),
        vqvae=dict(block_out_channels=[32, 32, 64],
                   down_block_types=["DownEncoderBlock2D", "AttnDownEncoderBlock2D", "DownEncoderBlock2D"],
                   up_block_types=["UpDecoderBlock2D", "AttnUpDecoderBlock2D", "UpDecoderBlock2D"],
                   layers_per_block=1, latent_channels=4, num_vq_embeddings=16, vq_embed_dim=4),
        text=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4),
    ),
    "ithq": dict(
        transformer=dict(num_attention_heads=16, attention_head_dim=88, num_layers=36, num_vector_embeds=4097,
                         sample_size=32, cross_attention_dim=512),
        vqvae=dict(block_out_channels=[64, 128, 256, 512],
                   down_block_types=["DownEncoderBlock2D"] * 3 + ["AttnDownEncoderBlock2D"],
                   up_block_types=["AttnUpDecoderBlock2D"] + ["UpDecoderBlock2D"] * 3,
                   layers_per_block=2, latent_channels=256, num_vq_embeddings=4096, vq_embed_dim=128),
        text=dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=8),
    ),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="ithq")
    parser.add_argument("--out", required=True)
    parser.add_argument("--device", default="cuda", help="where to initialise (cuda falls back to cpu)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch
    from diffusers import Transformer2DModel, VQDiffusionPipeline, VQDiffusionScheduler, VQModel
    from diffusers.pipelines.deprecated.vq_diffusion.pipeline_vq_diffusion import (
        LearnedClassifierFreeSamplingEmbeddings)
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    if os.path.exists(os.path.join(args.out, "model_index.json")):
        print(f"{args.out} already holds a model; keeping it")
        return
    device = "cpu" if args.device.startswith("cuda") and not torch.cuda.is_available() else args.device
    preset = PRESETS[args.preset]
    torch.manual_seed(args.seed)
    vocab, merges = write_tokenizer(os.path.join(args.out, "tokenizer"))
    tokenizer = CLIPTokenizer(vocab, merges, pad_token="!", model_max_length=77)
    with torch.device(device):
        transformer = Transformer2DModel(num_embeds_ada_norm=100, activation_fn="geglu-approximate",
                                         attention_bias=True, **preset["transformer"])
        vqvae = VQModel(in_channels=3, out_channels=3, norm_num_groups=32, **preset["vqvae"])
        text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=49408 if args.preset == "ithq" else len(tokenizer),
                                                    max_position_embeddings=77, hidden_act="quick_gelu",
                                                    bos_token_id=tokenizer.bos_token_id,
                                                    eos_token_id=tokenizer.eos_token_id,
                                                    pad_token_id=tokenizer.pad_token_id, **preset["text"]))
        hidden = preset["text"]["hidden_size"]
        learned = LearnedClassifierFreeSamplingEmbeddings(learnable=True, hidden_size=hidden, length=77)
        with torch.no_grad():
            learned.embeddings.normal_(0, 0.5)
    scheduler = VQDiffusionScheduler(num_vec_classes=preset["transformer"]["num_vector_embeds"])
    pipe = VQDiffusionPipeline(vqvae=vqvae, text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer,
                               scheduler=scheduler,
                               learned_classifier_free_sampling_embeddings=learned).to(torch.float16)
    pipe.save_pretrained(args.out, variant="fp16", safe_serialization=True)
    print(f"wrote {args.preset} model ({sum(p.numel() for p in transformer.parameters()) / 1e6:.1f} M transformer "
          f"parameters, initialised on {device}) to {args.out}")


if __name__ == "__main__":
    main()
