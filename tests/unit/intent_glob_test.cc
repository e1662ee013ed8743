// Glob, CIDR, port, duration and hours syntax: the building blocks every rule relies on.
#include "gtest/gtest.h"
#include "intent/glob.h"
#include "intent/parse_util.h"

namespace writ::intent {
namespace {

bool M(const char* pattern, const char* path) {
  auto g = Glob::ParsePath(pattern);
  EXPECT_TRUE(g.ok()) << pattern << ": " << g.status();
  return g.ok() && g->Match(path);
}

TEST(GlobTest, LiteralIsExact) {
  EXPECT_TRUE(M("/etc/shadow", "/etc/shadow"));
  EXPECT_FALSE(M("/etc/shadow", "/etc/shadow2"));
  EXPECT_FALSE(M("/etc/shadow", "/etc"));
  EXPECT_EQ(Glob::ParsePath("/etc/shadow")->kind(), Glob::Kind::kExact);
}

TEST(GlobTest, StarIsOneSegment) {
  EXPECT_TRUE(M("/home/*/notes", "/home/alice/notes"));
  EXPECT_FALSE(M("/home/*/notes", "/home/alice/x/notes"));
  EXPECT_FALSE(M("/home/*/notes", "/home/notes"));
  EXPECT_TRUE(M("/var/log/*.log", "/var/log/syslog.log"));
  EXPECT_FALSE(M("/var/log/*.log", "/var/log/a/b.log"));
  EXPECT_TRUE(M("/a/*", "/a/b"));
  EXPECT_FALSE(M("/a/*", "/a/b/c"));
}

TEST(GlobTest, DoubleStarIsAnyDepthIncludingZero) {
  EXPECT_TRUE(M("/usr/**", "/usr"));
  EXPECT_TRUE(M("/usr/**", "/usr/lib/x86_64-linux-gnu/libc.so.6"));
  EXPECT_FALSE(M("/usr/**", "/usrx/lib"));
  EXPECT_EQ(Glob::ParsePath("/usr/**")->kind(), Glob::Kind::kPrefix);
  EXPECT_TRUE(M("**/.ssh/**", "/home/a/.ssh/id_rsa"));
  EXPECT_TRUE(M("**/.ssh/**", "/.ssh"));
  EXPECT_FALSE(M("**/.ssh/**", "/home/a/.sshx/id"));
  EXPECT_TRUE(M("**/.env", "/srv/app/.env"));
  EXPECT_TRUE(M("**/.env", "/.env"));
  EXPECT_FALSE(M("**/.env", "/srv/app/.env.example"));
  EXPECT_TRUE(M("/a/**/z", "/a/z"));
  EXPECT_TRUE(M("/a/**/z", "/a/b/c/z"));
  EXPECT_FALSE(M("/a/**/z", "/a/b/c/zz"));
  EXPECT_TRUE(M("/a/**/b/**/c", "/a/x/b/y/b/z/c"));
  EXPECT_TRUE(M("/**", "/"));
  EXPECT_TRUE(M("/**", "/anything/at/all"));
}

TEST(GlobTest, QuestionMarkIsOneCharNotSlash) {
  EXPECT_TRUE(M("/dev/tty?", "/dev/tty1"));
  EXPECT_FALSE(M("/dev/tty?", "/dev/tty12"));
  EXPECT_FALSE(M("/a?b", "/a/b"));
}

TEST(GlobTest, RelativeEventPathsNeverMatch) {
  EXPECT_FALSE(M("**/.env", ".env"));
  EXPECT_FALSE(M("/usr/**", "usr/lib"));
}

TEST(GlobTest, BadPatternsAreErrors) {
  for (const char* bad :
       {"", "relative/path", "*.so", "/a/***", "/a/**b", "/a//b", "/a/../b", "/a/", "/a/./b"}) {
    EXPECT_FALSE(Glob::ParsePath(bad).ok()) << "accepted: " << bad;
  }
  EXPECT_EQ(Glob::ParsePath("/a/***").status().message(),
            "'**' must be a whole path segment in \"/a/***\"");
}

// Exactly two shapes with a literal NAME are component rules (the kernel can match them per
// component); every other glob stays general-only.
TEST(GlobTest, ComponentRules) {
  using CR = Glob::ComponentRule;
  auto rule = [](const char* p) {
    auto g = Glob::ParsePath(p);
    EXPECT_TRUE(g.ok()) << p << ": " << g.status();
    return g.ok() ? std::make_pair(g->component_rule(), g->component())
                  : std::make_pair(CR::kNone, std::string());
  };
  EXPECT_EQ(rule("**/.env"), std::make_pair(CR::kLeaf, std::string(".env")));
  EXPECT_EQ(rule("**/.ssh/**"), std::make_pair(CR::kAnyComponent, std::string(".ssh")));
  EXPECT_EQ(rule("**/id_rsa.pub"), std::make_pair(CR::kLeaf, std::string("id_rsa.pub")));
  for (const char* p :
       {"**/id_*", "**/.en?", "**/*/**", "**", "**/**", "**/.git/config", "**/.ssh/*", "**/**/.env",
        "**/.ssh/**/x", "/home/**/.env", "/.env", "/.ssh/**", "/**"}) {
    EXPECT_EQ(rule(p).first, CR::kNone) << p;
  }
  // What the kernel will do for each shape is what Match says: the leaf rule matches the last
  // component only, the any-component rule the directory itself and everything below it.
  EXPECT_TRUE(M("**/.env", "/.env"));
  EXPECT_TRUE(M("**/.env", "/a/.env"));
  EXPECT_FALSE(M("**/.env", "/a/.env/x"));
  EXPECT_FALSE(M("**/.env", "/a/.env.example"));
  EXPECT_TRUE(M("**/.ssh/**", "/h/.ssh"));
  EXPECT_TRUE(M("**/.ssh/**", "/h/.ssh/id"));
  EXPECT_TRUE(M("**/.ssh/**", "/.ssh/a/b"));
  EXPECT_FALSE(M("**/.ssh/**", "/h/.sshx/id"));
  EXPECT_FALSE(M("**/.ssh/**", "/h/ssh"));
}

TEST(GlobTest, ArgsPatterns) {
  std::vector<Glob> push = {Glob::ParseArg("push"), Glob::ParseArg("**")};
  google::protobuf::RepeatedPtrField<std::string> argv;
  for (const char* a : {"git", "push", "origin", "main"}) *argv.Add() = a;
  EXPECT_TRUE(MatchArgs(push, argv));
  argv.Mutable(1)->assign("pull");
  EXPECT_FALSE(MatchArgs(push, argv));
  google::protobuf::RepeatedPtrField<std::string> just;
  for (const char* a : {"git", "push"}) *just.Add() = a;
  EXPECT_TRUE(MatchArgs(push, just));  // "**" also matches no arguments
  std::vector<Glob> url = {Glob::ParseArg("--url=https://*")};
  google::protobuf::RepeatedPtrField<std::string> a2;
  for (const char* a : {"x", "--url=https://a/b"}) *a2.Add() = a;
  EXPECT_TRUE(MatchArgs(url, a2));  // in args, * crosses '/'
}

TEST(ParseTest, Cidr) {
  auto c = ParseCidr("10.0.0.0/8");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->prefix_len, 8);
  EXPECT_EQ(ParseCidr("127.0.0.1")->prefix_len, 32);
  EXPECT_EQ(ParseCidr("::1")->prefix_len, 128);
  EXPECT_EQ(ParseCidr("fd00::/8")->prefix_len, 8);
  EXPECT_EQ(ParseCidr("10.0.0.1/8").status().message(),
            "bad CIDR \"10.0.0.1/8\": host bits set beyond /8");
  EXPECT_EQ(ParseCidr("10.0.0.0/33").status().message(),
            "bad CIDR \"10.0.0.0/33\": prefix length 33 > 32");
  EXPECT_FALSE(ParseCidr("300.1.1.1/32").ok());
  EXPECT_FALSE(ParseCidr("10.0.0.0/x").ok());
  EXPECT_FALSE(ParseCidr("localhost").ok());
}

TEST(ParseTest, Ports) {
  EXPECT_EQ(ParsePortRange("8080")->lo, 8080);
  EXPECT_EQ(ParsePortRange("9000-9100")->hi, 9100);
  EXPECT_EQ(ParsePortRange("9100-9000").status().message(),
            "bad port \"9100-9000\": range start above its end");
  EXPECT_EQ(ParsePortRange("70000").status().message(), "bad port \"70000\": ports are 1..65535");
  EXPECT_FALSE(ParsePortRange("0").ok());
  EXPECT_FALSE(ParsePortRange("http").ok());
  EXPECT_FALSE(ParsePortRange("1-2-3").ok());
}

TEST(ParseTest, DurationsAndHours) {
  EXPECT_EQ(*ParseDurationStrict("30m"), absl::Minutes(30));
  EXPECT_EQ(*ParseDurationStrict("1h30m"), absl::Minutes(90));
  EXPECT_EQ(*ParseDurationStrict("2d"), absl::Hours(48));
  EXPECT_FALSE(ParseDurationStrict("30 minutes").ok());
  EXPECT_FALSE(ParseDurationStrict("-5m").ok());
  EXPECT_FALSE(ParseDurationStrict("0s").ok());
  auto h = ParseHours("22:00-06:00 UTC");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->start_min, 22 * 60);
  EXPECT_EQ(h->end_min, 6 * 60);
  EXPECT_TRUE(ParseHours("00:00-24:00").ok());
  EXPECT_FALSE(ParseHours("9-17").ok());
  EXPECT_FALSE(ParseHours("09:00-25:00 UTC").ok());
  EXPECT_FALSE(ParseHours("09:00-09:00").ok());
  EXPECT_FALSE(ParseHours("09:00-17:00 Mars/Olympus").ok());
}

TEST(ParseTest, Params) {
  EXPECT_TRUE(CheckParamValue("path", "/home/a/repo").ok());
  EXPECT_FALSE(CheckParamValue("path", "repo").ok());
  EXPECT_FALSE(CheckParamValue("path", "/home/*").ok());  // would smuggle a glob into every rule
  EXPECT_FALSE(CheckParamValue("path", "/home/a/../b").ok());
  EXPECT_FALSE(CheckParamValue("path", "/home/a/").ok());
  EXPECT_TRUE(CheckParamValue("int", "-3").ok());
  EXPECT_FALSE(CheckParamValue("int", "3x").ok());
  EXPECT_TRUE(CheckParamValue("bool", "true").ok());
  EXPECT_FALSE(CheckParamValue("bool", "yes please").ok());
  bool unset = false;
  EXPECT_EQ(SubstituteParams("${repo}/**", {{"repo", "/src/x"}}, &unset), "/src/x/**");
  EXPECT_FALSE(unset);
  EXPECT_EQ(SubstituteParams("${repo}/**", {{"repo", "/"}}, &unset), "/**");
  SubstituteParams("${nope}/**", {}, &unset);
  EXPECT_TRUE(unset);
  EXPECT_FALSE(ParamRefs("${repo").ok());
  EXPECT_FALSE(ParamRefs("${9x}").ok());
}

}  // namespace
}  // namespace writ::intent
