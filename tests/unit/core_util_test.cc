// util: RFC 3339 formatting (cached per second, so the cache itself is under test), durations.
#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <thread>
#include <vector>

#include "util/util.h"

namespace writ {
namespace {

std::string Fmt(int64_t ns) {
  std::string s;
  AppendRfc3339Nanos(ns, &s);
  return s;
}

TEST(Rfc3339, FormatsNanosecondsAndReusesTheSecondCacheCorrectly) {
  EXPECT_EQ(Fmt(0), "1970-01-01T00:00:00.000000000Z");
  EXPECT_EQ(Fmt(1795863419123456789LL), "2026-11-28T10:56:59.123456789Z");
  // Same second (cache hit), then the next second (cache miss), then back.
  EXPECT_EQ(Fmt(1795863419000000001LL), "2026-11-28T10:56:59.000000001Z");
  EXPECT_EQ(Fmt(1795863420999999999LL), "2026-11-28T10:57:00.999999999Z");
  EXPECT_EQ(Fmt(1795863419500000000LL), "2026-11-28T10:56:59.500000000Z");
  // Before the epoch the fraction is still positive.
  EXPECT_EQ(Fmt(-1), "1969-12-31T23:59:59.999999999Z");
  std::string two;
  AppendRfc3339Nanos(0, &two);
  AppendRfc3339Nanos(1, &two);
  EXPECT_EQ(two, "1970-01-01T00:00:00.000000000Z1970-01-01T00:00:00.000000001Z");
}

TEST(Duration, ParsesAndRefuses) {
  EXPECT_EQ(*ParseDuration("90s"), absl::Seconds(90));
  EXPECT_EQ(*ParseDuration("1h30m"), absl::Minutes(90));
  EXPECT_FALSE(ParseDuration("").ok());
  EXPECT_FALSE(ParseDuration("-5s").ok());
  EXPECT_FALSE(ParseDuration("inf").ok());
  EXPECT_FALSE(ParseDuration("5 parsecs").ok());
}

// getpwuid/getgrnam share one static buffer between threads (TSan caught two control-socket
// threads writing it at once): the reentrant lookups must agree with the system's database.
TEST(Lookup, UsersAndGroupsComeFromTheSystemDatabaseAndUnknownOnesAreNone) {
  std::optional<UserEntry> root = LookupUser(0);
  ASSERT_TRUE(root.has_value());
  EXPECT_EQ(root->name, "root");
  EXPECT_EQ(root->gid, 0u);
  EXPECT_FALSE(LookupUser(4294967294u - 7).has_value());  // no such uid
  std::optional<uint32_t> g = LookupGroup("root");
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(*g, 0u);
  EXPECT_FALSE(LookupGroup("writ-no-such-group").has_value());
  EXPECT_FALSE(LookupGroup("").has_value());
}

TEST(Lookup, ManyThreadsAtOnceEachGetTheirOwnAnswer) {
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&wrong] {
      for (int i = 0; i < 200; ++i) {
        std::optional<UserEntry> u = LookupUser(0);
        if (!u || u->name != "root") wrong.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace writ
