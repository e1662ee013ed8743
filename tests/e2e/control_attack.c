/* Attacks on writd's control socket that `writ` itself cannot make (tests/e2e/control_e2e_test.cc
 * runs this inside writ tasks and outside them). It speaks the control protocol by hand: a 4-byte
 * little-endian length, then a protobuf writ.v1.Request (include/writ/v1/api.proto).
 * Each subcommand prints one line "<cmd> code=<N> error=<message>" with writd's answer (code 0: it
 * was done) and exits 0 when writd did what was asked, 1 when it refused, 2 on usage or I/O errors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct buf {
  unsigned char b[4096];
  size_t n;
};

static void varint(struct buf* o, uint64_t v) {
  while (v >= 0x80) {
    o->b[o->n++] = (unsigned char)(v | 0x80);
    v >>= 7;
  }
  o->b[o->n++] = (unsigned char)v;
}
static void field_varint(struct buf* o, int field, uint64_t v) {
  varint(o, (uint64_t)field << 3);
  varint(o, v);
}
static void field_bytes(struct buf* o, int field, const void* p, size_t len) {
  varint(o, ((uint64_t)field << 3) | 2);
  varint(o, len);
  memcpy(o->b + o->n, p, len);
  o->n += len;
}

static int dial(const char* path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un a;
  memset(&a, 0, sizeof(a));
  a.sun_family = AF_UNIX;
  snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
  if (fd < 0 || connect(fd, (struct sockaddr*)&a, sizeof(a)) != 0) {
    printf("connect error %s\n", strerror(errno));
    exit(1);
  }
  return fd;
}

static int full(int fd, void* p, size_t n, int writing) {
  for (size_t off = 0; off < n;) {
    ssize_t r = writing ? write(fd, (char*)p + off, n - off) : read(fd, (char*)p + off, n - off);
    if (r <= 0) return -1;
    off += (size_t)r;
  }
  return 0;
}

/* Sends Request{field: body} and prints writd's answer; returns the exit status described above. */
static int call(const char* cmd, int fd, int field, const struct buf* body) {
  struct buf req = {.n = 0};
  field_bytes(&req, field, body->b, body->n);
  unsigned char len[4] = {(unsigned char)req.n, (unsigned char)(req.n >> 8), 0, 0};
  if (full(fd, len, 4, 1) || full(fd, req.b, req.n, 1) || full(fd, len, 4, 0)) {
    printf("%s io-error %s\n", cmd, strerror(errno));
    return 2;
  }
  uint32_t n =
      (uint32_t)len[0] | (uint32_t)len[1] << 8 | (uint32_t)len[2] << 16 | (uint32_t)len[3] << 24;
  static unsigned char resp[1 << 20];
  if (n > sizeof(resp) || full(fd, resp, n, 0)) {
    printf("%s io-error bad response\n", cmd);
    return 2;
  }
  /* Response.code = 1 (varint), Response.error = 2 (string); other fields skipped. */
  uint64_t code = 0;
  char error[512] = "";
  for (size_t i = 0; i < n;) {
    uint64_t key = 0, v = 0;
    for (int s = 0; i < n; s += 7) {
      key |= (uint64_t)(resp[i] & 0x7f) << s;
      if (!(resp[i++] & 0x80)) break;
    }
    for (int s = 0; i < n; s += 7) {
      v |= (uint64_t)(resp[i] & 0x7f) << s;
      if (!(resp[i++] & 0x80)) break;
    }
    if ((key & 7) == 0) {
      if (key >> 3 == 1) code = v;
    } else if ((key & 7) == 2) {
      if (key >> 3 == 2) snprintf(error, sizeof(error), "%.*s", (int)v, (const char*)resp + i);
      i += v;
    } else {
      break;
    }
  }
  printf("%s code=%llu error=%s\n", cmd, (unsigned long long)code, error);
  return code == 0 ? 0 : 1;
}

static struct buf create_task(const char* spiffe) {
  struct buf b = {.n = 0};
  field_bytes(&b, 1, spiffe, strlen(spiffe)); /* CreateTaskRequest.spiffe_id */
  field_varint(&b, 8, getuid());              /* run_uid: as itself */
  return b;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr,
            "usage: control_attack forge|forge-orphan SOCKET SPIFFE | place SOCKET TASK PID\n");
    return 2;
  }
  const char* cmd = argv[1];
  setvbuf(stdout, NULL, _IONBF, 0);
  if (!strcmp(cmd, "forge") && argc == 4) { /* a new top-level task with another identity */
    struct buf b = create_task(argv[3]);
    return call(cmd, dial(argv[2]), 1, &b);
  }
  if (!strcmp(cmd, "forge-orphan") && argc == 4) {
    /* Connect, then let the connecting process exit: the request comes from its child, whose parent
     * (the process writd saw connect) is gone and whose pid may soon name another process. */
    int fd = dial(argv[2]);
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0) return 2;
    if (child > 0) _exit(0);
    for (int i = 0; i < 200 && getppid() == parent; i++) usleep(10000);
    struct buf b = create_task(argv[3]);
    return call(cmd, fd, 1, &b);
  }
  if (!strcmp(cmd, "place") &&
      argc == 5) { /* TaskStarted{place} for a task this connection did not create */
    struct buf b = {.n = 0};
    field_bytes(&b, 1, argv[3], strlen(argv[3])); /* task_id */
    field_varint(&b, 2, (uint64_t)atoi(argv[4])); /* pid */
    field_varint(&b, 3, 1);                       /* started */
    field_varint(&b, 5, 1);                       /* place */
    return call(cmd, dial(argv[2]), 2, &b);
  }
  fprintf(stderr, "control_attack: unknown or malformed command %s\n", cmd);
  return 2;
}
