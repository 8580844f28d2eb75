// The LR schedule is a pure function of the step.
#include "run/schedule.h"

#include <gtest/gtest.h>

namespace bert::run {
namespace {

TEST(Schedule, WarmupThenLinearDecayToFloor) {
  TrainingOptions t;
  t.lr = 1.0;
  t.warmup_steps = 10;
  t.max_steps = 110;
  t.schedule = "linear";
  EXPECT_DOUBLE_EQ(lr_at(0, t), 0.1);
  EXPECT_DOUBLE_EQ(lr_at(9, t), 1.0);
  EXPECT_DOUBLE_EQ(lr_at(10, t), 1.0);
  EXPECT_DOUBLE_EQ(lr_at(60, t), 0.5);
  EXPECT_DOUBLE_EQ(lr_at(110, t), 0.0);
  t.min_lr_ratio = 0.1;
  EXPECT_DOUBLE_EQ(lr_at(110, t), 0.1);
}

TEST(Schedule, CosineAndConstant) {
  TrainingOptions t;
  t.lr = 2.0;
  t.warmup_steps = 0;
  t.max_steps = 100;
  t.schedule = "cosine";
  EXPECT_DOUBLE_EQ(lr_at(0, t), 2.0);
  EXPECT_NEAR(lr_at(50, t), 1.0, 1e-12);
  EXPECT_NEAR(lr_at(100, t), 0.0, 1e-12);
  t.schedule = "constant";
  EXPECT_DOUBLE_EQ(lr_at(77, t), 2.0);
}

}  // namespace
}  // namespace bert::run
