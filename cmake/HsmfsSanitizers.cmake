# HSMFS_SANITIZE is a comma list handed to -fsanitize (e.g. "address,undefined"
# or "thread"); the presets set it.
set(HSMFS_SANITIZE "" CACHE STRING "Sanitizers to build with (-fsanitize=...)")
add_library(hsmfs_sanitizers INTERFACE)
if(HSMFS_SANITIZE)
  target_compile_options(hsmfs_sanitizers INTERFACE
    -fsanitize=${HSMFS_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(hsmfs_sanitizers INTERFACE -fsanitize=${HSMFS_SANITIZE})
endif()
