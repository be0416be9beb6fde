#!/usr/bin/env python3
"""Compares tests/deploy/exported_metrics.txt with what a vqd-server really exports.

    check_exported_metrics.py (--url http://127.0.0.1:9464/metrics | --file METRICS.txt)
                              [--list exported_metrics.txt] [--allow-absent] [--require NAME,...]

Reads the Prometheus text exposition (format 0.0.4). Fails when
  - a family the server exports (a `# TYPE` line, or samples of an undeclared family) whose name
    starts with vqd_ is missing from the list (the list is out of date), or
  - a family's type differs from the list's, or
  - a family in the list is absent from the server, unless --allow-absent: prometheus-cpp omits a
    labelled family until its first child exists (vqd_requests_total before the first request,
    for instance); --require still insists on the named ones.
Exit status 0 when all pass, 1 otherwise, 2 when the metrics cannot be read.
"""
import argparse
import os
import re
import sys
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import promql_names  # noqa: E402

CHECKED_PREFIXES = ("vqd_",)
SAMPLE = re.compile(r"^([A-Za-z_:][\w:]*)(\{.*\})?\s+\S+")


def parse_exposition(text):
    """{family: type} from # TYPE lines, plus families seen only through samples ('untyped')."""
    families = {}
    for line in text.splitlines():
        m = re.match(r"#\s*TYPE\s+(\S+)\s+(\S+)", line)
        if m:
            families[m.group(1)] = m.group(2)
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        m = SAMPLE.match(line)
        if not m:
            continue
        name = m.group(1)
        if name in families:
            continue
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if base in families and families[base] in ("histogram", "summary"):
            continue
        families.setdefault(name, "untyped")
    return families


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--url")
    src.add_argument("--file")
    ap.add_argument("--list", default=os.path.join(HERE, "exported_metrics.txt"))
    ap.add_argument("--allow-absent", action="store_true")
    ap.add_argument("--require", default="", help="comma-separated families that must be present")
    a = ap.parse_args()
    try:
        if a.url:
            with urllib.request.urlopen(a.url, timeout=10) as r:
                text = r.read().decode("utf-8")
        else:
            with open(a.file, encoding="utf-8") as f:
                text = f.read()
    except OSError as e:
        print(f"FAIL: cannot read the metrics: {e}")
        return 2
    served = parse_exposition(text)
    listed = promql_names.load_exported(a.list)
    errors, checks = [], 0

    def check(cond, msg):
        nonlocal checks
        checks += 1
        if not cond:
            errors.append(msg)

    for name, typ in sorted(served.items()):
        if not name.startswith(CHECKED_PREFIXES):
            continue
        check(name in listed, f"{name} ({typ}) is exported but not in {os.path.basename(a.list)}")
        if name in listed:
            check(listed[name] == typ, f"{name}: the server says {typ}, the list says {listed[name]}")
    required = {n for n in a.require.split(",") if n}
    for name in sorted(listed):
        if name not in served:
            if a.allow_absent and name not in required:
                print(f"note: {name} is not exported yet (no series)")
            else:
                check(False, f"{name} is listed but the server does not export it")
    for name in sorted(required - set(listed)):
        check(False, f"--require {name}: not in the list")
    print(f"server exports {len(served)} families, {sum(n.startswith(CHECKED_PREFIXES) for n in served)} checked")
    for e in errors:
        print(f"FAIL: {e}")
    print(f"{checks - len(errors)} passed, {len(errors)} failed")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
