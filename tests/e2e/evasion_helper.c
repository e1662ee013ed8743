/* Evasion attempts the shell cannot make (the evasion suite, tests/e2e/evasion_*_test.cc, runs this
 * inside a writ task). Each subcommand prints one line "<cmd> <result>" and exits 0 when the
 * attempt itself succeeded, 1 when the kernel refused it (the result names errno), 2 on usage
 * errors. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

extern char** environ;

static int report(const char* cmd, long rc) {
  if (rc < 0) {
    printf("%s error %s\n", cmd, strerror(errno));
    return 1;
  }
  printf("%s ok %ld\n", cmd, rc);
  return 0;
}

static int copy_file(const char* src, int dst) {
  int in = open(src, O_RDONLY | O_CLOEXEC);
  if (in < 0) return -1;
  char buf[65536];
  ssize_t n;
  while ((n = read(in, buf, sizeof(buf))) > 0) {
    if (write(dst, buf, (size_t)n) != n) return -1;
  }
  close(in);
  return 0;
}

/* One SQE through a raw io_uring (no liburing): the open/connect never enters the openat/connect
 * syscalls, only io_uring_enter. Returns the CQE result (fd or -errno), or -1000-errno on setup. */
static int uring_one(void (*prep)(struct io_uring_sqe*, void*), void* arg) {
  struct io_uring_params p;
  memset(&p, 0, sizeof(p));
  int fd = (int)syscall(__NR_io_uring_setup, 4, &p);
  if (fd < 0) return -1000 - errno;
  size_t sq_sz = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  size_t cq_sz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  char* sq =
      mmap(NULL, sq_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
  char* cq =
      mmap(NULL, cq_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
  struct io_uring_sqe* sqes =
      mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
           MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
  if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED) return -1000 - errno;
  unsigned* tail = (unsigned*)(sq + p.sq_off.tail);
  unsigned* mask = (unsigned*)(sq + p.sq_off.ring_mask);
  unsigned* array = (unsigned*)(sq + p.sq_off.array);
  unsigned idx = *tail & *mask;
  memset(&sqes[idx], 0, sizeof(sqes[idx]));
  prep(&sqes[idx], arg);
  array[idx] = idx;
  __atomic_store_n(tail, *tail + 1, __ATOMIC_RELEASE);
  if (syscall(__NR_io_uring_enter, fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
    return -1000 - errno;
  unsigned* chead = (unsigned*)(cq + p.cq_off.head);
  struct io_uring_cqe* cqes = (struct io_uring_cqe*)(cq + p.cq_off.cqes);
  unsigned cmask = *(unsigned*)(cq + p.cq_off.ring_mask);
  int res = cqes[*chead & cmask].res;
  __atomic_store_n(chead, *chead + 1, __ATOMIC_RELEASE);
  return res;
}

static void prep_open(struct io_uring_sqe* s, void* arg) {
  s->opcode = IORING_OP_OPENAT;
  s->fd = AT_FDCWD;
  s->addr = (unsigned long)arg;
  s->open_flags = O_RDONLY;
}

static struct sockaddr_in uring_sa;
static void prep_connect(struct io_uring_sqe* s, void* arg) {
  s->opcode = IORING_OP_CONNECT;
  s->fd = *(int*)arg;
  s->addr = (unsigned long)&uring_sa;
  s->off = sizeof(uring_sa);
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const char* cmd = argv[1];
  const char* a = argc > 2 ? argv[2] : "";
  if (!strcmp(cmd, "openat2")) { /* openat2 PATH: RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS */
    struct open_how how = {.flags = O_RDONLY, .resolve = RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV};
    return report(cmd, syscall(SYS_openat2, AT_FDCWD, a, &how, sizeof(how)));
  }
  if (!strcmp(cmd, "execveat")) { /* execveat PATH: exec through an O_PATH fd, AT_EMPTY_PATH */
    int fd = open(a, O_PATH | O_CLOEXEC);
    char* args[] = {(char*)a, NULL};
    syscall(SYS_execveat, fd, "", args, environ, AT_EMPTY_PATH);
    return report(cmd, -1);
  }
  if (!strcmp(cmd, "fexecve")) {
    int fd = open(a, O_RDONLY | O_CLOEXEC);
    char* args[] = {(char*)a, NULL};
    fexecve(fd, args, environ);
    return report(cmd, -1);
  }
  if (!strcmp(cmd, "memfd-exec")) { /* memfd-exec SRC ARGS...: run a copy of SRC from memory */
    int fd = memfd_create("payload", MFD_CLOEXEC);
    if (fd < 0 || copy_file(a, fd) != 0) return report(cmd, -1);
    fexecve(fd, argv + 2, environ);
    return report(cmd, -1);
  }
  if (!strcmp(cmd, "comm-open")) { /* comm-open NAME PATH */
    prctl(PR_SET_NAME, a, 0, 0, 0);
    return report(cmd, open(argv[3], O_RDONLY));
  }
  if (!strcmp(cmd, "uring-open")) {
    int r = uring_one(prep_open, (void*)a);
    if (r < 0) errno = r <= -1000 ? -(r + 1000) : -r;
    return report(cmd, r < 0 ? -1 : r);
  }
  if (!strcmp(cmd, "uring-connect")) { /* uring-connect PORT (127.0.0.1) */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    uring_sa.sin_family = AF_INET;
    uring_sa.sin_port = htons((unsigned short)atoi(a));
    uring_sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int r = uring_one(prep_connect, &s);
    if (r < 0) errno = r <= -1000 ? -(r + 1000) : -r;
    return report(cmd, r < 0 ? -1 : r);
  }
  if (!strcmp(cmd, "bpf")) { /* a tiny array map: a task with CAP_BPF can load its own programs */
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    return report(cmd, syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof(attr)));
  }
  if (!strcmp(cmd, "kill")) { /* kill PID SIG: kill(2) as an agent would call it */
    return report(cmd, syscall(SYS_kill, (pid_t)atoi(a), argc > 3 ? atoi(argv[3]) : SIGKILL));
  }
  if (!strcmp(cmd, "tkill")) { /* tkill TID SIG: one thread of a process */
    return report(cmd, syscall(SYS_tkill, (pid_t)atoi(a), argc > 3 ? atoi(argv[3]) : SIGKILL));
  }
  if (!strcmp(cmd,
              "ptrace")) { /* ptrace PID: PTRACE_SEIZE (no SIGSTOP to the target if it works) */
    return report(cmd, ptrace(PTRACE_SEIZE, (pid_t)atoi(a), 0, 0));
  }
  if (!strcmp(cmd, "pidfd")) { /* pidfd PID: a pidfd is a handle to signal (pidfd_send_signal) */
    return report(cmd, syscall(SYS_pidfd_open, (pid_t)atoi(a), 0));
  }
  if (!strcmp(cmd, "unshare-open")) { /* unshare-open PATH: new mount+net namespaces, then open */
    /* An unprivileged caller gets them inside a user namespace of its own (`unshare -Urmn`). */
    if (unshare(CLONE_NEWNS | CLONE_NEWNET) != 0 &&
        (errno != EPERM || unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET) != 0)) {
      return report(cmd, -1);
    }
    return report(cmd, open(a, O_RDONLY));
  }
  if (!strcmp(cmd, "longpath")) { /* longpath DIR: open a file > 4096 bytes below DIR */
    if (chdir(a) != 0) return report(cmd, -1);
    char comp[201];
    memset(comp, 'd', 200);
    comp[200] = 0;
    for (int i = 0; i < 25; i++) { /* 25 * 201 = 5025 bytes of path below DIR */
      mkdir(comp, 0755);
      if (chdir(comp) != 0) return report(cmd, -1);
    }
    return report(cmd, open("leaf", O_WRONLY | O_CREAT, 0644));
  }
  if (!strcmp(
          cmd,
          "open-by-handle")) { /* open-by-handle PATH: name_to_handle_at, then open it, read it */
    struct {
      struct file_handle fh;
      unsigned char bytes[MAX_HANDLE_SZ];
    } h;
    int mount_id, mfd;
    h.fh.handle_bytes = MAX_HANDLE_SZ;
    if (name_to_handle_at(AT_FDCWD, a, &h.fh, &mount_id, 0) != 0)
      return report("name_to_handle_at", -1);
    mfd = open("/", O_RDONLY | O_DIRECTORY);
    if (argc > 3) mfd = open(argv[3], O_RDONLY | O_DIRECTORY); /* a directory on the file's mount */
    int fd = open_by_handle_at(mfd, &h.fh, O_RDONLY);
    if (fd >= 0) {
      char buf[256] = {0};
      ssize_t n = read(fd, buf, sizeof(buf) - 1);
      printf("read %zd %s\n", n, buf);
    }
    return report(cmd, fd);
  }
  if (!strcmp(cmd, "udp-send")) { /* udp-send IP PORT: sendto() without connect(), v4 or v6 */
    int v6 = strchr(a, ':') != NULL;
    int s = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof(ss));
    if (v6) {
      struct sockaddr_in6* s6 = (struct sockaddr_in6*)&ss;
      s6->sin6_family = AF_INET6;
      s6->sin6_port = htons((unsigned short)atoi(argv[3]));
      inet_pton(AF_INET6, a, &s6->sin6_addr);
      len = sizeof(*s6);
    } else {
      struct sockaddr_in* s4 = (struct sockaddr_in*)&ss;
      s4->sin_family = AF_INET;
      s4->sin_port = htons((unsigned short)atoi(argv[3]));
      inet_pton(AF_INET, a, &s4->sin_addr);
      len = sizeof(*s4);
    }
    int count = argc > 4 ? atoi(argv[4]) : 1; /* a flood: the same datagram COUNT times */
    long rc = 0;
    int refused = 0;
    for (int i = 0; i < count; i++) {
      rc = sendto(s, "x", 1, 0, (struct sockaddr*)&ss, len);
      if (rc < 0) refused++;
    }
    if (count > 1) printf("refused %d of %d\n", refused, count);
    return report(cmd, rc);
  }
  if (!strcmp(
          cmd,
          "unix-connect")) { /* unix-connect NAME: connect(2) a stream socket; @NAME: abstract */
    struct sockaddr_un un;
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    socklen_t len = sizeof(un);
    if (a[0] == '@') {
      memcpy(un.sun_path + 1, a + 1, strnlen(a + 1, sizeof(un.sun_path) - 1));
      len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
                        strnlen(a + 1, sizeof(un.sun_path) - 1));
    } else {
      strncpy(un.sun_path, a, sizeof(un.sun_path) - 1);
    }
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    return report(cmd, connect(s, (struct sockaddr*)&un, len));
  }
  if (!strcmp(cmd, "unix-send")) { /* unix-send NAME: a datagram to a unix name without connect() */
    struct sockaddr_un un;
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    strncpy(un.sun_path, a, sizeof(un.sun_path) - 1);
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    return report(cmd, sendto(s, "x", 1, 0, (struct sockaddr*)&un, sizeof(un)));
  }
  if (!strcmp(cmd, "setown")) { /* setown PID [ex|ioctl]: make PID own a pipe's SIGIO (SIGKILL),
                                   then write */
    int p[2];
    if (pipe(p) != 0) return report(cmd, -1);
    pid_t pid = (pid_t)atoi(a);
    const char* how = argc > 3 ? argv[3] : "fcntl";
    long rc;
    if (!strcmp(how, "ex")) {
      struct f_owner_ex own = {F_OWNER_PID, pid};
      rc = fcntl(p[0], F_SETOWN_EX, &own);
    } else if (!strcmp(how, "ioctl")) {
      rc = ioctl(p[0], FIOSETOWN, &pid);
    } else {
      rc = fcntl(p[0], F_SETOWN, pid);
    }
    fcntl(p[0], F_SETSIG, SIGKILL);
    fcntl(p[0], F_SETFL, O_ASYNC | O_NONBLOCK);
    (void)!write(p[1], "x", 1);
    return report(cmd, rc);
  }
  if (!strcmp(cmd, "mem-open")) { /* mem-open PID: /proc/PID/mem for writing (another's memory) */
    char path[64];
    snprintf(path, sizeof(path), "/proc/%s/mem", a);
    return report(cmd, open(path, O_RDWR | O_CLOEXEC));
  }
  if (!strcmp(cmd, "setpgid")) { /* setpgid PGID: join a process group */
    return report(cmd, setpgid(0, (pid_t)atoi(a)));
  }
  if (!strcmp(cmd, "pgid")) { /* pgid: print the caller's process group */
    printf("pgid %d\n", (int)getpgrp());
    return 0;
  }
  if (!strcmp(cmd, "finit-module")) {
    /* finit_module of this program's own file (a regular file, not a module: ENOEXEC had it been
     * read; EPERM where refused, by seccomp or by lsm/kernel_read_file, which runs after the fd is
     * looked up and checked to be a regular file) */
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    return report(cmd, syscall(SYS_finit_module, fd, "", 0));
  }
  if (!strcmp(cmd, "kexec-file-load")) {
    /* the same file as a kernel image, no initramfs (KEXEC_FILE_NO_INITRAMFS) */
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    return report(cmd, syscall(SYS_kexec_file_load, fd, -1, 0, "", 4));
  }
  if (!strcmp(cmd, "deep-exec")) {
    /* deep-exec DIR SRC MARKER N COMP... LEAF: SRC copied to DIR/a/a/.../COMP.../LEAF (N a's), then
     * run as LEAF MARKER (SRC /usr/bin/touch: the marker shows it ran). */
    if (argc < 7 || chdir(a) != 0) return report(cmd, -1);
    int n = atoi(argv[5]);
    for (int i = 0; i < n; i++) {
      mkdir("a", 0755);
      if (chdir("a") != 0) return report(cmd, -1);
    }
    for (int i = 6; i < argc - 1; i++) {
      mkdir(argv[i], 0755);
      if (chdir(argv[i]) != 0) return report(cmd, -1);
    }
    const char* leaf = argv[argc - 1];
    int out = open(leaf, O_WRONLY | O_CREAT | O_TRUNC, 0755);
    if (out < 0 || copy_file(argv[3], out) != 0) return report(cmd, -1);
    close(out);
    char self[300];
    snprintf(self, sizeof(self), "./%s", leaf);
    char* args[] = {self, argv[4], NULL};
    execve(self, args, environ);
    return report(cmd, -1);
  }
  if (!strcmp(cmd, "nonutf8")) { /* nonutf8 DIR: create DIR/<invalid UTF-8> */
    char p[4096];
    snprintf(p, sizeof(p), "%s/bad-\xff\xfe-\xc3(", a);
    return report(cmd, open(p, O_WRONLY | O_CREAT, 0644));
  }
  return 2;
}
