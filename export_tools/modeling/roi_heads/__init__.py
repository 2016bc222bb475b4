"""ROI heads: box (standard, Res5/C4, cascade), mask and keypoint heads."""
