# writ_bpf_object(NAME SOURCE): compile SOURCE with clang -target bpf (CO-RE, vmlinux.h from vmlinux/),
# generate NAME.skel.h with bpftool at build time (never checked in), and expose an interface library
# writ_bpf_<NAME> that carries the skeleton's include path. A function, not a macro: nothing leaks
# between calls.
find_program(WRIT_CLANG NAMES clang clang-14 REQUIRED)
find_program(WRIT_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

function(writ_bpf_object name source)
  set(arch_dir ${CMAKE_SOURCE_DIR}/vmlinux/x86_64)
  set(out_dir ${CMAKE_BINARY_DIR}/bpf)
  set(obj ${out_dir}/${name}.bpf.o)
  set(skel ${out_dir}/${name}.skel.h)
  file(GLOB bpf_headers CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/bpf/*.h ${CMAKE_SOURCE_DIR}/include/writ/abi/*.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
    COMMAND ${WRIT_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_x86 -D__BPF__
            -I${arch_dir} -I${CMAKE_SOURCE_DIR}/include -I${CMAKE_SOURCE_DIR}/bpf
            -Wall -Wno-unused-function -Werror
            -c ${source} -o ${obj}
    DEPENDS ${source} ${bpf_headers}
    COMMENT "clang -target bpf ${name}.bpf.c")
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${WRIT_BPFTOOL} gen skeleton ${obj} name ${name}_bpf > ${skel}
    DEPENDS ${obj}
    COMMENT "bpftool gen skeleton ${name}")
  add_custom_target(writ_bpf_${name}_gen DEPENDS ${skel})
  add_library(writ_bpf_${name} INTERFACE)
  add_dependencies(writ_bpf_${name} writ_bpf_${name}_gen)
  target_include_directories(writ_bpf_${name} INTERFACE ${out_dir})
  target_link_libraries(writ_bpf_${name} INTERFACE PkgConfig::LIBBPF)
endfunction()
