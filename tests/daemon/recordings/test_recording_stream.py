"""End to end: the daemon on an H.264 stream served over HTTP on loopback, with the demo model,
recording by remux: segments, the event API, clips (probed, decoded), range requests, 400/404."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from daemon.recordings.db import wall_time
from tests.daemon.cdp import Browser
from tests.daemon.daemon_helpers import DaemonProcess, wait_until, write_yaml
from tests.daemon.h264_stream import H264HttpCamera, make_h264
from tests.daemon.recordings.rec_helpers import (
    TOKEN,
    api,
    api_json,
    decodes,
    ended_events,
    probe_video,
    recording_config,
)

PRE = POST = 2.0


class Live:
    def __init__(self, daemon: DaemonProcess, port: int, workdir: Path) -> None:
        self.daemon, self.port, self.workdir = daemon, port, workdir


@pytest.fixture(scope="module")
def live(tmp_path_factory, demo_model, demo_video) -> Iterator[Live]:  # noqa: ANN001
    workdir = tmp_path_factory.mktemp("rec-stream")
    video, _ = demo_video(100, seed=3)
    camera = H264HttpCamera(make_h264(video, workdir / "cam.mp4")).start()
    config = recording_config(demo_model, {"name": "cam", "source": {
        "type": "opencv", "url": camera.url}}, workdir)
    path = write_yaml(workdir / "config.yaml", config)
    daemon = DaemonProcess(path, workdir)
    live = Live(daemon, config["outputs"]["http"]["port"], workdir)
    try:
        ok = wait_until(lambda: len(ended_events(live.port)) >= 2 and any(
            _covered(live, e) for e in ended_events(live.port)), 300, 1.0)
        assert ok, daemon.stderr()
        yield live
    finally:
        daemon.terminate()
        camera.stop()


def _covered(live: Live, event: dict[str, Any]) -> bool:
    """Whether footage covers the event's whole clip window."""
    segments = api_json(live.port, "/api/recordings?camera=cam")["segments"]
    return bool(segments) and segments[-1]["end_time"] >= wall_time(event["end_time"]) + POST \
        and segments[0]["start_time"] <= wall_time(event["start_time"]) - PRE


def test_segments_are_indexed_and_remuxed(live: Live) -> None:
    segments = api_json(live.port, "/api/recordings?camera=cam")["segments"]
    assert segments
    for seg in segments:
        assert (live.workdir / "rec" / "cam" / seg["file"]).is_file()
        assert 0 < seg["duration"] <= 4.5
    assert "by remuxing" in live.daemon.stderr()


def test_events_are_listed_newest_first_with_pagination(live: Live) -> None:
    every = api_json(live.port, "/api/events?limit=500")["events"]
    assert len(every) >= 2
    starts = [wall_time(e["start_time"]) for e in every]
    assert starts == sorted(starts, reverse=True)
    first = api_json(live.port, "/api/events?limit=1")
    assert first["events"][0]["id"] == every[0]["id"] and first["next_cursor"]
    second = api_json(live.port, f"/api/events?limit=1&cursor={first['next_cursor']}")
    assert second["events"][0]["id"] == every[1]["id"]
    label = every[0]["label"]
    same = api_json(live.port, f"/api/events?label={label}&limit=500")["events"]
    assert same and all(e["label"] == label for e in same)
    assert api_json(live.port, "/api/events?camera=nocam")["events"] == []
    one = api_json(live.port, f"/api/events/{every[0]['id']}")
    assert one["id"] == every[0]["id"] and one["camera"] == "cam"


def test_every_clip_is_a_valid_mp4_of_the_event_window(live: Live) -> None:
    segments = api_json(live.port, "/api/recordings?camera=cam")["segments"]
    first, last = segments[0]["start_time"], segments[-1]["end_time"]
    full = 0
    for event in ended_events(live.port):
        status, headers, body = api(live.port, f"/api/events/{event['id']}/clip.mp4")
        assert status == 200 and headers["Content-Type"] == "video/mp4", (status, body[:200])
        clip = live.workdir / f"{event['id']}.mp4"
        clip.write_bytes(body)
        duration, frames = probe_video(clip)
        start, end = wall_time(event["start_time"]), wall_time(event["end_time"])
        expected = min(end + POST, last) - max(start - PRE, first)
        full += end + POST <= last and start - PRE >= first
        assert abs(duration - expected) <= 1.0, (event["id"], duration, expected)
        assert frames >= 5 and decodes(clip)
        assert body.find(b"moov") < body.find(b"mdat")  # faststart: the index first
    assert full >= 1


def test_range_requests_return_206_with_the_right_bytes(live: Live) -> None:
    event = ended_events(live.port)[0]
    path = f"/api/events/{event['id']}/clip.mp4"
    _, _, whole = api(live.port, path)
    status, headers, part = api(live.port, path, {"Range": "bytes=100-1099"})
    assert status == 206 and part == whole[100:1100]
    assert headers["Content-Range"] == f"bytes 100-1099/{len(whole)}"
    status, _, tail = api(live.port, path, {"Range": "bytes=-500"})
    assert status == 206 and tail == whole[-500:]
    status, _, _ = api(live.port, path, {"Range": f"bytes={len(whole)}-"})
    assert status == 416


def test_snapshot_and_errors(live: Live) -> None:
    event = ended_events(live.port)[0]
    status, headers, body = api(live.port, f"/api/events/{event['id']}/snapshot.jpg")
    assert status == 200 and body[:2] == b"\xff\xd8"
    for query, name in (("limit=0", "limit"), ("after=yesterday", "after"),
                        ("cursor=%%%", "cursor"), ("colour=red", "colour")):
        status, _, body = api(live.port, f"/api/events?{query}")
        assert status == 400 and json.loads(body)["parameter"] == name, (query, body)
    assert api(live.port, "/api/events/nope-123")[0] == 404
    assert api(live.port, "/api/events/nope-123/clip.mp4")[0] == 404
    status, _, _ = api(live.port, "/api/events", {"Authorization": "Bearer wrong"})
    assert status == 401


def test_delete_removes_the_event(live: Live) -> None:
    event = ended_events(live.port)[-1]
    status, _, _ = api(live.port, f"/api/events/{event['id']}", method="DELETE")
    assert status == 200
    assert api(live.port, f"/api/events/{event['id']}")[0] == 404
    assert api(live.port, f"/api/events/{event['id']}", method="DELETE")[0] == 404


def test_review_page_lists_events_and_plays_a_clip(live: Live, tmp_path: Path) -> None:
    browser = Browser(tmp_path / "profile")
    try:
        browser.navigate(f"http://127.0.0.1:{live.port}/?token={TOKEN}")
        thumbs_loaded = ("(() => { const imgs = [...document.querySelectorAll("
                         "'#review-events img')]; return imgs.length > 0 && imgs.every("
                         "i => i.complete && i.naturalWidth > 0); })()")
        assert wait_until(lambda: browser.evaluate(thumbs_loaded), 60, 0.5)
        # the live tiles fill the window: the review list is below them, scrolled to here
        rect = browser.evaluate("(() => { const i = document.querySelector("
                                "'#review-events img'); i.scrollIntoView({block: 'center'}); "
                                "const r = i.getBoundingClientRect(); "
                                "return [r.x, r.y, r.width, r.height]; })()")
        shot = cv2.imdecode(np.frombuffer(browser.screenshot(), np.uint8), cv2.IMREAD_COLOR)
        x, y, w, h = (int(v) for v in rect)
        thumb = shot[y:y + h, x:x + w]
        assert thumb.size and thumb.std() > 10  # a picture, not a blank box
        label = browser.evaluate("document.querySelector('#review-events .label').textContent")
        assert label in ("square", "circle", "triangle")
        browser.click(x + w / 2, y + h / 2)
        playing = ("(() => { const v = document.getElementById('review-video'); "
                   "return v.readyState === 4 && v.currentTime > 0.5; })()")
        assert wait_until(lambda: browser.evaluate(playing), 60, 0.5), browser.evaluate(
            "[document.getElementById('review-video').readyState, "
            "document.getElementById('review-video').error?.message]")
    finally:
        browser.close()


def test_an_event_without_its_snapshot_file_gets_a_frame_of_its_footage(live: Live) -> None:
    event = next(e for e in ended_events(live.port)
                 if _covered(live, e) and e.get("snapshot"))
    Path(event["snapshot"]).unlink()  # e.g. removed by the snapshot output's own retention
    described = api_json(live.port, f"/api/events/{event['id']}")
    assert described["has_snapshot"] and described["has_clip"]
    status, headers, body = api(live.port, f"/api/events/{event['id']}/snapshot.jpg")
    assert status == 200 and headers["Content-Type"] == "image/jpeg", (status, body[:300])
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (240, 320, 3) and image.std() > 5


def test_review_filters_and_phone_width(live: Live, tmp_path: Path) -> None:
    browser = Browser(tmp_path / "profile")
    try:
        browser.call("Emulation.setDeviceMetricsOverride", width=390, height=844,
                     deviceScaleFactor=2, mobile=True)
        browser.navigate(f"http://127.0.0.1:{live.port}/?token={TOKEN}")
        count = "document.querySelectorAll('#review-events li').length"
        assert wait_until(lambda: browser.evaluate(count), 60, 0.5)
        fits = "document.documentElement.scrollWidth <= window.innerWidth"
        assert browser.evaluate(fits), "the page scrolls sideways on a phone"
        labels = "[...document.querySelectorAll('#review-events .label')].map(e => e.textContent)"
        wanted = sorted(set(browser.evaluate(labels)))[0]
        browser.evaluate(f"(() => {{ const f = document.getElementById('review-filters'); "
                         f"f.elements.label.value = '{wanted}'; "
                         f"f.dispatchEvent(new Event('change')); }})()")
        expected = {e["id"] for e in api_json(live.port, f"/api/events?label={wanted}&limit=30")
                    ["events"]}
        ids = "[...document.querySelectorAll('#review-events li')].map(e => e.dataset.id)"
        assert wait_until(lambda: set(browser.evaluate(ids) or []) == expected, 60, 0.5)
        assert set(browser.evaluate(labels)) == {wanted}
    finally:
        browser.close()
