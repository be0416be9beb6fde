#!/usr/bin/env python3
"""Structural checks of docker/Dockerfile.cpu and docker/Dockerfile.cuda (no Docker engine needed).

    check_docker.py [DOCKERFILE ...]

For each Dockerfile: it parses (instructions known, continuation lines joined); at least two
FROM stages, every base image pinned to a tag (ARG defaults substituted; no :latest); a named
build stage that the final stage copies from with COPY --from=<that stage>, and no COPY --from
an undefined stage; the final stage starts from a runtime image (not -devel, no compilers or
-dev packages installed in it); its last USER is not root (nor uid 0); HEALTHCHECK runs
`vqd-client health`; EXPOSE 50051 and 9464; ENTRYPOINT is vqd-server in exec form; CMD passes
only flags that server/main.cc defines, spelled as abseil wants (--grace_period); no ADD of
a URL; every file copied from the build context, and every repository script a RUN step
calls, exists and is not excluded by the Dockerfile's .dockerignore; those scripts pass `sh -n`
(`bash -n` for bash scripts).
Exit status 0 when all pass, 1 otherwise.
"""
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
                "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}
SRC_IN_IMAGE = "/src"  # where the Dockerfiles COPY the repository
sys.path.insert(0, HERE)
from checker import Checker  # noqa: E402
import server_flags  # noqa: E402



def parse(path):
    """[(line number, INSTRUCTION, arguments)] with continuations joined and comments dropped."""
    out, buf, start = [], "", None
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if not buf and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if buf and line.lstrip().startswith("#"):
                continue  # comment lines inside a continued instruction
            if start is None:
                start = n
            if line.rstrip().endswith("\\"):
                buf += line.rstrip()[:-1] + " "
                continue
            buf += line
            word, _, rest = buf.strip().partition(" ")
            out.append((start, word.upper(), rest.strip()))
            buf, start = "", None
    if buf:
        word, _, rest = buf.strip().partition(" ")
        out.append((start, word.upper(), rest.strip()))
    return out


def flags(args):
    """Leading --flag=value options of COPY/ADD/HEALTHCHECK/FROM -> ({flag: value}, rest)."""
    opts = {}
    parts = args.split()
    while parts and parts[0].startswith("--"):
        k, _, v = parts.pop(0)[2:].partition("=")
        opts[k] = v
    return opts, parts


def substitute(text, argv):
    return re.sub(r"\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)",
                  lambda m: argv.get(m.group(1) or m.group(3), m.group(2) or ""), text)


def ignore_patterns(dockerfile):
    p = dockerfile + ".dockerignore"
    if not os.path.isfile(p):
        p = os.path.join(REPO, ".dockerignore")
    if not os.path.isfile(p):
        return None, []
    pats = []
    for line in open(p, encoding="utf-8"):
        line = line.strip()
        if line and not line.startswith("#"):
            pats.append(line.rstrip("/"))
    return p, pats


def ignored(rel, patterns):
    result = False
    for pat in patterns:
        neg = pat.startswith("!")
        pat = pat[1:] if neg else pat
        parts = rel.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        hit = any(fnmatch.fnmatchcase(pre, pat) or (pat.startswith("**/") and fnmatch.fnmatchcase(pre.split("/")[-1], pat[3:]))
                  for pre in prefixes)
        if hit:
            result = not neg
    return result


def check_dockerfile(path, ck):
    rel = os.path.relpath(path, REPO)
    if not ck.check(os.path.isfile(path), f"{rel}: missing"):
        return
    instrs = parse(path)
    for n, word, _ in instrs:
        ck.check(word in INSTRUCTIONS, f"{rel}:{n}: unknown instruction {word}")

    # Stages.
    argv, stages = {}, []  # stages: dict(name, image, instrs)
    for n, word, args in instrs:
        if word == "ARG" and not stages:
            k, _, v = args.partition("=")
            argv[k.strip()] = v.strip().strip('"')
        elif word == "FROM":
            _, parts = flags(args)
            image = substitute(parts[0], argv) if parts else ""
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append({"name": name, "image": image, "line": n, "instrs": []})
        elif stages:
            stages[-1]["instrs"].append((n, word, args))
    if not ck.check(len(stages) >= 2, f"{rel}: {len(stages)} FROM stage(s); expected a multi-stage build"):
        return
    names = [s["name"] for s in stages if s["name"]]
    for s in stages:
        img = s["image"]
        is_stage = img in names
        ck.check(is_stage or re.search(r":[\w.-]+$", img.split("/")[-1]) or "@sha256:" in img,
                 f"{rel}:{s['line']}: base image {img!r} has no tag")
        ck.check(not img.endswith(":latest"), f"{rel}:{s['line']}: base image {img!r} uses :latest")
    final = stages[-1]
    builders = [s for s in stages[:-1] if s["name"]]
    ck.check(builders, f"{rel}: no named build stage (FROM ... AS builder)")
    ck.check(not re.search(r"-devel\b|\bdevel\b", final["image"]), f"{rel}: the final stage starts from a devel image {final['image']}")
    if "debian" in final["image"]:
        ck.check("slim" in final["image"], f"{rel}: the final stage should start from a -slim Debian image")

    copied_from = set()
    for s in stages:
        for n, word, args in s["instrs"]:
            if word in ("ADD", "COPY"):
                opts, parts = flags(args)
                if word == "ADD":
                    ck.check(not any(re.match(r"https?://|git@", p) for p in parts),
                             f"{rel}:{n}: ADD of a URL; download in a RUN step and verify it")
                if "from" in opts:
                    ck.check(opts["from"] in names[:names.index(s["name"])] if s["name"] in names else opts["from"] in names,
                             f"{rel}:{n}: COPY --from={opts['from']} is not an earlier stage")
                    if s is final:
                        copied_from.add(opts["from"])
                else:
                    for src in parts[:-1]:
                        if src.startswith("["):
                            continue
                        srcp = os.path.normpath(os.path.join(REPO, src))
                        ck.check(os.path.exists(srcp), f"{rel}:{n}: COPY source {src} does not exist in the repository")
    ck.check(any(b["name"] in copied_from for b in builders), f"{rel}: the final stage copies nothing from a build stage")

    # Final stage: runtime only.
    final_words = [(n, w, a) for n, w, a in final["instrs"]]
    for n, word, args in final_words:
        if word == "RUN":
            for bad in ("build-essential", "cmake", "g++", "gcc ", "ninja-build", "-dev ", "-dev\\", "-devel"):
                ck.check(bad not in args + " ", f"{rel}:{n}: the runtime stage installs build tooling ({bad.strip()})")
    users = [a.strip() for _, w, a in final_words if w == "USER"]
    if ck.check(users, f"{rel}: the final stage sets no USER"):
        user = users[-1].split(":")[0]
        ck.check(user not in ("root", "0") and user, f"{rel}: the final stage runs as {users[-1]}")
    hc = [(n, a) for n, w, a in final_words if w == "HEALTHCHECK"]
    if ck.check(hc, f"{rel}: no HEALTHCHECK"):
        n, args = hc[-1]
        ck.check("NONE" not in args.upper().split(), f"{rel}:{n}: HEALTHCHECK NONE")
        ck.check(re.search(r"vqd-client\W+health", args), f"{rel}:{n}: HEALTHCHECK does not run `vqd-client health`")
        opts, _ = flags(args)
        ck.check("start-period" in opts, f"{rel}:{n}: HEALTHCHECK without --start-period (model loading takes a while)")
    exposed = set()
    for _, w, a in final_words:
        if w == "EXPOSE":
            exposed |= {p.split("/")[0] for p in a.split()}
    ck.check("50051" in exposed, f"{rel}: EXPOSE 50051 missing")
    ck.check("9464" in exposed, f"{rel}: EXPOSE 9464 missing")
    eps = [(n, a) for n, w, a in final_words if w == "ENTRYPOINT"]
    if ck.check(eps, f"{rel}: no ENTRYPOINT"):
        n, args = eps[-1]
        try:
            ep = json.loads(args)
        except ValueError:
            ep = None
        ck.check(isinstance(ep, list) and ep and os.path.basename(ep[0]) == "vqd-server",
                 f"{rel}:{n}: ENTRYPOINT must be vqd-server in exec (JSON) form, so that it gets SIGTERM as PID 1")

    # The default arguments (CMD after an ENTRYPOINT of vqd-server) are flags the server knows.
    cmds = [(n, a) for n, w, a in final_words if w == "CMD"]
    if cmds:
        n, args = cmds[-1]
        try:
            argv = json.loads(args)
        except ValueError:
            argv = args.split()
        for problem in server_flags.flag_problems(argv, server_flags.known_flags()):
            ck.check(False, f"{rel}:{n}: CMD: {problem}")

    # Files from the repository: present and not excluded from the build context.
    ignore_file, patterns = ignore_patterns(path)
    ck.check(ignore_file, f"{rel}: no {os.path.basename(path)}.dockerignore next to it nor .dockerignore at the root")
    needed = set()
    for s in stages:
        for n, word, args in s["instrs"]:
            if word == "COPY" and "from" not in flags(args)[0]:
                needed |= {p for p in flags(args)[1][:-1] if p not in (".", "./")}
            if word == "RUN":
                for m in re.finditer(re.escape(SRC_IN_IMAGE) + r"/([\w./-]+\.sh)\b", args):
                    needed.add(m.group(1))
    for f in sorted(needed):
        ck.check(os.path.exists(os.path.join(REPO, f)), f"{rel}: uses {f}, which does not exist")
        ck.check(not ignored(os.path.normpath(f), patterns), f"{rel}: uses {f}, which {ignore_file} excludes")
        if f.endswith(".sh") and os.path.isfile(os.path.join(REPO, f)):
            with open(os.path.join(REPO, f), encoding="utf-8") as fh:
                shebang = fh.readline()
            shell = shutil.which("bash" if "bash" in shebang else "sh")
            if shell:
                r = subprocess.run([shell, "-n", os.path.join(REPO, f)], capture_output=True, text=True)
                ck.check(r.returncode == 0, f"{rel}: {f} has shell syntax errors: {r.stderr.strip()}")
    for must_keep in ("CMakeLists.txt", "src", "proto", "cmake"):
        if os.path.exists(os.path.join(REPO, must_keep)):
            ck.check(not ignored(must_keep, patterns), f"{ignore_file}: excludes {must_keep}, which the build needs")
    ck.check(ignored(".git", patterns) and ignored("build", patterns), f"{ignore_file}: should exclude .git and build")
    print(f"{rel}: {len(stages)} stages ({', '.join(s['name'] or s['image'] for s in stages)}), final FROM {final['image']}")


def main():
    files = sys.argv[1:] or [os.path.join(REPO, "docker", n) for n in ("Dockerfile.cpu", "Dockerfile.cuda")]
    ck = Checker()
    for f in files:
        check_dockerfile(os.path.abspath(f), ck)
    return ck.report()


if __name__ == "__main__":
    sys.exit(main())
