// TerminalSafe: what `writ tail` (text) and `writ approvals` print of a task's paths and argv.
#include <sys/socket.h>
#include <unistd.h>

#include "api/framing.h"
#include "gtest/gtest.h"
#include "util/proto_utf8.h"
#include "util/terminal_text.h"
#include "writ/v1/api.pb.h"

namespace writ {
namespace {

TEST(TerminalSafe, PrintableTextAndValidUtf8PassUnchanged) {
  EXPECT_EQ(TerminalSafe("/home/alice/src/main.cc"), "/home/alice/src/main.cc");
  EXPECT_EQ(TerminalSafe("git push origin main --force"), "git push origin main --force");
  EXPECT_EQ(TerminalSafe("/tmp/r\xc3\xa9sum\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x94\x91"),
            "/tmp/r\xc3\xa9sum\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x94\x91");
  EXPECT_EQ(TerminalSafe(""), "");
}

TEST(TerminalSafe, ControlCharactersBecomeVisibleEscapes) {
  // A file name that would clear the screen and forge a second line of output.
  EXPECT_EQ(TerminalSafe("/tmp/\x1b[2J\x1b[Hx\r\n2026-01-01T00:00:00Z fake allow"),
            "/tmp/\\x1b[2J\\x1b[Hx\\r\\n2026-01-01T00:00:00Z fake allow");
  EXPECT_EQ(TerminalSafe(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(TerminalSafe("\t\x07\x08\x7f"), "\\t\\x07\\x08\\x7f");
  // The backslash itself: a name holding the text "\x1b" must not read like an escaped ESC.
  EXPECT_EQ(TerminalSafe("a\\x1b"), "a\\\\x1b");
}

TEST(TerminalSafe, C1AndLayoutControlsAreEscaped) {
  EXPECT_EQ(TerminalSafe("\xc2\x9b"
                         "31m"),
            "\\u009b31m");                                                   // CSI, the 8-bit ESC [
  EXPECT_EQ(TerminalSafe("\xc2\x85"), "\\u0085");                            // NEL
  EXPECT_EQ(TerminalSafe("\xc2\xa0"), "\xc2\xa0");                           // NBSP is text
  EXPECT_EQ(TerminalSafe("file\xe2\x80\xaegpj.exe"), "file\\u202egpj.exe");  // RLO
  EXPECT_EQ(TerminalSafe("\xe2\x81\xa6x\xe2\x81\xa9"), "\\u2066x\\u2069");
  EXPECT_EQ(TerminalSafe("a\xe2\x80\xa8"
                         "b"),
            "a\\u2028b");
}

TEST(TerminalSafe, InvalidUtf8IsEscapedByteByByte) {
  EXPECT_EQ(TerminalSafe("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(TerminalSafe("\x80"
                         "abc"),
            "\\x80abc");                                                // stray continuation byte
  EXPECT_EQ(TerminalSafe("\xc0\x9b"), "\\xc0\\x9b");                    // overlong ESC-ish
  EXPECT_EQ(TerminalSafe("\xe0\x80\x9b"), "\\xe0\\x80\\x9b");           // overlong
  EXPECT_EQ(TerminalSafe("\xed\xa0\x80"), "\\xed\\xa0\\x80");           // a surrogate
  EXPECT_EQ(TerminalSafe("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");  // above U+10FFFF
  EXPECT_EQ(TerminalSafe("ok\xe6\x97"), "ok\\xe6\\x97");                // cut at the end
  EXPECT_EQ(TerminalSafe("\xe6\x97"
                         "\n"),
            "\\xe6\\x97\\n");  // cut by a control
}

TEST(TerminalSafe, EveryByteValueOutputHasNoControlByte) {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  for (int b = 0; b < 256; ++b) all += std::string("\xc2") + static_cast<char>(b);
  const std::string out = TerminalSafe(all + all);
  for (unsigned char c : out) EXPECT_TRUE(c >= 0x20 && c != 0x7f) << static_cast<int>(c);
  // And what passes is valid UTF-8 with no C1: re-escaping changes only the backslashes.
  std::string again = TerminalSafe(out);
  size_t backslashes = 0;
  for (char c : out) backslashes += c == '\\';
  EXPECT_EQ(again.size(), out.size() + backslashes);
}

// Protobuf strings must be UTF-8: a task's "\xff" file name once made `writ tail` and `writ
// approvals` fail with "malformed control message", and would make a state record unreadable.
TEST(Utf8Safe, KeepsTextAndShowsOnlyTheBytesThatAreNotUtf8) {
  EXPECT_TRUE(IsUtf8("héllo \x01\n 日本"));
  EXPECT_FALSE(IsUtf8("a\xff"));
  EXPECT_FALSE(IsUtf8("\xc0\xaf"));
  EXPECT_EQ(Utf8Safe("héllo\n"), "héllo\n");
  EXPECT_EQ(Utf8Safe("bytes-\xff\xfe"), "bytes-\\xff\\xfe");
  EXPECT_EQ(Utf8Safe("\xe2\x80"), "\\xe2\\x80");  // a cut sequence
  EXPECT_TRUE(IsUtf8(Utf8Safe("\xed\xa0\x80\xf5")));
}

TEST(Utf8Safe, EveryStringOfAMessageAtAnyDepthCrossesTheControlSocket) {
  v1::Response r;
  v1::Event* ev = r.mutable_event();
  ev->mutable_process()->set_exe("/usr/bin/touch");
  ev->mutable_process()->add_args("touch");
  ev->mutable_process()->add_args("/tmp/bytes-\xff");
  ev->mutable_file()->set_path("/tmp/\xc3(");
  (*ev->mutable_task()->mutable_params())["repo\xfe"] = "/src/\xff";
  EXPECT_TRUE(HasInvalidUtf8(r));
  std::string raw;
  ASSERT_TRUE(r.SerializeToString(&raw));
  v1::Response parsed;
  EXPECT_FALSE(parsed.ParseFromString(raw)) << "proto3 refuses it: the bug this guards against";
  // Through the control socket's framing, as writd writes every response.
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  ASSERT_TRUE(api::WriteFrame(fds[1], r).ok());
  ASSERT_TRUE(api::ReadFrame(fds[0], &parsed, absl::Seconds(1)).ok());
  close(fds[0]);
  close(fds[1]);
  EXPECT_EQ(parsed.event().process().args(1), "/tmp/bytes-\\xff");
  EXPECT_EQ(parsed.event().file().path(), "/tmp/\\xc3(");
  EXPECT_EQ(parsed.event().task().params().at("repo\\xfe"), "/src/\\xff");
  EXPECT_EQ(parsed.event().process().exe(), "/usr/bin/touch");
  EXPECT_FALSE(HasInvalidUtf8(parsed));
  EXPECT_EQ(MakeUtf8Safe(&r), 4);  // args[1], the path, the map entry's key and its value
}

}  // namespace
}  // namespace writ
