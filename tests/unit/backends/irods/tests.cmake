# Tests of backends/irods (included by tests/CMakeLists.txt).
hsmfs_gtest(irods_codec_test unit/backends/irods/codec_test.cc
  hsmfs_irods_client nlohmann_json::nlohmann_json)
hsmfs_gtest(irods_auth_test unit/backends/irods/auth_test.cc
  hsmfs_irods_client nlohmann_json::nlohmann_json)
# Replays the recorded real-server conversations of tests/testdata/irods.
hsmfs_gtest(irods_replay_test unit/backends/irods/replay_test.cc
  hsmfs_irods_client nlohmann_json::nlohmann_json)
# Pure iRODS <-> hsmfs translations (DMF states, checksums, rule texts).
hsmfs_gtest(irods_mapping_test unit/backends/irods/mapping_test.cc hsmfs_backend_irods)
# Runs the iRODS emulator of tests/emulators/irods (needs /usr/bin/python3).
hsmfs_gtest(irods_backend_test unit/backends/irods/irods_backend_test.cc hsmfs_backend_irods)
