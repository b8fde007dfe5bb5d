// error_of<E>(fn): the message of the E that `fn` throws, for tests that check what an error
// says. Used by several test binaries (as "common/error_of.h").
#pragma once

#include <gtest/gtest.h>

#include <string>

namespace dtrain::testing {

// Calls `fn`, which must throw an E: returns its what(). Adds a test failure and returns "" when
// `fn` returns normally; any other exception propagates.
template <typename E, typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an exception";
  return "";
}

}  // namespace dtrain::testing
