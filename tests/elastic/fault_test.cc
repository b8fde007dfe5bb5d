// Fault specs: parsing good and bad specs, DTRAIN_FAULT, and when FaultPlan::at_step fires.
#include <gtest/gtest.h>

#include <map>

#include "dtrain/elastic.h"
#include "dtrain/error.h"

namespace dtrain {
namespace {

using std::chrono::milliseconds;

TEST(FaultSpec, ParsesEveryKind) {
  auto specs = parse_fault_specs(
      "kill:rank=2,step=3; delay:rank=0,ms=50 ;drop:rank=1,step=7;delay: rank=1, ms=5, step=7;");
  ASSERT_EQ(specs.size(), 4u);
  EXPECT_EQ(specs[0].kind, FaultKind::kKill);
  EXPECT_EQ(specs[0].rank, 2);
  EXPECT_EQ(specs[0].step, 3);
  EXPECT_EQ(specs[1].kind, FaultKind::kDelay);
  EXPECT_EQ(specs[1].rank, 0);
  EXPECT_FALSE(specs[1].step.has_value());
  EXPECT_EQ(specs[1].delay, milliseconds(50));
  EXPECT_EQ(specs[2].kind, FaultKind::kDrop);
  EXPECT_EQ(specs[2].rank, 1);
  EXPECT_EQ(specs[2].step, 7);
  EXPECT_EQ(specs[3].kind, FaultKind::kDelay);
  EXPECT_EQ(specs[3].step, 7);
  EXPECT_EQ(specs[3].delay, milliseconds(5));
  EXPECT_TRUE(parse_fault_specs("").empty());
  EXPECT_TRUE(parse_fault_specs("  ").empty());
}

TEST(FaultSpec, BadSpecsNameTheSpecAndTheProblem) {
  const std::map<std::string, std::string> bad = {
      {"kill", "expected KIND:KEY=VALUE"},
      {"explode:rank=1,step=2", "unknown fault kind \"explode\""},
      {"kill:rank=1", "missing step"},
      {"drop:step=4", "missing rank"},
      {"delay:rank=1", "missing ms"},
      {"kill:rank=x,step=1", "rank must be a non-negative integer, got \"x\""},
      {"kill:rank=-1,step=1", "rank must be a non-negative integer"},
      {"kill:rank=1,step=2,ms=3", "unknown key \"ms\" for kill"},
      {"kill:rank=1,rank=2,step=1", "rank given twice"},
      {"kill:rank=1,step", "expected KEY=VALUE, got \"step\""},
      {"delay:rank=1,ms=", "ms must be a non-negative integer, got \"\""},
      {"kill:rank=99999999999,step=1", "out of range"},
  };
  for (const auto& [spec, problem] : bad) {
    try {
      parse_fault_specs("delay:rank=0,ms=1;" + spec);
      ADD_FAILURE() << spec << " parsed";
    } catch (const InvalidArgumentError& e) {
      std::string what = e.what();
      EXPECT_NE(what.find("--fault \"" + spec + "\": "), std::string::npos) << what;
      EXPECT_NE(what.find(problem), std::string::npos) << what;
    }
  }
}

TEST(FaultPlan, KillAndDropFireOnceDelaysEveryTime) {
  FaultPlan plan = FaultPlan::parse(
      "kill:rank=2,step=3;drop:rank=1,step=2;delay:rank=1,ms=40;delay:rank=0,ms=7,step=5");
  EXPECT_FALSE(plan.at_step(2, 2).any());
  EXPECT_FALSE(plan.at_step(1, 3).kill);
  EXPECT_TRUE(plan.at_step(2, 3).kill);
  EXPECT_FALSE(plan.at_step(2, 3).any()) << "a replayed step must not kill again";

  FaultAction a = plan.at_step(1, 2);
  EXPECT_TRUE(a.drop);
  EXPECT_FALSE(a.kill);
  EXPECT_EQ(a.delay, milliseconds(40));
  a = plan.at_step(1, 2);
  EXPECT_FALSE(a.drop);
  EXPECT_EQ(a.delay, milliseconds(40));  // delays apply every time
  EXPECT_EQ(plan.at_step(1, 100).delay, milliseconds(40));

  EXPECT_EQ(plan.at_step(0, 4).delay, milliseconds(0));
  EXPECT_EQ(plan.at_step(0, 5).delay, milliseconds(7));
  EXPECT_EQ(plan.at_step(0, 5).delay, milliseconds(7));
  EXPECT_FALSE(plan.at_step(3, 3).any());
}

TEST(FaultPlan, FromEnvironment) {
  auto env = [](std::optional<std::string> value) {
    return [value](const std::string& name) -> std::optional<std::string> {
      return name == "DTRAIN_FAULT" ? value : std::nullopt;
    };
  };
  EXPECT_TRUE(FaultPlan::from_env(env(std::nullopt)).empty());
  FaultPlan plan = FaultPlan::from_env(env("drop:rank=0,step=1"));
  ASSERT_EQ(plan.specs().size(), 1u);
  EXPECT_TRUE(plan.at_step(0, 1).drop);
  try {
    FaultPlan::from_env(env("kill:rank=0"));
    ADD_FAILURE() << "parsed";
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("DTRAIN_FAULT \"kill:rank=0\": missing step"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace dtrain
