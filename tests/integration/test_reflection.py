"""gRPC server reflection, spoken by stock python3-grpcio from Debian's
reflection.proto, against the real roles: what grpcurl does without a
.proto file.

Checks, over both grpc.reflection.v1alpha and v1: list_services names every
registered service (the role's, grpc.health.v1.Health, reflection itself);
file_containing_symbol resolves services, methods, messages and nested enums
to their file plus every import; a descriptor pool built only from those
answers decodes a real HealthCheck call; unknown symbols, files and
extensions answer NOT_FOUND in error_response and the stream goes on; many
requests on one stream are all answered, in order. The interop server serves
grpc.testing the same way, its imports included.
"""
import os
import sys
import time

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "interop"))
import harness  # noqa: E402

harness.load_stubs()
from grpc.reflection.v1 import reflection_pb2 as v1  # noqa: E402
from grpc.reflection.v1 import reflection_pb2_grpc as v1_grpc  # noqa: E402
from grpc.reflection.v1alpha import reflection_pb2 as v1alpha  # noqa: E402
from grpc.reflection.v1alpha import reflection_pb2_grpc as v1alpha_grpc  # noqa: E402

B = harness.build_dir()
TIMEOUT = 20.0
NOT_FOUND = grpc.StatusCode.NOT_FOUND.value[0]
VERSIONS = [("v1alpha", v1alpha, v1alpha_grpc), ("v1", v1, v1_grpc)]
REFLECTION = {"grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection"}
ORCH_FILE = "orchestrator/v1/orchestrator.proto"


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok:", what)


class Reflector:
    """One ServerReflectionInfo stream per ask() (grpcurl keeps one open;
    ask_many() checks that several requests on one stream work too)."""

    def __init__(self, channel, pb, pb_grpc):
        self.pb = pb
        self.stub = pb_grpc.ServerReflectionStub(channel)

    def ask_many(self, reqs, lag=0.0):
        """Sends reqs on one stream and returns the answers; with lag, starts
        reading them only after lag seconds, so the server's queue fills."""
        it = self.stub.ServerReflectionInfo(iter(reqs), timeout=TIMEOUT)
        time.sleep(lag)
        resps = list(it)
        if len(resps) != len(reqs):
            raise AssertionError("%d answers for %d requests" % (len(resps), len(reqs)))
        for req, resp in zip(reqs, resps):
            if resp.original_request != req:
                raise AssertionError("answer out of order or original_request not echoed: %s"
                                     % resp.original_request)
            if resp.valid_host != req.host:
                raise AssertionError("valid_host %r != %r" % (resp.valid_host, req.host))
        return resps

    def ask(self, **kw):
        return self.ask_many([self.pb.ServerReflectionRequest(host="localhost", **kw)])[0]

    def services(self):
        resp = self.ask(list_services="*")
        check(resp.WhichOneof("message_response") == "list_services_response",
              "list_services answered")
        return [s.name for s in resp.list_services_response.service]

    def files(self, **kw):
        """FileDescriptorProtos answering a file_* request, requested file first."""
        resp = self.ask(**kw)
        if resp.WhichOneof("message_response") != "file_descriptor_response":
            raise AssertionError("%s: %s" % (kw, resp))
        return [descriptor_pb2.FileDescriptorProto.FromString(b)
                for b in resp.file_descriptor_response.file_descriptor_proto]

    def error_code(self, **kw):
        resp = self.ask(**kw)
        if resp.WhichOneof("message_response") != "error_response":
            raise AssertionError("%s: expected an error_response, got %s" % (kw, resp))
        return resp.error_response.error_code


def pool_of(fdps):
    """A descriptor pool from FileDescriptorProtos, adding each file after
    its imports; fails if an import is missing from the answer."""
    pool = descriptor_pool.DescriptorPool()
    left = {f.name: f for f in fdps}
    added = set()
    while left:
        ready = [n for n, f in left.items() if all(d in added for d in f.dependency)]
        if not ready:
            raise AssertionError("imports missing from the answer: %s" %
                                 {n: list(f.dependency) for n, f in left.items()})
        for n in ready:
            pool.Add(left.pop(n))
            added.add(n)
    return pool


def message_class(pool, desc):
    factory = message_factory.MessageFactory(pool)
    get = getattr(factory, "GetMessageClass", None) or factory.GetPrototype
    return get(desc)


def dynamic_call(channel, pool, service, method, **fields):
    """Calls service/method with classes built from pool only."""
    m = pool.FindServiceByName(service).methods_by_name[method]
    req_cls = message_class(pool, m.input_type)
    resp_cls = message_class(pool, m.output_type)
    call = channel.unary_unary("/%s/%s" % (service, method),
                               request_serializer=req_cls.SerializeToString,
                               response_deserializer=resp_cls.FromString)
    return call(req_cls(**fields), timeout=TIMEOUT)


def check_role(port, role, service):
    addr = "127.0.0.1:%d" % port
    # slow keeps HTTP/2's initial 64 KiB window (no BDP growth), so answers
    # that are not read back up into the server's send queue.
    with grpc.insecure_channel(addr) as ch, \
            grpc.insecure_channel(addr, options=[("grpc.http2.bdp_probe", 0)]) as slow:
        grpc.channel_ready_future(ch).result(timeout=TIMEOUT)
        for vname, pb, pb_grpc in VERSIONS:
            print("== %s, %s" % (role, vname))
            r = Reflector(ch, pb, pb_grpc)
            services = r.services()
            want = {service, "grpc.health.v1.Health"} | REFLECTION
            check(want <= set(services), "list_services has %s (got %s)" % (sorted(want), services))
            check(len(services) == len(set(services)), "each service listed once")

            # Every listed service resolves and builds (grpcurl describe).
            for s in services:
                pool = pool_of(r.files(file_containing_symbol=s))
                check(pool.FindServiceByName(s).full_name == s, "%s resolves and builds" % s)

            files = r.files(file_containing_symbol=service)
            check(files[0].name == ORCH_FILE, "%s is in %s" % (service, ORCH_FILE))
            for sym in (service + ".HealthCheck", "orchestrator.v1.HealthCheckResponse",
                        "orchestrator.v1.HealthCheckResponse.ServingStatus"):
                check(r.files(file_containing_symbol=sym)[0].name == ORCH_FILE,
                      "%s is in %s" % (sym, ORCH_FILE))
            health = r.files(file_containing_symbol="grpc.health.v1.Health")
            check(health[0].name == "grpc/health/v1/health.proto", "Health's file")

            # A real call decoded with descriptors from reflection only.
            pool = pool_of(files)
            resp = dynamic_call(ch, pool, service, "HealthCheck")
            check(resp.role == role, "dynamic HealthCheck answers role %r" % resp.role)
            st = resp.DESCRIPTOR.fields_by_name["status"].enum_type.values_by_number[resp.status]
            check(st.name == "SERVING", "dynamic HealthCheck status %s" % st.name)
            hpool = pool_of(health)
            hresp = dynamic_call(ch, hpool, "grpc.health.v1.Health", "Check")
            check(hresp.status == 1, "dynamic grpc.health.v1.Health/Check SERVING")

            check(r.files(file_by_filename=ORCH_FILE)[0].name == ORCH_FILE, "file_by_filename")
            check(r.error_code(file_by_filename="no/such.proto") == NOT_FOUND,
                  "unknown file: NOT_FOUND")
            check(r.error_code(file_containing_symbol="orchestrator.v1.NoSuch") == NOT_FOUND,
                  "unknown symbol: NOT_FOUND")
            check(r.error_code(file_containing_symbol=".orchestrator.v1.Scheduler") == NOT_FOUND,
                  "a leading dot is not a fully qualified name")
            check(r.error_code(file_containing_extension=pb.ExtensionRequest(
                containing_type="orchestrator.v1.HealthCheckRequest", extension_number=100))
                  == NOT_FOUND, "file_containing_extension: NOT_FOUND")
            ext = r.ask(all_extension_numbers_of_type="orchestrator.v1.HealthCheckRequest")
            check(ext.WhichOneof("message_response") == "all_extension_numbers_response"
                  and ext.all_extension_numbers_response.base_type_name ==
                  "orchestrator.v1.HealthCheckRequest"
                  and not ext.all_extension_numbers_response.extension_number,
                  "all_extension_numbers_of_type of a known message: none")
            check(r.error_code(all_extension_numbers_of_type="orchestrator.v1.NoSuch")
                  == NOT_FOUND, "all_extension_numbers_of_type of an unknown type: NOT_FOUND")

            # One stream, many requests pipelined, errors in between, read
            # late so the answers pass the send high-water mark (the server
            # pauses the call's receive side, and the rpc layer holds back
            # what still arrives, half-close included, until the answers
            # drain): all answered, in order, then the stream ends OK.
            reqs = []
            for i in range(1500):
                if i % 3 == 0:
                    reqs.append(pb.ServerReflectionRequest(host="h%d" % i,
                                                           file_containing_symbol=service))
                elif i % 3 == 1:
                    reqs.append(pb.ServerReflectionRequest(host="h%d" % i, list_services=""))
                else:
                    reqs.append(pb.ServerReflectionRequest(host="h%d" % i,
                                                           file_by_filename="x%d.proto" % i))
            resps = Reflector(slow, pb, pb_grpc).ask_many(reqs, lag=0.5)
            kinds = [x.WhichOneof("message_response") for x in resps]
            check(kinds == ["file_descriptor_response", "list_services_response",
                            "error_response"] * 500,
                  "1500 requests on one stream, answers read late, all answered in order")


def check_interop():
    with harness.Server([os.path.join(B, "interop_server"), "--port", "0"]) as srv, \
            grpc.insecure_channel("127.0.0.1:%d" % srv.port) as ch:
        grpc.channel_ready_future(ch).result(timeout=TIMEOUT)
        print("== interop_server")
        r = Reflector(ch, v1, v1_grpc)
        check("grpc.testing.TestService" in r.services(), "interop lists grpc.testing.TestService")
        files = r.files(file_containing_symbol="grpc.testing.TestService.UnaryCall")
        names = [f.name for f in files]
        check(names[0] == "grpc/testing/test.proto" and
              {"grpc/testing/empty.proto", "grpc/testing/messages.proto"} <= set(names[1:]),
              "test.proto comes with its imports: %s" % names)
        resp = dynamic_call(ch, pool_of(files), "grpc.testing.TestService", "UnaryCall",
                            response_size=7)
        check(len(resp.payload.body) == 7, "dynamic grpc.testing UnaryCall")


def main():
    data = harness.tempdir()
    with harness.Server([os.path.join(B, "scheduler"), "--listen", "127.0.0.1:0",
                         "--data-dir", data]) as sched:
        check_role(sched.port, "scheduler", "orchestrator.v1.Scheduler")
        try:
            gw = harness.Server([os.path.join(B, "gateway"), "--listen", "127.0.0.1:0",
                                 "--scheduler", "127.0.0.1:%d" % sched.port]).__enter__()
        except RuntimeError as e:
            print("note: no gateway role to test (%s)" % e)
            gw = None
        if gw:
            try:
                check_role(gw.port, "gateway", "orchestrator.v1.Gateway")
            finally:
                gw.__exit__(None, None, None)
    check_interop()
    print("PASS")


if __name__ == "__main__":
    main()
