// The attacker's tool for the Workload API: opens many FetchJWTBundles streams at once (each one a
// held server thread in an uncapped server), each on its own connection, waits until every one has
// either delivered its first bundle (open) or ended (refused, with its status code), prints
//   open=N refused=M resource_exhausted=K other=O
// and holds the open ones for --hold seconds before exiting 0.
//
//   workload_flood --socket PATH [--streams N] [--hold SECONDS]
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "writ/v1/workload.grpc.pb.h"

namespace api = ::SpiffeWorkloadAPI;

int main(int argc, char** argv) {
  std::string socket;
  int streams = 50;
  int hold = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--socket")) socket = argv[i + 1];
    if (!strcmp(argv[i], "--streams")) streams = atoi(argv[i + 1]);
    if (!strcmp(argv[i], "--hold")) hold = atoi(argv[i + 1]);
  }
  if (socket.empty() || streams <= 0) {
    fprintf(stderr, "usage: workload_flood --socket PATH [--streams N] [--hold SECONDS]\n");
    return 2;
  }
  struct Stream {
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<api::SpiffeWorkloadAPI::Stub> stub;
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReader<api::JWTBundlesResponse>> reader;
  };
  std::vector<std::unique_ptr<Stream>> all;
  for (int i = 0; i < streams; ++i) {
    auto s = std::make_unique<Stream>();
    grpc::ChannelArguments args;
    args.SetInt("grpc.use_local_subchannel_pool", 1);  // a connection of its own
    s->channel =
        grpc::CreateCustomChannel("unix:" + socket, grpc::InsecureChannelCredentials(), args);
    s->stub = api::SpiffeWorkloadAPI::NewStub(s->channel);
    s->ctx.AddMetadata("workload.spiffe.io", "true");
    s->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30 + hold));
    s->reader = s->stub->FetchJWTBundles(&s->ctx, api::JWTBundlesRequest());
    all.push_back(std::move(s));
  }
  int open = 0, exhausted = 0, other = 0;
  for (auto& s : all) {
    api::JWTBundlesResponse r;
    if (s->reader->Read(&r)) {
      open++;
      continue;
    }
    grpc::Status st = s->reader->Finish();
    if (st.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      exhausted++;
    } else {
      other++;
      fprintf(stderr, "stream ended with %d: %s\n", st.error_code(), st.error_message().c_str());
    }
  }
  printf("open=%d refused=%d resource_exhausted=%d other=%d\n", open, exhausted + other, exhausted,
         other);
  fflush(stdout);
  std::this_thread::sleep_for(std::chrono::seconds(hold));
  for (auto& s : all) s->ctx.TryCancel();
  return 0;
}
