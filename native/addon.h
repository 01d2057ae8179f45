// What the per-OS sources share: node-addon-api without C++ exceptions
// (NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS, -fno-exceptions: every build sets
// them), argument reading, and errors that carry an errno, so TypeScript can
// turn them into system errors with a stable `code`.
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
#include <sys/socket.h>
#include <unistd.h>
#endif

#include <napi.h>

#include <string.h>

#include <string>

namespace handover {

// Thrown into JavaScript as an Error with `errno` (positive, OS-native) and
// `syscall`; src/native.ts maps errno to its name (EADDRINUSE, ...).
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

// Fills `storage` with family (4 or 6), ip and port; its length, or 0 for an
// ip that is not an address of that family.
inline int InetAddress(int family, const std::string& ip, int port, sockaddr_storage* storage) {
  memset(storage, 0, sizeof(*storage));
  auto* sin = reinterpret_cast<sockaddr_in*>(storage);
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(storage);
  storage->ss_family = family == 4 ? AF_INET : AF_INET6;
  (family == 4 ? sin->sin_port : sin6->sin6_port) = htons(static_cast<uint16_t>(port));
  void* addr = family == 4 ? static_cast<void*>(&sin->sin_addr) : &sin6->sin6_addr;
  if (inet_pton(storage->ss_family, ip.c_str(), addr) != 1) return 0;
  return family == 4 ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
}

// The inet half of inspect(), for the POSIX and Windows sources alike: sets family, address, port and, for
// IPv6, v6only on `out`; false for a socket that is not inet.
inline bool SetInetAddress(Napi::Object out, const sockaddr_storage& storage, bool v6only) {
  char ip[INET6_ADDRSTRLEN] = {0};
  bool v4 = storage.ss_family == AF_INET;
  if (!v4 && storage.ss_family != AF_INET6) return false;
  auto* sin = reinterpret_cast<const sockaddr_in*>(&storage);
  auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&storage);
  inet_ntop(storage.ss_family, v4 ? static_cast<const void*>(&sin->sin_addr) : &sin6->sin6_addr, ip, sizeof(ip));
  out.Set("family", v4 ? "inet4" : "inet6");
  out.Set("address", ip);
  out.Set("port", static_cast<double>(ntohs(v4 ? sin->sin_port : sin6->sin6_port)));
  if (!v4) out.Set("v6only", v6only);
  return true;
}

#ifndef _WIN32
// Every POSIX socket must be close-on-exec from the start, or it leaks into
// every process the application spawns.
inline int NewSocket(int domain, int type) {
#ifdef SOCK_CLOEXEC
  int fd = socket(domain, type | SOCK_CLOEXEC, 0);
  if (fd >= 0 || errno != EINVAL) return fd;
#endif
  // macOS has no SOCK_CLOEXEC. Handover never forks from another thread,
  // so setting the flag right away leaves no window for a leak.
  int plain = socket(domain, type, 0);
  if (plain < 0) return plain;
  if (fcntl(plain, F_SETFD, FD_CLOEXEC) == -1) {
    int err = errno;
    close(plain);
    errno = err;
    return -1;
  }
  return plain;
}

// sdNotify(path, abstract, message), in notify.cc; sockets.cc exports it.
Napi::Value SdNotifyJs(const Napi::CallbackInfo& info);
// The supervisor's passFd, askForFd and reapPid, in supervise.cc.
Napi::Value PassFdJs(const Napi::CallbackInfo& info);
Napi::Value AskForFdJs(const Napi::CallbackInfo& info);
Napi::Value ReapPidJs(const Napi::CallbackInfo& info);
#endif

}  // namespace handover
