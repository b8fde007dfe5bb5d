// The transports a build has: Gloo's exactly when it was built with Gloo (DTRAIN_HAVE_GLOO:
// -DDTRAIN_WITH_GLOO=ON and Gloo found). Without it, asking for Gloo's transport is an
// InvalidArgumentError that says so, and dtrain's own transport still works.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "common/error_of.h"
#include "dtrain/communicator.h"
#include "dtrain/memory_store.h"
#include "test_ranks.h"

namespace dtrain::testing {
namespace {

float allreduce_one(CommTransport transport, float value) {
  CommOptions options = test_options();
  options.transport = transport;
  auto comm = Communicator::create(std::make_shared<MemoryStore>(), 0, 1, options);
  comm->allreduce(&value, 1, DType::kFloat32, ReduceOp::kSum);
  return value;
}

TEST(CommTransportBuild, TcpIsAlwaysThere) {
  EXPECT_EQ(allreduce_one(CommTransport::kTcp, 3.0f), 3.0f);
}

#if DTRAIN_HAVE_GLOO
TEST(CommTransportBuild, GlooIsThereWhenBuiltWithIt) {
  EXPECT_EQ(allreduce_one(CommTransport::kGloo, 3.0f), 3.0f);
}
#else
TEST(CommTransportBuild, GlooIsAClearErrorWhenBuiltWithout) {
  std::string message =
      error_of<InvalidArgumentError>([] { allreduce_one(CommTransport::kGloo, 3.0f); });
  EXPECT_NE(message.find("dtrain was built without Gloo"), std::string::npos) << message;
  EXPECT_NE(message.find("'tcp'"), std::string::npos) << message;
}
#endif

}  // namespace
}  // namespace dtrain::testing
