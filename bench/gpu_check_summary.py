#!/usr/bin/env python3
"""Assembles what bench/gpu_check.sh measured into one JSON file and a markdown table for
bench/RESULTS.md. Reads the stage list (stages.tsv) and the JSON each measuring stage wrote; a
figure whose stage did not run or did not finish is null in the JSON and "not measured" in the
table: nothing is ever filled in that was not measured. Standard library only.
"""
import argparse
import json
import os

GOALS = {
    "throughput_64_clients_images_per_s": ">= 1.4 images/s and >= 1.6x diffusers' best in the same run",
    "single_request_s": "<= 1.5 s",
    "first_progress_ms_1_client": "<= 50 ms",
    "first_progress_ms_64_clients": "<= 250 ms",
    "peak_memory_gib_32_in_flight": "below diffusers' at 32 per call",
    "fidelity": "fast path's per-step KL and argmax disagreement against fp32 no worse than 2x plain fp16's",
}


def load(work, name):
    path = os.path.join(work, name)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def stages(work):
    out = []
    path = os.path.join(work, "stages.tsv")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) >= 3:
                    out.append({"stage": parts[0], "status": parts[1], "seconds": int(parts[2] or 0),
                                "note": parts[3] if len(parts) > 3 else ""})
    return out


def server_run(server, clients):
    for run in (server or {}).get("runs", []):
        if run.get("clients") == clients and run.get("batched", True):
            return run
    return None


def pipeline_run(pipeline, images):
    for run in (pipeline or {}).get("runs", []):
        if run.get("images") == images:
            return run
    return None


def summarize(args):
    work = args.work
    server = load(work, "server.json")
    pipeline = load(work, "pipeline.json")
    fidelity = load(work, "fidelity.json")
    fidelity_demo = load(work, "fidelity-demo.json")
    diffusers = load(work, "diffusers.json")
    one = server_run(server, 1)
    many = server_run(server, 64)
    at32 = pipeline_run(pipeline, 32)
    result = {
        "gpu": args.gpu,
        "date": args.date,
        "commit": args.commit,
        "mode": args.mode,
        "budget_seconds": args.budget,
        "throughput_64_clients_images_per_s": many and many.get("images_per_s"),
        "single_request_s": one and one.get("latency_p50_s"),
        # The unbatched figure, derived (not re-run): one request at a time, back to back.
        "unbatched_images_per_s_derived": (one and one.get("latency_p50_s")
                                           and (server or {}).get("images_per_request", 1) / one["latency_p50_s"]),
        # First progress event after the request starts running (p99 over the clients' requests).
        "first_progress_ms_1_client": one and one.get("first_progress_p99_ms"),
        "first_progress_ms_64_clients": many and many.get("first_progress_p99_ms"),
        "peak_memory_gib_32_in_flight": at32 and at32.get("peak_device_gib"),
        "fidelity": (fidelity or {}).get("paths"),
        # The same measure on the trained demo model, whose distributions are not nearly flat.
        "fidelity_demo_model": (fidelity_demo or {}).get("paths"),
        "diffusers": (diffusers or {}).get("runs"),
        "goals": GOALS,
        "stages": stages(work),
        "raw": {"server": server, "pipeline": pipeline, "fidelity": fidelity, "fidelity_demo_model": fidelity_demo,
                "diffusers": diffusers},
    }
    best = None
    for run in result["diffusers"] or []:
        if run.get("images_per_s") is not None and (best is None or run["images_per_s"] > best["images_per_s"]):
            best = run
    result["diffusers_best_images_per_s"] = best and best["images_per_s"]
    if best and result["throughput_64_clients_images_per_s"]:
        result["throughput_over_diffusers_best"] = result["throughput_64_clients_images_per_s"] / best["images_per_s"]
    else:
        result["throughput_over_diffusers_best"] = None
    d32 = [r for r in result["diffusers"] or [] if r.get("images") == 32 and r.get("peak_gib") is not None]
    result["diffusers_peak_memory_gib_32_per_call"] = min((r["peak_gib"] for r in d32), default=None)
    return result


def fmt(value, spec="{:.3f}"):
    return "not measured" if value is None else spec.format(value)


def fidelity_table(paths, title):
    if not paths:
        return [f"{title}: not measured.", ""]
    lines = [f"{title}:", "", "| path | KL(fp32 ‖ path), mean per step | KL max | argmax agreement | KL / plain fp16's | "
             "disagreement / plain fp16's | within 2x plain fp16 |", "|---|---|---|---|---|---|---|"]
    for name, f in paths.items():
        lines.append(f"| {name} | {fmt(f.get('kl_mean'), '{:.3g}')} | {fmt(f.get('kl_max'), '{:.3g}')} | "
                     f"{fmt(f.get('argmax_agreement') and 100 * f['argmax_agreement'], '{:.3f}%')} | "
                     f"{fmt(f.get('kl_over_plain_fp16'), '{:.2f}')} | "
                     f"{fmt(f.get('disagreement_over_plain_fp16'), '{:.2f}')} | {f.get('within_2x_plain_fp16', 'n/a')} |")
    return lines + [""]


def markdown(r):
    lines = [f"### GPU check: {r['gpu']}, {r['date']}, commit {r['commit']} ({r['mode']})", ""]
    lines += ["| measure | goal | vqd | diffusers, same run |", "|---|---|---|---|"]
    lines.append(f"| throughput, 64 concurrent streaming clients (images/s) | {GOALS['throughput_64_clients_images_per_s']} | "
                 f"{fmt(r['throughput_64_clients_images_per_s'])} | best {fmt(r['diffusers_best_images_per_s'])}"
                 f" (ratio {fmt(r['throughput_over_diffusers_best'], '{:.2f}')}) |")
    lines.append(f"| one request alone, end to end (s) | {GOALS['single_request_s']} | {fmt(r['single_request_s'], '{:.2f}')} | |")
    lines.append(f"| unbatched throughput, derived from the single request (images/s) | | "
                 f"{fmt(r['unbatched_images_per_s_derived'])} | |")
    lines.append(f"| first progress event after start, 1 client (ms, p99) | {GOALS['first_progress_ms_1_client']} | "
                 f"{fmt(r['first_progress_ms_1_client'], '{:.1f}')} | |")
    lines.append(f"| first progress event after start, 64 clients (ms, p99) | {GOALS['first_progress_ms_64_clients']} | "
                 f"{fmt(r['first_progress_ms_64_clients'], '{:.1f}')} | |")
    lines.append(f"| peak GPU memory, 32 images in flight (GiB) | {GOALS['peak_memory_gib_32_in_flight']} | "
                 f"{fmt(r['peak_memory_gib_32_in_flight'], '{:.2f}')} | {fmt(r['diffusers_peak_memory_gib_32_per_call'], '{:.2f}')} (its lowest at 32 per call) |")
    lines.append("")
    lines += fidelity_table(r["fidelity"], "Fidelity (ITHQ shapes, random weights)")
    lines += fidelity_table(r.get("fidelity_demo_model"), "Fidelity (the trained demo model)")
    if r["diffusers"]:
        lines += ["| diffusers set-up | images per call | seconds | images/s | peak GiB |", "|---|---|---|---|---|"]
        for d in r["diffusers"]:
            lines.append(f"| {d.get('setup')} | {d.get('images')} | {fmt(d.get('seconds'), '{:.2f}')} | "
                         f"{fmt(d.get('images_per_s'))} | {fmt(d.get('peak_gib'), '{:.2f}')} |")
        lines.append("")
    else:
        lines += ["diffusers: not measured.", ""]
    lines += ["| stage | status | seconds | note |", "|---|---|---|---|"]
    for s in r["stages"]:
        lines.append(f"| {s['stage']} | {s['status']} | {s['seconds']} | {s['note'].replace('|', '/')} |")
    lines.append("")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", required=True)
    parser.add_argument("--mode", default="gpu")
    parser.add_argument("--gpu", default="unknown")
    parser.add_argument("--commit", default="unknown")
    parser.add_argument("--date", default="")
    parser.add_argument("--budget", type=int, default=0)
    parser.add_argument("--json", required=True)
    parser.add_argument("--markdown", required=True)
    args = parser.parse_args()
    result = summarize(args)
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    text = markdown(result)
    with open(args.markdown, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
