// The inet half of inspect(), shared by the POSIX and Windows sources. The
// includer brings its platform's socket headers (sockaddr_in, inet_ntop).
#ifndef HANDOVER_INET_UTIL_H_
#define HANDOVER_INET_UTIL_H_

#include "napi_util.h"

namespace handover {

// Sets family, address and port (and v6only for IPv6) on `out`; false for a
// socket that is not inet, which the caller describes itself.
inline bool SetInetAddress(napi_env env, napi_value out, const sockaddr_storage& storage, bool v6only) {
  char ip[INET6_ADDRSTRLEN] = {0};
  if (storage.ss_family == AF_INET) {
    auto* sin = reinterpret_cast<const sockaddr_in*>(&storage);
    inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
    SetString(env, out, "family", "inet4");
    SetString(env, out, "address", ip);
    SetInt(env, out, "port", ntohs(sin->sin_port));
    return true;
  }
  if (storage.ss_family == AF_INET6) {
    auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
    SetString(env, out, "family", "inet6");
    SetString(env, out, "address", ip);
    SetInt(env, out, "port", ntohs(sin6->sin6_port));
    SetBool(env, out, "v6only", v6only);
    return true;
  }
  return false;
}

}  // namespace handover

#endif  // HANDOVER_INET_UTIL_H_
