#!/usr/bin/env python3
"""Makes sure the deploy checks catch what they are meant to catch.

Copies deploy/ and docker/ into a temporary folder, breaks one thing at a time (each mutation
is a text replacement that must apply), runs the relevant check on the broken copy and requires
it to fail, with a message containing the expected words. Also runs every check on the intact
copy first, which must pass. Checks whose tool is missing (promtool, yamllint, kubectl) are
skipped. Exit status 0 when every broken copy was caught, 1 otherwise.
"""
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PY = sys.executable

# (name, checker, file relative to the copy's root, old text, new text, expected words in output)
MUTATIONS = [
    # Kubernetes
    ("k8s: grace budget", "k8s", "deploy/k8s/base/deployment.yaml",
     "terminationGracePeriodSeconds: 45", "terminationGracePeriodSeconds: 35", "terminationGracePeriodSeconds 35"),
    ("k8s: --grace_period raised", "k8s", "deploy/k8s/base/deployment.yaml",
     "- --grace_period=30", "- --grace_period=60", "--grace_period 60"),
    ("k8s: unknown dashed flag", "k8s", "deploy/k8s/base/deployment.yaml",
     "- --max_queue=64", "- --max-queues=64", "no such flag"),
    ("k8s: unknown flag", "k8s", "deploy/k8s/overlays/cpu/deployment-cpu.yaml",
     "- --max_images=4", "- --max_imgs=4", "no such flag"),
    ("k8s: no GPU limit", "k8s", "deploy/k8s/base/deployment.yaml",
     "              memory: 24Gi\n              nvidia.com/gpu: 1", "              memory: 24Gi", "nvidia.com/gpu"),
    ("k8s: probe on the wrong port", "k8s", "deploy/k8s/base/deployment.yaml",
     "          readinessProbe:\n            grpc:\n              port: 50051",
     "          readinessProbe:\n            grpc:\n              port: 50052", "readinessProbe probes port 50052"),
    ("k8s: httpGet liveness", "k8s", "deploy/k8s/base/deployment.yaml",
     "          livenessProbe:\n            # 6 x 10 s = 60 s of failures, longer than the whole shutdown budget, so a draining\n"
     "            # pod (NOT_SERVING) is never restarted by its liveness probe.\n            grpc:\n              port: 50051\n              service: \"\"",
     "          livenessProbe:\n            httpGet:\n              port: 9464\n              path: /metrics", "not a native grpc probe"),
    ("k8s: uid 0", "k8s", "deploy/k8s/base/deployment.yaml",
     "        runAsUser: 10001", "        runAsUser: 0", "runs as uid 0"),
    ("k8s: container may run as root", "k8s", "deploy/k8s/base/deployment.yaml",
     "            runAsNonRoot: true\n", "            runAsNonRoot: false\n", "not runAsNonRoot"),
    ("k8s: writable root", "k8s", "deploy/k8s/base/deployment.yaml",
     "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "read-only"),
    ("k8s: no preStop", "k8s", "deploy/k8s/base/deployment.yaml",
     'command: ["/bin/sleep", "5"]', 'command: ["/bin/true"]', "preStop"),
    ("k8s: model mounted writable", "k8s", "deploy/k8s/base/deployment.yaml",
     "              mountPath: /models/vq-diffusion-ithq\n              readOnly: true",
     "              mountPath: /models/vq-diffusion-ithq", "read-only"),
    ("k8s: service port renamed", "k8s", "deploy/k8s/base/service.yaml",
     "targetPort: metrics", "targetPort: prom", "unknown port name prom"),
    ("k8s: headless has a cluster IP", "k8s", "deploy/k8s/base/service-headless.yaml",
     "clusterIP: None", "clusterIP: 10.0.0.10", "headless"),
    ("k8s: service selects nothing", "k8s", "deploy/k8s/base/service.yaml",
     "  selector:\n    app.kubernetes.io/name: vqd-server", "  selector:\n    app.kubernetes.io/name: vqd", "selector"),
    ("k8s: HPA metric renamed", "k8s", "deploy/k8s/base/hpa.yaml",
     "name: vqd_queue_depth", "name: vqd_queue_length", "vqd_queue_depth"),
    ("k8s: HPA targets another Deployment", "k8s", "deploy/k8s/base/hpa.yaml",
     "    kind: Deployment\n    name: vqd-server", "    kind: Deployment\n    name: vqd", "HPA does not target"),
    ("k8s: PDB selects nothing", "k8s", "deploy/k8s/base/pdb.yaml",
     "      app.kubernetes.io/component: inference\n", "      app.kubernetes.io/component: batch\n", "PDB selector"),
    ("k8s: PodMonitor port", "k8s", "deploy/k8s/base/podmonitor.yaml",
     "- port: metrics", "- port: http-metrics", "PodMonitor scrapes port"),
    ("k8s: PodMonitor job label", "k8s", "deploy/k8s/base/podmonitor.yaml",
     "replacement: vqd\n", "replacement: vqd-server\n", "PodMonitor labels job"),
    ("k8s: kustomization lists a missing file", "k8s", "deploy/k8s/base/kustomization.yaml",
     "  - pdb.yaml\n", "  - pdb.yaml\n  - networkpolicy.yaml\n", "does not exist"),
    ("k8s: manifest left out of the kustomization", "k8s", "deploy/k8s/base/kustomization.yaml",
     "  - pdb.yaml\n", "", "not listed"),
    ("k8s: overlay keeps the GPU", "k8s", "deploy/k8s/overlays/cpu/deployment-cpu.yaml",
     "              nvidia.com/gpu: null\n            limits:", "            limits:", "still asks for nvidia.com/gpu"),
    ("k8s: duplicate key", "k8s", "deploy/k8s/base/pvc.yaml",
     "  name: vqd-model\n", "  name: vqd-model\n  name: vqd-model2\n", "duplicate key"),
    ("k8s: adapter serves another name", "k8s", "deploy/k8s/prometheus-adapter-rules.yaml",
     'as: "vqd_queue_depth"', 'as: "vqd_queue"', "not served by the prometheus-adapter"),
    # Dashboard
    ("dashboard: unknown metric", "dashboard", "deploy/grafana/vqd-dashboard.json",
     "sum by (instance) (rate(vqd_images_generated_total", "sum by (instance) (rate(vqd_image_generated_total",
     "vqd_image_generated_total is not exported"),
    ("dashboard: duplicate panel id", "dashboard", "deploy/grafana/vqd-dashboard.json",
     '"id": 3,', '"id": 2,', "duplicate panel ids"),
    ("dashboard: old schema", "dashboard", "deploy/grafana/vqd-dashboard.json",
     '"schemaVersion": 39', '"schemaVersion": 27', "schemaVersion"),
    ("dashboard: invalid JSON", "dashboard", "deploy/grafana/vqd-dashboard.json",
     '"schemaVersion": 39,', '"schemaVersion": 39,,', "not valid JSON"),
    ("dashboard: hard-coded datasource", "dashboard", "deploy/grafana/vqd-dashboard.json",
     '"uid": "${datasource}"\n      },\n      "gridPos"', '"uid": "P1809F7CD0C75ACF3"\n      },\n      "gridPos"',
     "datasource variable"),
    ("dashboard: rate of a gauge", "dashboard", "deploy/grafana/vqd-dashboard.json",
     "sum(vqd_queue_depth{", "sum(rate(vqd_queue_depth[5m]) or vqd_queue_depth{", "rate() of the gauge"),
    ("dashboard: histogram_quantile drops le", "dashboard", "deploy/grafana/vqd-dashboard.json",
     "histogram_quantile(0.99, sum by (device, le)", "histogram_quantile(0.99, sum by (device)", "drops `le`"),
    ("dashboard: misspelt function", "dashboard", "deploy/grafana/vqd-dashboard.json",
     "histogram_quantile(0.5, sum by (le) (rate(vqd_decode", "histogram_quantle(0.5, sum by (le) (rate(vqd_decode",
     "unknown function"),
    ("dashboard: undefined variable", "dashboard", "deploy/grafana/vqd-dashboard.json",
     'vqd_active_samples{job=~\\"$job\\", instance=~\\"$instance\\", device=~\\"$device\\"}',
     'vqd_active_samples{job=~\\"$job\\", instance=~\\"$instance\\", device=~\\"$gpu\\"}', "undefined variable $gpu"),
    ("dashboard: PromQL syntax", "dashboard", "deploy/grafana/vqd-dashboard.json",
     "sum(vqd_active_samples{", "sum((vqd_active_samples{", "PromQL does not parse", "promtool"),
    ("alerts: unknown metric", "dashboard", "deploy/prometheus/alerts.yml",
     "vqd_queue_depth{job=\"vqd\"} > 16", "vqd_queue_size{job=\"vqd\"} > 16", "vqd_queue_size is not exported"),
    # Docker
    ("docker: single stage", "docker", "docker/Dockerfile.cpu",
     "FROM debian:${DEBIAN_RELEASE}-slim AS runtime", "", "multi-stage"),
    ("docker: runs as root", "docker", "docker/Dockerfile.cuda", "USER 10001:10001", "USER root", "runs as root"),
    ("docker: no USER", "docker", "docker/Dockerfile.cpu", "USER 10001:10001\n", "", "sets no USER"),
    ("docker: no HEALTHCHECK", "docker", "docker/Dockerfile.cpu",
     "HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \\\n", "RUN true \\\n", "HEALTHCHECK"),
    ("docker: unknown flag in CMD", "docker", "docker/Dockerfile.cpu",
     '"--metrics_port=9464"', '"--metric-port=9464"', "no such flag"),
    ("docker: no EXPOSE 50051", "docker", "docker/Dockerfile.cuda", "EXPOSE 50051 9464", "EXPOSE 9464", "EXPOSE 50051"),
    ("docker: ADD of a URL", "docker", "docker/Dockerfile.cuda",
     "WORKDIR /src\n", "ADD https://example.com/libtorch.zip /tmp/\nWORKDIR /src\n", "ADD of a URL"),
    ("docker: COPY --from an unknown stage", "docker", "docker/Dockerfile.cpu",
     "COPY --from=builder /out/bin/", "COPY --from=build /out/bin/", "not an earlier stage"),
    ("docker: devel runtime", "docker", "docker/Dockerfile.cuda",
     "FROM nvidia/cuda:${CUDA_VERSION}-runtime-${UBUNTU} AS runtime",
     "FROM nvidia/cuda:${CUDA_VERSION}-devel-${UBUNTU} AS runtime", "devel image"),
    ("docker: untagged base", "docker", "docker/Dockerfile.cpu",
     "FROM debian:${DEBIAN_RELEASE} AS builder", "FROM debian AS builder", "has no tag"),
    ("docker: shell-form ENTRYPOINT", "docker", "docker/Dockerfile.cpu",
     'ENTRYPOINT ["/usr/local/bin/vqd-server"]', "ENTRYPOINT /usr/local/bin/vqd-server", "exec (JSON) form"),
    ("docker: context excludes sources", "docker", "docker/Dockerfile.cpu.dockerignore", "deploy\n", "deploy\nsrc\n",
     "excludes src"),
    # promtool
    ("promtool: rule syntax", "promtool", "deploy/prometheus/alerts.yml",
     "expr: up{job=\"vqd\"} == 0", "expr: up{job=\"vqd\"} === 0", "FAILED"),
    ("promtool: alert test expectation", "promtool", "deploy/prometheus/alerts_test.yml",
     "summary: \"vqd-server queue on a:9464 holds 20 requests\"",
     "summary: \"vqd-server queue on a:9464 holds 21 requests\"", "FAILED"),
    ("promtool: threshold change caught by tests", "promtool", "deploy/prometheus/alerts.yml",
     "vqd_queue_depth{job=\"vqd\"} > 16", "vqd_queue_depth{job=\"vqd\"} > 25", "FAILED"),
    ("promtool: config", "promtool", "deploy/prometheus/prometheus.yml",
     "scrape_timeout: 10s", "scrape_timeout: 30s", "FAILED"),
    # yamllint
    ("yamllint: trailing spaces", "yamllint", "deploy/k8s/base/pdb.yaml", "maxUnavailable: 1", "maxUnavailable: 1   ",
     "trailing-spaces"),
    ("yamllint: truthy", "yamllint", "deploy/grafana/provisioning/datasources/prometheus.yaml",
     "isDefault: true", "isDefault: yes", "truthy"),
]


def command(checker, root):
    dep, dock = os.path.join(root, "deploy"), os.path.join(root, "docker")
    return {
        "k8s": [PY, os.path.join(HERE, "check_k8s.py"), "--root", os.path.join(dep, "k8s"),
                "--alerts", os.path.join(dep, "prometheus", "alerts.yml")],
        "dashboard": [PY, os.path.join(HERE, "check_dashboard.py"),
                      "--dashboard", os.path.join(dep, "grafana", "vqd-dashboard.json"),
                      "--rules", os.path.join(dep, "prometheus", "alerts.yml"),
                      os.path.join(dep, "prometheus", "recording_rules.yml"),
                      "--adapter", os.path.join(dep, "k8s", "prometheus-adapter-rules.yaml")],
        "docker": [PY, os.path.join(HERE, "check_docker.py"), os.path.join(dock, "Dockerfile.cpu"),
                   os.path.join(dock, "Dockerfile.cuda")],
        "promtool": ["bash", os.path.join(HERE, "run_promtool.sh"), os.path.join(dep, "prometheus")],
        "yamllint": ["bash", os.path.join(HERE, "run_yamllint.sh"), dep],
    }[checker]


def available(tool):
    return tool not in ("promtool", "yamllint") or shutil.which(tool) is not None


def main():
    failures, ran, skipped = [], 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        clean = os.path.join(tmp, "clean")
        os.makedirs(clean)
        for d in ("deploy", "docker"):
            shutil.copytree(os.path.join(REPO, d), os.path.join(clean, d))
        for checker in ("k8s", "dashboard", "docker", "promtool", "yamllint"):
            if not available(checker):
                continue
            r = subprocess.run(command(checker, clean), capture_output=True, text=True)
            ran += 1
            if r.returncode != 0:
                failures.append(f"intact copy: {checker} fails:\n{r.stdout}{r.stderr}")
        for m in MUTATIONS:
            name, checker, rel, old, new, expect = m[:6]
            needs = m[6] if len(m) > 6 else checker
            if not available(checker) or not available(needs):
                skipped += 1
                print(f"skip  {name} ({needs} not installed)")
                continue
            work = os.path.join(tmp, "broken")
            shutil.rmtree(work, ignore_errors=True)
            shutil.copytree(clean, work)
            path = os.path.join(work, rel)
            text = open(path, encoding="utf-8").read()
            if old not in text:
                failures.append(f"{name}: the mutation does not apply ({old!r} not in {rel}); update this test")
                continue
            with open(path, "w", encoding="utf-8") as f:
                f.write(text.replace(old, new, 1))
            r = subprocess.run(command(checker, work), capture_output=True, text=True)
            out = r.stdout + r.stderr
            ran += 1
            if r.returncode in (0, 77):
                failures.append(f"{name}: {checker} check passed a broken copy (exit {r.returncode})")
                print(f"MISS  {name}")
            elif expect not in out:
                failures.append(f"{name}: {checker} failed, but without mentioning {expect!r}:\n{out[-1500:]}")
                print(f"VAGUE {name}")
            else:
                print(f"ok    {name}")
    for f in failures:
        print(f"FAIL: {f}")
    print(f"{ran - len(failures)} passed, {len(failures)} failed, {skipped} skipped")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
