// Small helpers shared by the per-OS sources: argument reading and errors
// that carry an errno, so TypeScript can turn them into system errors with
// a stable `code`.
#pragma once

#include <node_api.h>

#include <string>

namespace handover {

// Thrown into JavaScript as an Error with `errno` (positive, OS-native) and
// `syscall`; src/native.ts maps errno to its name (EADDRINUSE, ...).
inline napi_value ThrowSystemError(napi_env env, const char* syscall, int err) {
  std::string msg = std::string(syscall) + " failed";
  napi_value message, error, errno_value, syscall_value;
  napi_create_string_utf8(env, msg.c_str(), NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, nullptr, message, &error);
  napi_create_int32(env, err, &errno_value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_set_named_property(env, error, "syscall", syscall_value);
  napi_throw(env, error);
  return nullptr;
}

inline napi_value ThrowTypeError(napi_env env, const char* message) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
  return nullptr;
}

struct Args {
  size_t count = 8;
  napi_value values[8];
  bool Read(napi_env env, napi_callback_info info) {
    return napi_get_cb_info(env, info, &count, values, nullptr, nullptr) == napi_ok;
  }
};

inline bool GetInt(napi_env env, napi_value v, int* out) {
  napi_valuetype type;
  if (napi_typeof(env, v, &type) != napi_ok || type != napi_number) return false;
  return napi_get_value_int32(env, v, out) == napi_ok;
}

inline bool GetBool(napi_env env, napi_value v, bool* out) {
  napi_valuetype type;
  if (napi_typeof(env, v, &type) != napi_ok || type != napi_boolean) return false;
  return napi_get_value_bool(env, v, out) == napi_ok;
}

inline bool GetString(napi_env env, napi_value v, std::string* out) {
  napi_valuetype type;
  if (napi_typeof(env, v, &type) != napi_ok || type != napi_string) return false;
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, nullptr, 0, &len) != napi_ok) return false;
  out->resize(len);
  // The terminator slot std::string keeps past size() takes the NUL.
  return napi_get_value_string_utf8(env, v, &(*out)[0], len + 1, &len) == napi_ok;
}

inline napi_value MakeInt(napi_env env, int v) {
  napi_value result;
  napi_create_int32(env, v, &result);
  return result;
}

inline void SetString(napi_env env, napi_value obj, const char* key, const std::string& s) {
  napi_value v;
  napi_create_string_utf8(env, s.data(), s.size(), &v);
  napi_set_named_property(env, obj, key, v);
}

inline void SetInt(napi_env env, napi_value obj, const char* key, int i) {
  napi_set_named_property(env, obj, key, MakeInt(env, i));
}

inline void SetBool(napi_env env, napi_value obj, const char* key, bool b) {
  napi_value v;
  napi_get_boolean(env, b, &v);
  napi_set_named_property(env, obj, key, v);
}

inline void Export(napi_env env, napi_value exports, const char* name, napi_callback fn) {
  napi_value f;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, nullptr, &f);
  napi_set_named_property(env, exports, name, f);
}

}  // namespace handover
