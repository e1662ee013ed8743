// Shared by the libFuzzer targets: quiet logging and a getaddrinfo that never leaves the machine.
#pragma once

namespace writ::fuzz {

// Raises spdlog's level so that a fuzzer's millions of rejected inputs do not flood the output.
void QuietLogs();

}  // namespace writ::fuzz
