from digitize.cli.main import run_main

run_main()
