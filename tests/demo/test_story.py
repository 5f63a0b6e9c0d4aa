"""`kafkaops demo` runs to the end as a user would see it (piped, no colour), and what it prints
are the real figures of the real commands on the embedded cluster and the SQLite file."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from kafkaops.demo import story as demo
from tests.helpers.process import run_kafkaops


def summary_after(output: str, command: str, occurrence: int = 0) -> dict[str, str]:
    """The header/values table a command printed first in the demo's output, as a dict."""
    block = output.split(f"$ kafkaops {command}\n")[1 + occurrence]
    header, values = block.splitlines()[:2]
    return dict(zip(header.lower().split(), values.split(), strict=False))


@pytest.mark.timeout(300)
@pytest.mark.slow
def test_the_demo_runs_to_the_end_with_real_figures(tmp_path: Path) -> None:
    keep = tmp_path / "de mo?x=1#y"  # a URL's separators in the folder name: the file stays inside
    done = run_kafkaops(
        "demo",
        "--no-color",
        "--keep",
        str(keep),
        env={"NO_COLOR": "1"},
        stdin=subprocess.DEVNULL,
        timeout=240,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    out = done.stdout
    assert "\x1b[" not in out  # no colour when asked for none
    assert "Traceback" not in out + done.stderr
    typed = re.findall(r"^\$ kafkaops (.*)$", out, flags=re.M)
    assert typed[:4] == ["status", "failed", "failed --group-by error_signature", "retry"]
    assert typed[-1] == "status"
    assert {"dlq list", f"dlq replay {demo.REFUSED_TOPIC}.dlq --yes"} <= set(typed)

    engine = sa.create_engine(sa.engine.URL.create("sqlite", database=str(keep / "failed_kafka_events.db")))
    with engine.connect() as conn:
        counts = dict(
            conn.execute(sa.text("SELECT status, count(*) FROM failed_kafka_events GROUP BY status")).all()
        )
        # The replay of their DLQ marked them: RESOLVED by the replay.
        refused_in_dlq = conn.execute(
            sa.text(
                "SELECT count(*) FROM failed_kafka_events WHERE status = 'RESOLVED' AND topic = :t "
                "AND resolved_by = 'replay' AND dlq_topic = :dlq"
            ),
            {"t": demo.REFUSED_TOPIC, "dlq": f"{demo.REFUSED_TOPIC}.dlq"},
        ).scalar_one()
    engine.dispose()
    first_pass = summary_after(out, "retry")
    second_pass = summary_after(out, "retry", occurrence=1)
    # What the first pass printed is what the table holds now.
    assert int(first_pass["dlq"]) == refused_in_dlq > 0
    assert int(second_pass["resolved"]) == 14  # the requeued DLQ_FAILED events
    resolved = int(first_pass["resolved"]) + int(second_pass["resolved"]) + refused_in_dlq
    assert counts["RESOLVED"] == 2100 + resolved
    assert counts["DLQ"] == 140
    assert f"Marked {refused_in_dlq} DLQ row(s) RESOLVED (resolved by replay)." in out
    assert out.rstrip().endswith("next: kafkaops sandbox")
    assert "DLQ_FAILED" not in counts
    # Nothing was left in the working folder or outside the kept one.
    assert sorted(p.name for p in tmp_path.iterdir()) == [keep.name]


@pytest.mark.slow
def test_without_keep_the_demo_folder_is_removed(tmp_path: Path) -> None:
    with demo.demo_environment() as env:
        folder = env.folder
        assert (folder / "failed_kafka_events.db").is_file()
        assert env.config_file.is_file()
        assert sum(env.seeded.values()) > 3000
        assert set(env.seeded) == {"PENDING", "RESOLVED", "DLQ", "DLQ_FAILED"}
    assert not folder.exists()


def test_a_keep_folder_that_cannot_be_made_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    done = run_kafkaops(
        "demo",
        "--keep",
        str(tmp_path / "a-file" / "demo"),
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.startswith(
        f"Error: cannot keep the demo in {tmp_path / 'a-file' / 'demo'}: Not a directory"
    )
    assert "Traceback" not in done.stderr and "unexpected" not in done.stderr
    assert (tmp_path / "a-file").read_text() == "not a folder"
