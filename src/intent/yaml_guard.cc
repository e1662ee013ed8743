#include "intent/yaml_guard.h"

#include "absl/strings/str_cat.h"

namespace writ::intent {

namespace {

bool IsAnchorChar(char c) {
  // YAML anchor names: any non-space, non-flow-indicator character.
  return c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != ',' && c != '[' && c != ']' &&
         c != '{' && c != '}' && c != '\0';
}

}  // namespace

// A lexer just precise enough to tell structure from content: quoted scalars ('..' with '' escapes,
// ".." with backslash escapes, possibly spanning lines) and comments are skipped; '&', '*', '[' and
// '{' count only where a YAML token can start (line start, after whitespace or a flow indicator), so
// globs like /usr/bin/* and paths with brackets are content. Block scalars (| and >) are treated as
// plain lines: their text may count as indentation, which only makes the bounds stricter for
// pathological inputs, never for real policies.
std::optional<std::string> CheckYamlBounds(absl::string_view text, const std::string& file,
                                           const YamlGuardLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return absl::StrCat(file, ":1: yaml: ", text.size(), " bytes; policy files are limited to ",
                        limits.max_bytes, " bytes");
  }
  int line = 1, flow = 0, anchors = 0, aliases = 0, documents = 0;
  bool line_start = true;  // only indentation and block indicators seen on this line so far
  int block = 0;           // columns of indentation + indicators on this line
  char prev = '\n';
  auto err = [&](const std::string& what) { return absl::StrCat(file, ":", line, ": yaml: ", what); };
  for (size_t i = 0; i < text.size(); i++) {
    const char c = text[i];
    if (c == '\n') {
      line++;
      line_start = true;
      block = 0;
      prev = c;
      continue;
    }
    const bool token_start = prev == ' ' || prev == '\t' || prev == '\n' || prev == '[' ||
                             prev == '{' || prev == ',' || prev == '\r';
    if (line_start) {
      if (c == ' ' || c == '\t') {
        block++;
      } else if ((c == '-' || c == '?' || c == ':') && i + 1 < text.size() &&
                 (text[i + 1] == ' ' || text[i + 1] == '\t')) {
        block++;  // "- - - x": each indicator opens one more level
      } else {
        line_start = false;
        if (c == '-' && text.substr(i, 3) == "---" && block == 0 && ++documents > limits.max_documents) {
          return err(absl::StrCat("more than ", limits.max_documents, " documents"));
        }
      }
      if (block > limits.max_block_depth) {
        return err(absl::StrCat("nested deeper than ", limits.max_block_depth,
                                " levels of indentation and block indicators"));
      }
      if (line_start) {
        prev = c;
        continue;
      }
    }
    if (c == '#' && token_start) {  // comment: to the end of the line
      while (i + 1 < text.size() && text[i + 1] != '\n') i++;
      prev = ' ';
      continue;
    }
    if ((c == '\'' || c == '"') && token_start) {
      // Quoted scalar: skip to its closing quote (newlines inside still count as lines).
      const char q = c;
      size_t j = i + 1;
      for (; j < text.size(); j++) {
        if (text[j] == '\n') line++;
        if (q == '"' && text[j] == '\\') {
          if (j + 1 < text.size() && text[j + 1] == '\n') line++;
          j++;
          continue;
        }
        if (text[j] == q) {
          if (q == '\'' && j + 1 < text.size() && text[j + 1] == '\'') {
            j++;
            continue;
          }
          break;
        }
      }
      i = j;  // an unterminated quote is yaml-cpp's error to report
      prev = q;
      continue;
    }
    if (c == '[' || c == '{') {
      if (token_start && ++flow > limits.max_flow_depth) {
        return err(absl::StrCat("flow collections ([ ] / { }) nested deeper than ",
                                limits.max_flow_depth));
      }
    } else if ((c == ']' || c == '}') && flow > 0) {
      flow--;
    } else if (c == '&' && token_start && i + 1 < text.size() && IsAnchorChar(text[i + 1])) {
      if (++anchors > limits.max_anchors) {
        return err(absl::StrCat("more than ", limits.max_anchors, " anchors (&name)"));
      }
    } else if (c == '*' && token_start && i + 1 < text.size() && IsAnchorChar(text[i + 1])) {
      if (++aliases > limits.max_aliases) {
        return err(absl::StrCat("more than ", limits.max_aliases,
                                " aliases (*name); each repeats a whole subtree"));
      }
    }
    prev = c;
  }
  return std::nullopt;
}

}  // namespace writ::intent
