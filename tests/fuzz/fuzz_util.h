// Small helpers shared by the fuzz targets: scratch folders and files, and a trap that prints why.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace vqd::fuzz {

// A fresh folder for this process (under /dev/shm when it exists, else TMPDIR or /tmp). Aborts on
// failure: a fuzzer that cannot write its files would report nothing useful.
std::string MakeScratchDir(const char* tag);

// Writes `bytes` to `path`, replacing it; aborts on failure.
void WriteFileOrDie(const std::string& path, std::string_view bytes);

// Removes `path` if it exists (a file).
void RemoveFile(const std::string& path);

// Removes a folder and everything in it; errors are ignored.
void RemoveTree(const std::string& dir);

// Whether VQD_FUZZ_VERBOSE is set: the targets then print the parse status of each input, which
// helps to check that a seed is accepted (run the fuzzer binary on the file as its argument).
bool Verbose();

}  // namespace vqd::fuzz

// Stops the run with a message: an invariant of the code under test does not hold.
#define VQD_FUZZ_CHECK(cond, ...)                                                 \
  do {                                                                            \
    if (!(cond)) {                                                                \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                          \
      std::fprintf(stderr, "\n");                                                 \
      __builtin_trap();                                                           \
    }                                                                             \
  } while (0)
