// steps_that_fit against hand-computed cases, and the wall clock of WallBudget.
#include "train/budget.h"

#include <gtest/gtest.h>

#include <thread>

namespace bert::train {
namespace {

TEST(Budget, StepsThatFitCountStepsValidationsAndSaves) {
  ProbeTimes p;
  p.step_s = 0.5;
  // Steps only: 100 s / 0.5 s.
  EXPECT_EQ(steps_that_fit(100, p, 0, 0, 0.0, 0), 200);
  // A 2 % margin: 98 s / 0.5 s.
  EXPECT_EQ(steps_that_fit(100, p, 0, 0, 0.02, 0), 196);
  // Validation of 10 s every 100 steps, plus one at the end: (100 - 10) / (0.5 + 0.1) = 150.
  p.eval_s = 10;
  EXPECT_EQ(steps_that_fit(100, p, 100, 0, 0.0, 0), 150);
  // And a save of 5 s every 50 steps, plus one at the end: (100 - 15) / (0.5 + 0.1 + 0.1) = 121.4.
  p.save_s = 5;
  EXPECT_EQ(steps_that_fit(100, p, 100, 50, 0.0, 0), 121);
  // eval_every 0: one validation at the end only: (100 - 15) / (0.5 + 0.1) = 141.7.
  EXPECT_EQ(steps_that_fit(100, p, 0, 50, 0.0, 0), 141);
  // The cap, and at least one step when nothing fits.
  EXPECT_EQ(steps_that_fit(100, p, 100, 50, 0.0, 40), 40);
  EXPECT_EQ(steps_that_fit(1, p, 100, 50, 0.0, 0), 1);
  EXPECT_EQ(steps_that_fit(-5, p, 100, 50, 0.0, 0), 1);
}

TEST(Budget, WallBudgetCountsEarlierInvocationsAndTheSetUp) {
  const auto start = std::chrono::steady_clock::now() - std::chrono::seconds(3);  // set-up began 3 s ago
  WallBudget b(10, 4, start);
  EXPECT_NEAR(b.used_s(), 7, 0.5);
  EXPECT_NEAR(b.left_s(), 3, 0.5);
  EXPECT_FALSE(b.spent());
  WallBudget over(10, 8, start);
  EXPECT_TRUE(over.spent());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_GT(b.used_s(), 7 - 0.5 + 0.04);
}

}  // namespace
}  // namespace bert::train
