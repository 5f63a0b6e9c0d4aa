from kafkaops.cli.main import run

run()
