#include "dtrain/error.h"

namespace dtrain {

std::string_view error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return "invalid argument";
    case ErrorCode::kTimeout: return "timeout";
    case ErrorCode::kPeerLost: return "peer lost";
    case ErrorCode::kMismatch: return "mismatch";
    case ErrorCode::kIo: return "I/O error";
    case ErrorCode::kAborted: return "aborted";
    case ErrorCode::kCorrupt: return "corrupt data";
    case ErrorCode::kNotFound: return "not found";
    case ErrorCode::kUnauthenticated: return "unauthenticated";
    case ErrorCode::kInternal: return "internal error";
  }
  return "unknown error";
}

Error::Error(ErrorCode code, const std::string& message)
    : std::runtime_error(message), code_(code) {}

void throw_error(ErrorCode code, const std::string& message) {
  switch (code) {
    case ErrorCode::kInvalidArgument: throw InvalidArgumentError(message);
    case ErrorCode::kTimeout: throw TimeoutError(message);
    case ErrorCode::kPeerLost: throw PeerLostError(message);
    case ErrorCode::kMismatch: throw MismatchError(message);
    case ErrorCode::kIo: throw IoError(message);
    case ErrorCode::kAborted: throw AbortedError(message);
    case ErrorCode::kCorrupt: throw CorruptError(message);
    case ErrorCode::kNotFound: throw NotFoundError(message);
    case ErrorCode::kUnauthenticated: throw UnauthenticatedError(message);
    case ErrorCode::kInternal: throw InternalError(message);
  }
  throw Error(code, message);
}

}  // namespace dtrain
