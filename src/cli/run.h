// writ run: start a command as a task (docs/architecture.md, Data flow); with --mcp, relay and
// judge its MCP stdio (cli/mcp_gateway.h).
#pragma once

#include <string>

namespace writ::cli {

int CmdRun(const std::string& socket, int argc, char** argv);

}  // namespace writ::cli
