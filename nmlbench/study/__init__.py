"""The main job: the whole noisy-pretraining study on one machine (noise -> pretrain -> evaluate -> table)."""

from __future__ import annotations

from nmlbench.study.run import StudyOptions as StudyOptions
from nmlbench.study.run import run_study as run_study
from nmlbench.study.summary import study_table as study_table
