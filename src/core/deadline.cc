#include "dtrain/deadline.h"

#include "dtrain/error.h"

namespace dtrain {

void Deadline::check(const std::string& what) const {
  if (expired()) throw TimeoutError(what + ": deadline passed");
}

}  // namespace dtrain
