// What the per-OS sources share: node-addon-api without C++ exceptions
// (NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS, -fno-exceptions: every build sets
// them), argument reading, errors that carry an errno, so TypeScript can turn
// them into system errors with a stable `code`, and the socket calls that
// read the same on both: binding an inet socket and inspect().
#pragma once

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#else
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#endif

#include <string.h>

#include <string>

#include <napi.h>

namespace handover {

// Thrown into JavaScript as an Error with `errno` (positive, OS-native) and
// `syscall`; src/core/errors.ts names it (EADDRINUSE, ...), after
// src/backend/win.ts has named a Winsock number.
inline Napi::Value ThrowSystemError(Napi::Env env, const char* syscall, int err) {
  Napi::Error error = Napi::Error::New(env, std::string(syscall) + " failed");
  error.Set("errno", static_cast<double>(err));
  error.Set("syscall", syscall);
  error.ThrowAsJavaScriptException();
  return Napi::Value();
}

inline Napi::Value ThrowTypeError(Napi::Env env, const char* message) {
  Napi::TypeError error = Napi::TypeError::New(env, message);
  error.Set("code", "ERR_INVALID_ARG_TYPE");
  error.ThrowAsJavaScriptException();
  return Napi::Value();
}

// Get(info, i, &out): argument i, if it is there and of out's type.
inline bool Get(const Napi::CallbackInfo& info, size_t i, int* out) {
  if (!info[i].IsNumber()) return false;
  *out = info[i].As<Napi::Number>().Int32Value();
  return true;
}

inline bool Get(const Napi::CallbackInfo& info, size_t i, bool* out) {
  if (!info[i].IsBoolean()) return false;
  *out = info[i].As<Napi::Boolean>().Value();
  return true;
}

inline bool Get(const Napi::CallbackInfo& info, size_t i, std::string* out) {
  if (!info[i].IsString()) return false;
  *out = info[i].As<Napi::String>().Utf8Value();
  return true;
}

#ifdef _WIN32
using Socket = SOCKET;
constexpr Socket kNoSocket = INVALID_SOCKET;
constexpr int kInvalidArgument = WSAEINVAL;
// Never inheritable: see win/sockets.cc.
constexpr DWORD kSocketFlags = WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT;

// Winsock keeps its own error number; errno is not set.
inline int LastError() { return WSAGetLastError(); }
inline void SetLastSocketError(int err) { WSASetLastError(err); }
inline void CloseSocket(Socket s) { closesocket(s); }

inline Socket NewSocket(int domain, int type) {
  return WSASocketW(domain, type, 0, nullptr, 0, kSocketFlags);
}

// SOCKET values are kernel handles: small, and well inside a double's range.
inline bool Get(const Napi::CallbackInfo& info, size_t i, SOCKET* out) {
  if (!info[i].IsNumber()) return false;
  int64_t n = info[i].As<Napi::Number>().Int64Value();
  if (n <= 0 || n > (int64_t{1} << 52)) return false;
  *out = static_cast<SOCKET>(n);
  return true;
}
#else
using Socket = int;
constexpr Socket kNoSocket = -1;
constexpr int kInvalidArgument = EINVAL;

inline int LastError() { return errno; }
inline void SetLastSocketError(int err) { errno = err; }
inline void CloseSocket(Socket s) { close(s); }

// Every POSIX socket must be close-on-exec from the start, or it leaks into
// every process the application spawns.
inline Socket NewSocket(int domain, int type) {
#ifdef SOCK_CLOEXEC
  return socket(domain, type | SOCK_CLOEXEC, 0);
#else
  // macOS has no SOCK_CLOEXEC. Handover never forks from another thread,
  // so setting the flag right away leaves no window for a leak; on an fd
  // just made, F_SETFD cannot fail.
  int fd = socket(domain, type, 0);
  if (fd >= 0) fcntl(fd, F_SETFD, FD_CLOEXEC);
  return fd;
#endif
}

// The supervisor's sendSocket, requestSocket and reapPid, in supervise.cc; sockets.cc
// exports them.
Napi::Value SendSocketJs(const Napi::CallbackInfo& info);
Napi::Value RequestSocketJs(const Napi::CallbackInfo& info);
Napi::Value ReapPidJs(const Napi::CallbackInfo& info);
// The Channel class (fds over a unix socket, on Node's loop), in channel.cc.
Napi::Function DefineChannel(Napi::Env env);
#endif

// GetArgs(info, &a, &b, ...): every argument in order, all of the right type.
template <typename... T>
bool GetArgs(const Napi::CallbackInfo& info, T*... out) {
  size_t i = 0;
  // && evaluates left to right, so the i-th pointer gets argument i.
  return (Get(info, i++, out) && ...);
}

inline Napi::Value ThrowLastError(Napi::Env env, const char* syscall) {
  return ThrowSystemError(env, syscall, LastError());
}

// Closes s after a call on it failed, keeping that call's error to report.
inline Socket Fail(Socket s) {
  int err = LastError();
  CloseSocket(s);
  SetLastSocketError(err);
  return kNoSocket;
}

// For a check of ours that fails: err is reported as if a call had failed.
inline Socket Refuse(int err) {
  SetLastSocketError(err);
  return kNoSocket;
}

// An int-sized option (BOOL or DWORD on Windows); 0 if it cannot be read.
inline int IntOption(Socket s, int level, int name) {
  int value = 0;
  socklen_t len = sizeof(value);
  if (getsockopt(s, level, name, reinterpret_cast<char*>(&value), &len) != 0) return 0;
  return value;
}

// A new socket of `type` bound to ip:port (family 4 or 6) and, for a
// stream, listening; kNoSocket on failure, with the failed call's error kept.
inline Socket BindInet(int type, int family, const std::string& ip, int port, bool v6only, int backlog) {
  sockaddr_storage storage = {};
  auto* sin = reinterpret_cast<sockaddr_in*>(&storage);
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&storage);
  storage.ss_family = family == 4 ? AF_INET : AF_INET6;
  (family == 4 ? sin->sin_port : sin6->sin6_port) = htons(static_cast<uint16_t>(port));
  void* addr = family == 4 ? static_cast<void*>(&sin->sin_addr) : &sin6->sin6_addr;
  if (inet_pton(storage.ss_family, ip.c_str(), addr) != 1) return Refuse(kInvalidArgument);
  socklen_t len = family == 4 ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  Socket s = NewSocket(storage.ss_family, type);
  if (s == kNoSocket) return kNoSocket;
#ifndef _WIN32
  // Lets a restarted server bind while old connections sit in TIME_WAIT.
  // Not on Windows, where it lets a second socket steal a port in use; nor
  // SO_EXCLUSIVEADDRUSE, which refuses the port for minutes after a crash,
  // while the dead listener's connections linger. Windows' default, as in
  // libuv and Node, already fails a second listener on the port.
  int one = 1;
  if (type == SOCK_STREAM && setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) return Fail(s);
#endif
  int flag = v6only ? 1 : 0;
  if (family == 6 &&
      setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, reinterpret_cast<const char*>(&flag), sizeof(flag)) != 0) {
    return Fail(s);
  }
  if (bind(s, reinterpret_cast<sockaddr*>(&storage), len) != 0) return Fail(s);
  if (type == SOCK_STREAM && listen(s, backlog) != 0) return Fail(s);
  return s;
}

// inspect(socket) -> { family, type, listening, address?, port?, v6only?, path?, abstract? }
inline Napi::Value Inspect(Napi::Env env, Socket s) {
  int type = 0;
  socklen_t len = sizeof(type);
  if (getsockopt(s, SOL_SOCKET, SO_TYPE, reinterpret_cast<char*>(&type), &len) != 0) {
    return ThrowLastError(env, "getsockopt");
  }
  sockaddr_storage storage = {};
  len = sizeof(storage);
  if (getsockname(s, reinterpret_cast<sockaddr*>(&storage), &len) != 0) return ThrowLastError(env, "getsockname");

  Napi::Object out = Napi::Object::New(env);
  out.Set("type", type == SOCK_STREAM ? "stream" : type == SOCK_DGRAM ? "dgram"
                                     : type == SOCK_SEQPACKET ? "seqpacket" : "other");
  out.Set("listening", IntOption(s, SOL_SOCKET, SO_ACCEPTCONN) != 0);
  out.Set("family", "other");  // unless it is one of these:
  if (storage.ss_family == AF_INET || storage.ss_family == AF_INET6) {
    bool v4 = storage.ss_family == AF_INET;
    auto* sin = reinterpret_cast<const sockaddr_in*>(&storage);
    auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    char ip[INET6_ADDRSTRLEN] = {0};
    inet_ntop(storage.ss_family, v4 ? static_cast<const void*>(&sin->sin_addr) : &sin6->sin6_addr, ip, sizeof(ip));
    out.Set("family", v4 ? "inet4" : "inet6");
    out.Set("address", ip);
    out.Set("port", static_cast<double>(ntohs(v4 ? sin->sin_port : sin6->sin6_port)));
    if (!v4) out.Set("v6only", IntOption(s, IPPROTO_IPV6, IPV6_V6ONLY) != 0);
  }
#ifndef _WIN32
  if (storage.ss_family == AF_UNIX) {
    auto* sun = reinterpret_cast<const sockaddr_un*>(&storage);
    size_t n = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
    bool abstract = n > 0 && sun->sun_path[0] == '\0';
    out.Set("family", "unix");
    out.Set("path", abstract ? std::string(sun->sun_path + 1, n - 1)
                             : std::string(sun->sun_path, strnlen(sun->sun_path, n)));
    out.Set("abstract", abstract);
  }
#endif
  return out;
}

}  // namespace handover
