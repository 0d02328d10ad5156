"""Quality grading of recorded calls: scorecards, the weekly draw, grades and disputes."""
