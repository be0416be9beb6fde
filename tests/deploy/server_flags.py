"""The command-line flags vqd-server accepts, read from its ABSL_FLAG definitions.

Abseil spells multi-word flags with underscores (--grace_period); vqd-server also accepts the
dashed spelling (--grace-period) by rewriting it before abseil parses the command line.
"""
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MAIN = os.path.join(REPO, "server", "main.cc")
# Abseil's own flags that every binary has.
ABSL_BUILTIN = {"help", "helpfull", "helpshort", "helppackage", "version", "only_check_args", "flagfile",
                "fromenv", "tryfromenv", "undefok"}


def known_flags(main_cc=MAIN):
    """Flag names defined in server/main.cc, or None when the file is absent."""
    if not os.path.isfile(main_cc):
        return None
    with open(main_cc, encoding="utf-8") as f:
        names = set(re.findall(r"ABSL_FLAG\(\s*[\w:<>, ]+?,\s*(\w+)\s*,", f.read()))
    return (names | ABSL_BUILTIN) if names else None


def flag_problems(arguments, known):
    """Problems with a list of vqd-server arguments: dashed names, unknown flags."""
    problems = []
    for a in arguments:
        a = str(a)
        if not a.startswith("--"):
            continue
        name = a[2:].split("=", 1)[0]
        if name.startswith("no") and known and name[2:] in known:
            continue  # --noreflection
        name = name.replace("-", "_")
        if known is not None and name not in known:
            problems.append(f"--{name}: vqd-server has no such flag (server/main.cc)")
    return problems
