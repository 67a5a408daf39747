"""bench.profile: py-spy's stacks summed per function and split into the parts of a request."""

from __future__ import annotations

from bench.profile import summarize

OUTER = "main (fastchat_api/__main__.py:114);run_app (aiohttp/web.py:502)"
HANDLER = f"{OUTER};RequestHandler._handle_request (aiohttp/web_protocol.py:577)"


def test_each_sample_counts_for_the_innermost_frame_of_a_known_part(tmp_path):
    raw = tmp_path / "profile.txt"
    raw.write_text("\n".join([
        f"{HANDLER};load (fastchat_api/schemas.py:128);Schema.load (marshmallow/schema.py:1) 3",
        # the standard library counts for its caller: our code here
        f"{HANDLER};new_id (fastchat_api/ids.py:20);urandom (os.py:1) 2",
        f"{HANDLER};dumps (fastchat_api/jsonutil.py:9) 1",
        f"{HANDLER};UpstreamClient._post (fastchat_api/upstream/client.py:1);"
        "ClientSession._request (aiohttp/client.py:1);StreamWriter._writelines (aiohttp/http_writer.py:1) 2",
        f"{OUTER} 1",  # uvloop's own work, below every Python frame
        f"{OUTER};EpollSelector.select (selectors.py:1) 5",  # waiting: not busy
    ]) + "\n")
    summary = summarize(raw)
    assert summary["samples"] == 14
    assert dict(summary["parts"]) == {
        "marshmallow": 100 * 3 / 9, "our code": 100 * 2 / 9, "JSON": 100 * 1 / 9,
        "aiohttp client": 100 * 2 / 9, "event loop (uvloop's own work)": 100 * 1 / 9}
