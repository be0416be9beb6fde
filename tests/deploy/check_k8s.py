#!/usr/bin/env python3
"""Structural checks of the Kubernetes manifests in deploy/k8s (no cluster, no kubectl needed).

    check_k8s.py [--root deploy/k8s]
        Parses every YAML file under the root, checks each kustomization's references, renders
        every kustomization with a small built-in renderer (resources, strategic-merge patches
        including $patch: delete and null deletions, images) and checks the rendered objects.
    check_k8s.py --rendered FILE [--kustomization DIR]
        Checks a stream rendered elsewhere (`kubectl kustomize DIR > FILE`); with
        --kustomization, also requires the built-in renderer to give the same objects.

Rendered-object checks: one vqd-server Deployment whose args are flags that server/main.cc
defines, spelled as abseil wants (--grace_period, not --grace-period); GPU limits when --devices names CUDA
devices (and none otherwise); ports named grpc/metrics matching --listen/--metrics_port; native
gRPC startup/readiness/liveness probes on the grpc port with service ""; startup patience for
the model load; terminationGracePeriodSeconds > --grace_period + preStop sleep; liveness cannot
kill a draining pod; non-root, read-only root filesystem, no privilege escalation, a writable
/tmp; --model on a read-only PVC mount; Services select the pods and target their named ports;
the headless Service has clusterIP None; the HPA scales the Deployment on the Pods metric
vqd_queue_depth, which the prometheus-adapter rules serve and the server exports as a gauge;
the PDB and the PodMonitor select the pods, the PodMonitor scrapes the metrics port and labels
the job the alerts select. Exit status 0 when all pass, 1 otherwise.
"""
import argparse
import copy
import os
import re
import sys

try:
    import yaml
except ImportError:  # pragma: no cover
    print("SKIPPED: PyYAML is not installed (apt-get install python3-yaml)")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from checker import Checker  # noqa: E402
import promql_names  # noqa: E402
import server_flags  # noqa: E402
SERVER_DEFAULT_GRACE = 30  # vqd-server's --grace_period default
MIN_STARTUP_BUDGET_S = 120  # ITHQ loads in 20-60 s; allow at least twice that
KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


class UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that rejects duplicate mapping keys (PyYAML keeps the last silently)."""


def _construct_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.load_all(f, Loader=UniqueKeyLoader) if d is not None]



# ----------------------------------------------------------------------------- rendering

MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
    "env": "name", "ports": "containerPort", "imagePullSecrets": "name",
}


def smp_merge(base, patch, key=None):
    """Strategic merge patch, the subset the manifests here use."""
    if isinstance(patch, dict) and isinstance(base, dict):
        out = copy.deepcopy(base)
        if patch.get("$patch") == "replace":
            return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
        for k, v in patch.items():
            if k.startswith("$"):
                continue
            if v is None:
                out.pop(k, None)
            elif k in out:
                out[k] = smp_merge(out[k], v, k)
            else:
                out[k] = strip_directives(v)
        return out
    if isinstance(patch, list) and isinstance(base, list) and key in MERGE_KEYS:
        mk = MERGE_KEYS[key]
        out = copy.deepcopy(base)
        for item in patch:
            if not isinstance(item, dict) or mk not in item:
                out.append(strip_directives(item))
                continue
            idx = next((i for i, b in enumerate(out) if isinstance(b, dict) and b.get(mk) == item[mk]), None)
            if item.get("$patch") == "delete":
                if idx is not None:
                    out.pop(idx)
            elif idx is not None:
                out[idx] = smp_merge(out[idx], item, None)
            else:
                out.append(strip_directives(item))
        return out
    return strip_directives(patch)


def strip_directives(v):
    if isinstance(v, dict):
        return {k: strip_directives(x) for k, x in v.items() if not k.startswith("$") and x is not None}
    if isinstance(v, list):
        return [strip_directives(x) for x in v]
    return copy.deepcopy(v)


def find_kustomization(directory):
    for n in KUSTOMIZATION_NAMES:
        p = os.path.join(directory, n)
        if os.path.isfile(p):
            return p
    return None


def render(directory, ck, stack=()):
    """Renders the kustomization in `directory` into a list of objects."""
    kpath = find_kustomization(directory)
    if not ck.check(kpath is not None, f"{directory}: no kustomization.yaml"):
        return []
    real = os.path.realpath(directory)
    if not ck.check(real not in stack, f"{directory}: kustomization cycle"):
        return []
    rel = os.path.relpath(kpath, REPO)
    docs = load_yaml_docs(kpath)
    if not ck.check(len(docs) == 1 and isinstance(docs[0], dict), f"{rel}: expected one mapping"):
        return []
    k = docs[0]
    ck.check(k.get("kind", "Kustomization") == "Kustomization", f"{rel}: kind is not Kustomization")
    for deprecated in ("bases", "patchesStrategicMerge", "patchesJson6902", "commonLabels", "vars"):
        ck.check(deprecated not in k, f"{rel}: uses the deprecated field {deprecated}")
    objects = []
    for res in k.get("resources", []) or []:
        p = os.path.normpath(os.path.join(directory, res))
        if os.path.isdir(p):
            objects += render(p, ck, stack + (real,))
        elif ck.check(os.path.isfile(p), f"{rel}: resource {res} does not exist"):
            objects += [d for d in load_yaml_docs(p) if isinstance(d, dict)]
    for patch in k.get("patches", []) or []:
        if not ck.check(isinstance(patch, dict) and ("path" in patch or "patch" in patch),
                        f"{rel}: a patch needs path: or patch:"):
            continue
        if "path" in patch:
            pp = os.path.join(directory, patch["path"])
            if not ck.check(os.path.isfile(pp), f"{rel}: patch {patch['path']} does not exist"):
                continue
            pdocs = load_yaml_docs(pp)
        else:
            pdocs = list(yaml.load_all(patch["patch"], Loader=UniqueKeyLoader))
        for pd in pdocs:
            target = patch.get("target") or {}
            kind = target.get("kind", pd.get("kind"))
            name = target.get("name", (pd.get("metadata") or {}).get("name"))
            matches = [i for i, o in enumerate(objects) if o.get("kind") == kind and o["metadata"].get("name") == name]
            if not ck.check(matches, f"{rel}: patch for {kind}/{name} matches no resource"):
                continue
            if pd.get("$patch") == "delete":
                objects = [o for i, o in enumerate(objects) if i not in matches]
            else:
                for i in matches:
                    objects[i] = smp_merge(objects[i], pd)
    for image in k.get("images", []) or []:
        for o in objects:
            for c in pod_containers(o):
                img = c.get("image", "")
                img_name = img.split("@")[0]
                if ":" in img_name.rsplit("/", 1)[-1]:
                    img_name = img_name.rsplit(":", 1)[0]
                if img_name == image["name"]:
                    new = image.get("newName", image["name"])
                    if "digest" in image:
                        c["image"] = f"{new}@{image['digest']}"
                    elif "newTag" in image:
                        c["image"] = f"{new}:{image['newTag']}"
                    else:
                        c["image"] = new
    if "namespace" in k:
        for o in objects:
            o.setdefault("metadata", {})["namespace"] = k["namespace"]
    return objects


def pod_spec(obj):
    if obj.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    if obj.get("kind") == "Pod":
        return obj.get("spec") or {}
    return {}


def pod_containers(obj):
    ps = pod_spec(obj)
    return (ps.get("containers") or []) + (ps.get("initContainers") or [])


# ----------------------------------------------------------------------------- file checks

def check_files(root, ck):
    """Parses every YAML file; checks kinds and names; returns {path: [docs]}."""
    parsed = {}
    for dirpath, _, files in os.walk(root):
        for name in sorted(files):
            if not name.endswith((".yaml", ".yml")):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, REPO)
            try:
                docs = load_yaml_docs(path)
            except yaml.YAMLError as e:
                ck.fail(f"{rel}: not valid YAML: {e}")
                continue
            parsed[path] = docs
            ck.check(docs, f"{rel}: empty")
            for d in docs:
                if not ck.check(isinstance(d, dict), f"{rel}: a document is not a mapping"):
                    continue
                if name in KUSTOMIZATION_NAMES:
                    continue
                is_patch = any(name == os.path.basename(p.get("path", "")) for p in kustomization_patches(dirpath))
                ck.check("apiVersion" in d and "kind" in d, f"{rel}: a document lacks apiVersion or kind")
                ck.check((d.get("metadata") or {}).get("name"), f"{rel}: a {d.get('kind')} lacks metadata.name")
                if not is_patch:
                    ck.check("$patch" not in yaml.safe_dump(d), f"{rel}: $patch directive outside a patch file")
    # Every manifest in a kustomization's folder is listed there (or is one of its patches);
    # folders without a kustomization must be referenced by a README-documented path.
    for dirpath, _, files in os.walk(root):
        kpath = find_kustomization(dirpath)
        if kpath is None:
            continue
        k = load_yaml_docs(kpath)[0]
        listed = {os.path.normpath(os.path.join(dirpath, r)) for r in k.get("resources", []) or []}
        listed |= {os.path.normpath(os.path.join(dirpath, p["path"])) for p in k.get("patches", []) or [] if "path" in p}
        unlisted_ok = set(re.findall(r"^#\s+(?:\.\./)?([\w./-]+\.ya?ml)\s", open(kpath).read(), re.M))
        for name in files:
            p = os.path.normpath(os.path.join(dirpath, name))
            if not name.endswith((".yaml", ".yml")) or name in KUSTOMIZATION_NAMES:
                continue
            ck.check(p in listed or name in unlisted_ok,
                     f"{os.path.relpath(p, REPO)}: not listed in {os.path.relpath(kpath, REPO)}")
    return parsed


def kustomization_patches(directory):
    kpath = find_kustomization(directory)
    if not kpath:
        return []
    try:
        docs = load_yaml_docs(kpath)
    except yaml.YAMLError:
        return []
    return (docs[0].get("patches") or []) if docs and isinstance(docs[0], dict) else []


# ----------------------------------------------------------------------------- object checks

def parse_args_list(args):
    """--name=value and --name value pairs of a container's args -> {name: value}."""
    out = {}
    i = 0
    args = [str(a) for a in args or []]
    while i < len(args):
        a = args[i]
        if a.startswith("--"):
            if "=" in a:
                n, v = a[2:].split("=", 1)
            elif i + 1 < len(args) and not args[i + 1].startswith("--"):
                n, v = a[2:], args[i + 1]
                i += 1
            else:
                n, v = a[2:], "true"
            out[n.replace("-", "_")] = v
        i += 1
    return out


def labels_match(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def prestop_sleep_seconds(container):
    pre = ((container.get("lifecycle") or {}).get("preStop")) or {}
    if "sleep" in pre:
        return int(pre["sleep"].get("seconds", 0))
    cmd = ((pre.get("exec") or {}).get("command")) or []
    text = " ".join(str(c) for c in cmd)
    m = re.search(r"\bsleep\s+(\d+)", text)
    return int(m.group(1)) if m else 0


def find_one(objects, kind, ck, label, name=None):
    found = [o for o in objects if o.get("kind") == kind and (name is None or o["metadata"].get("name") == name)]
    ck.check(len(found) >= 1, f"{label}: no {kind}{' ' + name if name else ''}")
    return found


def check_objects(objects, ck, label, adapter_rules=None, exported=None, alert_jobs=None):
    by_kind = {}
    for o in objects:
        by_kind.setdefault(o.get("kind"), []).append(o)
        ck.check(o.get("apiVersion") and (o.get("metadata") or {}).get("name"),
                 f"{label}: object without apiVersion or name: {o.get('kind')}")
    api = {"Deployment": "apps/v1", "Service": "v1", "HorizontalPodAutoscaler": "autoscaling/v2",
           "PodDisruptionBudget": "policy/v1", "PodMonitor": "monitoring.coreos.com/v1",
           "PersistentVolumeClaim": "v1", "ConfigMap": "v1", "Secret": "v1", "Job": "batch/v1"}
    for o in objects:
        if o.get("kind") in api:
            ck.check(o.get("apiVersion") == api[o["kind"]],
                     f"{label}: {o['kind']}/{o['metadata'].get('name')} has apiVersion {o.get('apiVersion')}, expected {api[o['kind']]}")
    names = {}
    for o in objects:
        key = (o.get("kind"), o["metadata"].get("name"))
        ck.check(key not in names, f"{label}: duplicate {key[0]}/{key[1]}")
        names[key] = o

    deps = by_kind.get("Deployment", [])
    if not ck.check(len(deps) == 1, f"{label}: expected one Deployment, found {len(deps)}"):
        return
    dep = deps[0]
    dname = dep["metadata"]["name"]
    spec = dep.get("spec") or {}
    pod = pod_spec(dep)
    pod_labels = (((spec.get("template") or {}).get("metadata") or {}).get("labels")) or {}
    ck.check(labels_match((spec.get("selector") or {}).get("matchLabels"), pod_labels),
             f"{label}: Deployment selector does not match its pod template labels")
    containers = {c.get("name"): c for c in pod.get("containers") or []}
    c = containers.get("vqd-server")
    if not ck.check(c is not None, f"{label}: no container named vqd-server"):
        return
    ck.check(c.get("image") and c["image"] != "vqd-server" and (":" in c["image"] or "@" in c["image"]),
             f"{label}: vqd-server image {c.get('image')!r} is not pinned to a tag or digest")
    raw_args = (c.get("command") or [])[1:] + (c.get("args") or [])
    for problem in server_flags.flag_problems(raw_args, server_flags.known_flags()):
        ck.fail(f"{label}: vqd-server args: {problem}")
    args = parse_args_list(raw_args)
    ports = {p.get("name"): p for p in c.get("ports") or []}
    ck.check("grpc" in ports and "metrics" in ports, f"{label}: container ports must be named grpc and metrics")
    grpc_port = (ports.get("grpc") or {}).get("containerPort")
    metrics_port = (ports.get("metrics") or {}).get("containerPort")
    listen_port = int(args.get("listen", "0.0.0.0:50051").rsplit(":", 1)[1])
    ck.check(grpc_port == listen_port, f"{label}: grpc containerPort {grpc_port} != --listen port {listen_port}")
    ck.check(metrics_port == int(args.get("metrics-port", 9464)),
             f"{label}: metrics containerPort {metrics_port} != --metrics_port {args.get('metrics-port', 9464)}")

    # GPU resources follow --devices.
    res = c.get("resources") or {}
    limits, requests = res.get("limits") or {}, res.get("requests") or {}
    devices = args.get("devices", "")
    if "cuda" in devices or "cpu" not in devices:
        n_cuda = len([d for d in devices.split(",") if d.startswith("cuda")]) if devices else 1
        gpus = limits.get("nvidia.com/gpu")
        ck.check(gpus is not None and int(gpus) >= 1, f"{label}: GPU deployment without nvidia.com/gpu limits")
        if gpus is not None:
            ck.check(int(gpus) >= n_cuda, f"{label}: --devices={devices} needs {n_cuda} GPUs, limit is {gpus}")
            if "nvidia.com/gpu" in requests:
                ck.check(requests["nvidia.com/gpu"] == gpus, f"{label}: nvidia.com/gpu requests != limits")
        ck.check(args.get("dtype", "fp16") in ("fp16", "bf16", "fp32"), f"{label}: bad --dtype {args.get('dtype')}")
    else:
        ck.check("nvidia.com/gpu" not in limits and "nvidia.com/gpu" not in requests,
                 f"{label}: CPU deployment (--devices={devices}) still asks for nvidia.com/gpu")
        ck.check(args.get("dtype", "fp32") == "fp32", f"{label}: CPU deployment should use --dtype=fp32")
    ck.check(requests.get("cpu") and requests.get("memory"), f"{label}: vqd-server lacks cpu/memory requests")
    ck.check(limits.get("memory"), f"{label}: vqd-server lacks a memory limit")

    # Native gRPC probes on the grpc port.
    for probe_name in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = c.get(probe_name)
        if not ck.check(probe, f"{label}: vqd-server has no {probe_name}"):
            continue
        g = probe.get("grpc")
        if not ck.check(g, f"{label}: {probe_name} is not a native grpc probe"):
            continue
        ck.check(g.get("port") == grpc_port, f"{label}: {probe_name} probes port {g.get('port')}, grpc port is {grpc_port}")
        ck.check(g.get("service", "") == "", f"{label}: {probe_name} checks service {g.get('service')!r}, expected \"\"")
    sp = c.get("startupProbe") or {}
    budget = sp.get("periodSeconds", 10) * sp.get("failureThreshold", 3)
    ck.check(budget >= MIN_STARTUP_BUDGET_S,
             f"{label}: startupProbe allows {budget} s, model loading needs at least {MIN_STARTUP_BUDGET_S} s")

    # Shutdown budget.
    grace = float(args.get("grace_period", SERVER_DEFAULT_GRACE))
    sleep_s = prestop_sleep_seconds(c)
    tgps = pod.get("terminationGracePeriodSeconds", 30)
    ck.check(sleep_s > 0, f"{label}: vqd-server has no preStop sleep")
    ck.check(tgps > grace + sleep_s,
             f"{label}: terminationGracePeriodSeconds {tgps} <= --grace_period {grace:g} + preStop sleep {sleep_s}")
    lp = c.get("livenessProbe") or {}
    ck.check(lp.get("periodSeconds", 10) * lp.get("failureThreshold", 3) >= tgps,
             f"{label}: livenessProbe could kill a draining pod within terminationGracePeriodSeconds {tgps}")

    # Security.
    psc, csc = pod.get("securityContext") or {}, c.get("securityContext") or {}
    ck.check(csc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, f"{label}: vqd-server not runAsNonRoot")
    uid = csc.get("runAsUser", psc.get("runAsUser"))
    ck.check(uid is None or int(uid) != 0, f"{label}: vqd-server runs as uid 0")
    ck.check(csc.get("readOnlyRootFilesystem") is True, f"{label}: vqd-server root filesystem is not read-only")
    ck.check(csc.get("allowPrivilegeEscalation") is False, f"{label}: vqd-server allows privilege escalation")
    ck.check("ALL" in ((csc.get("capabilities") or {}).get("drop") or []), f"{label}: vqd-server does not drop ALL capabilities")

    # Volumes.
    volumes = {v.get("name"): v for v in pod.get("volumes") or []}
    mounts = {m.get("mountPath"): m for m in c.get("volumeMounts") or []}
    for m in mounts.values():
        ck.check(m.get("name") in volumes, f"{label}: volumeMount {m.get('mountPath')} uses undefined volume {m.get('name')}")
    for v in volumes.values():
        ck.check(any(m.get("name") == v.get("name") for m in mounts.values()) or
                 any(m.get("name") == v.get("name") for ic in pod.get("initContainers") or [] for m in ic.get("volumeMounts") or []),
                 f"{label}: volume {v.get('name')} is not mounted")
    ck.check("/tmp" in mounts, f"{label}: read-only root filesystem but no writable /tmp mount")
    if "model" in args:
        model = args["model"].rstrip("/")
        mount = next((m for p, m in mounts.items() if model == p.rstrip("/") or model.startswith(p.rstrip("/") + "/")), None)
        if ck.check(mount is not None, f"{label}: --model={model} is not on a mounted volume"):
            ck.check(mount.get("readOnly") is True, f"{label}: the model volume is not mounted read-only")
            claim = ((volumes.get(mount.get("name")) or {}).get("persistentVolumeClaim") or {}).get("claimName")
            if ck.check(claim, f"{label}: the model volume is not a PersistentVolumeClaim"):
                ck.check(("PersistentVolumeClaim", claim) in names, f"{label}: PVC {claim} is not among the resources")
    for kind, name in names:
        if kind == "PersistentVolumeClaim":
            ck.check(any(((v.get("persistentVolumeClaim") or {}).get("claimName")) == name for v in volumes.values()),
                     f"{label}: PVC {name} is not used by the Deployment")

    # Services.
    container_ports = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
    svcs = by_kind.get("Service", [])
    headless = [s for s in svcs if (s.get("spec") or {}).get("clusterIP") == "None"]
    cluster = [s for s in svcs if (s.get("spec") or {}).get("clusterIP") != "None"]
    ck.check(len(headless) >= 1, f"{label}: no headless Service (clusterIP: None)")
    ck.check(len(cluster) >= 1, f"{label}: no ClusterIP Service")
    for s in svcs:
        sname = s["metadata"]["name"]
        ss = s.get("spec") or {}
        ck.check(labels_match(ss.get("selector"), pod_labels), f"{label}: Service {sname} selector does not match the pods")
        for p in ss.get("ports") or []:
            tp = p.get("targetPort", p.get("port"))
            if isinstance(tp, str):
                ck.check(tp in container_ports, f"{label}: Service {sname} port {p.get('name')} targets unknown port name {tp}")
                ck.check(p.get("name") == tp, f"{label}: Service {sname} port {p.get('name')} targets container port {tp} (names differ)")
            else:
                ck.check(tp in container_ports.values(), f"{label}: Service {sname} targets port {tp}, not a container port")
            if p.get("name") in container_ports:
                ck.check(p.get("port") == container_ports[p["name"]] or isinstance(tp, str),
                         f"{label}: Service {sname} port {p['name']} does not match the container port")
        snames = {p.get("name") for p in ss.get("ports") or []}
        ck.check("grpc" in snames, f"{label}: Service {sname} has no grpc port")
        if ss.get("clusterIP") == "None":
            ck.check(not ss.get("publishNotReadyAddresses"), f"{label}: headless Service {sname} publishes unready pods")
        else:
            ck.check(ss.get("type", "ClusterIP") == "ClusterIP", f"{label}: Service {sname} is not ClusterIP")
            ck.check("metrics" in snames, f"{label}: Service {sname} has no metrics port")

    # HPA.
    for hpa in find_one(objects, "HorizontalPodAutoscaler", ck, label):
        hs = hpa.get("spec") or {}
        ref = hs.get("scaleTargetRef") or {}
        ck.check(ref.get("kind") == "Deployment" and ref.get("name") == dname and ref.get("apiVersion") == "apps/v1",
                 f"{label}: HPA does not target Deployment {dname}")
        ck.check(1 <= hs.get("minReplicas", 1) <= hs.get("maxReplicas", 0), f"{label}: HPA replica bounds are wrong")
        pods_metrics = [m for m in hs.get("metrics") or [] if m.get("type") == "Pods"]
        qd = [m for m in pods_metrics if ((m.get("pods") or {}).get("metric") or {}).get("name") == "vqd_queue_depth"]
        if ck.check(qd, f"{label}: HPA has no Pods metric vqd_queue_depth"):
            target = qd[0]["pods"].get("target") or {}
            ck.check(target.get("type") == "AverageValue" and target.get("averageValue") is not None,
                     f"{label}: HPA vqd_queue_depth target is not an AverageValue")
        for m in pods_metrics:
            mname = ((m.get("pods") or {}).get("metric") or {}).get("name")
            if adapter_rules is not None:
                ck.check(mname in adapter_rules, f"{label}: HPA metric {mname} is not served by the prometheus-adapter rules")
            if exported is not None:
                ck.check(exported.get(mname) == "gauge", f"{label}: HPA metric {mname} is not an exported gauge")

    # PDB.
    for pdb in find_one(objects, "PodDisruptionBudget", ck, label):
        ps = pdb.get("spec") or {}
        ck.check(labels_match((ps.get("selector") or {}).get("matchLabels"), pod_labels),
                 f"{label}: PDB selector does not match the pods")
        ck.check(("minAvailable" in ps) != ("maxUnavailable" in ps), f"{label}: PDB needs exactly one of minAvailable/maxUnavailable")

    # PodMonitor.
    for pm in find_one(objects, "PodMonitor", ck, label):
        ps = pm.get("spec") or {}
        ck.check(labels_match((ps.get("selector") or {}).get("matchLabels"), pod_labels),
                 f"{label}: PodMonitor selector does not match the pods")
        eps = ps.get("podMetricsEndpoints") or []
        if ck.check(eps, f"{label}: PodMonitor has no podMetricsEndpoints"):
            for ep in eps:
                ck.check(ep.get("port") == "metrics" and "metrics" in container_ports,
                         f"{label}: PodMonitor scrapes port {ep.get('port')!r}, expected the container port named metrics")
                ck.check(ep.get("path", "/metrics") == "/metrics", f"{label}: PodMonitor path is not /metrics")
                job = next((r.get("replacement") for r in ep.get("relabelings") or []
                            if r.get("targetLabel") == "job" and r.get("action", "replace") == "replace"), None)
                if alert_jobs:
                    ck.check(job in alert_jobs,
                             f"{label}: PodMonitor labels job={job!r}, the alerts select job in {sorted(alert_jobs)}")


def adapter_metric_names(path, ck):
    """Custom metric names that the prometheus-adapter rules in `path` serve."""
    names = set()
    rel = os.path.relpath(path, REPO)
    for d in load_yaml_docs(path):
        cfg = (d.get("data") or {}).get("config.yaml") if d.get("kind") == "ConfigMap" else None
        rules_doc = yaml.safe_load(cfg) if cfg else d
        rules = (rules_doc or {}).get("rules")
        if isinstance(rules, dict):  # Helm values layout: rules.custom
            rules = rules.get("custom")
        for r in rules or []:
            ck.check("seriesQuery" in r and "metricsQuery" in r, f"{rel}: a rule lacks seriesQuery or metricsQuery")
            ov = ((r.get("resources") or {}).get("overrides")) or {}
            ck.check({"namespace", "pod"} <= set(ov), f"{rel}: a rule does not map namespace and pod labels")
            series = re.match(r"\s*([A-Za-z_:][\w:]*)", r.get("seriesQuery", ""))
            name = r.get("name") or {}
            if "as" in name:
                names.add(name["as"])
            elif series:
                names.add(series.group(1))
    ck.check(names, f"{rel}: no rule found")
    return names


def alert_job_selectors(path):
    text = open(path, encoding="utf-8").read()
    return set(re.findall(r'\bjob\s*=\s*"([^"]+)"', text))


def canonical(objects):
    return sorted(yaml.safe_dump(o, sort_keys=True) for o in objects)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.join(REPO, "deploy", "k8s"))
    ap.add_argument("--alerts", default=os.path.join(REPO, "deploy", "prometheus", "alerts.yml"))
    ap.add_argument("--metrics-list", default=os.path.join(HERE, "exported_metrics.txt"))
    ap.add_argument("--rendered", help="a multi-document YAML stream rendered by kubectl kustomize")
    ap.add_argument("--kustomization", help="with --rendered: the folder it was rendered from")
    a = ap.parse_args()

    ck = Checker()
    root = os.path.abspath(a.root)
    exported = promql_names.load_exported(a.metrics_list)
    alert_jobs = alert_job_selectors(a.alerts)
    adapter_path = os.path.join(root, "prometheus-adapter-rules.yaml")
    adapter = adapter_metric_names(adapter_path, ck) if os.path.isfile(adapter_path) else None
    ck.check(adapter is not None, f"{os.path.relpath(adapter_path, REPO)} is missing")
    for n in adapter or ():
        ck.check(n in exported, f"prometheus-adapter serves {n}, which the server does not export")

    if a.rendered:
        with open(a.rendered, encoding="utf-8") as f:
            objects = [d for d in yaml.load_all(f, Loader=UniqueKeyLoader) if d]
        label = a.kustomization or a.rendered
        check_objects(objects, ck, label, adapter, exported, alert_jobs)
        if a.kustomization:
            mine = render(os.path.abspath(a.kustomization), ck)
            ck.check(canonical(mine) == canonical(objects),
                     f"{label}: the built-in renderer disagrees with the rendered stream")
    else:
        parsed = check_files(root, ck)
        print(f"parsed {len(parsed)} YAML files under {os.path.relpath(root, REPO)}")
        kdirs = sorted(d for d, _, _ in os.walk(root) if find_kustomization(d))
        ck.check(find_kustomization(root), f"{root}: no top-level kustomization.yaml")
        rendered = {}
        for d in kdirs:
            label = os.path.relpath(d, REPO)
            objs = render(d, ck)
            rendered[d] = objs
            print(f"rendered {label}: " + ", ".join(f"{o['kind']}/{o['metadata']['name']}" for o in objs))
            check_objects(objs, ck, label, adapter, exported, alert_jobs)
        # The top level deploys GPUs.
        top = rendered.get(root) or []
        dep = next((o for o in top if o.get("kind") == "Deployment"), None)
        if dep:
            c = next((c for c in pod_spec(dep).get("containers", []) if c.get("name") == "vqd-server"), {})
            ck.check("nvidia.com/gpu" in ((c.get("resources") or {}).get("limits") or {}),
                     f"{os.path.relpath(root, REPO)}: the default deployment has no GPU")
        # Manifests outside any kustomization (jobs, adapter config) are still checked as Pods.
        for path, docs in parsed.items():
            for d in docs:
                if isinstance(d, dict) and d.get("kind") == "Job":
                    rel = os.path.relpath(path, REPO)
                    for jc in pod_containers(d):
                        sc = jc.get("securityContext") or {}
                        psc = pod_spec(d).get("securityContext") or {}
                        ck.check(sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, f"{rel}: {jc.get('name')} not runAsNonRoot")
                    vols = {((v.get("persistentVolumeClaim") or {}).get("claimName")) for v in pod_spec(d).get("volumes") or []}
                    ck.check("vqd-model" in vols, f"{rel}: the Job does not write the vqd-model volume")

    return ck.report()


if __name__ == "__main__":
    sys.exit(main())
