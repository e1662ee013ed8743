// Names a process passed to the kernel, resolved the way the kernel resolved them, from /proc.
//
// The exec tracepoint gives the script of a shebang exec only as the string passed to execve (the
// script's file is closed by then), and a failed open gives only the string passed to openat. Both
// may be relative to the process's cwd or, for execveat, to one of its descriptors
// ("/dev/fd/N/NAME", the kernel's spelling). These helpers turn such a string into an absolute path
// while the process still exists. They are exact for a process the kernel has stopped (an
// enforce-mode exec); for a running process cwd and the names may change in between
// (docs/threat-model.md).
#ifndef WRIT_IDENTITY_PROC_PATH_H_
#define WRIT_IDENTITY_PROC_PATH_H_

#include <sys/types.h>

#include <string>
#include <string_view>

namespace writ::identity {

// `name` made absolute for process `pid`: relative to /proc/PID/cwd, "/dev/fd/N[/REST]" through
// /proc/PID/fd/N, then lexically normalised. With `follow_symlinks`, symlinks are resolved too (in
// writd's view of the filesystem) when the file exists. Empty when `name` is empty or the process's
// cwd or descriptor cannot be read (it has exited).
std::string ResolveProcessPath(pid_t pid, std::string_view name, bool follow_symlinks);

// The first argument (after argv[0]) of process `pid` that begins with `prefix` and is longer: the
// full name when the kernel's copy was cut at `prefix`. Empty when there is none.
std::string ArgWithPrefix(pid_t pid, std::string_view prefix);

}  // namespace writ::identity

#endif  // WRIT_IDENTITY_PROC_PATH_H_
