#!/usr/bin/env python3
"""Command-line client of the VQ-Diffusion gRPC service (vqdiffusion.v1.VqDiffusion).

    vqd_client.py [--server HOST:PORT] [--timeout S] [--token T] [--tls ...] generate \
        (--prompt TEXT | --class-label N) [--steps N] [--time-stride S] [--prior-rule uniform|purity] [--prior-weight R] [--guidance G] [--truncation R] [--num-images K] [--seed S] \
        [--progress-every K] [--priority P] [--request-id ID] --out PREFIX [--save-tokens FILE] [--quiet]
    vqd_client.py [--server HOST:PORT] info [--json]
    vqd_client.py [--server HOST:PORT] health [--service NAME]

Needs grpcio and protobuf (Debian: python3-grpcio, which brings python3-protobuf) and a protocol
compiler: grpc_tools (python3-grpc-tools) or the `protoc` program (protobuf-compiler). The Python
code for the .proto files is generated at run time into a temporary folder, from the repository's
proto/ (or --proto-dir), so nothing generated is kept in the repository.

Exit codes (the same as the C++ vqd-client):
    0 success; 1 other errors (INTERNAL, CANCELLED, DEADLINE_EXCEEDED, ...); 2 usage error;
    3 server unreachable; 4 server busy (RESOURCE_EXHAUSTED) or unavailable (draining);
    5 invalid request (INVALID_ARGUMENT); 6 UNAUTHENTICATED / PERMISSION_DENIED;
    130 interrupted (Ctrl-C cancels the call; 143 for SIGTERM).
"""

import argparse
import atexit
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

try:
    import grpc
except ImportError:  # Reported by main(), so that --help still works.
    grpc = None

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
DEFAULT_PROTO_DIR = os.path.join(REPO_ROOT, "proto")
# The standard health and reflection APIs, which Debian's python3-grpcio does not include.
STD_PROTO_DIR = os.path.join(REPO_ROOT, "client", "proto")

VQD_PROTO = "vqdiffusion/v1/vqdiffusion.proto"
HEALTH_PROTO = "grpc/health/v1/health.proto"
REFLECTION_PROTO = "grpc/reflection/v1alpha/reflection.proto"

SERVICE = "/vqdiffusion.v1.VqDiffusion/"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_REJECTED, EXIT_INVALID, EXIT_AUTH = 0, 1, 2, 3, 4, 5, 6
EXIT_INTERRUPTED = 130
CONNECT_TIMEOUT_S = 5.0


def grpc_missing_message():
    """What to do when the grpc package cannot be imported."""
    hint = "apt-get install python3-grpcio python3-grpc-tools protobuf-compiler"
    if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") and os.path.exists("/usr/bin/python3"):
        hint += f", and run this with /usr/bin/python3 (Debian's packages are not visible to {sys.executable})"
    return f"error: the grpc Python package is missing ({hint})"


class Interrupted(KeyboardInterrupt):
    """SIGINT (Ctrl-C) or SIGTERM arrived; the process exits with 128 + the signal's number."""

    def __init__(self, signo):
        super().__init__(signo)
        self.signo = signo


def _on_signal(signo, _frame):
    raise Interrupted(signo)


class ClientError(Exception):
    """An error to report to the user, with the exit code to leave with."""

    def __init__(self, message, code=EXIT_ERROR):
        super().__init__(message)
        self.code = code


# ------------------------------------------------------------------------------------------------
# Code generation


def _compile_proto(include_dir, proto, out_dir):
    """Generates <out_dir>/<proto>_pb2.py; tries grpc_tools, then the protoc program.

    Debian's grpc_tools (1.14) predates proto3 `optional` fields, so its failure is not final.
    """
    errors = []
    try:
        from grpc_tools import protoc as grpc_protoc  # pylint: disable=import-outside-toplevel

        args = ["grpc_tools.protoc", f"-I{include_dir}", f"--python_out={out_dir}", proto]
        # grpc_tools prints its errors itself; keep them for the message instead.
        with tempfile.TemporaryFile(mode="w+") as err:
            saved = os.dup(2)
            os.dup2(err.fileno(), 2)
            try:
                rc = grpc_protoc.main(args)
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            err.seek(0)
            if rc == 0:
                return
            errors.append(f"grpc_tools.protoc: {err.read().strip()}")
    except ImportError:
        errors.append("grpc_tools is not installed")
    protoc = os.environ.get("PROTOC") or shutil.which("protoc")
    if protoc:
        result = subprocess.run([protoc, f"-I{include_dir}", f"--python_out={out_dir}", proto],
                                capture_output=True, text=True, check=False)
        if result.returncode == 0:
            return
        errors.append(f"protoc: {result.stderr.strip()}")
    else:
        errors.append("no protoc program on PATH")
    raise ClientError(f"cannot compile {proto}: " + "; ".join(errors) +
                      " (install python3-grpc-tools or protobuf-compiler)")


def _load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_LOADED = {}


def load_proto(proto, include_dir):
    """Compiles `proto` (a path under `include_dir`) and returns its _pb2 module.

    The module is loaded by file path under a private name, so that protos in the `grpc.*`
    package do not collide with the grpc Python package.
    """
    key = (proto, include_dir)
    if key in _LOADED:
        return _LOADED[key]
    if not os.path.isfile(os.path.join(include_dir, proto)):
        raise ClientError(f"{proto} not found under {include_dir} (use --proto-dir)", EXIT_USAGE)
    out_dir = tempfile.mkdtemp(prefix="vqd-client-pb2-")
    atexit.register(shutil.rmtree, out_dir, True)
    _compile_proto(include_dir, proto, out_dir)
    path = os.path.join(out_dir, proto[:-len(".proto")] + "_pb2.py")
    name = "_vqd_gen_" + proto[:-len(".proto")].replace("/", "_") + "_pb2"
    module = _load_module(path, name)
    _LOADED[key] = module
    return module


# ------------------------------------------------------------------------------------------------
# Connection and errors


def make_channel(args):
    """An insecure or TLS channel to args.server."""
    if not args.tls:
        if args.ca_cert or args.client_cert or args.client_key:
            raise ClientError("--ca-cert, --client-cert and --client-key need --tls", EXIT_USAGE)
        return grpc.insecure_channel(args.server)
    if bool(args.client_cert) != bool(args.client_key):
        raise ClientError("--client-cert and --client-key go together", EXIT_USAGE)

    def read(path):
        if not path:
            return None
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as e:
            raise ClientError(f"cannot read {path}: {e.strerror}", EXIT_USAGE) from e

    creds = grpc.ssl_channel_credentials(root_certificates=read(args.ca_cert),
                                         private_key=read(args.client_key),
                                         certificate_chain=read(args.client_cert))
    return grpc.secure_channel(args.server, creds)


def wait_connected(channel, args):
    """Waits until the channel connects (5 s, or --timeout); exit code 3 when it does not."""
    timeout = CONNECT_TIMEOUT_S if args.timeout is None else remaining(args)
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    except grpc.FutureTimeoutError as e:
        hint = " (is the server running? does it use TLS?)"
        raise ClientError(f"cannot reach server at {args.server}: no connection within {timeout:.1f} s{hint}",
                          EXIT_UNREACHABLE) from e


def remaining(args):
    """Seconds left of --timeout (the whole call's deadline), or None without one."""
    if args.deadline is None:
        return None
    return max(args.deadline - time.monotonic(), 0.001)


def metadata(args):
    return [("authorization", f"Bearer {args.token}")] if args.token else None


def rpc_error(err, args):
    """Turns a grpc.RpcError into a ClientError with the documented exit code."""
    code, details = err.code(), err.details() or ""
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return ClientError(f"server busy: {details}", EXIT_REJECTED)
    if code == grpc.StatusCode.UNAVAILABLE:
        return ClientError(f"server unavailable (draining or not ready): {details}", EXIT_REJECTED)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return ClientError(f"invalid request: {details}", EXIT_INVALID)
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        hint = "" if args.token else " (the server may need --token)"
        return ClientError(f"not authorized ({code.name}): {details}{hint}", EXIT_AUTH)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return ClientError(f"deadline exceeded after {args.timeout:g} s: {details}"
                           if args.timeout else f"deadline exceeded: {details}")
    return ClientError(f"call failed ({code.name}): {details}")


# ------------------------------------------------------------------------------------------------
# Commands


def cmd_info(args, channel):
    pb = load_proto(VQD_PROTO, args.proto_dir)
    call = channel.unary_unary(SERVICE + "GetModelInfo", request_serializer=pb.GetModelInfoRequest.SerializeToString,
                               response_deserializer=pb.ModelInfo.FromString)
    info = call(pb.GetModelInfoRequest(), timeout=remaining(args), metadata=metadata(args))
    if args.json:
        from google.protobuf import json_format  # pylint: disable=import-outside-toplevel
        print(message_to_json(json_format, info))
        return EXIT_OK
    lim = info.limits
    rows = [
        ("model", info.model_name),
        ("server version", info.server_version),
        ("image", f"{info.image_width} x {info.image_height} pixels"),
        ("token grid", f"{info.grid_width} x {info.grid_height}"),
        ("codebook", f"{info.codebook_size} codes (mask token {info.mask_token})"),
        ("timesteps", str(info.num_train_timesteps)),
        ("prompt tokens", str(info.max_prompt_tokens)),
        ("devices", ", ".join(info.devices) or "-"),
        ("dtype", info.dtype),
        ("conditioning", f"class label in [0, {info.num_classes})" if info.conditioning == "class_label"
         else "text prompt"),
        ("null embeddings", "learned" if info.learned_null_embeddings
         else "mean class" if info.conditioning == "class_label" else "empty prompt"),
        ("sampler", f"{info.sampler} (defaults: guidance {info.default_guidance_scale:g}, "
                    f"truncation {info.default_truncation_rate:g})"),
        ("limits", f"max_images {lim.max_images}, max_steps {lim.max_steps}, max_batch_rows {lim.max_batch_rows}, "
                   f"max_queue {lim.max_queue}, max_prompt_bytes {lim.max_prompt_bytes}"),
    ]
    for name, value in rows:
        print(f"{name + ':':<17}{value}")
    return EXIT_OK


def message_to_json(json_format, message):
    """MessageToJson with proto field names and default values, across protobuf versions."""
    try:
        return json_format.MessageToJson(message, preserving_proto_field_name=True,
                                         including_default_value_fields=True)
    except TypeError:  # protobuf >= 5 renamed the option.
        return json_format.MessageToJson(message, preserving_proto_field_name=True,
                                         always_print_fields_with_no_presence=True)


def cmd_health(args, channel):
    pb = load_proto(HEALTH_PROTO, STD_PROTO_DIR)
    call = channel.unary_unary(HEALTH_CHECK, request_serializer=pb.HealthCheckRequest.SerializeToString,
                               response_deserializer=pb.HealthCheckResponse.FromString)
    resp = call(pb.HealthCheckRequest(service=args.service), timeout=remaining(args), metadata=metadata(args))
    status = pb.HealthCheckResponse.ServingStatus.Name(resp.status)
    print(status)
    return EXIT_OK if resp.status == pb.HealthCheckResponse.SERVING else EXIT_ERROR


class Progress:
    """Progress output on stderr: a redrawn bar on a terminal, one line per event otherwise."""

    def __init__(self, quiet):
        self.quiet = quiet
        self.tty = sys.stderr.isatty() and not quiet
        self.bar_shown = False
        self.queued_at = None
        self.queue_s = None

    def line(self, text):
        if self.quiet:
            return
        if self.bar_shown:
            sys.stderr.write("\n")
            self.bar_shown = False
        print(text, file=sys.stderr, flush=True)

    def queued(self, ev):
        self.queued_at = time.monotonic()
        self.line(f"queued: request {ev.request_id} at position {ev.position}")

    def started(self, ev):
        if self.queued_at is not None:
            self.queue_s = time.monotonic() - self.queued_at
        self.line(f"started: request {ev.request_id} on {ev.device}, seed {ev.seed}")

    def progress(self, ev):
        if self.quiet:
            return
        text = f"step {ev.step}/{ev.total_steps} t={ev.timestep} masked {100.0 * ev.masked_fraction:.1f}%"
        if self.queue_s is not None:
            text += f"  queued {self.queue_s:.1f}s"
        if not self.tty:
            self.line(text)
            return
        width = 30
        filled = width * ev.step // max(ev.total_steps, 1)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {text}\x1b[K")
        sys.stderr.flush()
        self.bar_shown = True

    def finish(self):
        if self.bar_shown:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.bar_shown = False


def cmd_generate(args, channel):
    pb = load_proto(VQD_PROTO, args.proto_dir)
    req = pb.GenerateRequest(prompt=args.prompt or "")
    # Only the fields the user gave, so that the server applies its defaults to the others.
    for field, value in (("num_images", args.num_images), ("steps", args.steps), ("time_stride", args.time_stride),
                         ("guidance_scale", args.guidance),
                         ("truncation_rate", args.truncation), ("seed", args.seed), ("class_label", args.class_label)):
        if value is not None:
            setattr(req, field, value)
    if args.prior_rule not in (None, "none"):
        req.prior_rule = pb.PriorRule.Value("PRIOR_RULE_" + args.prior_rule.upper())
    if args.prior_weight is not None:
        req.prior_weight = args.prior_weight
    if args.strength is not None:
        req.strength = args.strength
    if args.preview_every is not None:
        req.preview_interval = args.preview_every
    for field, path in (("init_image", args.init_image), ("mask", args.mask)):
        if path is not None:
            try:
                with open(path, "rb") as f:
                    setattr(req, field, f.read())
            except OSError as e:
                raise ClientError(f"cannot read {path}: {e.strerror}", EXIT_USAGE) from e
    if args.progress_every is None:
        args.progress_every = 0 if args.quiet else (1 if sys.stderr.isatty() else 10)
    req.progress_interval = args.progress_every
    if args.priority is not None:
        req.priority = args.priority
    if args.request_id is not None:
        req.request_id = args.request_id
    parent = os.path.dirname(args.out)
    if parent:
        os.makedirs(parent, exist_ok=True)

    call = channel.unary_stream(SERVICE + "Generate", request_serializer=pb.GenerateRequest.SerializeToString,
                                response_deserializer=pb.GenerateEvent.FromString)
    stream = call(req, timeout=remaining(args), metadata=metadata(args))
    out = Progress(args.quiet)
    seed, done, grids = None, None, {}
    try:
        for ev in stream:
            kind = ev.WhichOneof("event")
            if kind == "queued":
                out.queued(ev.queued)
            elif kind == "started":
                seed = ev.started.seed
                out.started(ev.started)
            elif kind == "progress":
                out.progress(ev.progress)
            elif kind == "preview":
                for i, png in enumerate(ev.preview.pngs):
                    path = f"{args.out}-step{ev.preview.step:02d}-{i}.png"
                    with open(path, "wb") as f:
                        f.write(png)
                    out.line(f"preview: wrote {path} ({ev.preview.width}x{ev.preview.height}, step {ev.preview.step})")
            elif kind == "image":
                img = ev.image
                seed = img.seed
                path = f"{args.out}-{img.index}.png"
                with open(path, "wb") as f:
                    f.write(img.png)
                grids[img.index] = img.grid
                out.finish()
                if not args.quiet:
                    print(f"wrote {path} ({img.width}x{img.height}, seed {img.seed})", flush=True)
            elif kind == "done":
                done = ev.done
    except KeyboardInterrupt:
        stream.cancel()
        out.finish()
        raise
    finally:
        out.finish()
    if done is None:
        raise ClientError("the stream ended without a Done event")
    if args.save_tokens:
        write_tokens(args.save_tokens, grids)
    if not args.quiet:
        print(f"done: request {done.request_id}, {done.steps} steps, seed {seed}; "
              f"queue {done.queue_seconds:.2f}s, encode {done.encode_seconds:.2f}s, "
              f"denoise {done.denoise_seconds:.2f}s, decode {done.decode_seconds:.2f}s, "
              f"total {done.total_seconds:.2f}s")
    return EXIT_OK


def write_tokens(path, grids):
    """Writes the final grids as the C++ client does: {"tokens": [[...], ...], "height": H, "width": W}."""
    doc = {"tokens": [list(grids[i].tokens) for i in sorted(grids)]}
    if grids:
        first = grids[min(grids)]
        doc.update(height=first.height, width=first.width)
    try:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f)
            f.write("\n")
    except OSError as err:
        raise ClientError(f"cannot write {path}: {err.strerror}") from err


# ------------------------------------------------------------------------------------------------
# Command line


def build_parser():
    # The global options are accepted before and after the command; SUPPRESS keeps a subparser's
    # unset copy from overwriting the value given before the command.
    def add_globals(p, top):
        def d(value):
            return value if top else argparse.SUPPRESS

        p.add_argument("--server", default=d("localhost:50051"), help="HOST:PORT (default localhost:50051)")
        p.add_argument("--timeout", type=float, default=d(None), metavar="SECONDS",
                       help="deadline of the whole call, connecting included (default: none; connecting 5 s)")
        p.add_argument("--token", default=d(None), help="send 'authorization: Bearer TOKEN' metadata")
        p.add_argument("--tls", action="store_true", default=d(False), help="connect with TLS")
        p.add_argument("--ca-cert", default=d(None), metavar="FILE", help="root certificates (PEM) for --tls")
        p.add_argument("--client-cert", default=d(None), metavar="FILE", help="client certificate (PEM), mutual TLS")
        p.add_argument("--client-key", default=d(None), metavar="FILE", help="client private key (PEM), mutual TLS")
        p.add_argument("--proto-dir", default=d(DEFAULT_PROTO_DIR), metavar="DIR",
                       help="folder holding vqdiffusion/v1/vqdiffusion.proto (default: the repository's proto/)")

    parser = argparse.ArgumentParser(description="Client of the VQ-Diffusion gRPC service.",
                                     epilog="Exit codes: 0 ok, 1 error, 2 usage, 3 unreachable, 4 busy/draining, "
                                            "5 invalid request, 6 not authorized, 130 interrupted.")
    add_globals(parser, True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    gen = sub.add_parser("generate", help="generate images for a prompt or a class label")
    add_globals(gen, False)
    condition = gen.add_mutually_exclusive_group(required=True)
    condition.add_argument("--prompt", help="the text prompt (text models)")
    condition.add_argument("--class-label", type=int, metavar="N", help="the class (class-conditional models)")
    gen.add_argument("--steps", type=int, help="denoising steps (server default 100)")
    gen.add_argument("--time-stride", type=int, metavar="S",
                     help="official strided sampling: timesteps T-1, T-1-S, ... and 0 of the whole schedule")
    gen.add_argument("--prior-rule", choices=["none", "uniform", "purity"],
                     help="unmask exactly the scheduled number of tokens per step (Improved VQ-Diffusion)")
    gen.add_argument("--prior-weight", type=float, metavar="R", help="purity only: sharpen confident positions (>= 0)")
    gen.add_argument("--init-image", metavar="PNG", help="edit this image (the model's image size)")
    gen.add_argument("--strength", type=float, metavar="X", help="how much of the chain the edit runs, (0, 1]")
    gen.add_argument("--mask", metavar="PNG", help="inpainting: white regenerates, black keeps the image")
    gen.add_argument("--preview-every", type=int, metavar="K",
                     help="a preview every K steps, written to PREFIX-stepNN-<index>.png")
    gen.add_argument("--guidance", type=float, help="classifier-free guidance scale (server default: the model's)")
    gen.add_argument("--truncation", type=float, help="truncation rate in (0, 1] (server default: the model's)")
    gen.add_argument("--num-images", type=int, help="images to generate (server default 1)")
    gen.add_argument("--seed", type=int, help="random seed (default: the server draws one)")
    gen.add_argument("--progress-every", type=int, metavar="K",
                     help="progress event every K steps, 0 for none (default 1 on a terminal, else 10)")
    gen.add_argument("--priority", type=int, help="scheduling priority (higher first)")
    gen.add_argument("--request-id", help="request id to use in the server's events and logs")
    gen.add_argument("--out", required=True, metavar="PREFIX", help="write PREFIX-<index>.png")
    gen.add_argument("--save-tokens", metavar="FILE",
                     help='write the final token grids as JSON {"tokens": [[...], ...]}, one row-major list per image')
    gen.add_argument("--quiet", action="store_true", help="print only errors")

    info = sub.add_parser("info", help="describe the model and the server's limits")
    add_globals(info, False)
    info.add_argument("--json", action="store_true", help="print the ModelInfo message as JSON")

    health = sub.add_parser("health", help="check the server's health (grpc.health.v1)")
    add_globals(health, False)
    health.add_argument("--service", default="", help="service name to check (default: the whole server)")
    return parser


def check_ranges(args):
    """Rejects values that the proto's field types cannot hold (the server checks the rest)."""
    u32 = (0, 2**32 - 1)
    for name, (lo, hi) in (("steps", u32), ("num_images", u32), ("progress_every", u32),
                           ("seed", (0, 2**64 - 1)), ("priority", (-2**31, 2**31 - 1))):
        value = getattr(args, name, None)
        if value is not None and not lo <= value <= hi:
            raise ClientError(f"--{name.replace('_', '-')} must be in [{lo}, {hi}], got {value}", EXIT_USAGE)
    if args.timeout is not None and args.timeout <= 0:
        raise ClientError("--timeout must be positive", EXIT_USAGE)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)  # Exits with 2 and a usage text on errors.
    if grpc is None:
        print(grpc_missing_message(), file=sys.stderr)
        return EXIT_ERROR
    channel = None
    # Installed even where the shell ignores SIGINT (background jobs), as the C++ client does.
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        check_ranges(args)
        args.deadline = None if args.timeout is None else time.monotonic() + args.timeout
        channel = make_channel(args)
        wait_connected(channel, args)
        return {"generate": cmd_generate, "info": cmd_info, "health": cmd_health}[args.command](args, channel)
    except ClientError as e:
        print(f"error: {e}", file=sys.stderr)
        if e.code == EXIT_USAGE:
            parser.print_usage(sys.stderr)
        return e.code
    except grpc.RpcError as e:
        err = rpc_error(e, args)
        print(f"error: {err}", file=sys.stderr)
        return err.code
    except KeyboardInterrupt as e:
        print(("\n" if sys.stderr.isatty() else "") + "interrupted: call cancelled", file=sys.stderr)
        return 128 + e.signo if isinstance(e, Interrupted) else EXIT_INTERRUPTED
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        if channel is not None:
            channel.close()


if __name__ == "__main__":
    sys.exit(main())
