#include "api/client.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "api/framing.h"
#include "util/status_macros.h"

namespace writ::api {

std::string SocketPath(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("WRIT_SOCKET"); env && *env) return env;
  return "/run/writ/writd.sock";
}

absl::StatusOr<Fd> Connect(const std::string& path) {
  ASSIGN_OR_RETURN(struct sockaddr_un addr, UnixSocketAddress(path));
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus(errno, "socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    if (err == ENOENT || err == ECONNREFUSED) {
      return absl::UnavailableError(absl::StrCat(
          "writd is not running (no listener at ", path,
          "): start it with scripts/run.sh, or point --socket / WRIT_SOCKET at its socket"));
    }
    if (err == EACCES) {
      return absl::PermissionDeniedError(
          absl::StrCat("permission denied on ", path, ": the control socket is root-only"));
    }
    return ErrnoStatus(err, absl::StrCat("connect ", path));
  }
  return fd;
}

absl::StatusOr<v1::Response> Call(int fd, const v1::Request& req) {
  RETURN_IF_ERROR(WriteFrame(fd, req));
  v1::Response resp;
  RETURN_IF_ERROR(ReadFrame(fd, &resp, absl::Seconds(30)));
  if (resp.code() != 0) {
    return absl::Status(static_cast<absl::StatusCode>(resp.code()), resp.error());
  }
  return resp;
}

}  // namespace writ::api
