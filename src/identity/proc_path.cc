#include "identity/proc_path.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "util/fd.h"

namespace writ::identity {
namespace {

bool ReadLink(const std::string& link, std::string* out) {
  char buf[PATH_MAX];
  ssize_t n = readlink(link.c_str(), buf, sizeof(buf));
  if (n <= 0 || n >= static_cast<ssize_t>(sizeof(buf))) return false;
  out->assign(buf, static_cast<size_t>(n));
  return true;
}

// "/dev/fd/N" or "/dev/fd/N/REST": N and REST (empty for the first form).
bool SplitDevFd(std::string_view name, int* fd, std::string_view* rest) {
  constexpr std::string_view kPrefix = "/dev/fd/";
  if (name.substr(0, kPrefix.size()) != kPrefix) return false;
  name.remove_prefix(kPrefix.size());
  size_t slash = name.find('/');
  std::string_view digits = name.substr(0, slash);
  if (!absl::SimpleAtoi(absl::string_view(digits.data(), digits.size()), fd) || *fd < 0)
    return false;
  *rest = slash == std::string_view::npos ? std::string_view() : name.substr(slash + 1);
  return true;
}

}  // namespace

std::string ResolveProcessPath(pid_t pid, std::string_view name, bool follow_symlinks) {
  if (name.empty()) return "";
  std::string joined;
  int fd;
  std::string_view rest;
  if (SplitDevFd(name, &fd, &rest)) {
    if (!ReadLink(absl::StrCat("/proc/", pid, "/fd/", fd), &joined)) return "";
    if (!rest.empty()) joined.append("/").append(rest);
  } else if (name[0] == '/') {
    joined.assign(name);
  } else {
    if (!ReadLink(absl::StrCat("/proc/", pid, "/cwd"), &joined)) return "";
    joined.append("/").append(name);
  }
  std::string normal = std::filesystem::path(joined).lexically_normal().string();
  if (normal.size() > 1 && normal.back() == '/') normal.pop_back();
  if (follow_symlinks) {
    char buf[PATH_MAX];
    if (realpath(normal.c_str(), buf) != nullptr) return buf;
  }
  return normal;
}

std::string ArgWithPrefix(pid_t pid, std::string_view prefix) {
  Fd fd(open(absl::StrCat("/proc/", pid, "/cmdline").c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return "";
  std::string cmdline;
  char buf[4096];
  ssize_t n;
  // Bounded: the kernel caps argv at ARG_MAX-ish; so do we (1 MiB).
  while (cmdline.size() < (1u << 20) && (n = read(fd.get(), buf, sizeof(buf))) > 0) {
    cmdline.append(buf, static_cast<size_t>(n));
  }
  std::string_view all(cmdline);
  size_t pos = all.find('\0');  // skip argv[0]
  while (pos != std::string_view::npos && pos + 1 < all.size()) {
    size_t end = all.find('\0', pos + 1);
    std::string_view arg = all.substr(pos + 1, end == std::string_view::npos ? end : end - pos - 1);
    if (arg.size() > prefix.size() && arg.substr(0, prefix.size()) == prefix)
      return std::string(arg);
    pos = end;
  }
  return "";
}

}  // namespace writ::identity
