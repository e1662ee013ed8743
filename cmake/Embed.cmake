# cmake -DIN=<file> -DOUT=<file.cc> -DNAMESPACE=<ns> -DSYMBOL=<name> -P Embed.cmake
# Writes a C++ source defining `extern const char SYMBOL[]` with IN's bytes (a raw string literal), so a
# data file in the tree (data/redaction.yaml) is compiled into the binary and needs no install.
file(READ "${IN}" content)
set(delim "writ_embed")
string(FIND "${content}" ")${delim}\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${IN} contains the raw-string delimiter )${delim}\"")
endif()
file(WRITE "${OUT}.tmp" "// Generated from ${IN} by cmake/Embed.cmake; do not edit.\nnamespace ${NAMESPACE} {\nextern const char ${SYMBOL}[];\nconst char ${SYMBOL}[] = R\"${delim}(${content})${delim}\";\n}  // namespace ${NAMESPACE}\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
