# Tests of tools/hsmscan (included by tests/CMakeLists.txt).
hsmfs_gtest(hsmscan_test unit/tools/hsmscan/hsmscan_test.cc hsmfs_scan)
