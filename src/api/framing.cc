#include "api/framing.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "google/protobuf/message.h"
#include "util/proto_utf8.h"
#include "util/status_macros.h"

namespace writ::api {
namespace {

absl::Status WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "write to control socket");
    }
    p += w;
    n -= w;
  }
  return absl::OkStatus();
}

// Reads exactly n bytes. eof_ok: a clean EOF before the first byte returns NotFound.
absl::Status ReadAll(int fd, char* p, size_t n, absl::Time deadline, bool eof_ok) {
  size_t got = 0;
  while (got < n) {
    if (deadline != absl::InfiniteFuture()) {
      int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
      if (ms <= 0) return absl::DeadlineExceededError("control socket read timed out");
      struct pollfd pfd = {fd, POLLIN, 0};
      int r = ::poll(&pfd, 1, static_cast<int>(ms));
      if (r < 0 && errno != EINTR) return ErrnoStatus(errno, "poll control socket");
      if (r <= 0) continue;
    }
    ssize_t r = ::read(fd, p + got, n - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read control socket");
    }
    if (r == 0) {
      if (got == 0 && eof_ok) return absl::NotFoundError("peer closed the connection");
      return absl::DataLossError("peer closed the connection mid-frame");
    }
    got += r;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteFrameBytes(int fd, const std::string& payload) {
  if (payload.size() > kMaxFrame) {
    return absl::ResourceExhaustedError(absl::StrCat("frame of ", payload.size(), " bytes"));
  }
  uint32_t len = static_cast<uint32_t>(payload.size());
  char hdr[4] = {static_cast<char>(len & 0xff), static_cast<char>((len >> 8) & 0xff),
                 static_cast<char>((len >> 16) & 0xff), static_cast<char>((len >> 24) & 0xff)};
  std::string buf;
  buf.reserve(4 + payload.size());
  buf.append(hdr, 4);
  buf.append(payload);
  return WriteAll(fd, buf.data(), buf.size());
}

absl::Status WriteFrame(int fd, const google::protobuf::MessageLite& msg) {
  std::string payload;
  // A string field that is not UTF-8 (a task's file name, an argument) would make the whole frame
  // unreadable to the receiver's parser: it goes as "\xHH" text instead (util/proto_utf8.h).
  const auto* full = dynamic_cast<const google::protobuf::Message*>(&msg);
  if (full && HasInvalidUtf8(*full)) {
    std::unique_ptr<google::protobuf::Message> copy(full->New());
    copy->CopyFrom(*full);
    MakeUtf8Safe(copy.get());
    if (!copy->SerializeToString(&payload)) return absl::InternalError("serialize control message");
    return WriteFrameBytes(fd, payload);
  }
  if (!msg.SerializeToString(&payload)) return absl::InternalError("serialize control message");
  return WriteFrameBytes(fd, payload);
}

absl::Status ReadFrame(int fd, google::protobuf::MessageLite* msg, absl::Duration timeout) {
  absl::Time deadline =
      timeout == absl::ZeroDuration() ? absl::InfiniteFuture() : absl::Now() + timeout;
  unsigned char hdr[4];
  RETURN_IF_ERROR(ReadAll(fd, reinterpret_cast<char*>(hdr), 4, deadline, true));
  uint32_t len = hdr[0] | (hdr[1] << 8) | (hdr[2] << 16) | (static_cast<uint32_t>(hdr[3]) << 24);
  if (len > kMaxFrame) {
    return absl::ResourceExhaustedError(
        absl::StrCat("control frame of ", len, " bytes exceeds the ", kMaxFrame, "-byte limit"));
  }
  std::string buf(len, '\0');
  RETURN_IF_ERROR(ReadAll(fd, buf.data(), len, deadline, false));
  if (!msg->ParseFromString(buf)) return absl::InvalidArgumentError("malformed control message");
  return absl::OkStatus();
}

absl::StatusOr<struct sockaddr_un> UnixSocketAddress(const std::string& path) {
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("socket path too long: ", path));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

absl::Status GetPeerCred(int fd, PeerCred* out) {
  struct ucred cred;
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return ErrnoStatus(errno, "SO_PEERCRED");
  }
  out->pid = cred.pid;
  out->uid = cred.uid;
  out->gid = cred.gid;
  return absl::OkStatus();
}

}  // namespace writ::api
