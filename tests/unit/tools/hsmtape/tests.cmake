# Tests of tools/hsmtape (included by tests/CMakeLists.txt).
# tape.conf: duplicate keys, FIFOs, NUL bytes, catalogs that are devices.
hsmfs_gtest(hsmtape_tape_conf_test unit/tools/hsmtape/tape_conf_test.cc hsmfs_tape_conf)
