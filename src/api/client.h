// Control-socket client used by the writ CLI.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "util/fd.h"
#include "writ/v1/api.pb.h"

namespace writ::api {

// --socket, else $WRIT_SOCKET, else /run/writ/writd.sock.
std::string SocketPath(const std::string& flag);

absl::StatusOr<Fd> Connect(const std::string& path);
// One request, one response. A non-zero response code becomes a Status with the server's message.
absl::StatusOr<v1::Response> Call(int fd, const v1::Request& req);

}  // namespace writ::api
