# Install-layout check (CTest "install_layout", label e2e): cmake --install into a fresh prefix and
# assert the layout the systemd unit and docs/operations.md rely on, then load the installed config's
# policy directory with the installed CLI.
#   cmake -DBUILD_DIR=<build> -DSOURCE_DIR=<src> -P packaging/check_install.cmake
if(NOT BUILD_DIR OR NOT SOURCE_DIR)
  message(FATAL_ERROR "usage: cmake -DBUILD_DIR=... -DSOURCE_DIR=... -P check_install.cmake")
endif()
string(RANDOM LENGTH 8 _rnd)
set(P "/tmp/writ-install-${_rnd}")
file(REMOVE_RECURSE "${P}")
execute_process(COMMAND ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${P}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 120)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed (${rc}):\n${out}\n${err}")
endif()

set(failures "")
macro(expect cond msg)
  if(NOT (${cond}))
    string(APPEND failures "  ${msg}\n")
  endif()
endmacro()

foreach(f bin/writd bin/writ etc/writ/writd.yaml lib/systemd/system/writd.service
          share/writ/policies/coding-agent.yaml share/writ/policies/default.yaml)
  if(NOT EXISTS "${P}/${f}")
    string(APPEND failures "  missing ${f}\n")
  endif()
endforeach()
if(EXISTS "${P}/share/writ/policies/writd.yaml")
  string(APPEND failures "  share/writ/policies/writd.yaml: the daemon config must not be in the intent library\n")
endif()
file(GLOB src_policies "${SOURCE_DIR}/policies/*.yaml")
file(GLOB inst_policies "${P}/share/writ/policies/*.yaml")
list(LENGTH src_policies n_src)
list(LENGTH inst_policies n_inst)
math(EXPR n_expected "${n_src} - 1")
if(NOT n_inst EQUAL n_expected)
  string(APPEND failures "  ${n_inst} policies installed, expected ${n_expected}\n")
endif()

if(EXISTS "${P}/etc/writ/writd.yaml")
  file(READ "${P}/etc/writ/writd.yaml" cfg)
  string(REGEX MATCH "\npolicies: [^ \n#]+" pol "\n${cfg}")
  if(NOT pol STREQUAL "\npolicies: ${P}/share/writ/policies")
    string(APPEND failures "  etc/writ/writd.yaml: policies: is '${pol}', expected ${P}/share/writ/policies\n")
  endif()
  # Everything else is the source config unchanged.
  file(READ "${SOURCE_DIR}/policies/writd.yaml" src_cfg)
  string(REGEX REPLACE "\npolicies:[^\n]*" "" a "${src_cfg}")
  string(REGEX REPLACE "\npolicies:[^\n]*" "" b "${cfg}")
  if(NOT a STREQUAL b)
    string(APPEND failures "  etc/writ/writd.yaml differs from policies/writd.yaml beyond policies:\n")
  endif()
endif()

if(EXISTS "${P}/lib/systemd/system/writd.service")
  file(READ "${P}/lib/systemd/system/writd.service" unit)
  foreach(needle "ExecStart=/usr/bin/writd --config /etc/writ/writd.yaml" "Type=simple"
                 "Restart=on-failure" "RequiresMountsFor=/sys/fs/bpf /sys/fs/cgroup"
                 "StateDirectory=writ" "RuntimeDirectory=writ" "LogsDirectory=writ")
    string(FIND "${unit}" "${needle}" at)
    if(at LESS 0)
      string(APPEND failures "  writd.service lacks '${needle}'\n")
    endif()
  endforeach()
endif()

# The installed CLI accepts the installed intent library.
if(EXISTS "${P}/bin/writ")
  execute_process(COMMAND "${P}/bin/writ" policy check "${P}/share/writ/policies"
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 60)
  if(NOT rc EQUAL 0)
    string(APPEND failures "  installed writ policy check failed (${rc}): ${out}${err}\n")
  endif()
endif()

file(REMOVE_RECURSE "${P}")
if(failures)
  message(FATAL_ERROR "install layout under ${P}:\n${failures}")
endif()
message(STATUS "install layout OK")
