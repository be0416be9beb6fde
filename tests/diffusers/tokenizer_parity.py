#!/usr/bin/env python3
"""Tokenizer parity at scale: transformers' CLIPTokenizer, padded and truncated to 77 ids as the
parity data's reference (transformers 5.17) fed diffusers' VQDiffusionPipeline, against
`vqd tokenize --lines` on generated strings: mixed scripts, emoji, combining marks, HTML entities, odd whitespace, control characters,
very long prompts, and the pad and special tokens written in the text. Every model directory
given is checked (the parity data's two tokenizer layouts: tokenizer.json, and vocab.json +
merges.txt with the old special-token files).

    tokenizer_parity.py VQD WORK_DIR MODEL_DIR [MODEL_DIR...]

VQD_REFERENCE_SEED replays a run; VQD_REFERENCE_SCALE multiplies the 10,000 strings.

Unicode versions: vqd classifies characters (letters, numbers, spaces, case, NFC) with the system's
ICU (72 on Debian 12: Unicode 15.0); transformers 5.23's tokenizers know Unicode 16 and 17, whose
new letters (Egyptian Hieroglyphs Extended-A, Garay, Beria Erfe, ...) vqd does not treat as
letters, so prompts holding them tokenize differently. The random code points are therefore drawn
among the characters both agree on: those Python's own tables (Unicode 14) assign, and those
still unassigned in the newest Unicode; the test prints how many draws it replaced.

Over-long prompts: the pipeline asks for padding="max_length", max_length=77 without truncation and
then keeps the first 77 ids. transformers up to 5.17 truncated implicitly there (EOS stays at
position 76: the parity data, and the official code, which keeps EOS too); transformers 5.23 no
longer does, so diffusers 0.42.1 on it cuts blindly (no EOS). vqd keeps EOS; this test compares
with truncation on and reports how many strings the blind cut would change.
"""
import json
import os
import random
import sys
import unicodedata

import regex

from reference_env import Timer, run, run_seed, scaled, transformers, versions

from transformers import CLIPTokenizer

SCRIPTS = [
    "teddy bear playing in the pool", "Ein Hund läuft über die Straße", "Съешь же ещё этих мягких булок",
    "Καλημέρα κόσμε", "東京タワーの夜景", "一只猫坐在桌子上", "서울의 밤거리", "مرحبا بالعالم", "שלום עולם",
    "नमस्ते दुनिया", "สวัสดีชาวโลก", "Ağaç üstünde kuş", "Dzień dobry, świecie", "Xin chào thế giới",
]
EMOJI = ["🐻", "🏊", "✨", "👍🏽", "👨‍👩‍👧‍👦", "🇯🇵", "❤️", "🧑🏻‍🚀", "☕", "🎉🎉", "😀😃😄"]
COMBINING = ["\u0301", "\u0300", "\u0308", "\u0327", "\u0303", "\u20dd", "\u0336", "\u0489"]
ENTITIES = ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&nbsp;", "&copy;", "&#x1F43B;", "&amp;amp;", "&"]
SPACES = [" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u2003", "\u3000", "\u200b", "\u2028", "\ufeff", "\u180e"]
CONTROLS = [chr(c) for c in list(range(0, 32)) + [127, 0x85, 0x9f]]
SPECIALS = ["<|startoftext|>", "<|endoftext|>", "!", "!!!", "<|endoftext|><|endoftext|>", "<unk>", "<pad>",
            "</w>", "<|startoftext|>hello", "world<|endoftext|>"]
ASCII = ["a", "photo", "of", "an", "astronaut", "riding", "horse", "on", "mars", "4k", "it's", "we'll", "DON'T",
         "C++", "foo_bar@baz.com", "#hashtag", "$100", "50%", "3.14159", "2nd", "x" * 40, "...", "--", "(", ")"]


SKIPPED_NEWER = [0]


def agreed(c):
    """Assigned in Unicode 14 (Python's tables), or unassigned even in the reference's Unicode."""
    ch = chr(c)
    return unicodedata.category(ch) != "Cn" or regex.match(r"\p{Cn}", ch) is not None


def piece(rng):
    kind = rng.random()
    if kind < 0.30:
        return rng.choice(ASCII)
    if kind < 0.45:
        return rng.choice(SCRIPTS)
    if kind < 0.55:
        return rng.choice(EMOJI)
    if kind < 0.62:
        return rng.choice("aeiouncAEIOU") + rng.choice(COMBINING)
    if kind < 0.70:
        return rng.choice(ENTITIES)
    if kind < 0.78:
        return rng.choice(SPACES)
    if kind < 0.84:
        return rng.choice(CONTROLS)
    if kind < 0.90:
        return rng.choice(SPECIALS)
    # Any code point outside the surrogates (which no UTF-8 text can carry) that both Unicode
    # versions classify alike.
    while True:
        c = rng.randrange(0x20, 0x30000)
        if 0xD800 <= c <= 0xDFFF:
            continue
        if agreed(c):
            return chr(c)
        SKIPPED_NEWER[0] += 1


def random_text(rng):
    shape = rng.random()
    if shape < 0.05:
        return ""
    if shape < 0.10:  # very long: several times the 77 ids the pipeline keeps
        count = rng.randint(80, 400)
    else:
        count = rng.randint(1, 20)
    sep = rng.choice(["", " ", " ", " ", rng.choice(SPACES)])
    return sep.join(piece(rng) for _ in range(count))


def main():
    vqd, work, model_dirs = sys.argv[1], sys.argv[2], sys.argv[3:]
    count = scaled(10000)
    print(versions())
    rng = random.Random(run_seed())
    texts = [random_text(rng) for _ in range(count)]
    print(f"{SKIPPED_NEWER[0]} random code points assigned only after Unicode 14 were drawn again")
    os.makedirs(work, exist_ok=True)
    lines = os.path.join(work, "texts.jsonl")
    with open(lines, "w") as fh:
        for t in texts:
            fh.write(json.dumps(t) + "\n")
    failed = False
    for model_dir in model_dirs:
        timer = Timer()
        tokenizer = CLIPTokenizer.from_pretrained(os.path.join(model_dir, "tokenizer"))
        length = tokenizer.model_max_length
        expected = tokenizer(texts, padding="max_length", max_length=length, truncation=True).input_ids
        blind = [ids[:length] for ids in tokenizer(texts, padding="max_length", max_length=length).input_ids]
        overlong = sum(1 for a, b in zip(expected, blind) if a != b)
        reference_time = str(timer)
        timer = Timer()
        got = [json.loads(line) for line in run([vqd, "tokenize", "--model", model_dir, "--lines", lines]).splitlines()]
        if len(got) != len(texts):
            print(f"FAILED {model_dir}: vqd printed {len(got)} lines for {len(texts)} texts")
            failed = True
            continue
        mismatches = [i for i in range(len(texts)) if got[i] != expected[i]]
        print(f"{model_dir}: {len(texts) - len(mismatches)}/{len(texts)} identical "
              f"(transformers {reference_time}, vqd {timer}); {overlong} are over 77 ids, where the "
              f"pipeline on transformers {transformers.__version__} would cut blindly")
        for i in mismatches[:10]:
            first = next(k for k in range(length) if k >= len(got[i]) or got[i][k] != expected[i][k])
            print(f"  MISMATCH text {json.dumps(texts[i])}\n    first differing id at {first}\n"
                  f"    transformers {expected[i]}\n    vqd          {got[i]}")
        failed = failed or bool(mismatches)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
