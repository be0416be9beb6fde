#!/usr/bin/env python3
"""Structural checks of the Grafana dashboard deploy/grafana/vqd-dashboard.json, and of the
metric names in every PromQL expression of the deployment artefacts.

    check_dashboard.py [--dashboard FILE] [--metrics-list FILE] [--rules FILE ...] [--no-promtool]

Dashboard: valid JSON; uid, title, schemaVersion >= 36, time, templating, panels; a datasource
variable, a device variable, and every $variable used is defined; unique panel ids (rows'
nested panels included), sane non-overlapping gridPos; every panel other than rows and text has
a datasource that is the ${datasource} variable and targets with unique refIds and non-empty
expressions; the panels the service needs (throughput, outcomes, latency percentiles, queue,
batch rows with a heatmap, step time, GPU memory, DCGM utilisation, model load, build info).

Every PromQL expression (panel targets, annotations, variable queries, the alert and recording
rules, the prometheus-adapter rules): metric names must be exported by the server (listed in
exported_metrics.txt, histograms with _bucket/_sum/_count), DCGM_* or `up`; functions must
exist; no rate() of a gauge; histogram_quantile() over _bucket series grouped by le. With
promtool installed, the dashboard's expressions (variables substituted) are also parsed by
Prometheus' own parser (`promtool check rules` on a generated rule file).
Exit status 0 when all pass, 1 otherwise.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from checker import Checker  # noqa: E402
import promql_names  # noqa: E402

BUILTIN_VARS = {"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s", "__range_ms",
                "__from", "__to", "__all", "__name", "__org", "__user", "__dashboard", "timeFilter"}
# Metrics the dashboard must show (the brief's panel list).
REQUIRED_METRICS = [
    "vqd_images_generated_total", "vqd_requests_total", "vqd_request_duration_seconds_bucket",
    "vqd_queue_wait_seconds_bucket", "vqd_time_to_first_progress_seconds_bucket", "vqd_queue_depth",
    "vqd_active_samples", "vqd_step_batch_rows_sum", "vqd_step_batch_rows_count", "vqd_step_batch_rows_bucket",
    "vqd_step_duration_seconds_bucket", "vqd_gpu_memory_allocated_bytes", "vqd_gpu_memory_reserved_bytes",
    "DCGM_FI_DEV_GPU_UTIL", "vqd_model_load_seconds", "vqd_build_info",
]
NO_QUERY_PANELS = {"row", "text", "news", "dashlist", "alertlist", "annolist", "welcome"}



def flatten_panels(panels):
    for p in panels or []:
        yield p
        yield from flatten_panels(p.get("panels"))


def var_refs(text):
    """Names of the Grafana variables that text uses: $name, ${name}, ${name:format}, [[name]]."""
    return {a or b or c for a, b, c in re.findall(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]", text or "")}


def substitute(expr, variables):
    """Replaces Grafana variables with values that keep the PromQL valid."""
    def value(name):
        if name in ("__rate_interval", "__interval", "__range"):
            return "5m"
        if name in ("__interval_ms", "__range_ms"):
            return "300000"
        if name == "__range_s":
            return "300"
        v = variables.get(name) or {}
        if v.get("type") == "textbox":
            return v.get("query", "")
        if v.get("type") == "constant":
            return v.get("query", "")
        return ".*"
    expr = re.sub(r"\$\{(\w+)(?::\w+)?\}", lambda m: value(m.group(1)), expr)
    expr = re.sub(r"\[\[(\w+)\]\]", lambda m: value(m.group(1)), expr)
    return re.sub(r"\$(\w+)", lambda m: value(m.group(1)), expr)


def check_dashboard(path, ck, series):
    rel = os.path.relpath(path, REPO)
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except (OSError, ValueError) as e:
        ck.check(False, f"{rel}: not valid JSON: {e}")
        return []
    for key in ("uid", "title", "schemaVersion", "panels", "templating", "time", "version", "tags"):
        ck.check(key in d, f"{rel}: missing top-level field {key}")
    ck.check(isinstance(d.get("uid"), str) and re.fullmatch(r"[A-Za-z0-9_-]{1,40}", d.get("uid", "")),
             f"{rel}: uid must be 1-40 characters of [A-Za-z0-9_-]")
    ck.check(isinstance(d.get("schemaVersion"), int) and d["schemaVersion"] >= 36,
             f"{rel}: schemaVersion {d.get('schemaVersion')} < 36")
    ck.check(d.get("id") in (None,), f"{rel}: an exported dashboard must have id null or none (Grafana assigns it)")

    variables = {v.get("name"): v for v in (d.get("templating") or {}).get("list", [])}
    ds_vars = [v for v in variables.values() if v.get("type") == "datasource"]
    ck.check(any(v.get("query") == "prometheus" for v in ds_vars), f"{rel}: no Prometheus datasource variable")
    ck.check("device" in variables, f"{rel}: no device variable")
    ds_names = {v.get("name") for v in ds_vars}

    expressions = []  # (where, expr)
    for v in variables.values():
        ck.check(v.get("name") and re.fullmatch(r"\w+", v["name"]), f"{rel}: bad variable name {v.get('name')!r}")
        if v.get("type") == "query":
            q = v.get("query")
            q = q.get("query", "") if isinstance(q, dict) else (q or "")
            ck.check(q, f"{rel}: variable {v.get('name')} has no query")
            m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", q) or re.fullmatch(r"\s*label_values\(\s*(\w+)\s*\)\s*", q)
            if m and m.re.groups == 2:
                expressions.append((f"variable {v['name']}", m.group(1)))
            elif m:
                pass  # label_values(label): no metric
            else:
                expressions.append((f"variable {v['name']}", re.sub(r"^\s*query_result\((.*)\)\s*$", r"\1", q)))
            ds = v.get("datasource") or {}
            ck.check(isinstance(ds, dict) and var_refs(ds.get("uid", "")) & ds_names,
                     f"{rel}: variable {v.get('name')} does not use the datasource variable")

    panels = list(flatten_panels(d.get("panels")))
    ck.check(len(panels) >= 10, f"{rel}: only {len(panels)} panels")
    ids = [p.get("id") for p in panels]
    ck.check(all(isinstance(i, int) for i in ids), f"{rel}: a panel id is not an integer")
    dup = sorted({i for i in ids if ids.count(i) > 1}, key=str)
    ck.check(not dup, f"{rel}: duplicate panel ids {dup}")
    rects = []
    for p in panels:
        where = f"{rel}: panel {p.get('id')} ({p.get('title')!r})"
        ck.check(p.get("type"), f"{where}: no type")
        ck.check(p.get("title") or p.get("type") == "row", f"{where}: no title")
        g = p.get("gridPos") or {}
        if ck.check(all(isinstance(g.get(k), int) for k in "hwxy"), f"{where}: gridPos needs integer h, w, x, y"):
            ck.check(g["x"] >= 0 and g["w"] >= 1 and g["x"] + g["w"] <= 24 and g["h"] >= 1,
                     f"{where}: gridPos outside the 24-column grid")
            for other_id, (ox, oy, ow, oh) in rects:
                if g["x"] < ox + ow and ox < g["x"] + g["w"] and g["y"] < oy + oh and oy < g["y"] + g["h"]:
                    ck.check(False, f"{where}: overlaps panel {other_id}")
            rects.append((p.get("id"), (g["x"], g["y"], g["w"], g["h"])))
        if p.get("type") in NO_QUERY_PANELS:
            continue
        ds = p.get("datasource")
        ck.check(isinstance(ds, dict) and ds.get("type") == "prometheus" and var_refs(ds.get("uid", "")) & ds_names,
                 f"{where}: datasource is not the Prometheus datasource variable")
        targets = p.get("targets") or []
        if not ck.check(targets, f"{where}: no targets"):
            continue
        refs = [t.get("refId") for t in targets]
        ck.check(len(set(refs)) == len(refs) and all(refs), f"{where}: refIds missing or not unique")
        for t in targets:
            ck.check((t.get("expr") or "").strip(), f"{where}: target {t.get('refId')} has no expr")
            tds = t.get("datasource")
            ck.check(tds is None or (isinstance(tds, dict) and tds.get("uid") == (ds or {}).get("uid")),
                     f"{where}: target {t.get('refId')} uses another datasource")
            expressions.append((f"{where} target {t.get('refId')}", t.get("expr") or ""))
        for text in (p.get("title", ""), p.get("description", "")):
            for ref in var_refs(text) or ():
                ck.check(ref in variables or ref in BUILTIN_VARS, f"{where}: uses undefined variable ${ref}")
    for a in (d.get("annotations") or {}).get("list", []):
        if a.get("expr"):
            expressions.append((f"{rel}: annotation {a.get('name')!r}", a["expr"]))

    # Variables used in expressions exist.
    for where, expr in expressions:
        for ref in var_refs(expr) or ():
            ck.check(ref in variables or ref in BUILTIN_VARS, f"{where}: uses undefined variable ${ref}")

    # Panels the service needs.
    used = set()
    for _, expr in expressions:
        used.update(promql_names.metric_names(substitute(expr, variables)))
    for m in REQUIRED_METRICS:
        ck.check(m in used, f"{rel}: no panel shows {m}")
    ck.check(any(p.get("type") == "heatmap" and any("vqd_step_batch_rows_bucket" in (t.get("expr") or "") and
                                                   t.get("format") == "heatmap" for t in p.get("targets") or [])
                 for p in panels), f"{rel}: no heatmap of vqd_step_batch_rows_bucket (format heatmap)")
    for family in ("vqd_request_duration_seconds", "vqd_queue_wait_seconds", "vqd_time_to_first_progress_seconds"):
        qs = set()
        for _, expr in expressions:
            for arg in promql_names.calls(expr, "histogram_quantile"):
                if family + "_bucket" in arg:
                    qs.add(arg.split(",", 1)[0].strip())
        ck.check({"0.5", "0.95", "0.99"} <= {q.rstrip("0") if "." in q else q for q in qs} | qs,
                 f"{rel}: {family} lacks p50/p95/p99 (histogram_quantile 0.5, 0.95, 0.99), has {sorted(qs)}")
    ck.check(any("DCGM_FI_DEV_GPU_UTIL" in e for _, e in expressions), f"{rel}: no DCGM GPU utilisation panel")
    ck.check(any(p.get("type") == "table" and any("vqd_build_info" in (t.get("expr") or "") for t in p.get("targets") or [])
                 for p in panels), f"{rel}: no build info table")
    return [(w, substitute(e, variables)) for w, e in expressions]


def rule_expressions(path, ck):
    """(where, expr) of every rule in a Prometheus rule file."""
    try:
        import yaml  # only needed for the rule files
    except ImportError:
        print(f"note: PyYAML not installed; {os.path.relpath(path, REPO)} not checked")
        return []
    rel = os.path.relpath(path, REPO)
    out = []
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f) or {}
    for g in doc.get("groups") or []:
        for r in g.get("rules") or []:
            out.append((f"{rel}: {r.get('alert') or r.get('record')}", r.get("expr", "")))
    ck.check(out, f"{rel}: no rules")
    return out


def adapter_expressions(path):
    try:
        import yaml
    except ImportError:
        return []
    rel = os.path.relpath(path, REPO)
    out = []
    with open(path, encoding="utf-8") as f:
        for d in yaml.safe_load_all(f):
            cfg = ((d or {}).get("data") or {}).get("config.yaml")
            for r in (yaml.safe_load(cfg) or {}).get("rules", []) if cfg else []:
                out.append((f"{rel}: seriesQuery", r.get("seriesQuery", "")))
    return out


def promtool_parse(expressions, ck):
    """Parses the expressions with Prometheus' parser via a generated rule file."""
    promtool = shutil.which("promtool")
    if not promtool:
        print("note: promtool not found; the dashboard's PromQL was not parsed by Prometheus")
        return
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:expr:{i}", "expr": e} for i, (_, e) in enumerate(expressions)]}]}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "dashboard_rules.yml")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(rules, f)  # JSON is YAML
        r = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True)
    out = (r.stdout + r.stderr).strip()
    if r.returncode != 0:
        for i, (where, e) in enumerate(expressions):
            if f"dashboard:expr:{i}\"" in out or f"group \"dashboard\", rule {i + 1}," in out:
                ck.check(False, f"{where}: PromQL does not parse: {e}")
    ck.check(r.returncode == 0, "promtool rejects a dashboard expression:\n" + out)
    print(f"promtool parsed {len(expressions)} dashboard expressions")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dashboard", default=os.path.join(REPO, "deploy", "grafana", "vqd-dashboard.json"))
    ap.add_argument("--metrics-list", default=os.path.join(HERE, "exported_metrics.txt"))
    ap.add_argument("--rules", nargs="*", default=[os.path.join(REPO, "deploy", "prometheus", n)
                                                  for n in ("alerts.yml", "recording_rules.yml")])
    ap.add_argument("--adapter", default=os.path.join(REPO, "deploy", "k8s", "prometheus-adapter-rules.yaml"))
    ap.add_argument("--no-promtool", action="store_true")
    a = ap.parse_args()

    ck = Checker()
    exported = promql_names.load_exported(a.metrics_list)
    ck.check(exported, f"{a.metrics_list}: no metric names")
    for name, typ in exported.items():
        ck.check(typ in ("counter", "gauge", "histogram", "summary"), f"exported_metrics.txt: {name} has type {typ}")
        ck.check(typ != "counter" or name.endswith("_total"), f"exported_metrics.txt: counter {name} lacks _total")
    series = promql_names.series_names(exported)

    dash_exprs = check_dashboard(a.dashboard, ck, series)
    print(f"dashboard: {len(dash_exprs)} expressions")
    recorded = set()
    rule_exprs = []
    for path in a.rules:
        if ck.check(os.path.isfile(path), f"{path} is missing"):
            rule_exprs += rule_expressions(path, ck)
            recorded |= set(re.findall(r"^\s*-?\s*record:\s*(\S+)", open(path, encoding="utf-8").read(), re.M))
    adapter_exprs = adapter_expressions(a.adapter) if os.path.isfile(a.adapter) else []
    for where, expr in dash_exprs + rule_exprs + adapter_exprs:
        for problem in promql_names.lint(expr, series, extra_allowed=recorded):
            ck.check(False, f"{where}: {problem}\n    {expr.strip()}")
    print(f"rules: {len(rule_exprs)} expressions, adapter: {len(adapter_exprs)}")
    if not a.no_promtool:
        promtool_parse(dash_exprs, ck)

    used = set()
    for _, e in dash_exprs + rule_exprs:
        used.update(promql_names.metric_names(e))
    unused = [n for n in exported if n.startswith("vqd_") and not any(s in used for s in series if series[s][0] == n)]
    if unused:
        print("note: exported but shown nowhere: " + ", ".join(unused))
    return ck.report()


if __name__ == "__main__":
    sys.exit(main())
