// Engine throughput: a realistic mixed stream (mostly opens under /usr and the repo, some execs and
// connects, a few violations) judged against the coding-agent intent. Target: >= 2M events/s/core.
//   BM_EvaluateMixed            intent::Evaluate alone, over decoded events
//   BM_DecodeAttributeEvaluate  the pipeline's per-record work before encoding: ring-buffer records in
//                               the kernel ABI -> Decoder::Decode into one reused Event -> attribution
//                               (task by cgroup id, process table by (tgid, start time)) -> Evaluate;
//                               reports allocs/event (operator new counted while it runs)
//   BM_EvaluateOne/*            per-kind costs
//   BM_DecodeAttributeEvaluate/redact:1
//                               the same plus secret redaction of every string of the event
//                               (creds::Redactor::RedactEvent, built-in rules), side by side with
//                               redact:0 in one run
//   BM_RedactString/*           one string through the redactor: the prefilter alone (clean strings),
//                               a secret found and marked; BM_Re2SetOnly/* the same strings through an
//                               RE2::Set of every pattern without the prefilter (why the prefilter)
#include <benchmark/benchmark.h>

#include <cstring>
#include <string>
#include <vector>

#include "creds/redact.h"
#include "decode/decoder.h"
#include "identity/task.h"
#include "absl/strings/str_cat.h"
#include "intent/intent.h"
#include "testlib/alloc_counter.h"
#include "writ/abi/events.h"
#include "re2/set.h"

namespace writ::intent
{
namespace
{

const char *kCodingAgent = R"(apiVersion: writ.dev/v1
kind: Intent
name: coding-agent
frameworks: [OWASP-ASI02, OWASP-ASI03, OWASP-ASI05, OWASP-NHI5, MAESTRO-L4, NIST-AI-RMF-MANAGE-2.4]
params:
  repo: {type: path, required: true}
exec:
  allow: [/usr/bin/git, /usr/bin/make, "/usr/lib/git-core/**"]
  deny: [/usr/bin/sudo]
files:
  read: ["${repo}/**", "/usr/**", "/lib/**", "/etc/ld.so.cache"]
  write: ["${repo}/**", "/tmp/**"]
  deny: [/etc/shadow, "**/.ssh/**", "**/.env"]
network:
  connect:
    allow: [{cidr: 127.0.0.1/32, ports: [8080]}, {host: localhost, ports: ["9000-9100"]}]
    deny: []
limits: {ttl: 30m, hours: "00:00-24:00 UTC", max_processes: 64}
approval:
  - {exec: /usr/bin/git, args: [push, "**"], timeout: 5m}
on_violation: [alert, kill, revoke]
)";

writ::v1::Event Open(const std::string &p, std::vector<const char *> flags)
{
	writ::v1::Event e;
	e.set_kind("open");
	e.mutable_file()->set_path(p);
	for (const char *f : flags)
		e.mutable_file()->add_flags(f);
	return e;
}
writ::v1::Event Exec(const std::string &exe, std::vector<const char *> args)
{
	writ::v1::Event e;
	e.set_kind("exec");
	e.mutable_process()->set_exe(exe);
	for (const char *a : args)
		e.mutable_process()->add_args(a);
	return e;
}
writ::v1::Event Connect(const std::string &ip, uint32_t port)
{
	writ::v1::Event e;
	e.set_kind("connect");
	e.mutable_network()->set_family("inet");
	e.mutable_network()->set_dst_ip(ip);
	e.mutable_network()->set_dst_port(port);
	return e;
}

// 100 events: 80 opens (45 /usr + /lib, 30 repo, 5 other incl. violations), 12 execs, 8 connects.
std::vector<writ::v1::Event> Stream()
{
	std::vector<writ::v1::Event> s;
	const char *usr[] = {"/usr/lib/x86_64-linux-gnu/libc.so.6",
			     "/usr/lib/x86_64-linux-gnu/libpcre2-8.so.0",
			     "/usr/share/locale/locale.alias",
			     "/lib/x86_64-linux-gnu/libz.so.1",
			     "/usr/lib/git-core/git",
			     "/usr/share/zoneinfo/UTC",
			     "/usr/include/c++/12/vector",
			     "/usr/lib/gcc/x86_64-linux-gnu/12/cc1plus",
			     "/usr/bin/make"};
	const char *repo[] = {"/home/dev/proj/src/engine/intent.cc",
			      "/home/dev/proj/.git/HEAD",
			      "/home/dev/proj/.git/objects/ab/cdef0123456789",
			      "/home/dev/proj/CMakeLists.txt",
			      "/home/dev/proj/build/obj/intent.o",
			      "/home/dev/proj/include/writ/v1/event.proto"};
	for (int i = 0; i < 45; ++i)
		s.push_back(Open(usr[i % 9], {"read"}));
	for (int i = 0; i < 30; ++i) {
		s.push_back(Open(repo[i % 6],
				 i % 3 == 0 ? std::vector<const char *>{"write", "create", "truncate"}
					    : std::vector<const char *>{"read"}));
	}
	s.push_back(Open("/etc/ld.so.cache", {"read"}));
	s.push_back(Open("/tmp/ccXyZ.s", {"write", "create"}));
	s.push_back(Open("/etc/passwd", {"read"}));		  // violation: default
	s.push_back(Open("/home/dev/.ssh/id_ed25519", {"read"})); // violation: deny glob
	s.push_back(Open("/home/dev/proj/.env", {"read"}));	  // violation: deny glob
	for (int i = 0; i < 12; ++i) {
		switch (i % 4) {
		case 0:
			s.push_back(Exec("/usr/bin/git", {"git", "status"}));
			break;
		case 1:
			s.push_back(Exec("/usr/bin/make", {"make", "-j2"}));
			break;
		case 2:
			s.push_back(
				Exec("/usr/lib/git-core/git-remote-https", {"git-remote-https", "origin"}));
			break;
		default:
			s.push_back(Exec("/usr/bin/git", {"git", "push", "origin", "main"}));
			break;
		}
	}
	for (int i = 0; i < 8; ++i)
		s.push_back(Connect(i % 4 == 3 ? "140.82.112.3" : "127.0.0.1", i % 2 ? 9050 : 8080));
	return s;
}

void BM_EvaluateMixed(benchmark::State &state)
{
	auto set = LoadPolicyText(kCodingAgent, "bench.yaml");
	if (!set.ok()) {
		state.SkipWithError(std::string(set.status().message()).c_str());
		return;
	}
	auto ci = Compile(set->intents()[0], {{"repo", "/home/dev/proj"}});
	if (!ci.ok()) {
		state.SkipWithError(std::string(ci.status().message()).c_str());
		return;
	}
	const auto stream = Stream();
	const EvalContext ctx{absl::Now(), 4};
	size_t i = 0;
	int64_t violations = 0;
	for (auto _ : state) {
		Verdict v = Evaluate(**ci, stream[i], ctx);
		violations += v.kind == Verdict::kViolation;
		benchmark::DoNotOptimize(v);
		if (++i == stream.size())
			i = 0;
	}
	state.SetItemsProcessed(state.iterations());
	state.counters["events/s"] =
		benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
	state.counters["violation_share"] =
		static_cast<double>(violations) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_EvaluateMixed);

// ---- decode + attribute + evaluate ------------------------------------------------------------------

constexpr uint64_t kCgroup = 4242;

// "/usr/lib/x" -> "x\0lib\0usr\0", the kernel's leaf-first component encoding.
std::string LeafFirst(const std::string &path)
{
	std::vector<std::string> parts;
	size_t i = 0;
	while (i < path.size()) {
		size_t j = path.find('/', i + 1);
		if (j == std::string::npos)
			j = path.size();
		if (j > i + 1)
			parts.push_back(path.substr(i + 1, j - i - 1));
		i = j;
	}
	std::string out;
	for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
		out += *it;
		out.push_back('\0');
	}
	return out;
}

void FillHdr(writ_event_hdr *h, uint16_t kind, uint32_t tgid, uint32_t size)
{
	h->abi_version = WRIT_ABI_VERSION;
	h->kind = kind;
	h->size = size;
	h->ktime_ns = 1'000'000'000;
	h->cgroup_id = kCgroup;
	h->start_time_ns = 1000 + tgid;
	h->task_slot = 1;
	h->pid = h->tgid = tgid;
	h->ppid = 1;
	std::strncpy(h->comm, "agent", sizeof(h->comm));
}

// The Stream() mix as raw records (8 processes), each in a buffer of its own emitted size.
std::vector<std::vector<uint8_t>> RawStream()
{
	std::vector<std::vector<uint8_t>> out;
	uint32_t tgid = 100;
	for (const writ::v1::Event &ev : Stream()) {
		tgid = 100 + (tgid + 1) % 8;
		std::vector<uint8_t> rec;
		if (ev.kind() == "open") {
			const std::string p = LeafFirst(ev.file().path());
			const bool write = ev.file().flags_size() > 0 && ev.file().flags(0) == "write";
			rec.resize(offsetof(writ_open_event, path) + p.size());
			auto *e = reinterpret_cast<writ_open_event *>(rec.data());
			FillHdr(&e->hdr, WRIT_EV_OPEN, tgid, static_cast<uint32_t>(rec.size()));
			e->result = 3;
			e->open_flags = write ? 01101 : 0; // O_WRONLY|O_CREAT|O_TRUNC, or O_RDONLY
			e->path_len = static_cast<uint32_t>(p.size());
			e->syscall_nr = 257;
			std::memcpy(e->path, p.data(), p.size());
		} else if (ev.kind() == "exec") {
			const std::string p = LeafFirst(ev.process().exe());
			std::string args;
			for (const auto &a : ev.process().args()) {
				args += a;
				args.push_back('\0');
			}
			rec.resize(offsetof(writ_exec_event, args) + args.size());
			auto *e = reinterpret_cast<writ_exec_event *>(rec.data());
			FillHdr(&e->hdr, WRIT_EV_EXEC, tgid, static_cast<uint32_t>(rec.size()));
			e->path_len = static_cast<uint32_t>(p.size());
			std::memcpy(e->path, p.data(), p.size());
			const std::string fn = ev.process().exe();
			std::memcpy(e->filename, fn.c_str(), fn.size() + 1);
			e->filename_len = static_cast<uint32_t>(fn.size() + 1);
			e->args_len = static_cast<uint32_t>(args.size());
			std::memcpy(e->args, args.data(), args.size());
		} else {
			rec.resize(sizeof(writ_connect_event));
			auto *e = reinterpret_cast<writ_connect_event *>(rec.data());
			FillHdr(&e->hdr, WRIT_EV_CONNECT, tgid, static_cast<uint32_t>(rec.size()));
			e->family = 2; // AF_INET
			e->port = static_cast<uint16_t>(ev.network().dst_port());
			const bool local = ev.network().dst_ip() == "127.0.0.1";
			const uint8_t ip[4] = {
				static_cast<uint8_t>(local ? 127 : 140), static_cast<uint8_t>(local ? 0 : 82),
				static_cast<uint8_t>(local ? 0 : 112), static_cast<uint8_t>(local ? 1 : 3)};
			std::memcpy(e->addr, ip, 4);
		}
		out.push_back(std::move(rec));
	}
	return out;
}

void BM_DecodeAttributeEvaluate(benchmark::State &state)
{
	const bool redact = state.range(0) != 0;
	auto redactor = creds::Redactor::Create(creds::BuiltinRedactionRules(), std::string(32, 'k'));
	if (!redactor.ok()) {
		state.SkipWithError(std::string(redactor.status().message()).c_str());
		return;
	}
	auto set = LoadPolicyText(kCodingAgent, "bench.yaml");
	auto ci = set.ok() ? Compile(set->intents()[0], {{"repo", "/home/dev/proj"}})
			   : absl::StatusOr<std::unique_ptr<CompiledIntent>>(set.status());
	if (!ci.ok()) {
		state.SkipWithError(std::string(ci.status().message()).c_str());
		return;
	}
	const auto raw = RawStream();
	identity::TaskRegistry registry(16);
	auto task = std::make_shared<identity::Task>();
	task->id = "t-bench";
	task->cgroup_id = kCgroup;
	task->slot = *registry.AllocateSlot();
	if (!registry.Add(task).ok()) {
		state.SkipWithError("registry");
		return;
	}
	identity::ProcessTable procs(1 << 16);
	decode::Decoder decoder(0, "bench");
	writ::v1::Event ev;
	decode::RecordInfo info;
	const EvalContext ctx{absl::Now(), 4};
	// The pipeline's attribution cache: the registry is asked again only when its generation moves.
	std::shared_ptr<identity::Task> cached;
	uint64_t cached_gen = ~0ull;
	size_t i = 0;
	int64_t violations = 0, failures = 0;
	uint64_t marks = 0;
	auto one = [&] {
		if (!decoder.Decode(raw[i].data(), raw[i].size(), &ev, &info).ok())
			failures++;
		if (registry.generation() != cached_gen || !cached || cached->cgroup_id != info.cgroup_id) {
			cached = registry.FindByCgroup(info.cgroup_id);
			cached_gen = registry.generation();
		}
		bool created = false;
		identity::ProcessInfo *pi = procs.Upsert(info.tgid, info.start_time_ns, &created);
		if (pi && info.kind == EventKind::kExec)
			pi->exe = ev.process().exe();
		if (pi && info.kind != EventKind::kExec)
			ev.mutable_process()->set_exe(pi->exe);
		Verdict v = Evaluate(**ci, info.kind, ev, ctx);
		violations += v.kind == Verdict::kViolation;
		benchmark::DoNotOptimize(v);
		// As the pipeline does after judging: every string of the event (the agent is redacted when
		// the task changes, not per event).
		if (redact)
			marks += (*redactor)->RedactEvent(&ev, {.agent = false}).marks;
		if (++i == raw.size())
			i = 0;
	};
	for (size_t k = 0; k < raw.size(); k++)
		one(); // warm: strings and tables grown once
	testlib::AllocCounter::Start();
	for (auto _ : state)
		one();
	const long allocs = testlib::AllocCounter::Stop();
	state.SetItemsProcessed(state.iterations());
	state.counters["events/s"] =
		benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
	state.counters["allocs/event"] =
		static_cast<double>(allocs) / static_cast<double>(state.iterations());
	state.counters["violation_share"] =
		static_cast<double>(violations) / static_cast<double>(state.iterations());
	if (failures)
		state.SkipWithError("a record failed to decode");
	if (marks)
		state.SkipWithError("the clean stream was redacted");
}
BENCHMARK(BM_DecodeAttributeEvaluate)->ArgName("redact")->Arg(0)->Arg(1);

// ---- one string through the redactor ----------------------------------------------------------------

const char *const kRedactStrings[] = {
	"/usr/lib/x86_64-linux-gnu/libc.so.6",				// clean path
	"/home/dev/proj/node_modules/js-tokens/index.js",		// a keyword, nothing to redact
	"spiffe://example.org/agent/coder",				// "://" without '@'
	"--index-url=https://pypi.org/simple/ --trusted-host pypi.org", // clean argument
	"ghp_0123456789abcdefghijABCDEFGHIJ012345",			// a token
	"DB_PASSWORD=hunter2hunter2",					// key=value
};

void BM_RedactString(benchmark::State &state)
{
	auto r = creds::Redactor::Create(creds::BuiltinRedactionRules(), std::string(32, 'k'));
	const std::string in = kRedactStrings[state.range(0)];
	std::string s;
	for (auto _ : state) {
		s = in; // a copy per iteration, as clean strings cost none in the pipeline: see BM_Copy
		benchmark::DoNotOptimize((*r)->RedactText(&s));
	}
	state.SetLabel(in.substr(0, 24));
}
BENCHMARK(BM_RedactString)->DenseRange(0, 5);

void BM_CopyOnly(benchmark::State &state)
{ // the copy BM_RedactString pays, to subtract
	const std::string in = kRedactStrings[state.range(0)];
	std::string s;
	for (auto _ : state) {
		s = in;
		benchmark::DoNotOptimize(s.data());
	}
}
BENCHMARK(BM_CopyOnly)->DenseRange(0, 5);

void BM_Re2SetOnly(benchmark::State &state)
{
	RE2::Options o;
	o.set_encoding(RE2::Options::EncodingLatin1);
	RE2::Set set(o, RE2::UNANCHORED);
	for (const auto &rule : creds::BuiltinRedactionRules().rules) {
		if (!rule.pattern.empty())
			set.Add(rule.pattern, nullptr);
	}
	set.Compile();
	const std::string in = kRedactStrings[state.range(0)];
	std::vector<int> hits;
	for (auto _ : state)
		benchmark::DoNotOptimize(set.Match(in, &hits));
	state.SetLabel(in.substr(0, 24));
}
BENCHMARK(BM_Re2SetOnly)->DenseRange(0, 5);

// Per-kind costs, to see which path dominates when the mix changes.
void BM_EvaluateOne(benchmark::State &state, writ::v1::Event ev)
{
	auto set = LoadPolicyText(kCodingAgent, "bench.yaml");
	auto ci = Compile(set->intents()[0], {{"repo", "/home/dev/proj"}});
	const EvalContext ctx{absl::Now(), 4};
	for (auto _ : state)
		benchmark::DoNotOptimize(Evaluate(**ci, ev, ctx));
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_EvaluateOne, open_usr_prefix, Open("/usr/lib/x86_64-linux-gnu/libc.so.6", {"read"}));
BENCHMARK_CAPTURE(BM_EvaluateOne, open_repo_write,
		  Open("/home/dev/proj/src/a/b/c.cc", {"write", "truncate"}));
BENCHMARK_CAPTURE(BM_EvaluateOne, open_default_deny, Open("/etc/passwd", {"read"}));
BENCHMARK_CAPTURE(BM_EvaluateOne, exec_allow, Exec("/usr/bin/git", {"git", "status"}));
BENCHMARK_CAPTURE(BM_EvaluateOne, exec_approval, Exec("/usr/bin/git", {"git", "push", "origin", "main"}));
BENCHMARK_CAPTURE(BM_EvaluateOne, connect_allow, Connect("127.0.0.1", 9050));

// The shipped intents' approval form: the subcommand found after the options (docs/policy.md).
void BM_EvaluateSubcommand(benchmark::State &state, writ::v1::Event ev)
{
	auto set = LoadPolicyText(absl::StrCat(kCodingAgent, R"(---
apiVersion: writ.dev/v1
kind: Intent
name: sub
exec:
  allow: [/usr/bin/git, "/usr/lib/git-core/**"]
approval:
  - {exec: "/usr/**/git", subcommand: push}
  - {exec: "/usr/**/git", subcommand: send-pack}
)"),
				  "bench.yaml");
	auto ci = Compile(set->intents()[1], {});
	const EvalContext ctx{absl::Now(), 4};
	for (auto _ : state)
		benchmark::DoNotOptimize(Evaluate(**ci, ev, ctx));
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_EvaluateSubcommand, exec_status, Exec("/usr/bin/git", {"git", "status"}));
BENCHMARK_CAPTURE(BM_EvaluateSubcommand, exec_push_after_options,
		  Exec("/usr/bin/git", {"git", "-C", "/home/dev/proj", "-c", "k=v", "push", "origin"}));

} // namespace
} // namespace writ::intent

BENCHMARK_MAIN();
