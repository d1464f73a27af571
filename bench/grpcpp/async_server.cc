// grpcpp_async_server: bench.v1.Echo/Echo on libgrpc++'s asynchronous
// (completion-queue) API, the grpc++ side of the unary transport benchmark
// (bench/transport.sh). Two threads, each polling its own completion queue
// with calls posted ahead, as grpc++'s own async benchmark server does.
//
//   grpcpp_async_server --port N   (0: ephemeral, printed as "PORT n")
//
// Only Echo is served; Stream belongs to grpcpp_callback_server. SIGTERM
// ends the process.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "bench/v1/echo.grpc.pb.h"

namespace
{

constexpr int kThreads = 2;
constexpr int kPostedPerQueue = 128; // calls waiting for a request, per queue

using bench::v1::Echo;
using bench::v1::EchoMsg;

// One unary call: requested, answered, freed; each answered call posts its
// successor so kPostedPerQueue requests are always waiting.
class Call
{
      public:
	Call(Echo::AsyncService *svc, grpc::ServerCompletionQueue *cq)
	    : svc_(svc), cq_(cq), responder_(&ctx_)
	{
		svc_->RequestEcho(&ctx_, &req_, &responder_, cq_, cq_, this);
	}

	void Proceed(bool ok)
	{
		if (answered_ || !ok) {
			delete this;
			return;
		}
		new Call(svc_, cq_);
		answered_ = true;
		responder_.Finish(req_, grpc::Status::OK, this);
	}

      private:
	Echo::AsyncService *svc_;
	grpc::ServerCompletionQueue *cq_;
	grpc::ServerContext ctx_;
	EchoMsg req_;
	grpc::ServerAsyncResponseWriter<EchoMsg> responder_;
	bool answered_ = false;
};

void Serve(Echo::AsyncService *svc, grpc::ServerCompletionQueue *cq)
{
	for (int i = 0; i < kPostedPerQueue; i++)
		new Call(svc, cq);
	void *tag;
	bool ok;
	while (cq->Next(&tag, &ok))
		static_cast<Call *>(tag)->Proceed(ok);
}

} // namespace

int main(int argc, char **argv)
{
	int port = 0;
	for (int i = 1; i < argc; i++) {
		if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
			port = std::atoi(argv[++i]);
		} else {
			std::fprintf(stderr, "usage: grpcpp_async_server --port N\n");
			return 2;
		}
	}
	Echo::AsyncService svc;
	grpc::ServerBuilder b;
	int bound = 0;
	b.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials(),
	                   &bound);
	b.RegisterService(&svc);
	std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> cqs;
	for (int i = 0; i < kThreads; i++)
		cqs.push_back(b.AddCompletionQueue());
	std::unique_ptr<grpc::Server> server = b.BuildAndStart();
	if (!server || bound == 0) {
		std::fprintf(stderr, "grpcpp_async_server: cannot listen on port %d\n", port);
		return 1;
	}
	std::printf("PORT %d\n", bound);
	std::fflush(stdout);
	std::vector<std::thread> threads;
	for (auto &cq : cqs)
		threads.emplace_back(Serve, &svc, cq.get());
	for (auto &t : threads)
		t.join();
	return 0;
}
