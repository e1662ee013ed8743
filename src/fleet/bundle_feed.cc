#include "fleet/bundle_feed.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "util/util.h"

namespace writ::fleet {
namespace {

constexpr char kKey[] = "bundle";

auto Log() {
  static auto l = Logger("fleet");
  return l;
}

bool Retryable(const absl::Status& st) {
  return absl::IsInternal(st) || absl::IsUnavailable(st) || absl::IsDeadlineExceeded(st);
}

}  // namespace

BundleFeed::BundleFeed(Link& link, BundleFeedOptions options, Apply apply)
    : link_(link), options_(std::move(options)), apply_(std::move(apply)) {}

BundleFeed::~BundleFeed() { Stop(); }

void BundleFeed::Start() {
  thread_ = std::thread([this] { Run(); });
}

void BundleFeed::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

BundleFeedStats BundleFeed::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

absl::Status BundleFeed::WithBucket(bool create, const std::function<absl::Status(kvStore*)>& fn) {
  return link_.Use([&](natsConnection*, jsCtx* js) -> absl::Status {
    kvStore* kv = nullptr;
    natsStatus s = js_KeyValue(&kv, js, options_.bucket.c_str());
    if (s == NATS_NOT_FOUND && create) {
      kvConfig cfg;
      kvConfig_Init(&cfg);
      cfg.Bucket = options_.bucket.c_str();
      cfg.History = 1;
      cfg.Replicas = std::clamp(options_.replicas, 1, 5);
      cfg.MaxValueSize = 1 << 20;
      s = js_CreateKeyValue(&kv, js, &cfg);
    }
    if (s == NATS_NOT_FOUND) {
      return absl::NotFoundError(absl::StrCat("no key-value bucket ", options_.bucket));
    }
    if (s != NATS_OK) {
      return NatsError(s, absl::StrCat("key-value bucket ", options_.bucket));
    }
    absl::Status st = fn(kv);
    kvStore_Destroy(kv);
    return st;
  });
}

absl::StatusOr<uint64_t> BundleFeed::Publish(const std::string& envelope) {
  if (!link_.connected()) {
    return absl::UnavailableError("the fleet link is down: the bundle was not published");
  }
  // A cluster that just lost a node elects new leaders for its streams (seconds): JetStream
  // requests time out meanwhile. Retried within a bound, then the caller is told.
  const absl::Time deadline = absl::Now() + options_.publish_timeout;
  for (;;) {
    uint64_t rev = 0;
    absl::Status st = WithBucket(/*create=*/true, [&](kvStore* kv) {
      natsStatus s =
          kvStore_Put(&rev, kv, kKey, envelope.data(), static_cast<int>(envelope.size()));
      return s == NATS_OK ? absl::OkStatus() : NatsError(s, "put the bundle");
    });
    if (st.ok()) return rev;
    if (absl::Now() >= deadline || !link_.connected()) return st;
    Log()->warn("publishing the policy bundle: {}; retrying", std::string(st.message()));
    absl::SleepFor(absl::Milliseconds(250));
  }
}

void BundleFeed::PollOnce() {
  std::string envelope;
  uint64_t rev = 0;
  // Creating the bucket when it is missing (idempotent: every host may race to it) makes the first
  // publish as quick as any later one: a replicated bucket takes seconds to create.
  absl::Status st = WithBucket(/*create=*/true, [&](kvStore* kv) {
    kvEntry* e = nullptr;
    natsStatus s = kvStore_Get(&e, kv, kKey);
    if (s == NATS_NOT_FOUND) return absl::OkStatus();  // no bundle published yet
    if (s != NATS_OK) return NatsError(s, "read the bundle");
    rev = kvEntry_Revision(e);
    envelope.assign(static_cast<const char*>(kvEntry_Value(e)),
                    static_cast<size_t>(kvEntry_ValueLen(e)));
    kvEntry_Destroy(e);
    return absl::OkStatus();
  });
  {
    absl::MutexLock lock(&mu_);
    if (!st.ok()) {
      ++stats_.read_errors;
      stats_.last_error = std::string(st.message());
      return;
    }
    if (rev == 0 || rev == stats_.revision) return;
  }
  absl::Status applied =
      apply_(envelope, absl::StrCat("the fleet (", options_.bucket, " revision ", rev, ")"));
  absl::MutexLock lock(&mu_);
  if (applied.ok()) {
    stats_.revision = rev;
    ++stats_.applied;
    return;
  }
  stats_.last_error = std::string(applied.message());
  if (Retryable(applied)) return;  // read again next poll
  stats_.revision = rev;           // refused for good: not again until a new revision
  ++stats_.refused;
}

void BundleFeed::Run() {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping), options_.poll)) return;
    }
    if (link_.connected()) PollOnce();
  }
}

}  // namespace writ::fleet
