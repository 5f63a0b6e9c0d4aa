"""`kafkaops status`: the database, the broker and the service gathered at once, judged by the
runbook's thresholds (`settings.thresholds`), with the next step for each check that is not OK.

The modules here import neither typer nor rich: `gather` runs the sources concurrently under
deadlines, `checks` judges, `render` writes the machine formats, `statefile` and `alerts`
remember what earlier runs saw and said.
"""
