# Tests of tools/hsmscan (included by tests/CMakeLists.txt).
