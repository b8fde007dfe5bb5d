// Typed errors reported at module boundaries.
//
// Library code never exits or aborts on a runtime fault (a peer, a file, a user's input): it throws
// one of these. Each carries an ErrorCode so callers can switch on the kind without RTTI, and each
// kind has its own class so callers can also catch exactly the kinds they handle.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace dtrain {

// Only ever grows at the end (codes may travel on the wire).
enum class ErrorCode : int {
  kInvalidArgument = 1,  // a bad flag, config key, argument value
  kTimeout = 2,          // a deadline passed
  kPeerLost = 3,         // a peer process died or its connection broke
  kMismatch = 4,         // ranks disagree (collective, dtype, count, model shapes, ...)
  kIo = 5,               // file or socket I/O failed
  kAborted = 6,          // the operation was cancelled by abort()
  kCorrupt = 7,          // malformed or corrupted data (checkpoint, wire message, dataset file)
  kNotFound = 8,         // a key, file or package that is not there
  kUnauthenticated = 9,  // wrong or missing secret
  kInternal = 10,        // a broken invariant inside dtrain
};

std::string_view error_code_name(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message);
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

#define DTRAIN_DEFINE_ERROR(Name, Code) \
  class Name : public Error {           \
   public:                              \
    explicit Name(const std::string& message) : Error(ErrorCode::Code, message) {} \
  }

DTRAIN_DEFINE_ERROR(InvalidArgumentError, kInvalidArgument);
DTRAIN_DEFINE_ERROR(TimeoutError, kTimeout);
DTRAIN_DEFINE_ERROR(PeerLostError, kPeerLost);
DTRAIN_DEFINE_ERROR(MismatchError, kMismatch);
DTRAIN_DEFINE_ERROR(IoError, kIo);
DTRAIN_DEFINE_ERROR(AbortedError, kAborted);
DTRAIN_DEFINE_ERROR(CorruptError, kCorrupt);
DTRAIN_DEFINE_ERROR(NotFoundError, kNotFound);
DTRAIN_DEFINE_ERROR(UnauthenticatedError, kUnauthenticated);
DTRAIN_DEFINE_ERROR(InternalError, kInternal);

#undef DTRAIN_DEFINE_ERROR

// Throws the Error subclass that matches `code` (used to re-raise an error that crossed a thread
// or a process boundary as a code and a message).
[[noreturn]] void throw_error(ErrorCode code, const std::string& message);

}  // namespace dtrain
