#!/usr/bin/env python3
"""Trains the demo model: a small VQ-Diffusion text-to-image model of the ITHQ family on the
procedural scenes of scenes.py, written in the diffusers layout (diffusers' VQDiffusionPipeline
and vqd both load it), with fp16 weights.

    train.py --out DIR [--seed 0] [--threads 2] [--quick]

Stages: render the scenes (holding out scenes.held_out_scenes for the evaluation); build the tokenizer (a subset of CLIP's BPE vocabulary, from
../shared/parity); train the VQ-VAE (reconstruction + VQ losses, dead codes restarted from
encoder outputs); encode every scene to tokens; train the text encoder, the transformer and the
learned null embedding together with VQ-Diffusion's objective (the variational bound
KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)), -log p(x_0 | x_1) at t = 0, plus an auxiliary
cross-entropy on the predicted x_0 with label smoothing), each scene of a batch at its own
timestep, with the caption dropped for the null embedding 10% of the time (classifier-free
guidance); keep an exponential moving average of those weights and save it. Deterministic for a given seed and thread count (torch.use_deterministic_algorithms).
Writes DIR and DIR/../<name>-train-report.json (losses, times, codebook use, reconstruction
scores).
"""
import argparse
import json
import math
import os
import sys
import time
import types

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import clip_subset  # noqa: E402
import scenes  # noqa: E402
import score  # noqa: E402

from diffusers.models.normalization import AdaLayerNorm  # noqa: E402
from diffusers import Transformer2DModel, VQDiffusionPipeline, VQDiffusionScheduler, VQModel  # noqa: E402
from diffusers.pipelines.deprecated.vq_diffusion.pipeline_vq_diffusion import (  # noqa: E402
    LearnedClassifierFreeSamplingEmbeddings)
from diffusers.schedulers.scheduling_vq_diffusion import index_to_log_onehot  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer  # noqa: E402

MAX_TOKENS = 24   # the captions need at most 17 ids with BOS and EOS
TIMESTEPS = 100   # the ITHQ schedule
CODES = 128       # VQ-VAE codebook: background, six colours and the shapes' edges on 4x4 patches


class Log:
    def __init__(self):
        self.start = time.time()
        self.report = {"stages": {}, "losses": {}}

    def __call__(self, message):
        print(f"[{time.time() - self.start:7.1f}s] {message}", flush=True)

    def stage(self, name, seconds):
        self.report["stages"][name] = round(seconds, 1)


def render(pairs):
    images = np.array([s.render() for s, _ in pairs], dtype=np.uint8)  # [M, 32, 32, 3]
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1  # [M, 3, 32, 32] in [-1, 1]


def train_vqvae(images, steps, batch, seed, log):
    torch.manual_seed(seed)
    vqvae = VQModel(
        in_channels=3, out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(16, 32, 64), layers_per_block=1, latent_channels=32,
        num_vq_embeddings=CODES, vq_embed_dim=32, norm_num_groups=16, sample_size=scenes.SIZE)
    optimizer = torch.optim.Adam(vqvae.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    usage = torch.zeros(CODES)
    losses = []
    for step in range(steps):
        lr = 1e-3 * min(1.0, (step + 1) / 200) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        x = images[torch.randint(0, len(images), (batch,), generator=generator)]
        h = vqvae.quant_conv(vqvae.encoder(x))
        quant, vq_loss, (_, _, indices) = vqvae.quantize(h)
        out = vqvae.decoder(vqvae.post_quant_conv(quant))
        loss = F.mse_loss(out, x) + vq_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        usage += torch.bincount(indices.flatten(), minlength=CODES).float()
        losses.append(loss.item())
        if (step + 1) % 250 == 0:
            # Codes no encoder output chose lately restart at encoder outputs: small codebooks
            # otherwise keep a few dead entries forever.
            dead = (usage == 0).nonzero().flatten()
            if len(dead) > 0 and step + 1 < steps * 0.8:
                with torch.no_grad():
                    z = h.detach().permute(0, 2, 3, 1).reshape(-1, h.shape[1])
                    pick = torch.randint(0, len(z), (len(dead),), generator=generator)
                    vqvae.quantize.embedding.weight[dead] = z[pick]
            log(f"vqvae step {step + 1}/{steps}: loss {np.mean(losses[-250:]):.4f}, "
                f"{int((usage > 0).sum())}/{CODES} codes in use, {len(dead)} restarted")
            usage.zero_()
    return vqvae.eval(), losses


@torch.no_grad()
def encode(vqvae, images, batch=256):
    tokens = []
    for i in range(0, len(images), batch):
        h = vqvae.quant_conv(vqvae.encoder(images[i:i + batch]))
        _, _, (_, _, indices) = vqvae.quantize(h)
        tokens.append(indices.reshape(h.shape[0], -1))
    return torch.cat(tokens)  # [M, N]


@torch.no_grad()
def decode(vqvae, tokens, grid):
    z = vqvae.quantize.get_codebook_entry(tokens.flatten(), (tokens.shape[0], grid, grid, -1))
    return vqvae.decoder(vqvae.post_quant_conv(z)).clamp(-1, 1)


def to_pixels(images):
    """[M, 3, H, W] in [-1, 1] -> rows of (r, g, b), as score.analyse reads them."""
    array = ((images.permute(0, 2, 3, 1) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
    return [[[tuple(int(v) for v in p) for p in row] for row in image] for image in array]


def reconstruction_accuracy(vqvae, pairs, images, grid):
    """The scorer on VQ-VAE reconstructions: an upper bound for what generation can reach."""
    decoded = to_pixels(decode(vqvae, encode(vqvae, images), grid))
    hits = {a: 0 for a in score.ATTRIBUTES}
    for (scene, _), pixels in zip(pairs, decoded):
        found = score.analyse(pixels, scene.background)
        for a in score.ATTRIBUTES:
            hits[a] += found[a] == getattr(scene, a)
    return {a: hits[a] / len(pairs) for a in score.ATTRIBUTES}


class Ema:
    def __init__(self, modules, decay):
        self.params = [p for m in modules for p in m.parameters()]
        self.shadow = [p.detach().clone() for p in self.params]
        self.decay = decay

    @torch.no_grad()
    def update(self):
        for s, p in zip(self.shadow, self.params):
            s.lerp_(p.detach(), 1 - self.decay)

    @torch.no_grad()
    def copy_to_model(self):
        for s, p in zip(self.shadow, self.params):
            p.copy_(s)


def per_sample_ada_norm(self, x, timestep=None, temb=None):
    """diffusers' AdaLayerNorm.forward for a batch of timesteps (it takes one per forward
    pass): the same scale and shift, row by row."""
    emb = self.linear(self.silu(self.emb(timestep)))  # [B, 2D]
    scale, shift = emb.chunk(2, dim=1)
    return self.norm(x) * (1 + scale[:, None]) + shift[:, None]


def batched_timesteps(transformer):
    """Lets every scene of a training batch have its own timestep. Inference (the pipeline and
    vqd) still runs diffusers' own forward: unbatched_timesteps undoes this before saving."""
    for module in transformer.modules():
        if isinstance(module, AdaLayerNorm):
            module.forward = types.MethodType(per_sample_ada_norm, module)


def unbatched_timesteps(transformer):
    for module in transformer.modules():
        if isinstance(module, AdaLayerNorm):
            del module.forward


def cumulative_transitions(scheduler, log_x0, t):
    """scheduler.apply_cumulative_transitions for one timestep per scene."""
    rows = [scheduler.apply_cumulative_transitions(log_x0[i:i + 1], int(t[i])) for i in range(len(t))]
    return torch.cat(rows)


def posterior_kl(scheduler, log_x0, log_p_x0, xt, t):
    """KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)) summed over the grid, one value per scene
    (zero where t == 0, which the caller replaces by the decoder's likelihood)."""
    out = []
    for i in range(len(t)):
        ti = int(t[i])
        if ti == 0:
            out.append(log_p_x0.new_zeros(()))
            continue
        log_q = torch.log_softmax(scheduler.q_posterior(log_x0[i:i + 1], xt[i:i + 1], ti), dim=1)
        log_p = torch.log_softmax(scheduler.q_posterior(log_p_x0[i:i + 1], xt[i:i + 1], ti), dim=1)
        out.append((log_q.exp() * (log_q - log_p)).sum())
    return torch.stack(out)


def train_denoiser(tokens, ids, grid, steps, batch, seed, aux_weight, smoothing, log):
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=ids.vocab_size, hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
        max_position_embeddings=MAX_TOKENS, hidden_act="quick_gelu", projection_dim=64,
        bos_token_id=ids.bos, eos_token_id=ids.eos, pad_token_id=ids.eos))
    transformer = Transformer2DModel(
        num_attention_heads=4, attention_head_dim=32, num_layers=6, num_vector_embeds=CODES + 1, sample_size=grid,
        cross_attention_dim=64, activation_fn="geglu-approximate", num_embeds_ada_norm=TIMESTEPS, attention_bias=True,
        norm_type="ada_norm")
    null = LearnedClassifierFreeSamplingEmbeddings(learnable=True, hidden_size=64, length=MAX_TOKENS)
    scheduler = VQDiffusionScheduler(num_vec_classes=CODES + 1, num_train_timesteps=TIMESTEPS)
    batched_timesteps(transformer)
    modules = [text_encoder, transformer, null]
    params = [p for m in modules for p in m.parameters()]
    optimizer = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01)
    ema = Ema(modules, decay=0.999)
    generator = torch.Generator().manual_seed(seed)
    history = {"vb": [], "aux": [], "loss": []}
    n = tokens.shape[1]
    for step in range(steps):
        lr = 1e-3 * min(1.0, (step + 1) / 500) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        pick = torch.randint(0, len(tokens), (batch,), generator=generator)
        x0, text = tokens[pick], ids.ids[pick]
        t = torch.randint(0, TIMESTEPS, (batch,), generator=generator)  # one timestep per scene
        log_x0 = index_to_log_onehot(x0, CODES)  # [B, K, N]
        log_q_xt = cumulative_transitions(scheduler, log_x0, t)  # q(x_t | x_0), [B, K+1, N]
        u = torch.rand(log_q_xt.shape, generator=generator).clamp_(1e-30, 1)
        xt = (log_q_xt - torch.log(-torch.log(u))).argmax(1)

        hidden = text_encoder(text).last_hidden_state
        hidden = hidden / hidden.norm(dim=-1, keepdim=True)  # as the pipeline normalises prompts
        drop = torch.rand(batch, generator=generator) < 0.1
        hidden = torch.where(drop[:, None, None], null.embeddings.unsqueeze(0).expand_as(hidden), hidden)
        log_p_x0 = transformer(xt, encoder_hidden_states=hidden, timestep=t).sample  # [B, K, N]

        nll = -log_p_x0.gather(1, x0.unsqueeze(1)).squeeze(1).sum(-1)  # [B]
        vb = posterior_kl(scheduler, log_x0, log_p_x0, xt, t)
        vb = torch.where(t == 0, nll, vb)  # -log p(x_0 | x_1) at the last step
        # Label smoothing keeps every code's log-probability above log(smoothing / K), in the
        # conditional and the unconditional predictions alike. Without it the two put unseen
        # codes anywhere down to -40, and guidance (5 * cond - 4 * uncond) turns those
        # arbitrary differences into winners: recognisable at guidance 1, noise at 5.
        smoothed = (1 - smoothing) * nll + smoothing * (-log_p_x0.mean(1)).sum(-1)
        loss = (vb + aux_weight * smoothed).mean() / n
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        ema.update()
        history["vb"].append(vb.mean().item() / n)
        history["aux"].append(nll.mean().item() / n)
        history["loss"].append(loss.item())
        if (step + 1) % 500 == 0:
            log(f"denoiser step {step + 1}/{steps}: loss {np.mean(history['loss'][-500:]):.4f} "
                f"(vb {np.mean(history['vb'][-500:]):.4f}, x0 cross-entropy {np.mean(history['aux'][-500:]):.4f} "
                f"per token), lr {lr:.2e}")
    ema.copy_to_model()
    unbatched_timesteps(transformer)
    return text_encoder.eval(), transformer.eval(), null, scheduler, history


DEFAULT_GUIDANCE = 1.0


def write_sampling_defaults(model_dir):
    """vqd_model.json: vqd serves this model with guidance 1 unless a request asks otherwise.
    On these nearly deterministic pictures the conditional and unconditional predictions are
    both confident given the revealed tokens, and guidance (g * cond - (g - 1) * uncond, in log
    space) turns their differences in the unlikely codes into winners: recognisable pictures at
    1, noise at diffusers' default 5 (README, "The demo model")."""
    metadata = {"sampler": "diffusers", "tokenizer_rules": "transformers", "guidance_scale": DEFAULT_GUIDANCE,
                "truncation_rate": None, "source": {"trained_by": "tools/demo_model/train.py"}}
    with open(os.path.join(model_dir, "vqd_model.json"), "w") as f:
        json.dump(metadata, f, indent=2)
        f.write("\n")


class TokenizedCaptions:
    def __init__(self, tokenizer, captions):
        self.ids = tokenizer(captions, padding="max_length", max_length=MAX_TOKENS, truncation=True,
                             return_tensors="pt").input_ids
        self.vocab_size = len(tokenizer)
        self.bos, self.eos = tokenizer.bos_token_id, tokenizer.eos_token_id


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="model directory to write (must not exist)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--scenes", type=int, default=20000)
    parser.add_argument("--vqvae-steps", type=int, default=3000)
    parser.add_argument("--vqvae-batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=6000, help="text encoder + transformer steps")
    parser.add_argument("--batch", type=int, default=32, help="text encoder + transformer batch")
    parser.add_argument("--aux-weight", type=float, default=1.0, help="weight of the x_0 cross-entropy")
    parser.add_argument("--label-smoothing", type=float, default=0.01, help="of the x_0 cross-entropy")
    parser.add_argument("--parity-dir", default=os.path.join(HERE, "..", "..", "..", "shared", "parity"),
                        help="where CLIP's tokenizer files are (tiny/model/tokenizer)")
    parser.add_argument("--quick", action="store_true", help="a few hundred steps, to try the pipeline out")
    args = parser.parse_args()
    if args.quick:
        args.scenes, args.vqvae_steps, args.steps = 2000, 250, 500
    if os.path.exists(args.out):
        parser.error(f"{args.out} exists")
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    log = Log()
    log.report["arguments"] = vars(args)
    log.report["versions"] = {"torch": torch.__version__}

    t0 = time.time()
    held_out = scenes.held_out_scenes(args.seed)
    pairs = scenes.training_scenes(args.seed + 1, args.scenes, held_out)
    images = render(pairs)
    log(f"rendered {len(pairs)} training scenes; held out {len(held_out)} of the {len(scenes.all_scenes())} scenes")
    log.stage("render", time.time() - t0)

    staging = args.out + ".partial"
    tokenizer_dir = os.path.join(staging, "tokenizer")
    vocab, merges = clip_subset.build_subset(os.path.join(args.parity_dir, "tiny", "model", "tokenizer"),
                                             scenes.caption_words())
    clip_subset.write_tokenizer(tokenizer_dir, vocab, merges, MAX_TOKENS)
    tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir)
    ids = TokenizedCaptions(tokenizer, [c for _, c in pairs])
    log(f"tokenizer: {len(vocab)} tokens of CLIP's vocabulary, {len(merges)} merges")

    t0 = time.time()
    vqvae, vq_losses = train_vqvae(images, args.vqvae_steps, args.vqvae_batch, args.seed, log)
    log.stage("vqvae", time.time() - t0)
    grid = scenes.SIZE // 4
    sample = slice(0, 300)
    log.report["vqvae_reconstruction_accuracy"] = reconstruction_accuracy(vqvae, pairs[sample], images[sample], grid)
    log(f"scorer on VQ-VAE reconstructions: {log.report['vqvae_reconstruction_accuracy']}")
    t0 = time.time()
    tokens = encode(vqvae, images)
    log.report["codes_used"] = int(torch.unique(tokens).numel())
    log(f"encoded every scene: {log.report['codes_used']}/{CODES} codes used")
    log.stage("encode", time.time() - t0)

    t0 = time.time()
    text_encoder, transformer, null, scheduler, history = train_denoiser(
        tokens, ids, grid, args.steps, args.batch, args.seed + 2, args.aux_weight, args.label_smoothing, log)
    log.stage("denoiser", time.time() - t0)

    pipe = VQDiffusionPipeline(vqvae=vqvae.half(), text_encoder=text_encoder.half(), tokenizer=tokenizer,
                               transformer=transformer.half(), scheduler=scheduler,
                               learned_classifier_free_sampling_embeddings=null.half())
    pipe.save_pretrained(staging)
    # The library name the hub's ITHQ gives the null embedding (diffusers loads it with
    # vq_diffusion aliased to its pipeline module, as tests/diffusers does).
    index_path = os.path.join(staging, "model_index.json")
    with open(index_path) as f:
        index = json.load(f)
    index["learned_classifier_free_sampling_embeddings"][0] = "vq_diffusion"
    with open(index_path, "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
    write_sampling_defaults(staging)
    os.rename(staging, args.out)
    every = max(1, args.steps // 100)
    log.report["losses"] = {
        "vqvae": [round(float(np.mean(vq_losses[i:i + 50])), 5) for i in range(0, len(vq_losses), 50)],
        "denoiser_every_%d_steps" % every: {k: [round(float(np.mean(v[i:i + every])), 5) for i in range(0, len(v), every)]
                                            for k, v in history.items()},
    }
    log.report["total_seconds"] = round(time.time() - log.start, 1)
    report_path = os.path.join(os.path.dirname(os.path.abspath(args.out)),
                               os.path.basename(os.path.normpath(args.out)) + "-train-report.json")
    with open(report_path, "w") as f:
        json.dump(log.report, f, indent=1)
    log(f"wrote {args.out} and {report_path} in {log.report['total_seconds']} s")


if __name__ == "__main__":
    main()
