"""What made the face crops travels into the run trained on them: the detector, its settings and the
no-face counts that `fvc prepare --faces` wrote reach every fold's metrics.json and the DuckDB row."""

from __future__ import annotations

import json

import duckdb
import polars as pl

from fvc_core.cli import main
from tests.faces.videos import face_video, moving


def test_a_run_on_face_crops_records_how_they_were_made(tmp_path):
    data = tmp_path / "data"
    rows = []
    for g in range(6):
        start, end = (110 + 5 * g, 110, 100), (150, 120 + 3 * g, 120)
        face_video(data / "real" / f"{g}.mp4", moving(6, start, end))

        def darken(frame, i):  # the "manipulation": a darker square over the eyes
            frame[95:115, 120:170] //= 2

        face_video(data / "fake" / f"{g}.mp4", moving(6, start, end), edit=darken)
        rows += [(f"real/{g}.mp4", "real", f"s{g}"), (f"fake/{g}.mp4", "fake", f"s{g}")]
    table = data / "metadata.parquet"
    pl.DataFrame(rows, schema=["video_path", "label", "source_id"], orient="row").write_parquet(table)
    faces = tmp_path / "faces"
    assert main(["prepare", str(table), "-o", str(faces), "--faces", "--size", "32"]) == 0
    made = json.loads((faces / "prepare.json").read_text())["faces"]

    config = tmp_path / "exp.yaml"
    config.write_text(f"""
experiment: faces
seed: 3
output_dir: {tmp_path / "runs"}
data: {{name: metadata, metadata: {faces / "scaled_metadata.parquet"}, group_column: source_id, num_frames: 4,
        size: 32}}
model: {{name: naive_cnn, chunk_size: 4}}
trainer: {{name: supervised, folds: 2, epochs: 1, warmup_epochs: 0, num_workers: 0}}
trackers: [duckdb]
duckdb: {{path: {tmp_path / "results.duckdb"}, background: false}}
""")
    assert main(["run", str(config)]) == 0
    for fold in range(2):
        metrics = json.loads((tmp_path / "runs" / "naive_cnn" / f"fold_{fold}" / "metrics.json").read_text())
        assert metrics["protocol"]["prepare"]["faces"] == made
    assert made["detector"] == "opencv-haar" and made["detector_version"] and made["counts"]["videos_without_face"] == 0
    with duckdb.connect(str(tmp_path / "results.duckdb"), read_only=True) as con:
        [(protocol,)] = con.execute("SELECT protocol FROM runs").fetchall()
    recorded = json.loads(protocol)
    assert recorded["prepare"]["faces"] == made
