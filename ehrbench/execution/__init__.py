"""Running a benchmark: plan the jobs, run each (fit, sample, score) through an executor, record it."""
