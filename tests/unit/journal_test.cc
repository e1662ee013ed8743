// journal: a real journal file written by Journal::Append, tampered with the way an intruder would,
// and checked by VerifyJournal; restart continuity and the corrupt-tail quarantine.
#include "journal/journal.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace writ::journal {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

v1::Event Finding(int i) {
  v1::Event e;
  e.set_id(absl::StrCat("boot-", i));
  e.set_time("2026-01-02T03:04:05.000000006Z");
  e.set_kind("open");
  e.set_verdict("violation");
  e.mutable_agent()->set_spiffe_id("spiffe://example.org/agent/reviewer");
  e.mutable_agent()->set_task_id(absl::StrCat("task-", i));
  e.mutable_process()->set_pid(1000 + i);
  e.mutable_file()->set_path(absl::StrCat("/home/alice/.ssh/id_ed25519.", i));
  e.mutable_finding()->set_rule("coding-agent/files.deny[0]");
  e.mutable_finding()->set_reason("read of a secret");
  return e;
}

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/writ-journal-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/journal.jsonl";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void WriteJournal(int n) {
    auto j = Journal::Open({path_, {}});
    ASSERT_TRUE(j.ok()) << j.status();
    for (int i = 1; i <= n; i++) ASSERT_TRUE((*j)->Append(Finding(i)).ok());
  }
  std::vector<std::string> Lines() {
    std::ifstream in(path_);
    std::vector<std::string> v;
    for (std::string l; std::getline(in, l);) v.push_back(l);
    return v;
  }
  std::string Raw() {
    std::ifstream in(path_, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  void SetRaw(const std::string& s) {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out << s;
  }
  void SetLines(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& l : v) absl::StrAppend(&s, l, "\n");
    SetRaw(s);
  }
  VerifyResult Verify() {
    auto r = VerifyJournal(path_);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : VerifyResult{};
  }

  std::string dir_;
  std::string path_;
};

TEST_F(JournalTest, RecordFormatAndHashInputAreAsDocumented) {
  WriteJournal(2);
  auto lines = Lines();
  ASSERT_EQ(lines.size(), 2u);
  for (size_t i = 0; i < lines.size(); i++) {
    auto j = nlohmann::json::parse(lines[i]);  // every line is one JSON object
    EXPECT_EQ(j["seq"].get<uint64_t>(), i + 1);
    EXPECT_EQ(j["event"]["kind"], "open");
    EXPECT_EQ(j["event"]["agent"]["task_id"], absl::StrCat("task-", i + 1));
    auto rec = ParseRecord(lines[i]);
    ASSERT_TRUE(rec.ok()) << rec.status();
    // The documented hash input, computed independently of RecordHash.
    EXPECT_EQ(j["hash"], Sha256Hex(absl::StrCat(i + 1, "|", std::string(rec->prev), "|",
                                                std::string(rec->event))));
  }
  EXPECT_EQ(nlohmann::json::parse(lines[0])["prev"], std::string(kGenesisPrev));
  EXPECT_EQ(nlohmann::json::parse(lines[1])["prev"], Sha256Hex(lines[0]));
  // Known-answer check of the digest itself (FIPS 180-2 "abc").
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_F(JournalTest, IntactJournalVerifies) {
  WriteJournal(5);
  VerifyResult r = Verify();
  EXPECT_TRUE(r.ok) << r.line << ": " << r.reason;
  EXPECT_EQ(r.records, 5u);
}

TEST_F(JournalTest, EmptyJournalVerifiesWithZeroRecords) {
  WriteJournal(0);
  VerifyResult r = Verify();
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.records, 0u);
}

TEST_F(JournalTest, MissingFileIsAnErrorNotAVerdict) {
  auto r = VerifyJournal(dir_ + "/nope.jsonl");
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("nope.jsonl"));
}

TEST_F(JournalTest, EditedByteOfAnEventIsDetected) {
  WriteJournal(5);
  auto lines = Lines();
  size_t pos = lines[2].find("id_ed25519");
  ASSERT_NE(pos, std::string::npos);
  lines[2][pos] = 'X';  // still valid JSON: only the hash can tell
  SetLines(lines);
  VerifyResult r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.line, 3u);
  EXPECT_THAT(r.reason, StartsWith("edited"));
  EXPECT_EQ(r.records, 2u);
}

TEST_F(JournalTest, EditWithRecomputedHashBreaksTheNextLink) {
  WriteJournal(4);
  auto lines = Lines();
  auto rec = ParseRecord(lines[1]);
  ASSERT_TRUE(rec.ok());
  std::string event(rec->event);
  size_t pos = event.find("violation");
  ASSERT_NE(pos, std::string::npos);
  event.replace(pos, 9, "allowedxx");
  lines[1] = absl::StrCat("{\"seq\":2,\"prev\":\"", std::string(rec->prev), "\",\"event\":", event,
                          ",\"hash\":\"", RecordHash(2, rec->prev, event), "\"}");
  SetLines(lines);
  VerifyResult r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.line, 3u);
  EXPECT_THAT(r.reason, StartsWith("forged: prev does not match line 2"));
}

TEST_F(JournalTest, DeletedLineIsDetected) {
  WriteJournal(5);
  auto lines = Lines();
  lines.erase(lines.begin() + 2);
  SetLines(lines);
  VerifyResult r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.line, 3u);
  EXPECT_EQ(r.reason, "removed: record seq 3 is missing");
}

TEST_F(JournalTest, DeletedFirstLineIsDetected) {
  WriteJournal(3);
  auto lines = Lines();
  lines.erase(lines.begin());
  SetLines(lines);
  VerifyResult r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.line, 1u);
  EXPECT_THAT(r.reason, StartsWith("removed"));
}

TEST_F(JournalTest, SwappedLinesAreDetected) {
  WriteJournal(5);
  auto lines = Lines();
  std::swap(lines[1], lines[3]);
  SetLines(lines);
  VerifyResult r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.line, 2u);
  EXPECT_THAT(r.reason, StartsWith("reordered"));
  EXPECT_THAT(r.reason, HasSubstr("seq 2 is at line 4"));
}

TEST_F(JournalTest, TruncatedLastLineIsDetected) {
  WriteJournal(3);
  std::string raw = Raw();
  SetRaw(raw.substr(0, raw.size() - 10));
  VerifyResult r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.line, 3u);
  EXPECT_THAT(r.reason, StartsWith("truncated"));
  EXPECT_EQ(r.records, 2u);
}

TEST_F(JournalTest, ForgedAppendedLineWithOwnHashButWrongPrevIsDetected) {
  WriteJournal(3);
  auto lines = Lines();
  auto last = ParseRecord(lines[2]);
  ASSERT_TRUE(last.ok());
  std::string event = R"({"kind":"action","action":{"type":"approve","result":"ok"}})";
  // Wrong prev: the forger links to the last record's hash field instead of its line's digest.
  std::string prev(last->hash);
  lines.push_back(absl::StrCat("{\"seq\":4,\"prev\":\"", prev, "\",\"event\":", event,
                               ",\"hash\":\"", RecordHash(4, prev, event), "\"}"));
  SetLines(lines);
  VerifyResult r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.line, 4u);
  EXPECT_THAT(r.reason, StartsWith("forged"));
}

TEST_F(JournalTest, GarbageLineIsBadJson) {
  WriteJournal(2);
  auto lines = Lines();
  lines.insert(lines.begin() + 1, "not json at all");
  SetLines(lines);
  VerifyResult r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.line, 2u);
  EXPECT_THAT(r.reason, StartsWith("bad json"));

  lines[1] = R"({"seq":2,"other":1})";
  SetLines(lines);
  r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.reason, StartsWith("malformed record"));
}

TEST_F(JournalTest, ChainContinuesAcrossRestart) {
  WriteJournal(3);
  {
    auto j = Journal::Open({path_, {}});
    ASSERT_TRUE(j.ok()) << j.status();
    EXPECT_EQ((*j)->stats().last_seq, 3u);
    EXPECT_TRUE((*j)->quarantined_to().empty());
    ASSERT_TRUE((*j)->Append(Finding(4)).ok());
    EXPECT_EQ((*j)->stats().last_seq, 4u);
  }
  VerifyResult r = Verify();
  EXPECT_TRUE(r.ok) << r.line << ": " << r.reason;
  EXPECT_EQ(r.records, 4u);
}

TEST_F(JournalTest, SecondWriterIsRefused) {
  auto a = Journal::Open({path_, {}});
  ASSERT_TRUE(a.ok());
  auto b = Journal::Open({path_, {}});
  EXPECT_FALSE(b.ok());
  EXPECT_THAT(std::string(b.status().message()), HasSubstr("locked"));
}

TEST_F(JournalTest, CorruptTailIsQuarantinedNotOverwritten) {
  WriteJournal(3);
  std::string raw = Raw();
  std::string cut = raw.substr(0, raw.size() - 5);
  SetRaw(cut);
  auto j = Journal::Open({path_, {}});
  ASSERT_TRUE(j.ok()) << j.status();
  const std::string moved = (*j)->quarantined_to();
  ASSERT_FALSE(moved.empty());
  EXPECT_THAT((*j)->quarantine_reason(), StartsWith("truncated"));
  EXPECT_TRUE((*j)->stats().new_segment_after_corruption);
  // The evidence is byte for byte what was there.
  std::ifstream in(moved, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), cut);
  // The new segment starts a fresh, valid chain.
  ASSERT_TRUE((*j)->Append(Finding(9)).ok());
  j->reset();
  VerifyResult r = Verify();
  EXPECT_TRUE(r.ok) << r.reason;
  EXPECT_EQ(r.records, 1u);
  auto old = VerifyJournal(moved);
  ASSERT_TRUE(old.ok());
  EXPECT_FALSE(old->ok);
}

TEST_F(JournalTest, ForgedTailIsQuarantinedOnOpen) {
  WriteJournal(3);
  auto lines = Lines();
  std::string event = R"({"kind":"action"})";
  std::string prev(64, 'a');
  lines.push_back(absl::StrCat("{\"seq\":4,\"prev\":\"", prev, "\",\"event\":", event,
                               ",\"hash\":\"", RecordHash(4, prev, event), "\"}"));
  SetLines(lines);
  auto j = Journal::Open({path_, {}});
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_THAT((*j)->quarantine_reason(), StartsWith("forged"));
  EXPECT_EQ((*j)->stats().last_seq, 0u);
}

TEST_F(JournalTest, ConcurrentAppendsFormOneChain) {
  constexpr int kThreads = 4, kEach = 50;
  {
    auto j = Journal::Open({path_, *ParseFsyncPolicy("never")});
    ASSERT_TRUE(j.ok());
    std::vector<std::thread> ts;
    for (int t = 0; t < kThreads; t++) {
      ts.emplace_back([&, t] {
        for (int i = 0; i < kEach; i++) EXPECT_TRUE((*j)->Append(Finding(t * 1000 + i)).ok());
      });
    }
    for (auto& t : ts) t.join();
    EXPECT_EQ((*j)->stats().records, static_cast<uint64_t>(kThreads * kEach));
    EXPECT_EQ((*j)->stats().fsyncs, 0u);
  }
  VerifyResult r = Verify();
  EXPECT_TRUE(r.ok) << r.line << ": " << r.reason;
  EXPECT_EQ(r.records, static_cast<uint64_t>(kThreads * kEach));
}

TEST_F(JournalTest, BatchAppendSyncsOncePerBatchAndChainsInOrder) {
  {
    auto j = Journal::Open({path_, *ParseFsyncPolicy("always")});
    ASSERT_TRUE(j.ok());
    std::vector<v1::Event> batch;
    for (int i = 1; i <= 5; i++) batch.push_back(Finding(i));
    ASSERT_TRUE((*j)->Append(batch).ok());
    EXPECT_EQ((*j)->stats().records, 5u);
    EXPECT_EQ((*j)->stats().fsyncs, 1u);  // group commit: the batch, not each record
    ASSERT_TRUE((*j)->Append(Finding(6)).ok());
    EXPECT_EQ((*j)->stats().fsyncs, 2u);
    ASSERT_TRUE((*j)->Append(absl::Span<const v1::Event>()).ok());
    EXPECT_EQ((*j)->stats().fsyncs, 2u);  // nothing written, nothing to sync
  }
  VerifyResult r = Verify();
  EXPECT_TRUE(r.ok) << r.line << ": " << r.reason;
  EXPECT_EQ(r.records, 6u);
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 6u);
  for (int i = 0; i < 6; i++)
    EXPECT_THAT(lines[i], StartsWith(absl::StrCat("{\"seq\":", i + 1, ",")));
}

TEST_F(JournalTest, IntervalPolicySyncsAtOnceWhenIdleAndTheTailByItsDeadline) {
  auto j = Journal::Open({path_, *ParseFsyncPolicy("200ms")});
  ASSERT_TRUE(j.ok());
  EXPECT_EQ((*j)->UntilSyncDue(), absl::InfiniteDuration());  // nothing unsynced
  ASSERT_TRUE((*j)->Append(Finding(1)).ok());
  EXPECT_EQ((*j)->stats().fsyncs, 1u);  // the first record after a quiet spell: synced at once
  EXPECT_EQ((*j)->UntilSyncDue(), absl::InfiniteDuration());
  ASSERT_TRUE((*j)->Append(Finding(2)).ok());
  EXPECT_EQ((*j)->stats().fsyncs, 1u);  // inside the interval: left for the deadline
  absl::Duration due = (*j)->UntilSyncDue();
  EXPECT_GT(due, absl::ZeroDuration());
  EXPECT_LE(due, absl::Milliseconds(200));
  ASSERT_TRUE((*j)->SyncIfDue().ok());
  EXPECT_EQ((*j)->stats().fsyncs, 1u);  // not due yet
  absl::SleepFor(due);
  EXPECT_EQ((*j)->UntilSyncDue(), absl::ZeroDuration());
  ASSERT_TRUE((*j)->SyncIfDue().ok());
  EXPECT_EQ((*j)->stats().fsyncs, 2u);
  EXPECT_EQ((*j)->UntilSyncDue(), absl::InfiniteDuration());
}

TEST_F(JournalTest, FsyncPolicy) {
  EXPECT_EQ(ParseFsyncPolicy("always")->kind, FsyncPolicy::Kind::kAlways);
  EXPECT_EQ(ParseFsyncPolicy("never")->kind, FsyncPolicy::Kind::kNever);
  auto p = ParseFsyncPolicy("250ms");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->kind, FsyncPolicy::Kind::kInterval);
  EXPECT_EQ(p->interval, absl::Milliseconds(250));
  EXPECT_FALSE(ParseFsyncPolicy("sometimes").ok());
  EXPECT_FALSE(ParseFsyncPolicy("1h").ok());

  auto j = Journal::Open({path_, {}});
  ASSERT_TRUE(j.ok());
  ASSERT_TRUE((*j)->Append(Finding(1)).ok());
  ASSERT_TRUE((*j)->Append(Finding(2)).ok());
  EXPECT_EQ((*j)->stats().fsyncs, 2u);  // default: every record
}

TEST_F(JournalTest, WriteFailureIsCountedAndNotRecorded) {
  // /dev/full: every write fails with ENOSPC; the journal must count it and not advance.
  const std::string full = "/dev/full";
  if (!std::filesystem::exists(full)) GTEST_SKIP() << "no /dev/full on this host";
  std::filesystem::create_symlink(full, dir_ + "/full.jsonl");
  auto j = Journal::Open({dir_ + "/full.jsonl", *ParseFsyncPolicy("never")});
  ASSERT_TRUE(j.ok()) << j.status();
  absl::Status st = (*j)->Append(Finding(1));
  EXPECT_FALSE(st.ok());
  EXPECT_EQ((*j)->stats().write_errors, 1u);
  EXPECT_EQ((*j)->stats().records, 0u);
  EXPECT_EQ((*j)->stats().last_seq, 0u);
  // A device cannot be cut back, so the journal refuses further appends rather than chain onto an
  // unknown tail; each refusal is counted.
  EXPECT_FALSE((*j)->Append(Finding(2)).ok());
  EXPECT_EQ((*j)->stats().write_errors, 2u);
}

TEST(ShouldJournalTest, SelectsFindingsActionsApprovalsAndRevocations) {
  v1::Event e;
  e.set_kind("open");
  EXPECT_FALSE(ShouldJournal(e));
  e.set_verdict("allow");
  EXPECT_FALSE(ShouldJournal(e));
  e.set_verdict("violation");
  EXPECT_TRUE(ShouldJournal(e));
  e.set_verdict("needs_approval");
  EXPECT_TRUE(ShouldJournal(e));

  v1::Event a;
  a.set_kind("action");
  EXPECT_TRUE(ShouldJournal(a));
  a.set_kind("approval_request");
  EXPECT_TRUE(ShouldJournal(a));
  a.set_kind("secret");
  EXPECT_TRUE(ShouldJournal(a));
  a.set_kind("task_start");
  EXPECT_FALSE(ShouldJournal(a));

  v1::Event c;
  c.set_kind("credential");
  c.mutable_credential()->set_operation("issue");
  EXPECT_FALSE(ShouldJournal(c));
  for (const char* op : {"revoke", "revoke_failed", "revoke_queued"}) {
    c.mutable_credential()->set_operation(op);
    EXPECT_TRUE(ShouldJournal(c)) << op;
  }
}

}  // namespace
}  // namespace writ::journal
