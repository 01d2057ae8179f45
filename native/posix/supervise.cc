// The supervisor's kernel calls.
//
// passFd/askForFd: a worker that asks for an address the supervisor does
// not hold yet gets the socket over a unix socketpair, with SCM_RIGHTS, the
// way HAProxy's -x does. The worker's side blocks (bounded by poll): its
// listen() is synchronous, as Node's own is. Received fds are close-on-exec.
//
// reapPid: as PID 1 the supervisor inherits orphans. Node cannot
// waitpid(-1) without stealing the exit status of libuv's own children, so
// JavaScript picks the pids that are not its own and this reaps exactly
// those, one by one.

#include "supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <string>

#include "../napi_util.h"

namespace handover {
namespace {

constexpr size_t kMaxLine = 64 * 1024;

// One line, with one fd attached if fd >= 0. The socket may be non-blocking
// (the supervisor's end belongs to libuv): a full buffer is EAGAIN, reported.
int SendLine(int channel, const std::string& line, int fd) {
  iovec iov;
  iov.iov_base = const_cast<char*>(line.data());
  iov.iov_len = line.size();
  msghdr msg;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  if (fd >= 0) {
    memset(control, 0, sizeof(control));
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  }
  size_t sent = 0;
  while (sent < line.size()) {
    ssize_t n = sendmsg(channel, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    sent += static_cast<size_t>(n);
    // The fd went with the first bytes; the rest is plain data.
    iov.iov_base = const_cast<char*>(line.data()) + sent;
    iov.iov_len = line.size() - sent;
    msg.msg_control = nullptr;
    msg.msg_controllen = 0;
  }
  return 0;
}

long long NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Reads up to and including '\n' within timeout_ms, keeping the first fd
// that arrives (a later one would be a protocol error: it is closed).
int ReceiveLine(int channel, int timeout_ms, std::string* line, int* fd, const char** syscall) {
  *fd = -1;
  long long deadline = NowMs() + timeout_ms;
  char buffer[4096];
  for (;;) {
    long long left = deadline - NowMs();
    if (left <= 0) {
      *syscall = "poll";
      errno = ETIMEDOUT;
      return -1;
    }
    pollfd p = {channel, POLLIN, 0};
    int ready = poll(&p, 1, static_cast<int>(left));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) {
      *syscall = "poll";
      return -1;
    }
    if (ready == 0) continue;
    iovec iov = {buffer, sizeof(buffer)};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr msg;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
#ifdef MSG_CMSG_CLOEXEC
    int flags = MSG_CMSG_CLOEXEC | MSG_DONTWAIT;
#else
    int flags = MSG_DONTWAIT;
#endif
    ssize_t n = recvmsg(channel, &msg, flags);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    *syscall = "recvmsg";
    if (n < 0) return -1;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      int got;
      memcpy(&got, CMSG_DATA(c), sizeof(int));
#ifndef MSG_CMSG_CLOEXEC
      fcntl(got, F_SETFD, FD_CLOEXEC);
#endif
      if (*fd < 0) *fd = got;
      else close(got);
    }
    if (n == 0) {
      errno = ECONNRESET;
      return -1;
    }
    line->append(buffer, static_cast<size_t>(n));
    if (!line->empty() && line->back() == '\n') return 0;
    if (line->size() > kMaxLine) {
      errno = EMSGSIZE;
      return -1;
    }
  }
}

// passFd(channel, line, fd): fd -1 sends the line alone.
napi_value PassFdJs(napi_env env, napi_callback_info info) {
  Args a;
  int channel, fd;
  std::string line;
  if (!a.Read(env, info) || a.count < 3 || !GetInt(env, a.values[0], &channel) ||
      !GetString(env, a.values[1], &line) || !GetInt(env, a.values[2], &fd)) {
    return ThrowTypeError(env, "passFd(channel, line, fd)");
  }
  if (SendLine(channel, line, fd) == -1) return ThrowSystemError(env, "sendmsg", errno);
  return nullptr;
}

// askForFd(channel, line, timeoutMs): sends line, blocks for the answer line
// and returns { line, fd } (fd -1 if none came).
napi_value AskForFdJs(napi_env env, napi_callback_info info) {
  Args a;
  int channel, timeout;
  std::string request;
  if (!a.Read(env, info) || a.count < 3 || !GetInt(env, a.values[0], &channel) ||
      !GetString(env, a.values[1], &request) || !GetInt(env, a.values[2], &timeout)) {
    return ThrowTypeError(env, "askForFd(channel, line, timeoutMs)");
  }
  if (SendLine(channel, request, -1) == -1) return ThrowSystemError(env, "sendmsg", errno);
  std::string answer;
  int fd;
  const char* syscall = "recvmsg";
  if (ReceiveLine(channel, timeout, &answer, &fd, &syscall) == -1) {
    int err = errno;
    if (fd >= 0) close(fd);
    return ThrowSystemError(env, syscall, err);
  }
  napi_value result;
  napi_create_object(env, &result);
  SetString(env, result, "line", answer);
  SetInt(env, result, "fd", fd);
  return result;
}

// reapPid(pid): waitpid(pid, WNOHANG); true if it was reaped.
napi_value ReapPidJs(napi_env env, napi_callback_info info) {
  Args a;
  int pid;
  if (!a.Read(env, info) || a.count < 1 || !GetInt(env, a.values[0], &pid) || pid <= 0) {
    return ThrowTypeError(env, "reapPid(pid)");
  }
  int status;
  pid_t done;
  do {
    done = waitpid(pid, &status, WNOHANG);
  } while (done < 0 && errno == EINTR);
  napi_value result;
  napi_get_boolean(env, done == pid, &result);
  return result;
}

}  // namespace

void ExportSupervise(napi_env env, napi_value exports) {
  Export(env, exports, "passFd", PassFdJs);
  Export(env, exports, "askForFd", AskForFdJs);
  Export(env, exports, "reapPid", ReapPidJs);
}

}  // namespace handover
