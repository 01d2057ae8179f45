// Windows half of the addon: what JavaScript cannot do with a SOCKET.
//
// A SOCKET cannot travel through spawn's stdio array the way a POSIX fd
// does, and making it inheritable would leak it into every process the
// application starts (libuv spawns with bInheritHandles). So every socket
// here is created or imported with WSA_FLAG_NO_HANDLE_INHERIT, and the next
// generation gets its own handle through WSADuplicateSocketW: the protocol
// info names the target pid and is useless to any other process.
//
// Errors carry the Winsock error number as `errno`; src/backend/win.ts gives
// them their E-name. Winsock itself needs no WSAStartup here: libuv started
// it when Node's event loop was made, and never cleans it up.

#include "../addon.h"  // and winsock2.h, ws2tcpip.h, windows.h

namespace handover {
namespace {

SOCKET FromProtocolInfo(WSAPROTOCOL_INFOW* protocol) {
  return WSASocketW(FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, protocol, 0, kSocketFlags);
}

// Imports protocol info duplicated for this process, and refuses anything
// that is not a bound, listening inet stream socket. A refused handle is
// never closed: info meant for another pid names a handle value of that
// process, which here may be any handle of ours (under Wine it came back as
// this process's stdout).
SOCKET Import(WSAPROTOCOL_INFOW* protocol) {
  SOCKET s = FromProtocolInfo(protocol);
  if (s == INVALID_SOCKET) return INVALID_SOCKET;
  sockaddr_storage storage;
  int len = sizeof(storage);
  if (getsockname(s, reinterpret_cast<sockaddr*>(&storage), &len) != 0) return INVALID_SOCKET;
  if (storage.ss_family != AF_INET && storage.ss_family != AF_INET6) return Refuse(WSAEAFNOSUPPORT);
  if (!IntOption(s, SOL_SOCKET, SO_ACCEPTCONN)) return Refuse(WSAEINVAL);
  return s;
}

Napi::Value BindTcpJs(const Napi::CallbackInfo& info) {
  int family, port, backlog;
  bool v6only;
  std::string ip;
  if (!GetArgs(info, &family, &ip, &port, &v6only, &backlog) || (family != 4 && family != 6) || port < 0 ||
      port > 65535 || backlog < 1) {
    return ThrowTypeError(info.Env(), "bindTcp(family, ip, port, v6only, backlog)");
  }
  SOCKET s = BindInet(SOCK_STREAM, family, ip, port, v6only, backlog);
  if (s == INVALID_SOCKET) return ThrowLastError(info.Env(), "listen");
  return Napi::Number::New(info.Env(), static_cast<double>(s));
}

// duplicateFor(socket, pid) -> Buffer with the WSAPROTOCOL_INFOW for pid
Napi::Value DuplicateForJs(const Napi::CallbackInfo& info) {
  SOCKET s;
  int pid;
  if (!GetArgs(info, &s, &pid) || pid <= 0) return ThrowTypeError(info.Env(), "duplicateFor(socket, pid)");
  WSAPROTOCOL_INFOW protocol;
  if (WSADuplicateSocketW(s, static_cast<DWORD>(pid), &protocol) != 0) {
    return ThrowLastError(info.Env(), "WSADuplicateSocketW");
  }
  return Napi::Buffer<uint8_t>::Copy(info.Env(), reinterpret_cast<const uint8_t*>(&protocol), sizeof(protocol));
}

// importSocket(buffer) -> SOCKET, validated as a listening inet stream socket
Napi::Value ImportJs(const Napi::CallbackInfo& info) {
  if (!info[0].IsBuffer()) return ThrowTypeError(info.Env(), "importSocket(buffer)");
  auto buffer = info[0].As<Napi::Buffer<uint8_t>>();
  if (buffer.Length() != sizeof(WSAPROTOCOL_INFOW)) return ThrowSystemError(info.Env(), "WSASocketW", WSAEINVAL);
  WSAPROTOCOL_INFOW protocol;
  memcpy(&protocol, buffer.Data(), sizeof(protocol));
  SOCKET s = Import(&protocol);
  if (s == INVALID_SOCKET) return ThrowLastError(info.Env(), "WSASocketW");
  return Napi::Number::New(info.Env(), static_cast<double>(s));
}

// duplicate(socket) -> a second, non-inheritable SOCKET in this process
Napi::Value DuplicateJs(const Napi::CallbackInfo& info) {
  SOCKET s;
  if (!GetArgs(info, &s)) return ThrowTypeError(info.Env(), "duplicate(socket)");
  WSAPROTOCOL_INFOW protocol;
  if (WSADuplicateSocketW(s, GetCurrentProcessId(), &protocol) != 0) {
    return ThrowLastError(info.Env(), "WSADuplicateSocketW");
  }
  SOCKET copy = FromProtocolInfo(&protocol);
  if (copy == INVALID_SOCKET) return ThrowLastError(info.Env(), "WSASocketW");
  return Napi::Number::New(info.Env(), static_cast<double>(copy));
}

Napi::Value CloseJs(const Napi::CallbackInfo& info) {
  SOCKET s;
  if (!GetArgs(info, &s)) return ThrowTypeError(info.Env(), "close(socket)");
  if (closesocket(s) != 0) return ThrowLastError(info.Env(), "closesocket");
  return Napi::Value();
}

Napi::Value InspectJs(const Napi::CallbackInfo& info) {
  SOCKET s;
  if (!GetArgs(info, &s)) return ThrowTypeError(info.Env(), "inspect(socket)");
  return Inspect(info.Env(), s);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("bindTcp", Napi::Function::New(env, BindTcpJs, "bindTcp"));
  exports.Set("duplicateFor", Napi::Function::New(env, DuplicateForJs, "duplicateFor"));
  exports.Set("importSocket", Napi::Function::New(env, ImportJs, "importSocket"));
  exports.Set("duplicate", Napi::Function::New(env, DuplicateJs, "duplicate"));
  exports.Set("close", Napi::Function::New(env, CloseJs, "close"));
  exports.Set("inspect", Napi::Function::New(env, InspectJs, "inspect"));
  return exports;
}

}  // namespace
}  // namespace handover

using handover::Init;
NODE_API_MODULE(NODE_GYP_MODULE_NAME, Init)
