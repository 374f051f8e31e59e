"""The five scenarios; each `run(ctx)` returns `ScenarioResult`s for the table and JSON."""
