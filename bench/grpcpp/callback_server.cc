// grpcpp_callback_server: bench.v1.Echo on libgrpc++'s callback API, the
// grpc++ side of the streaming transport benchmark (bench/transport.sh).
// Stream writes count messages of size bytes, one write in flight at a
// time as the callback API allows, reusing one message; Echo answers with
// the request.
//
//   grpcpp_callback_server --port N   (0: ephemeral, printed as "PORT n")
//
// SIGTERM ends the process.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "bench/v1/echo.grpc.pb.h"

namespace
{

using bench::v1::Echo;
using bench::v1::EchoMsg;
using bench::v1::StreamReq;

constexpr int kMaxStreamSize = 1 << 20;

class Writer : public grpc::ServerWriteReactor<EchoMsg>
{
      public:
	explicit Writer(const StreamReq *req)
	{
		if (req->count() < 0 || req->size() < 0 || req->size() > kMaxStreamSize) {
			Finish(
			    grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad count or size"));
			return;
		}
		left_ = req->count();
		msg_.set_data(std::string(static_cast<size_t>(req->size()), 'x'));
		Next();
	}

	void OnWriteDone(bool ok) override
	{
		if (!ok) {
			Finish(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
			return;
		}
		Next();
	}

	void OnDone() override
	{
		delete this;
	}

      private:
	void Next()
	{
		if (left_ == 0) {
			Finish(grpc::Status::OK);
			return;
		}
		left_--;
		StartWrite(&msg_);
	}

	EchoMsg msg_;
	int32_t left_ = 0;
};

class Service final : public Echo::CallbackService
{
	grpc::ServerUnaryReactor *Echo(grpc::CallbackServerContext *ctx, const EchoMsg *req,
	                               EchoMsg *resp) override
	{
		*resp = *req;
		grpc::ServerUnaryReactor *r = ctx->DefaultReactor();
		r->Finish(grpc::Status::OK);
		return r;
	}

	grpc::ServerWriteReactor<EchoMsg> *Stream(grpc::CallbackServerContext *ctx,
	                                          const StreamReq *req) override
	{
		return new Writer(req);
	}
};

} // namespace

int main(int argc, char **argv)
{
	int port = 0;
	for (int i = 1; i < argc; i++) {
		if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
			port = std::atoi(argv[++i]);
		} else {
			std::fprintf(stderr, "usage: grpcpp_callback_server --port N\n");
			return 2;
		}
	}
	Service svc;
	grpc::ServerBuilder b;
	int bound = 0;
	b.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials(),
	                   &bound);
	b.RegisterService(&svc);
	std::unique_ptr<grpc::Server> server = b.BuildAndStart();
	if (!server || bound == 0) {
		std::fprintf(stderr, "grpcpp_callback_server: cannot listen on port %d\n", port);
		return 1;
	}
	std::printf("PORT %d\n", bound);
	std::fflush(stdout);
	server->Wait();
	return 0;
}
