# Tests of backends/hpss (included by tests/CMakeLists.txt).
hsmfs_gtest(subprocess_test unit/backends/hpss/subprocess_test.cc hsmfs_common)
hsmfs_gtest(hsi_output_parser_test unit/backends/hpss/hsi_output_parser_test.cc hsmfs_backend_hpss)
# Runs the hsi/htar emulator of tests/emulators/hpss.
hsmfs_gtest(hpss_backend_test unit/backends/hpss/hpss_backend_test.cc hsmfs_backend_hpss
  hsmfs_catalog)
hsmfs_gtest(hpss_config_test unit/backends/hpss/hpss_config_test.cc hsmfs_backends)
