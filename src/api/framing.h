// Length-prefixed protobuf frames over a stream socket (see include/writ/v1/api.proto).
#pragma once

#include <sys/types.h>
#include <sys/un.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/message_lite.h"

namespace writ::api {

inline constexpr uint32_t kMaxFrame = 1u << 20;  // 1 MiB: larger requests are refused, not read

absl::Status WriteFrame(int fd, const google::protobuf::MessageLite& msg);
// Writes an already serialized payload (tail streams encode once for all subscribers).
absl::Status WriteFrameBytes(int fd, const std::string& payload);
// Reads one frame. NotFound on clean EOF before a frame; DeadlineExceeded on timeout (0 = wait
// forever).
absl::Status ReadFrame(int fd, google::protobuf::MessageLite* msg, absl::Duration timeout);

// sockaddr_un for a socket path; InvalidArgument when the path does not fit sun_path.
absl::StatusOr<struct sockaddr_un> UnixSocketAddress(const std::string& path);

struct PeerCred {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};
absl::Status GetPeerCred(int fd, PeerCred* out);

}  // namespace writ::api
