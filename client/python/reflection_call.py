#!/usr/bin/env python3
"""Calls vqdiffusion.v1.VqDiffusion/GetModelInfo without the service's .proto file.

Everything about the service comes from the server, through gRPC server reflection
(grpc.reflection.v1alpha.ServerReflection, the version gRPC 1.51's C++ server serves):

  1. ask for the file descriptor containing the symbol `vqdiffusion.v1.VqDiffusion` (and, by
     name, any dependency the server did not send along);
  2. load the descriptors into a fresh descriptor pool and build the request and response
     classes of the method with the message factory;
  3. call the method with a generic unary call and print the response as JSON.

    reflection_call.py [--server HOST:PORT] [--service NAME] [--method NAME] [--timeout S]
                       [--token TOKEN]

Only the reflection API's own proto (client/proto/grpc/reflection/v1alpha/reflection.proto, a
standard API that Debian's python3-grpcio does not include) is compiled, at run time, by the
helper of vqd_client.py. Exit codes as vqd_client.py: 0 ok, 1 error, 3 unreachable, ...
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import vqd_client  # noqa: E402  (run-time proto compilation, channel and error helpers)
from vqd_client import ClientError, EXIT_ERROR, EXIT_OK  # noqa: E402

REFLECTION_METHOD = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"


def message_class(descriptor):
    """The Python class of a message descriptor (protobuf 3.x and 4.x+ APIs)."""
    from google.protobuf import message_factory  # pylint: disable=import-outside-toplevel

    if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.21
        return message_factory.GetMessageClass(descriptor)
    return message_factory.MessageFactory(descriptor.file.pool).GetPrototype(descriptor)


class Reflection:
    """A ServerReflectionInfo stream used one request at a time."""

    def __init__(self, channel, args, refl_pb):
        self.pb = refl_pb
        self.args = args
        self.call = channel.stream_stream(REFLECTION_METHOD,
                                          request_serializer=refl_pb.ServerReflectionRequest.SerializeToString,
                                          response_deserializer=refl_pb.ServerReflectionResponse.FromString)

    def ask(self, **request):
        responses = self.call(iter([self.pb.ServerReflectionRequest(**request)]), timeout=vqd_client.remaining(self.args),
                              metadata=vqd_client.metadata(self.args))
        for resp in responses:
            if resp.WhichOneof("message_response") == "error_response":
                err = resp.error_response
                raise ClientError(f"reflection: {request}: error {err.error_code}: {err.error_message}")
            return resp
        raise ClientError(f"reflection: no answer to {request}")

    def services(self):
        return [s.name for s in self.ask(list_services="").list_services_response.service]

    def load_symbol(self, symbol, pool):
        """Adds the file defining `symbol` and its dependencies to `pool`."""
        from google.protobuf import descriptor_pb2  # pylint: disable=import-outside-toplevel

        files = {}

        def add_all(resp):
            for blob in resp.file_descriptor_response.file_descriptor_proto:
                fd = descriptor_pb2.FileDescriptorProto.FromString(blob)
                files.setdefault(fd.name, fd)

        add_all(self.ask(file_containing_symbol=symbol))
        # Fetch the dependencies the server did not send with it.
        missing = [d for fd in list(files.values()) for d in fd.dependency if d not in files]
        while missing:
            name = missing.pop()
            if name in files:
                continue
            add_all(self.ask(file_by_filename=name))
            missing.extend(d for d in files[name].dependency if d not in files)

        added = set()

        def add(name):  # dependencies first
            if name in added:
                return
            for dep in files[name].dependency:
                add(dep)
            pool.Add(files[name])
            added.add(name)

        for name in files:
            add(name)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    p.add_argument("--server", default="localhost:50051", help="HOST:PORT (default localhost:50051)")
    p.add_argument("--service", default="vqdiffusion.v1.VqDiffusion", help="fully qualified service name")
    p.add_argument("--method", default="GetModelInfo", help="a unary method taking no fields")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="deadline of the whole exchange")
    p.add_argument("--token", help="send 'authorization: Bearer TOKEN' metadata")
    p.add_argument("--tls", action="store_true", help="connect with TLS")
    p.add_argument("--ca-cert", metavar="FILE")
    p.add_argument("--client-cert", metavar="FILE")
    p.add_argument("--client-key", metavar="FILE")
    args = p.parse_args(argv)
    if vqd_client.grpc is None:
        print(vqd_client.grpc_missing_message(), file=sys.stderr)
        return EXIT_ERROR
    import grpc  # pylint: disable=import-outside-toplevel
    from google.protobuf import descriptor_pool, json_format  # pylint: disable=import-outside-toplevel

    args.deadline = None
    if args.timeout is not None:
        import time  # pylint: disable=import-outside-toplevel
        args.deadline = time.monotonic() + args.timeout
    channel = None
    try:
        refl_pb = vqd_client.load_proto(vqd_client.REFLECTION_PROTO, vqd_client.STD_PROTO_DIR)
        channel = vqd_client.make_channel(args)
        vqd_client.wait_connected(channel, args)
        reflection = Reflection(channel, args, refl_pb)
        services = reflection.services()
        print(f"services: {', '.join(services)}", file=sys.stderr)
        if args.service not in services:
            raise ClientError(f"the server does not list {args.service}")

        pool = descriptor_pool.DescriptorPool()  # a fresh pool: nothing compiled in
        reflection.load_symbol(args.service, pool)
        method = pool.FindServiceByName(args.service).FindMethodByName(args.method)
        if method is None:
            raise ClientError(f"{args.service} has no method {args.method}")
        if method.client_streaming or method.server_streaming:
            raise ClientError(f"{args.method} is a streaming method; this tool calls unary methods only")
        request_cls, response_cls = message_class(method.input_type), message_class(method.output_type)
        print(f"calling {method.full_name}({method.input_type.full_name}) -> {method.output_type.full_name}",
              file=sys.stderr)
        call = channel.unary_unary(f"/{args.service}/{args.method}", request_serializer=request_cls.SerializeToString,
                                   response_deserializer=response_cls.FromString)
        response = call(request_cls(), timeout=vqd_client.remaining(args), metadata=vqd_client.metadata(args))
        print(vqd_client.message_to_json(json_format, response))
        return EXIT_OK
    except ClientError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code
    except grpc.RpcError as e:
        err = vqd_client.rpc_error(e, args)
        print(f"error: {err}", file=sys.stderr)
        return err.code
    finally:
        if channel is not None:
            channel.close()


if __name__ == "__main__":
    sys.exit(main())
