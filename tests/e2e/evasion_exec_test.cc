// The agent as attacker: exec by any name, scripts, the loader, paths too deep.
// Fixture, attacker models and outcomes: evasion_fixture.h.
#include "evasion_fixture.h"

namespace writ::testlib::evasion {
namespace {

// ---- exec
// -----------------------------------------------------------------------------------------------

TEST_P(Evasion, ExecveatOfDeniedBinaryIsKilled) {
  const std::string touch = RealPath("/usr/bin/touch");
  CmdResult r = Run(absl::StrCat(helper_, " execveat ", touch, "; echo after"),
                    {"--intent", "e-exec", "--param", "exe=" + touch});
  ExpectExecKilled(r, Events(r), touch, lsm_, lineage_);
  if (lineage_) {
    EXPECT_THAT(r.out, Not(HasSubstr("after")));
  }
}

TEST_P(Evasion, FexecveOfDeniedBinaryIsKilled) {
  const std::string touch = RealPath("/usr/bin/touch");
  CmdResult r = Run(absl::StrCat(helper_, " fexecve ", touch, "; echo after"),
                    {"--intent", "e-exec", "--param", "exe=" + touch});
  ExpectExecKilled(r, Events(r), touch, lsm_, lineage_);
}

TEST_P(Evasion, CopiedDeniedBinaryUnderAnotherNameIsALimitOfPathRules) {
  // exec rules are over paths, not content: a copy elsewhere is a different exe. Pinned so that a
  // future content-hash rule flips this test.
  const std::string touch = RealPath("/usr/bin/touch");
  const std::string marker = work_ + "/copied-ran";
  CmdResult r = Run(absl::StrCat("cp ", touch, " ", work_, "/t2 && ", work_, "/t2 ", marker),
                    {"--intent", "e-exec", "--param", "exe=" + touch});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Exists(marker));
}

// A memfd has no path on any mount the agent sees: the kernel's walk of the exe gives "/" (the
// internal shm mount's root), which no exec.allow pattern matches, so the payload is killed before
// it runs (enforcement kernel-signal). The comm shows the memfd name. The task's kill response
// lands before the payload's own kill, so the shell that started it never runs its next command.
TEST_P(Evasion, MemfdExecIsNotInTheAllowListAndIsKilled) {
  const std::string marker = work_ + "/memfd-ran";
  CmdResult r =
      Run(absl::StrCat(helper_, " memfd-exec /usr/bin/touch touch ", marker, "; echo after"),
          {"--intent", "e-allow", "--param", "helper=" + helper_});
  EXPECT_FALSE(Exists(marker)) << "the memfd payload ran";
  EXPECT_EQ(r.exit_code, 137) << r.out << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("after")));
  auto evs = Events(r);
  json ev = Find(evs, [](const json& e) {
    return e.value("kind", "") == "exec" && e["process"].value("comm", "") == "memfd:payload";
  });
  ASSERT_FALSE(ev.is_null()) << "no exec of the memfd payload reported";
  EXPECT_EQ(ev["process"]["exe"], "/");
  EXPECT_EQ(ev["verdict"], "violation");
  EXPECT_EQ(ev["outcome"], "killed");
  EXPECT_EQ(ev["finding"]["rule"], "e-allow/exec.default");
}

// A shebang exec runs the interpreter (exe) on the script, which the kernel names only as the
// string passed to execve (process.filename). exec.deny and exec.approve rules judge the script
// too: in enforce mode the kernel stops the interpreter before its first instruction
// (WRIT_TASK_EXEC_SCRIPT), writd resolves the name against the stopped process's cwd, fds and
// symlinks (process.script), and a denied script is killed before it runs. By absolute path, by a
// relative path with "..", and through a symlink. On the LSM rung, bprm_check_security sees the
// script's own file in the first binfmt round and refuses it with EPERM: the exec reported is the
// script itself (exe = the script, resolved by the kernel: no name for writd to resolve), outcome
// prevented.
TEST_P(Evasion, ShebangExecOfADeniedScriptIsKilledBeforeItRuns) {
  std::filesystem::create_directories(work_ + "/sub");
  const std::string script = work_ + "/evil.sh";
  const std::string marker = work_ + "/script-ran";
  std::ofstream(script) << "#!/bin/sh\ntouch " << marker << "\n";
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  std::filesystem::create_symlink(script, work_ + "/sub/innocent.sh");
  for (const std::string& inv :
       {script, std::string("../sub/../evil.sh"), std::string("./innocent.sh")}) {
    SCOPED_TRACE(inv);
    CmdResult r = Run(absl::StrCat("cd ", work_, "/sub && ", inv, "; echo after"),
                      {"--intent", "e-exec", "--param", "exe=" + script});
    EXPECT_FALSE(Exists(marker)) << "the denied script ran";
    auto evs = Events(r);
    ExpectTaskKilled(r, evs);
    json ev = Find(evs, [&](const json& e) {
      return e.value("kind", "") == "exec" && (lsm_ ? e["process"].value("exe", "") == script
                                                    : e["process"].value("script", "") == script);
    });
    ASSERT_FALSE(ev.is_null()) << "no exec with process." << (lsm_ ? "exe" : "script") << " = "
                               << script;
    EXPECT_EQ(ev["process"]["filename"], inv);
    EXPECT_EQ(ev["process"]["exe"], lsm_ ? script : RealPath("/bin/sh"));
    EXPECT_EQ(ev["verdict"], "violation");
    EXPECT_EQ(ev["outcome"], lsm_ ? "prevented" : "killed");
    EXPECT_EQ(ev["enforcement"], lsm_ ? "lsm" : "kernel-signal");
    EXPECT_EQ(ev["finding"]["rule"], "e-exec/exec.deny[0]");
    if (!lsm_) {
      EXPECT_THAT(ev["finding"].value("reason", ""), HasSubstr(script + " (run by "));
    }
    std::filesystem::remove(marker);
  }
}

// The kernel's copy of the name passed to execve is cut at 255 bytes; writd takes the whole name
// from the stopped interpreter's argv, where binfmt_script put it. (LSM rung: the kernel's own walk
// of the script's file gives the whole path, and the exec is refused.)
TEST_P(Evasion, ShebangExecOfADeniedScriptWithALongPathIsKilled) {
  const std::string dir = work_ + "/" + std::string(200, 'd') + "/" + std::string(150, 'e');
  std::filesystem::create_directories(dir);
  const std::string script = dir + "/evil.sh";
  const std::string marker = work_ + "/long-ran";
  std::ofstream(script) << "#!/bin/sh\ntouch " << marker << "\n";
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  ASSERT_GT(script.size(), 255u);
  CmdResult r = Run(script + "; echo after", {"--intent", "e-exec", "--param", "exe=" + script});
  EXPECT_FALSE(Exists(marker)) << "the denied script ran";
  auto evs = Events(r);
  ExpectTaskKilled(r, evs);
  json ev = Find(evs, [&](const json& e) {
    return e.value("kind", "") == "exec" &&
           e["process"].value(lsm_ ? "exe" : "script", "") == script;
  });
  ASSERT_FALSE(ev.is_null()) << "no exec with the whole script path";
  EXPECT_EQ(ev["process"]["filename"].get<std::string>().size(), 255u);  // the kernel's copy
  EXPECT_EQ(ev["outcome"], lsm_ ? "prevented" : "killed");
}

// Monitor mode: the script runs (nothing is stopped) and the exec is reported with its script and
// the violation it would have been.
TEST_P(Evasion, ShebangExecOfADeniedScriptInMonitorModeIsReported) {
  const std::string script = work_ + "/evil-m.sh";
  const std::string marker = work_ + "/script-m-ran";
  std::ofstream(script) << "#!/bin/sh\ntouch " << marker << "\n";
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  CmdResult r = Run(script, {"--intent", "e-exec-monitor", "--param", "exe=" + script});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Exists(marker));
  auto evs = Events(r);
  json ev = Find(evs, [&](const json& e) {
    return e.value("kind", "") == "exec" && e["process"].value("script", "") == script;
  });
  ASSERT_FALSE(ev.is_null()) << "no exec with process.script = " << script;
  EXPECT_EQ(ev["verdict"], "violation");
  EXPECT_EQ(ev["outcome"], "would_deny");
}

// `sh script`: the exe is the shell and the script only an argument the shell opens and reads; no
// exec names it. exec.deny of the script path does not stop it: known limit (deny or allow-list
// interpreters; deny the script's path under files: so reading it is a violation). Pinned.
TEST_P(Evasion, InterpreterGivenADeniedScriptAsArgumentKnownLimit) {
  const std::string script = work_ + "/evil-arg.sh";
  const std::string marker = work_ + "/script-arg-ran";
  std::ofstream(script) << "touch " << marker << "\n";
  CmdResult r =
      Run(absl::StrCat("/bin/sh ", script), {"--intent", "e-exec", "--param", "exe=" + script});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Exists(marker)) << "sh SCRIPT: limit changed, update docs/threat-model.md";
  auto evs = Events(r);
  json ev = Find(evs, [&](const json& e) {
    return e.value("kind", "") == "exec" && e["process"].value("exe", "") == RealPath("/bin/sh");
  });
  ASSERT_FALSE(ev.is_null());
  EXPECT_FALSE(ev["process"].contains("script"));
  EXPECT_NE(ev.value("verdict", ""), "violation");
}

// The dynamic loader run as a program is judged by the program it loads, however it is named and
// whatever options come first: the kernel stops it before its first instruction, writd finds the
// program (process.loaded) and kills it. A program the allow list allows runs.
TEST_P(Evasion, DynamicLoaderRunAsAProgramIsJudgedByTheProgramItLoads) {
  const std::string ld = "/lib64/ld-linux-x86-64.so.2";
  const std::string real_ld = RealPath(ld);
  std::filesystem::copy_file(RealPath("/usr/bin/touch"), work_ + "/t2");
  std::filesystem::permissions(work_ + "/t2", std::filesystem::perms::owner_all);
  const std::string marker = work_ + "/loaded-ran";
  const std::vector<std::string> intent = {"--intent", "e-allow-lib", "--param",
                                           "helper=" + helper_};
  for (const std::string& inv :
       {ld + " ./t2", real_ld + " ./t2", ld + " --library-path /tmp --argv0 /usr/bin/git ./t2",
        ld + " --preload /usr/lib/x86_64-linux-gnu/libc.so.6 ./t2", ld + " --inhibit-cache ./t2"}) {
    SCOPED_TRACE(inv);
    CmdResult r = Run(absl::StrCat("cd ", work_, " && ", inv, " ", marker, "; echo after"), intent);
    EXPECT_FALSE(Exists(marker)) << "the loaded program ran";
    EXPECT_EQ(r.exit_code, 137) << r.out << r.err;
    EXPECT_THAT(r.out, Not(HasSubstr("after")));
    json ev = Find(Events(r), [&](const json& e) {
      return e.value("kind", "") == "exec" && e["process"].value("exe", "") == real_ld;
    });
    ASSERT_FALSE(ev.is_null()) << "no exec of the loader";
    EXPECT_EQ(ev["process"]["loaded"], work_ + "/t2");
    EXPECT_EQ(ev["verdict"], "violation");
    EXPECT_EQ(ev["outcome"], "killed");
    EXPECT_EQ(ev["enforcement"], "kernel-signal");
    EXPECT_EQ(ev["finding"]["rule"], "e-allow-lib/exec.default");
    EXPECT_THAT(ev["finding"].value("reason", ""), HasSubstr("(loaded by " + real_ld + ")"));
    std::filesystem::remove(marker);
  }
  // A bare name the loader would look up in library paths itself: never allowed.
  CmdResult bare = Run(absl::StrCat("cd ", work_, " && ", ld, " --library-path ", work_, " t2 ",
                                    marker, "; echo after"),
                       intent);
  EXPECT_FALSE(Exists(marker));
  EXPECT_EQ(bare.exit_code, 137) << bare.out << bare.err;
  json b = Find(Events(bare), [&](const json& e) {
    return e.value("kind", "") == "exec" && e["process"].value("exe", "") == real_ld;
  });
  ASSERT_FALSE(b.is_null());
  EXPECT_EQ(b["process"]["unresolved"], true);
  EXPECT_EQ(b["finding"]["rule"], "e-allow-lib/exec.unresolved");
  // An allowed program through the loader runs.
  CmdResult ok = Run(absl::StrCat(ld, " /usr/bin/touch ", marker), intent);
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_TRUE(Exists(marker));
}

// An exec whose path is deeper than the kernel's walk (48 components) is reported by its tail,
// which can be made to look like an allowed path (here: the repository the intent allows, below an
// attacker's directory). It is never allowed: stopped, judged unresolved, killed.
TEST_P(Evasion, ExecOfAPathTooDeepToResolveIsNeverAllowed) {
  const std::string repo = work_ + "/repo";
  std::vector<std::string> comps;
  for (absl::string_view c : absl::StrSplit(repo, '/', absl::SkipEmpty())) comps.emplace_back(c);
  const int fill = 48 - static_cast<int>(comps.size()) - 1;
  std::string chain;
  for (const auto& c : comps) absl::StrAppend(&chain, " ", c);
  for (int i = 0; i < fill; i++) absl::StrAppend(&chain, " d");
  const std::string marker = work_ + "/deep-ran";
  std::filesystem::create_directories(work_ + "/evil");
  CmdResult r =
      Run(absl::StrCat(helper_, " deep-exec ", work_, "/evil /usr/bin/touch ", marker, " 1", chain,
                       " payload; echo after"),
          {"--intent", "e-repo", "--param", "repo=" + repo, "--param", "helper=" + helper_});
  EXPECT_FALSE(Exists(marker)) << "the program at the end of the deep path ran";
  EXPECT_EQ(r.exit_code, 137) << r.out << r.err;
  json ev = Find(Events(r), [](const json& e) {
    return e.value("kind", "") == "exec" && e["process"].value("comm", "") == "payload";
  });
  ASSERT_FALSE(ev.is_null()) << "no exec of the payload";
  // What the kernel could walk: the repository-looking tail.
  EXPECT_EQ(ev["process"].value("exe", "").rfind(repo + "/d/", 0), 0u) << ev.dump();
  EXPECT_EQ(ev["process"]["unresolved"], true);
  EXPECT_EQ(ev["verdict"], "violation");
  EXPECT_EQ(ev["outcome"], "killed");
  EXPECT_EQ(ev["finding"]["rule"], "e-repo/exec.unresolved");
}

}  // namespace
}  // namespace writ::testlib::evasion
