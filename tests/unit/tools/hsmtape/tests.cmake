# Tests of tools/hsmtape (included by tests/CMakeLists.txt).
hsmfs_gtest(hsmtape_ssh_command_test unit/tools/hsmtape/ssh_command_test.cc hsmfs_sources)
# Runs a real OpenSSH sshd on 127.0.0.1 (skips when /usr/sbin/sshd is missing).
hsmfs_gtest(hsmtape_source_test unit/tools/hsmtape/source_test.cc hsmfs_sources)
# tape.conf: duplicate keys, FIFOs, NUL bytes, catalogs that are devices.
hsmfs_gtest(hsmtape_tape_conf_test unit/tools/hsmtape/tape_conf_test.cc hsmfs_tape_conf)
