// Error handling shared by the torch backend's C++ shim (cuda_graph.cpp, aoti.cpp): no C++
// exception may unwind into Rust (undefined behaviour), so every entry point runs its body
// through `guarded`, which catches everything and writes the message into the caller's buffer.
#pragma once

#include <c10/util/Exception.h>

#include <cstddef>
#include <cstdio>
#include <exception>

namespace jb {

inline void put_error(char* err, size_t len, const char* msg) {
  if (err != nullptr && len > 0) {
    std::snprintf(err, len, "%s", msg);
  }
}

// Runs `f`, turning any exception into -1 and its message (c10's without the C++ backtrace,
// which is many lines and says nothing to a user of the rig).
template <class F>
int guarded(char* err, size_t len, F&& f) {
  try {
    f();
    return 0;
  } catch (const c10::Error& e) {
    put_error(err, len, e.what_without_backtrace());
  } catch (const std::exception& e) {
    put_error(err, len, e.what());
  } catch (...) {
    put_error(err, len, "unknown C++ exception");
  }
  return -1;
}

}  // namespace jb
