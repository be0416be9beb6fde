#!/usr/bin/env python3
"""Runs every PromQL expression of the Grafana dashboard (and every recording rule and alert
expression) against a live Prometheus, and reports which ones fail or return no data.

    query_dashboard.py --prometheus http://127.0.0.1:9090 [--dashboard FILE] [--rate-interval 30s]

Grafana variables are substituted ($job -> the job, $instance/$device -> .*, $__rate_interval ->
--rate-interval, text boxes -> their default). An expression fails when Prometheus rejects it;
one that returns an empty result fails too unless it only uses series that need hardware the
test does not have (DCGM_*, vqd_gpu_memory_*) or is an alert condition (normally empty).
Also requires every rule group to be loaded and healthy. Exit 0 when all pass, 1 otherwise.
"""
import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import promql_names  # noqa: E402

NEEDS_HARDWARE = ("DCGM_", "vqd_gpu_memory_")


def api(base, path, **params):
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=20) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)


def substitute(expr, variables, job, rate_interval):
    def value(name):
        if name in ("__rate_interval", "__interval", "__range"):
            return rate_interval
        if name == "job":
            return job
        v = variables.get(name) or {}
        return v.get("query", "") if v.get("type") in ("textbox", "constant") else ".*"
    expr = re.sub(r"\$\{(\w+)(?::\w+)?\}", lambda m: value(m.group(1)), expr)
    return re.sub(r"\$(\w+)", lambda m: value(m.group(1)), expr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prometheus", required=True)
    ap.add_argument("--dashboard", default=os.path.join(REPO, "deploy", "grafana", "vqd-dashboard.json"))
    ap.add_argument("--job", default="vqd")
    ap.add_argument("--rate-interval", default="30s")
    a = ap.parse_args()
    with open(a.dashboard, encoding="utf-8") as f:
        d = json.load(f)
    variables = {v["name"]: v for v in d["templating"]["list"]}
    exprs = []

    def walk(panels):
        for p in panels or []:
            for t in p.get("targets") or []:
                if t.get("expr"):
                    exprs.append((f"panel {p.get('id')} {p.get('title')!r} {t.get('refId')}", t["expr"], True))
            walk(p.get("panels"))
    walk(d["panels"])
    for an in d.get("annotations", {}).get("list", []):
        if an.get("expr"):
            exprs.append((f"annotation {an.get('name')!r}", an["expr"], False))  # empty unless a restart

    errors, passed = [], 0
    rules = api(a.prometheus, "/api/v1/rules")
    groups = rules.get("data", {}).get("groups", [])
    if not groups:
        errors.append("no rule groups loaded")
    for g in groups:
        for r in g.get("rules", []):
            if r.get("health") != "ok":
                errors.append(f"rule {r.get('name')}: health {r.get('health')}: {r.get('lastError')}")
            else:
                passed += 1
            # Recording rules must produce data; alert conditions are normally false.
            exprs.append((f"{r.get('type')} rule {r.get('name')}", r.get("query", ""), r.get("type") == "recording"))

    for where, expr, want_data in exprs:
        q = substitute(expr, variables, a.job, a.rate_interval)
        res = api(a.prometheus, "/api/v1/query", query=q)
        if res.get("status") != "success":
            errors.append(f"{where}: {res.get('error')}\n    {q}")
            continue
        data = res["data"]["result"]
        names = promql_names.metric_names(q)
        if want_data and not data and not any(n.startswith(NEEDS_HARDWARE) for n in names):
            errors.append(f"{where}: no data\n    {q}")
            continue
        passed += 1
    print(f"{len(exprs)} expressions queried, {len(groups)} rule groups")
    for e in errors:
        print(f"FAIL: {e}")
    print(f"{passed} passed, {len(errors)} failed")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
