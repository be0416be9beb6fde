"""Procedural scenes for the demo model: one shape of a colour and size at a position on a
plain background, 32x32 RGB, with captions made from templates. Pure Python, so that the
evaluation (score.py) can run without third-party packages.

Everything is seeded: the same seed gives the same scenes, captions and held-out split. A scene
is (shape, colour, position, background, size): 540 of them.
"""
import random

SIZE = 32  # image width and height in pixels

SHAPES = ("circle", "square", "triangle")
COLOURS = {  # foreground palette, far apart in RGB
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 230),
    "yellow": (240, 215, 40),
    "purple": (150, 60, 200),
    "orange": (250, 140, 30),
}
BACKGROUNDS = {
    "white": (245, 245, 245),
    "black": (20, 20, 20),
    "gray": (128, 128, 128),
}
SIZES = {"small": 10, "large": 18}  # bounding-box side in pixels
POSITIONS = {  # centre of the shape's bounding box, (x, y), as a function of its side
    "top left": lambda s: (s / 2 + 1, s / 2 + 1),
    "top right": lambda s: (SIZE - s / 2 - 1, s / 2 + 1),
    "bottom left": lambda s: (s / 2 + 1, SIZE - s / 2 - 1),
    "bottom right": lambda s: (SIZE - s / 2 - 1, SIZE - s / 2 - 1),
    "center": lambda s: (SIZE / 2, SIZE / 2),
}

# Full captions name every attribute; short ones leave some out (the model then learns what is
# likely), so that "a red circle" works as a prompt too.
FULL_TEMPLATES = (
    "a {size} {colour} {shape} at the {position} on a {background} background",
    "a {size} {colour} {shape} in the {position}, {background} background",
    "{background} background with a {size} {colour} {shape} at the {position}",
)
SHORT_TEMPLATES = (
    "a {colour} {shape}",
    "a {size} {colour} {shape}",
    "a {colour} {shape} at the {position}",
    "a {colour} {shape} on a {background} background",
)


def position_phrase(position):
    return "center" if position == "center" else position


ATTRIBUTES = ("shape", "colour", "position", "background", "size")


class Scene:
    __slots__ = ATTRIBUTES

    def __init__(self, shape, colour, position, background, size):
        self.shape, self.colour, self.position, self.background, self.size = shape, colour, position, background, size

    def caption(self, template):
        return template.format(size=self.size, colour=self.colour, shape=self.shape,
                               position=position_phrase(self.position), background=self.background)

    def as_dict(self):
        return {k: getattr(self, k) for k in ATTRIBUTES}

    def render(self):
        """Rows of (r, g, b) tuples, SIZE x SIZE."""
        side = SIZES[self.size]
        cx, cy = POSITIONS[self.position](side)
        fg, bg = COLOURS[self.colour], BACKGROUNDS[self.background]
        return [[fg if inside(self.shape, x + 0.5, y + 0.5, cx, cy, side) else bg for x in range(SIZE)]
                for y in range(SIZE)]


def inside(shape, x, y, cx, cy, side):
    half = side / 2
    dx, dy = x - cx, y - cy
    if shape == "circle":
        return dx * dx + dy * dy <= half * half
    if shape == "square":
        return abs(dx) <= half and abs(dy) <= half
    if shape == "triangle":  # pointing up, base at the bottom of the box
        if not (-half <= dy <= half):
            return False
        t = (dy + half) / side  # 0 at the apex, 1 at the base
        return abs(dx) <= half * t
    raise ValueError(f"unknown shape {shape}")


def all_scenes():
    """Every (shape, colour, position, background, size) the scenes combine: 540."""
    return [(shape, colour, position, background, size) for shape in SHAPES for colour in COLOURS
            for position in POSITIONS for background in BACKGROUNDS for size in SIZES]


def held_out_scenes(seed, fraction=0.1):
    """Scenes never shown in training, in any caption: a `fraction` of all_scenes(), chosen so
    that training still shows each held-out scene's shape, colour and position together (with
    another background or size). The model has to draw a known object on a background or at a
    size it was never drawn with."""
    rng = random.Random(seed)
    order = all_scenes()
    rng.shuffle(order)
    held = []
    for scene in order:
        if len(held) >= round(fraction * len(order)):
            break
        siblings = [s for s in all_scenes() if s[:3] == scene[:3] and s != scene and s not in held]
        if siblings:
            held.append(scene)
    return sorted(held)


def training_scenes(seed, count, held_out):
    """`count` (scene, caption) pairs whose scenes are not held out."""
    rng = random.Random(seed)
    held = set(held_out)
    out = []
    while len(out) < count:
        key = (rng.choice(SHAPES), rng.choice(list(COLOURS)), rng.choice(list(POSITIONS)),
               rng.choice(list(BACKGROUNDS)), rng.choice(list(SIZES)))
        if key in held:
            continue
        scene = Scene(*key)
        templates = FULL_TEMPLATES if rng.random() < 0.7 else SHORT_TEMPLATES
        out.append((scene, scene.caption(rng.choice(templates))))
    return out


def caption_words():
    """Every word any caption can contain (for the tokenizer's vocabulary)."""
    words = set()
    for template in FULL_TEMPLATES + SHORT_TEMPLATES:
        for part in template.replace(",", " , ").split():
            if not part.startswith("{"):
                words.add(part)
    for name in list(SHAPES) + list(COLOURS) + list(BACKGROUNDS) + list(SIZES):
        words.add(name)
    for p in POSITIONS:
        words.update(position_phrase(p).split())
    return sorted(words)
