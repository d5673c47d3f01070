"""The smoke command against the real dev server (waitress, over HTTP)."""

from __future__ import annotations

from lib.ops import smoke


def test_the_smoke_story_passes_against_the_local_server(live_server, conn) -> None:
    # the story uses the demo tools that supabase/seed.sql registers
    from lib import settings

    conn.execute((settings.ROOT / "supabase" / "seed.sql").read_text())
    lines: list[str] = []
    plan_id = smoke.Smoke(live_server, say=lines.append).run()
    assert plan_id
    assert any(line.startswith("ok   execute answers at once") for line in lines)
    assert any(line.startswith("ok   the worker pauses the plan for approval") for line in lines)
    assert any("through the signed webhook" in line for line in lines)
    assert any(line.startswith("ok   audit chain verifies") for line in lines)
    assert any(line.startswith("ok   snapshot link downloads: 200") for line in lines)
    assert lines[-1].startswith("ok   events reached Realtime")  # the local realtime.messages (the prelude's)
    assert not any(line.startswith("FAIL") for line in lines)


def test_without_a_database_the_realtime_check_is_skipped_and_says_so(live_server, conn, monkeypatch) -> None:
    from lib import settings

    conn.execute((settings.ROOT / "supabase" / "seed.sql").read_text())
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("NOFX_SMOKE_DATABASE_URL", raising=False)
    lines: list[str] = []
    smoke.Smoke(live_server, say=lines.append).run()
    assert lines[-1] == "skip realtime: set NOFX_SMOKE_DATABASE_URL to read realtime.messages"


def test_an_unknown_surface_is_refused(capsys) -> None:
    assert smoke.main("console", "http://127.0.0.1:9") == 2
    assert "unknown surface" in capsys.readouterr().out
