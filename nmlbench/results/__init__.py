"""Result records: one schema-versioned JSON per (model, method, task, seed) plus predictions parquet."""

from __future__ import annotations

from nmlbench.results.io import SCHEMA_VERSION as SCHEMA_VERSION
from nmlbench.results.io import make_run_id as make_run_id
from nmlbench.results.io import read_record as read_record
from nmlbench.results.io import record_path as record_path
from nmlbench.results.io import write_predictions as write_predictions
from nmlbench.results.io import write_record as write_record
