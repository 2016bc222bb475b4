// Review view: recent events from /api/events, filters, a click plays the event's clip.
"use strict";
(function () {
  const token = new URLSearchParams(location.search).get("token");
  const list = document.getElementById("review-events");
  const more = document.getElementById("review-more");
  const form = document.getElementById("review-filters");
  const video = document.getElementById("review-video");
  let cursor = null;

  function url(path, params) {
    const q = new URLSearchParams(params || {});
    if (token) q.set("token", token);
    const s = q.toString();
    return s ? `${path}?${s}` : path;
  }

  function filters() {
    const p = {limit: "30"};
    for (const name of ["camera", "label", "zone"]) {
      const v = form.elements[name].value.trim();
      if (v) p[name] = v;
    }
    const day = form.elements.day.value;
    if (day) {
      const start = new Date(`${day}T00:00:00`);
      p.after = String(start.getTime() / 1000);
      p.before = String(start.getTime() / 1000 + 86400);
    }
    return p;
  }

  function item(ev) {
    const li = document.createElement("li");
    li.dataset.id = ev.id;
    const thumb = ev.has_snapshot ? document.createElement("img") : document.createElement("div");
    if (ev.has_snapshot) {
      thumb.src = url(`api/events/${encodeURIComponent(ev.id)}/snapshot.jpg`);
      thumb.alt = `${ev.label} snapshot`;
      thumb.loading = "lazy";
      thumb.onerror = () => { const none = document.createElement("div");
        none.className = "nothumb"; thumb.replaceWith(none); };
    } else {
      thumb.className = "nothumb";
    }
    const meta = document.createElement("div");
    meta.className = "meta";
    const when = new Date(ev.start_time).toLocaleString();
    const dur = ev.duration === null ? "ongoing" : `${ev.duration.toFixed(1)} s`;
    const zones = (ev.entered_zones || []).join(", ");
    meta.innerHTML = '<span class="label"></span> <span class="camera"></span><br>' +
      '<span class="time"></span> · <span class="duration"></span><br><span class="zones"></span>';
    meta.querySelector(".label").textContent = ev.label;
    meta.querySelector(".camera").textContent = ev.camera;
    meta.querySelector(".time").textContent = when;
    meta.querySelector(".duration").textContent = dur;
    meta.querySelector(".zones").textContent = zones;
    li.append(thumb, meta);
    li.addEventListener("click", () => play(ev, li));
    return li;
  }

  function play(ev, li) {
    for (const other of list.querySelectorAll(".playing")) other.classList.remove("playing");
    li.classList.add("playing");
    document.getElementById("review-player").hidden = false;
    document.getElementById("review-caption").textContent =
      ev.has_clip ? `${ev.label} on ${ev.camera}` : "no footage for this event";
    video.src = url(`api/events/${encodeURIComponent(ev.id)}/clip.mp4`);
    video.play().catch(() => {});
  }

  async function load(reset) {
    const params = filters();
    if (!reset && cursor) params.cursor = cursor;
    try {
      const r = await fetch(url("api/events", params), {cache: "no-store"});
      const body = await r.json();
      if (!r.ok) throw new Error(body.error);
      if (reset) list.replaceChildren();
      for (const ev of body.events) list.append(item(ev));
      cursor = body.next_cursor;
      more.hidden = !cursor;
      list.dataset.loaded = String(list.children.length);
    } catch (e) {
      list.dataset.error = String(e);
    }
  }

  form.addEventListener("change", () => load(true));
  more.addEventListener("click", () => load(false));
  load(true);
  setInterval(() => { if (!list.querySelector(".playing")) load(true); }, 10000);
})();
