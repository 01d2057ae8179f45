{
  "targets": [
    {
      "target_name": "handover",
      "defines": ["NAPI_VERSION=8"],
      "conditions": [
        ["OS!='win'", {
          "sources": ["native/posix/sockets.cc", "native/posix/notify.cc", "native/posix/supervise.cc"],
          "cflags_cc": ["-std=c++17", "-Wall", "-Wextra"],
          "xcode_settings": {
            "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
            "MACOSX_DEPLOYMENT_TARGET": "10.15"
          }
        }],
        ["OS=='win'", {
          "sources": ["native/win/sockets.cc"],
          "libraries": ["ws2_32.lib"]
        }]
      ]
    }
  ]
}
