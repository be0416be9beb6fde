"""Metric names in PromQL expressions, without a PromQL parser (shared by the deploy checks).

The extraction removes string literals, label matchers ({...}), ranges and subqueries ([...]) and
grouping clauses (by/without/on/ignoring/group_left/group_right (...)); what is left of the
identifiers is either a function or aggregation (followed by "("), a keyword, or a metric name.
"""
import re

# PromQL functions and aggregation operators (Prometheus 2.x).
FUNCTIONS = {
    "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
    "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
    "count_over_time", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "deg",
    "delta", "deriv", "exp", "floor", "histogram_avg", "histogram_count", "histogram_fraction",
    "histogram_quantile", "histogram_stddev", "histogram_stdvar", "histogram_sum",
    "holt_winters", "hour", "idelta", "increase", "irate", "label_join", "label_replace", "last_over_time",
    "ln", "log10", "log2", "max_over_time", "min_over_time", "minute", "month", "pi",
    "predict_linear", "present_over_time", "quantile_over_time", "rad", "rate", "resets",
    "round", "scalar", "sgn", "sin", "sinh", "sort", "sort_desc", "sqrt", "stddev_over_time",
    "stdvar_over_time", "sum_over_time", "tan", "tanh", "time", "timestamp", "vector", "year",
    # aggregations
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
    "topk", "quantile",
}
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
            "bool", "offset", "inf", "nan", "atan2", "start", "end"}
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.I)
IDENT = re.compile(r"(?<![\w.:])([A-Za-z_:][\w:]*)(\s*\()?")
STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')


def _strip_balanced(expr, open_ch, close_ch):
    out, depth = [], 0
    for ch in expr:
        if ch == open_ch:
            depth += 1
            if depth == 1:
                out.append(open_ch)
            continue
        if ch == close_ch and depth:
            depth -= 1
            if depth == 0:
                out.append(close_ch)
            continue
        if depth == 0:
            out.append(ch)
    return "".join(out)


def tokens(expr):
    """(metric names, function names, unknown calls) used in a PromQL expression."""
    e = STRING.sub('""', expr)
    e = _strip_balanced(e, "{", "}")
    e = _strip_balanced(e, "[", "]")
    e = GROUPING.sub(" ", e)
    metrics, funcs, unknown = [], [], []
    for m in IDENT.finditer(e):
        name, call = m.group(1), m.group(2)
        if name.lower() in KEYWORDS:
            continue
        if call:
            (funcs if name in FUNCTIONS else unknown).append(name)
        else:
            metrics.append(name)
    return metrics, funcs, unknown


def metric_names(expr):
    return tokens(expr)[0]


def calls(expr, function):
    """The argument text of every call of `function` in expr (balanced parentheses)."""
    out = []
    for m in re.finditer(r"\b%s\s*\(" % re.escape(function), expr):
        depth, i = 1, m.end()
        while i < len(expr) and depth:
            depth += {"(": 1, ")": -1}.get(expr[i], 0)
            i += 1
        out.append(expr[m.end():i - 1])
    return out


def load_exported(path):
    """exported_metrics.txt -> {name: type}."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                parts = line.split()
                out[parts[0]] = parts[1] if len(parts) > 1 else "untyped"
    return out


def series_names(exported):
    """{series name: (family, type, suffix)} for the exported families."""
    out = {}
    for name, typ in exported.items():
        out[name] = (name, typ, "")
        if typ == "histogram":
            for s in ("_bucket", "_sum", "_count"):
                out[name + s] = (name, typ, s)
        elif typ == "summary":
            for s in ("_sum", "_count"):
                out[name + s] = (name, typ, s)
    return out


def is_dcgm(name):
    return name.startswith("DCGM_")


# Series Prometheus makes itself for every target.
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
             "scrape_series_added"}


def lint(expr, series, extra_allowed=()):
    """Problems with one expression: unknown metrics, unknown functions, rate() of gauges,
    histogram_quantile() without _bucket series or without `le` in its grouping."""
    problems = []
    metrics, _, unknown = tokens(expr)
    for f in unknown:
        problems.append(f"unknown function {f}()")
    for m in metrics:
        if m not in series and not is_dcgm(m) and m not in SYNTHETIC and m not in extra_allowed:
            problems.append(f"metric {m} is not exported by vqd-server (tests/deploy/exported_metrics.txt)")
    for fn in ("rate", "irate", "increase"):
        for arg in calls(expr, fn):
            for m in metric_names(arg):
                info = series.get(m)
                if info and info[1] in ("gauge", "untyped"):
                    problems.append(f"{fn}() of the gauge {m}")
                elif info and info[1] in ("histogram", "summary") and not info[2]:
                    problems.append(f"{fn}() of the histogram family {m} (use _bucket/_sum/_count)")
    for arg in calls(expr, "histogram_quantile"):
        names = metric_names(arg)
        if not any(n.endswith("_bucket") for n in names):
            problems.append("histogram_quantile() over no _bucket series")
        for kind, labels in aggregation_clauses(arg):
            kept = "le" in [g.strip() for g in labels.split(",")]
            if (kind == "by" and not kept) or (kind == "without" and kept) or kind is None:
                problems.append("histogram_quantile() over an aggregation that drops `le`")
    return problems


AGGREGATIONS = ("sum", "avg", "min", "max", "count", "group", "stddev", "stdvar")


def aggregation_clauses(expr):
    """[(by|without|None, labels)] for every aggregation in expr: `sum by (a) (...)` or
    `sum(...) by (a)`; None when it has no clause (it drops every label)."""
    out = []
    for m in re.finditer(r"\b(%s)\s*(?:(by|without)\s*\(([^()]*)\)\s*)?\(" % "|".join(AGGREGATIONS), expr):
        if m.group(2):
            out.append((m.group(2).lower(), m.group(3)))
            continue
        depth, i = 1, m.end()
        while i < len(expr) and depth:
            depth += {"(": 1, ")": -1}.get(expr[i], 0)
            i += 1
        after = re.match(r"\s*(by|without)\s*\(([^()]*)\)", expr[i:])
        out.append((after.group(1).lower(), after.group(2)) if after else (None, ""))
    return out
