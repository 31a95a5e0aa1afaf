# Warnings live on an INTERFACE target so that no CMAKE_CXX_FLAGS are edited.
add_library(hsmfs_warnings INTERFACE)
target_compile_options(hsmfs_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
  -Wimplicit-fallthrough -Werror=switch)
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  target_compile_options(hsmfs_warnings INTERFACE -Wthread-safety)
endif()
option(HSMFS_WERROR "Treat warnings as errors (ON in CI, OFF for packagers)" OFF)
if(HSMFS_WERROR)
  target_compile_options(hsmfs_warnings INTERFACE -Werror)
endif()
