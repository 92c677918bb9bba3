"""The embedded task world (TASKS.md): generators, reference solutions and verifiers."""
