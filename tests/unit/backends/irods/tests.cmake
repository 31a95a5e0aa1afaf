# Tests of backends/irods (included by tests/CMakeLists.txt).
hsmfs_gtest(irods_codec_test unit/backends/irods/codec_test.cc
  hsmfs_irods_client nlohmann_json::nlohmann_json)
hsmfs_gtest(irods_auth_test unit/backends/irods/auth_test.cc
  hsmfs_irods_client nlohmann_json::nlohmann_json)
# Replays the recorded real-server conversations of tests/testdata/irods.
hsmfs_gtest(irods_replay_test unit/backends/irods/replay_test.cc
  hsmfs_irods_client nlohmann_json::nlohmann_json)
