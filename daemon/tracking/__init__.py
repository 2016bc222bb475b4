"""Object tracking: IoU association with Kalman prediction (ByteTrack-style), numpy only."""

from daemon.tracking.assignment import linear_assignment, match_by_iou
from daemon.tracking.geometry import box_areas, iou, iou_matrix, suppress_duplicates
from daemon.tracking.tracker import Detections, Track, Tracker, TrackerUpdate

__all__ = ["Detections", "Track", "Tracker", "TrackerUpdate", "box_areas", "iou", "iou_matrix",
           "linear_assignment", "match_by_iou", "suppress_duplicates"]
