"""A subset of CLIP's BPE vocabulary for the demo model: CLIP's 512 byte-level base tokens, its
two special tokens, and every token and merge that CLIP's own BPE produces on the words of the
demo captions, renumbered in CLIP's order. The words of the captions tokenize exactly as CLIP
tokenizes them; any other text still tokenizes (into smaller pieces). The embedding table stays
small (a few hundred rows instead of 49408).

    build_subset(tokenizer_dir, words) -> (vocab dict, merges list)
"""
import json
import os

BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def read_clip(tokenizer_dir):
    with open(os.path.join(tokenizer_dir, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    with open(os.path.join(tokenizer_dir, "merges.txt"), encoding="utf-8") as f:
        lines = f.read().split("\n")
    merges = [tuple(line.split()) for line in lines[1:] if line.strip()]  # the first line is "#version"
    return vocab, merges


def bpe(word, ranks):
    """CLIP's BPE of one lowercase ASCII word: the tokens and the merges it applied."""
    parts = list(word[:-1]) + [word[-1] + "</w>"]
    applied = []
    while len(parts) > 1:
        pairs = [(ranks.get((a, b), float("inf")), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
        rank, _ = min(pairs)
        if rank == float("inf"):
            break
        first, second = next((a, b) for a, b in zip(parts, parts[1:]) if ranks.get((a, b)) == rank)
        applied.append((first, second))
        merged, i = [], 0
        while i < len(parts):
            if i + 1 < len(parts) and parts[i] == first and parts[i + 1] == second:
                merged.append(first + second)
                i += 2
            else:
                merged.append(parts[i])
                i += 1
        parts = merged
    return parts, applied


def build_subset(tokenizer_dir, words):
    vocab, merges = read_clip(tokenizer_dir)
    ranks = {m: i for i, m in enumerate(merges)}
    base = sorted(vocab, key=vocab.get)[:512]  # CLIP's first 512 ids: the bytes, then the bytes with </w>
    keep = set(base) | {BOS, EOS}
    used = set()
    for word in words:
        if not all(c.isascii() and (c.isalpha() or c in ",.") for c in word):
            raise ValueError(f"caption word {word!r} is outside the ASCII letters this builder handles")
        tokens, applied = bpe(word.lower(), ranks)
        for a, b in applied:
            keep.update((a, b, a + b))
            used.add((a, b))
        keep.update(tokens)
    missing = [t for t in keep if t not in vocab]
    if missing:
        raise ValueError(f"tokens not in CLIP's vocabulary: {missing}")
    ordered = sorted(keep, key=vocab.get)
    subset_vocab = {token: i for i, token in enumerate(ordered)}
    subset_merges = [m for m in merges if m in used]
    return subset_vocab, subset_merges


def write_tokenizer(out_dir, vocab, merges, max_length):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(out_dir, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": max_length, "bos_token": BOS,
              "eos_token": EOS, "pad_token": EOS, "unk_token": EOS, "do_lower_case": True}
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(out_dir, "special_tokens_map.json"), "w") as f:
        json.dump({"bos_token": BOS, "eos_token": EOS, "pad_token": EOS, "unk_token": EOS}, f, indent=2)
