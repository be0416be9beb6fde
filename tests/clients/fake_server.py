#!/usr/bin/env python3
"""A fake vqdiffusion.v1.VqDiffusion server for testing the clients without a model.

It speaks the real API (the repository's proto/), validates requests like the real server
documents (INVALID_ARGUMENT naming the field), and streams plausible events: Queued, Started,
Progress (with token grids being unmasked), one Image per requested image (a real PNG of the
advertised size, drawn from the seed) and Done. It also serves grpc.health.v1.Health and
grpc.reflection.v1alpha.ServerReflection, implemented here from the protos in client/proto
(Debian's python3-grpcio ships neither grpcio-health-checking nor grpcio-reflection).

    fake_server.py [--host 127.0.0.1] [--port 0] [--port-file FILE] [--token T]
                   [--tls-cert PEM --tls-key PEM [--tls-client-ca PEM]]
                   [--busy] [--draining] [--step-delay S] [--image-size N] [--grid N]

With --port 0 it picks a free port; the port is printed as "listening on HOST:PORT" on stdout and
written to --port-file once the server accepts calls. Special behaviours for error tests:
  --busy       Generate fails with RESOURCE_EXHAUSTED (queue full)
  --draining   Generate fails with UNAVAILABLE and health reports NOT_SERVING
  a prompt starting with "!internal" fails with INTERNAL after the Started event
It stops on SIGTERM or SIGINT.
"""

import argparse
import math
import os
import random
import signal
import struct
import sys
import threading
import time
import zlib
from concurrent import futures

import grpc
from google.protobuf import descriptor_pool

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO_ROOT, "client", "python"))
import vqd_client  # noqa: E402  (reuses its run-time proto compilation)

SERVICE_NAME = "vqdiffusion.v1.VqDiffusion"
HEALTH_NAME = "grpc.health.v1.Health"
REFLECTION_NAME = "grpc.reflection.v1alpha.ServerReflection"


def log(msg):
    print(f"fake_server: {msg}", file=sys.stderr, flush=True)


def make_png(width, height, seed, index):
    """An 8-bit RGB PNG: a smooth pattern that depends on the seed and the image index."""
    rng = random.Random(seed * 1000003 + index)
    fx, fy, phase = rng.uniform(1, 4), rng.uniform(1, 4), rng.uniform(0, 6.28)
    rows = []
    for y in range(height):
        row = bytearray([0])  # filter type 0 (None)
        for x in range(width):
            u, v = x / max(width - 1, 1), y / max(height - 1, 1)
            r = int(255 * u)
            g = int(255 * v)
            b = int(127.5 * (1 + math.sin(phase + fx * 6.28 * u + fy * 6.28 * v)))
            row += bytes((r, g, b))
        rows.append(bytes(row))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit, color type 2 (RGB)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"".join(rows), 6)) +
            chunk(b"IEND", b""))


class FakeVqDiffusion:
    def __init__(self, args, pb):
        self.args = args
        self.pb = pb
        self.lock = threading.Lock()
        self.next_id = 1
        self.png_cache = {}

    def _check_auth(self, context):
        if not self.args.token:
            return
        md = dict(context.invocation_metadata())
        if md.get("authorization") != f"Bearer {self.args.token}":
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")

    def model_info(self):
        a = self.args
        return self.pb.ModelInfo(
            model_name="fake-vq-diffusion", grid_height=a.grid, grid_width=a.grid, image_height=a.image_size,
            image_width=a.image_size, codebook_size=a.codebook, mask_token=a.codebook, num_train_timesteps=a.max_steps,
            devices=["fake:0"], dtype="fp32", learned_null_embeddings=True, server_version="fake-0.1",
            max_prompt_tokens=77,
            limits=self.pb.Limits(max_images=a.max_images, max_batch_rows=8, max_queue=16, max_prompt_bytes=4096,
                                  max_steps=a.max_steps))

    def GetModelInfo(self, request, context):
        self._check_auth(context)
        return self.model_info()

    def _validate(self, req, context):
        a = self.args

        def bad(msg):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, msg)

        if len(req.prompt.encode("utf-8")) > 4096:
            bad(f"prompt must be at most 4096 bytes, got {len(req.prompt.encode('utf-8'))}")
        if req.HasField("num_images") and not 1 <= req.num_images <= a.max_images:
            bad(f"num_images must be in [1, {a.max_images}], got {req.num_images}")
        if req.HasField("steps") and not 1 <= req.steps <= a.max_steps:
            bad(f"steps must be in [1, {a.max_steps}], got {req.steps}")
        if req.HasField("guidance_scale") and not (math.isfinite(req.guidance_scale) and req.guidance_scale >= 0):
            bad(f"guidance_scale must be finite and >= 0, got {req.guidance_scale}")
        if req.HasField("truncation_rate") and not 0 < req.truncation_rate <= 1:
            bad(f"truncation_rate must be in (0, 1], got {req.truncation_rate}")
        if req.HasField("class_label"):
            bad(f"class_label: the fake model is conditioned on text, got {req.class_label}")
        if len(req.request_id) > 128 or any(not 32 <= ord(c) < 127 for c in req.request_id):
            bad("request_id must be at most 128 printable ASCII characters")

    def Generate(self, req, context):
        self._check_auth(context)
        self._validate(req, context)
        a, pb = self.args, self.pb
        if a.draining:
            context.abort(grpc.StatusCode.UNAVAILABLE, "server is draining: not accepting new requests")
        if a.busy:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "queue is full (16 requests waiting); retry later")
        with self.lock:
            rid = req.request_id or f"fake-{self.next_id}"
            self.next_id += 1
        num = req.num_images if req.HasField("num_images") else 1
        steps = req.steps if req.HasField("steps") else a.max_steps
        seed = req.seed if req.HasField("seed") else random.getrandbits(63)
        log(f"Generate {rid}: prompt={req.prompt!r} images={num} steps={steps} seed={seed} "
            f"progress_interval={req.progress_interval} fields={[f.name for f, _ in req.ListFields()]}")
        finished = threading.Event()
        context.add_callback(lambda: None if finished.is_set() else log(f"Generate {rid}: cancelled by the client"))
        t0 = time.monotonic()
        yield pb.GenerateEvent(queued=pb.Queued(request_id=rid, position=0))
        time.sleep(a.step_delay)
        yield pb.GenerateEvent(started=pb.Started(request_id=rid, device="fake:0", seed=seed))
        if req.prompt.startswith("!internal"):
            finished.set()
            context.abort(grpc.StatusCode.INTERNAL, "denoising failed on fake:0: injected failure")
        t1 = time.monotonic()
        n = a.grid * a.grid
        rng = random.Random(seed)
        order = [rng.sample(range(n), n) for _ in range(num)]  # unmasking order per image
        final = [[rng.randrange(a.codebook) for _ in range(n)] for _ in range(num)]

        def grid(i, unmasked):
            toks = [a.codebook] * n
            for p in order[i][:unmasked]:
                toks[p] = final[i][p]
            return pb.TokenGrid(height=a.grid, width=a.grid, tokens=toks)

        for step in range(1, steps + 1):
            if not context.is_active():
                return
            time.sleep(a.step_delay)
            interval = req.progress_interval
            if interval and (step % interval == 0 or step == steps):
                unmasked = n * step // steps
                yield pb.GenerateEvent(progress=pb.Progress(
                    step=step, total_steps=steps, timestep=steps - step, masked_fraction=1.0 - unmasked / n,
                    grids=[grid(i, unmasked) for i in range(num)]))
        t2 = time.monotonic()
        for i in range(num):
            key = (seed, i)
            if key not in self.png_cache:
                self.png_cache[key] = make_png(a.image_size, a.image_size, seed, i)
            yield pb.GenerateEvent(image=pb.Image(index=i, png=self.png_cache[key], width=a.image_size,
                                                  height=a.image_size, seed=seed, grid=grid(i, n)))
        t3 = time.monotonic()
        yield pb.GenerateEvent(done=pb.Done(request_id=rid, queue_seconds=t1 - t0, encode_seconds=0.0,
                                            denoise_seconds=t2 - t1, decode_seconds=t3 - t2,
                                            total_seconds=time.monotonic() - t0, steps=steps))
        finished.set()
        log(f"Generate {rid}: done")


class FakeHealth:
    def __init__(self, args, pb):
        self.args, self.pb = args, pb

    def _status(self, service, context):
        if service not in ("", SERVICE_NAME):
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {service!r}")
        resp = self.pb.HealthCheckResponse
        return resp(status=resp.NOT_SERVING if self.args.draining else resp.SERVING)

    def Check(self, req, context):
        return self._status(req.service, context)

    def Watch(self, req, context):
        yield self._status(req.service, context)
        while context.is_active():
            time.sleep(0.1)


class FakeReflection:
    """grpc.reflection.v1alpha: list_services, file_by_filename and file_containing_symbol."""

    def __init__(self, pb, services):
        self.pb, self.services = pb, services
        self.pool = descriptor_pool.Default()

    def _files(self, fd):
        """The serialized file and its dependencies, the file first."""
        out, seen, todo = [], set(), [fd]
        while todo:
            f = todo.pop(0)
            if f.name in seen:
                continue
            seen.add(f.name)
            out.append(f.serialized_pb)
            todo.extend(f.dependencies)
        return out

    def ServerReflectionInfo(self, requests, context):
        pb = self.pb
        for req in requests:
            kind = req.WhichOneof("message_request")
            resp = pb.ServerReflectionResponse(valid_host=req.host, original_request=req)
            try:
                if kind == "list_services":
                    resp.list_services_response.service.extend(pb.ServiceResponse(name=s) for s in self.services)
                elif kind == "file_by_filename":
                    resp.file_descriptor_response.file_descriptor_proto.extend(
                        self._files(self.pool.FindFileByName(req.file_by_filename)))
                elif kind == "file_containing_symbol":
                    resp.file_descriptor_response.file_descriptor_proto.extend(
                        self._files(self.pool.FindFileContainingSymbol(req.file_containing_symbol)))
                else:
                    resp.error_response.error_code = grpc.StatusCode.UNIMPLEMENTED.value[0]
                    resp.error_response.error_message = f"{kind} is not supported by the fake server"
            except KeyError:
                resp.ClearField("file_descriptor_response")
                resp.error_response.error_code = grpc.StatusCode.NOT_FOUND.value[0]
                resp.error_response.error_message = f"not found: {getattr(req, kind)}"
            yield resp


def generic_handler(service, impl, pb_methods):
    """A grpc generic handler for `service` from {method: (kind, request class, response class)}."""
    makers = {"unary_unary": grpc.unary_unary_rpc_method_handler,
              "unary_stream": grpc.unary_stream_rpc_method_handler,
              "stream_stream": grpc.stream_stream_rpc_method_handler}
    handlers = {name: makers[kind](getattr(impl, name), request_deserializer=req.FromString,
                                   response_serializer=resp.SerializeToString)
                for name, (kind, req, resp) in pb_methods.items()}
    return grpc.method_handlers_generic_handler(service, handlers)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0: pick a free port")
    p.add_argument("--port-file", help="write the port here once serving")
    p.add_argument("--token", help="require 'authorization: Bearer TOKEN' on VqDiffusion calls")
    p.add_argument("--tls-cert", help="server certificate chain (PEM); enables TLS")
    p.add_argument("--tls-key", help="server private key (PEM)")
    p.add_argument("--tls-client-ca", help="require client certificates signed by this CA (mutual TLS)")
    p.add_argument("--busy", action="store_true", help="Generate fails with RESOURCE_EXHAUSTED")
    p.add_argument("--draining", action="store_true", help="Generate fails with UNAVAILABLE; health NOT_SERVING")
    p.add_argument("--step-delay", type=float, default=0.01, help="seconds per denoising step")
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--grid", type=int, default=32)
    p.add_argument("--codebook", type=int, default=4096)
    p.add_argument("--max-images", type=int, default=4)
    p.add_argument("--max-steps", type=int, default=100)
    p.add_argument("--proto-dir", default=vqd_client.DEFAULT_PROTO_DIR)
    args = p.parse_args()

    pb = vqd_client.load_proto(vqd_client.VQD_PROTO, args.proto_dir)
    health_pb = vqd_client.load_proto(vqd_client.HEALTH_PROTO, vqd_client.STD_PROTO_DIR)
    refl_pb = vqd_client.load_proto(vqd_client.REFLECTION_PROTO, vqd_client.STD_PROTO_DIR)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((
        generic_handler(SERVICE_NAME, FakeVqDiffusion(args, pb), {
            "Generate": ("unary_stream", pb.GenerateRequest, pb.GenerateEvent),
            "GetModelInfo": ("unary_unary", pb.GetModelInfoRequest, pb.ModelInfo)}),
        generic_handler(HEALTH_NAME, FakeHealth(args, health_pb), {
            "Check": ("unary_unary", health_pb.HealthCheckRequest, health_pb.HealthCheckResponse),
            "Watch": ("unary_stream", health_pb.HealthCheckRequest, health_pb.HealthCheckResponse)}),
        generic_handler(REFLECTION_NAME, FakeReflection(refl_pb, [SERVICE_NAME, HEALTH_NAME, REFLECTION_NAME]), {
            "ServerReflectionInfo": ("stream_stream", refl_pb.ServerReflectionRequest,
                                     refl_pb.ServerReflectionResponse)}),
    ))
    address = f"{args.host}:{args.port}"
    if args.tls_cert:
        def read(path):
            with open(path, "rb") as f:
                return f.read()

        creds = grpc.ssl_server_credentials(
            [(read(args.tls_key), read(args.tls_cert))],
            root_certificates=read(args.tls_client_ca) if args.tls_client_ca else None,
            require_client_auth=bool(args.tls_client_ca))
        port = server.add_secure_port(address, creds)
    else:
        port = server.add_insecure_port(address)
    if not port:
        log(f"cannot listen on {address}")
        return 1
    server.start()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    print(f"listening on {args.host}:{port}", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    server.stop(grace=1).wait()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
