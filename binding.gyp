{
  "targets": [
    {
      "target_name": "handover",
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS"],
      "conditions": [
        ["OS!='win'", {
          "sources": ["native/posix/sockets.cc", "native/posix/supervise.cc", "native/posix/channel.cc"],
          "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-fno-exceptions"],
          "xcode_settings": {
            "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
            "GCC_ENABLE_CPP_EXCEPTIONS": "NO",
            "MACOSX_DEPLOYMENT_TARGET": "10.15"
          }
        }],
        ["OS=='win'", {
          "sources": ["native/win/sockets.cc"],
          "libraries": ["ws2_32.lib"],
          "msvs_settings": {"VCCLCompilerTool": {"ExceptionHandling": 0}}
        }]
      ]
    }
  ]
}
