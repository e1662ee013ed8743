#include "intent/yaml_guard.h"

#include <sstream>

#include "absl/strings/str_cat.h"
#include "yaml-cpp/eventhandler.h"
#include "yaml-cpp/exceptions.h"
#include "yaml-cpp/parser.h"

namespace writ::intent {

namespace {

bool IsAnchorChar(char c) {
  // YAML anchor names: any non-space, non-flow-indicator character.
  return c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != ',' && c != '[' && c != ']' &&
         c != '{' && c != '}' && c != '\0';
}

// Does this line open a block scalar (its last token is | or >, with optional -/+/digit
// indicators)? Then the lines below it that are more indented are text, not structure.
bool OpensBlockScalar(absl::string_view line) {
  size_t end = line.size();
  // Drop a trailing comment (" #...") and spaces. Approximate (a '#' inside quotes ends it too),
  // which can only make the guard stricter on odd inputs.
  for (size_t i = 0; i + 1 < line.size(); i++) {
    if ((line[i] == ' ' || line[i] == '\t') && line[i + 1] == '#') {
      end = i;
      break;
    }
  }
  while (end > 0 && (line[end - 1] == ' ' || line[end - 1] == '\t' || line[end - 1] == '\r')) end--;
  size_t i = end;
  while (i > 0 &&
         (line[i - 1] == '-' || line[i - 1] == '+' || (line[i - 1] >= '0' && line[i - 1] <= '9')))
    i--;
  if (i == 0 || (line[i - 1] != '|' && line[i - 1] != '>')) return false;
  i--;
  return i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t';
}

int Indent(absl::string_view line) {
  int n = 0;
  while (n < static_cast<int>(line.size()) && line[n] == ' ') n++;
  return n;
}

// Counts parse events; throws Stop past the bound. Used for a dry run of yaml-cpp's own parser.
struct Stop {
  int line;
};
class CountingHandler : public YAML::EventHandler {
 public:
  explicit CountingHandler(int max_events) : max_(max_events) {}
  void OnDocumentStart(const YAML::Mark& m) override { Count(m); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& m, YAML::anchor_t) override { Count(m); }
  void OnAlias(const YAML::Mark& m, YAML::anchor_t) override { Count(m); }
  void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                const std::string&) override {
    Count(m);
  }
  void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    Count(m);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    Count(m);
  }
  void OnMapEnd() override {}
  int last_line() const { return last_line_; }

 private:
  void Count(const YAML::Mark& m) {
    last_line_ = m.line + 1;
    if (++events_ > max_) throw Stop{last_line_};
  }
  int max_, events_ = 0, last_line_ = 1;
};

}  // namespace

// A dry run of yaml-cpp's event parser with bounds: yaml-cpp 0.7's LoadAll can loop forever,
// producing empty documents, on input it neither accepts nor rejects (found by fuzz_policy: a lone
// ',' at a document's root). Whatever the next such input is, it shows up here as too many
// documents or events, and is refused instead of hanging the loader. Syntax errors are left to the
// real load.
static std::optional<std::string> CheckYamlProgress(absl::string_view text, const std::string& file,
                                                    const YamlGuardLimits& limits) {
  std::istringstream in{std::string(text)};
  CountingHandler h(limits.max_events);
  try {
    YAML::Parser parser(in);
    int docs = 0;
    while (parser.HandleNextDocument(h)) {
      if (++docs > limits.max_documents) {
        return absl::StrCat(file, ":", h.last_line(), ": yaml: more than ", limits.max_documents,
                            " documents (or a parser that makes no progress)");
      }
    }
  } catch (const Stop& s) {
    return absl::StrCat(file, ":", s.line, ": yaml: more than ", limits.max_events,
                        " nodes; policy files are small");
  } catch (const YAML::Exception&) {
    return std::nullopt;  // a syntax error: the real load reports it with its line
  }
  return std::nullopt;
}

// A lexer just precise enough to tell structure from content: quoted scalars ('..' with '' escapes,
// ".." with backslash escapes, possibly spanning lines) and comments are skipped; '&', '*', '[' and
// '{' count only where a YAML token can start (line start, after whitespace or a flow indicator),
// so globs like /usr/bin/* and paths with brackets are content. Block scalars (| and >) are treated
// as plain lines: their text may count as indentation, which only makes the bounds stricter for
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
  int scalar_parent = -1;  // >= 0: inside a block scalar opened on a line with this indentation
  bool node_done = false;  // a quoted scalar or a flow collection just ended outside any [ ] / { }
  char prev = '\n';
  auto err = [&](const std::string& what) {
    return absl::StrCat(file, ":", line, ": yaml: ", what);
  };
  auto line_at = [&](size_t from) {
    size_t e = text.find('\n', from);
    return text.substr(from, e == absl::string_view::npos ? text.size() - from : e - from);
  };
  for (size_t i = 0; i < text.size(); i++) {
    const char c = text[i];
    if (c == '\n' || i == 0) {
      if (c == '\n') {
        line++;
        line_start = true;
        block = 0;
        prev = c;
        node_done = false;
      }
      // Block scalar text (description: |) is skipped whole: quotes and brackets in prose are
      // content.
      const size_t from = c == '\n' ? i + 1 : 0;
      absl::string_view next = line_at(from);
      if (scalar_parent >= 0 && (Indent(next) > scalar_parent ||
                                 next.find_first_not_of(" \t\r") == absl::string_view::npos)) {
        if (from + next.size() >= text.size()) break;
        i = from + next.size() - 1;  // the loop's i++ lands on the '\n' that ends it
        continue;
      }
      scalar_parent = -1;
      if (OpensBlockScalar(next)) scalar_parent = Indent(next);
      if (c == '\n') continue;
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
        // yaml-cpp 0.7's LoadAll never returns (allocating) on a ',' opening a document's root; a
        // ',' cannot start a value outside [ ] / { } anyway (only a plain scalar's rare
        // continuation line).
        if (c == ',' && flow == 0) return err("',' outside [ ] / { } cannot start a value");
        if (c == '-' && text.substr(i, 3) == "---" && block == 0 &&
            ++documents > limits.max_documents) {
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
      node_done = flow == 0;
      continue;
    }
    if (node_done && c != ' ' && c != '\t' && c != '\r') {
      // yaml-cpp 0.7's LoadAll loops forever, allocating, on `"a",` or `[a],` at a document's root.
      // A ',' after a complete value is never valid outside a flow collection anyway.
      if (c == ',') return err("',' after a complete value outside [ ] / { }");
      node_done = false;
    }
    if (c == '[' || c == '{') {
      if (token_start && ++flow > limits.max_flow_depth) {
        return err(absl::StrCat("flow collections ([ ] / { }) nested deeper than ",
                                limits.max_flow_depth));
      }
    } else if ((c == ']' || c == '}') && flow > 0) {
      flow--;
      if (flow == 0) {
        prev = c;
        node_done = true;
        continue;
      }
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
  return CheckYamlProgress(text, file, limits);
}

}  // namespace writ::intent
