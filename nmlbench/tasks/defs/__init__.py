"""Built-in task definitions (package data): one YAML per task, task name = file stem."""
