# Tests of backends/tape (included by tests/CMakeLists.txt).
hsmfs_gtest(tape_st_drive_test unit/backends/tape/st_drive_test.cc hsmfs_backend_tape)
hsmfs_gtest(tape_virtual_tape_test unit/backends/tape/virtual_tape_test.cc hsmfs_backend_tape)
hsmfs_gtest(tape_virtual_library_test unit/backends/tape/virtual_library_test.cc
  hsmfs_backend_tape)
hsmfs_gtest(tape_cost_model_test unit/backends/tape/cost_model_test.cc hsmfs_backend_tape)
# Runs against a real drive only when HSMFS_TEST_TAPE_DEVICE names one (see docs/TAPE.md).
hsmfs_gtest(tape_real_drive_test unit/backends/tape/real_drive_test.cc hsmfs_backend_tape)
hsmfs_gtest(tape_format_test unit/backends/tape/tape_format_test.cc hsmfs_tape_format
  LibArchive::LibArchive)
hsmfs_gtest(tape_backend_test unit/backends/tape/tape_backend_test.cc hsmfs_backend_tape_mount
  hsmfs_catalog)
